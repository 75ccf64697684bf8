"""Messages per second through the outbox, against the bare connector, to loopback servers.

For each channel (e-mail to an aiosmtpd server, a signed webhook to an HTTP server, both on
127.0.0.1 in this process), the same number of messages is sent twice in the same run:

- ``bare``: the connector alone, ``await connector.send(message)`` for prebuilt messages, with the
  same concurrency (an ``asyncio.Semaphore``);
- ``outbox``: :func:`tummler.app.outbox.run_outbox` over enqueued deliveries in a fresh store —
  claim, send-time checks (consent, fatigue), rendering, the lease touch and the outcome's write.

The ratio ``outbox / bare`` is the outbox's overhead; the difference in milliseconds per message is
the store's work per delivery. Usage::

    .venv/bin/python benchmarks/send.py                    # 2,000 messages per channel, SQLite
    .venv/bin/python benchmarks/send.py --messages 500 --concurrency 16 --backend postgres

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, insert, select

from tummler.app.outbox import OutboxReport, Unsubscribe, enqueue, run_outbox
from tummler.core.clock import FrozenClock
from tummler.core.randomness import make_rng
from tummler.core.vocabulary import ChannelKind
from tummler.deliver import Connector, OutboundMessage, SmtpConnector, WebhookConnector
from tummler.store import models
from tummler.store.database import connect, session_scope, upgrade

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
console = Console()


class _Smtp:
    """aiosmtpd that accepts everything and counts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        with socket.socket() as probe:  # a free port (the controller needs one up front)
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.count += 1
        return "250 OK"

    def close(self) -> None:
        self._controller.stop()


class _HttpServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default (5) resets connections under concurrent clients
    daemon_threads = True


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).count += 1
        body = b'{"id": "x"}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _store(backend: str, folder: Path, server: Any) -> Engine:
    if backend == "sqlite":
        engine = connect(f"sqlite:///{folder / 'send.db'}")
    else:
        from sqlalchemy import text

        admin = connect(server.url(), isolation_level="AUTOCOMMIT")
        name = f"send_{time.monotonic_ns()}"
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        engine = connect(server.url(name))
    upgrade(engine)
    return engine


def _seed(engine: Engine, channel: str, n: int, address: str) -> None:
    """``n`` consenting contacts, each with a decision to send on ``channel``."""
    with session_scope(engine) as session:
        campaign = models.Campaign(
            key=f"bench-{channel}",
            objective="bench",
            definition={},
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(campaign)
        session.flush()
        message = models.Message(campaign_id=campaign.id, key="main", attributes={})
        session.add(message)
        session.flush()
        variant = models.Variant(
            message_id=message.id,
            channel=channel,
            key="a",
            subject="Hello {{ first_name }}",
            body="Hi {{ first_name }}, this is message {{ external_id }}.",
        )
        session.add(variant)
        session.flush()
        campaign_id, variant_id = campaign.id, variant.id
        first = (
            int(session.scalar(select(models.Contact.id).order_by(models.Contact.id.desc())) or 0)
            + 1
        )
        ids = list(range(first, first + n))
        session.execute(
            insert(models.Contact),
            [
                {
                    "id": i,
                    "external_id": f"{channel}-{i}",
                    "attributes": {"first_name": f"P{i}"},
                    "time_zone": "UTC",
                    "stage": "customer",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in ids
            ],
        )
        session.execute(
            insert(models.ChannelIdentity),
            [
                {
                    "contact_id": i,
                    "channel": channel,
                    "address": address.format(i=i),
                    "created_at": NOW,
                }
                for i in ids
            ],
        )
        session.execute(
            insert(models.ConsentEvent),
            [
                {
                    "contact_id": i,
                    "channel": channel,
                    "status": "granted",
                    "source": "bench",
                    "at": NOW - timedelta(days=1),
                    "recorded_at": NOW,
                }
                for i in ids
            ],
        )
        session.execute(
            insert(models.Decision),
            [
                {
                    "campaign_id": campaign_id,
                    "contact_id": i,
                    "lever": 0,
                    "channel": channel,
                    "send_at": NOW,
                    "variant_id": variant_id,
                    "action": 0,
                    "propensity": 0.5,
                    "holdout": False,
                    "reasons": {},
                    "decided_at": NOW,
                }
                for i in ids
            ],
        )


async def _bare(connector: Connector, messages: list[OutboundMessage], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(message: OutboundMessage) -> None:
        async with gate:
            await connector.send(message)

    async with connector:
        started = time.perf_counter()
        await asyncio.gather(*(one(m) for m in messages))
        return time.perf_counter() - started


async def _outbox(
    engine: Engine, name: str, connector: Connector, *, clock: FrozenClock, concurrency: int
) -> OutboxReport:
    async with connector:
        return await run_outbox(
            engine,
            {name: connector},
            clock=clock,
            rng=make_rng(0),
            concurrency=concurrency,
            batch=200,
            # marketing e-mail goes out only with its unsubscribe link: the HMAC is part of a send
            unsubscribe=Unsubscribe("https://brand.example", SecretStr("bench-unsubscribe-key")),
        )


def _messages(kind: ChannelKind, n: int, address: str, tag: str) -> list[OutboundMessage]:
    return [
        OutboundMessage(
            channel=kind,
            to=address.format(i=i),
            subject=f"Hello P{i}",
            body_text=f"Hi P{i}, this is message {kind}-{i}.",
            idempotency_key=f"{tag}:{i}:{kind}",
        )
        for i in range(n)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per channel and mode")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)
    n, concurrency = args.messages, args.concurrency

    smtp_server = _Smtp()
    http = _HttpServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(
        target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    hook_url = f"http://127.0.0.1:{http.server_address[1]}/hook"
    pg = None
    if args.backend == "postgres":
        from tummler.store.throwaway import ThrowawayPostgres

        pg = ThrowawayPostgres().start()
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            engine = _store(args.backend, Path(folder), pg)
            clock = FrozenClock(NOW)

            def make(name: str) -> Connector:
                # one connector per event loop: an HTTP client's pool belongs to the loop it ran in
                if name == "email":
                    return SmtpConnector(
                        host="127.0.0.1",
                        port=smtp_server.port,
                        sender="news@brand.example",
                        clock=clock,
                    )
                return WebhookConnector(
                    url=hook_url, secret=SecretStr("bench-secret-123"), clock=clock
                )

            channels = [
                ("email", ChannelKind.EMAIL, "p{i}@example.org"),
                ("webhook", ChannelKind.WEBHOOK, "subscriber-{i}"),
            ]
            for name, kind, address in channels:
                bare_s = asyncio.run(
                    _bare(make(name), _messages(kind, n, address, "bare"), concurrency)
                )
                _seed(engine, name, n, address)
                started = time.perf_counter()
                enqueue(engine, f"bench-{name}", clock=clock)
                enqueue_s = time.perf_counter() - started
                started = time.perf_counter()
                report = asyncio.run(
                    _outbox(engine, name, make(name), clock=clock, concurrency=concurrency)
                )
                outbox_s = time.perf_counter() - started
                sent = report.counts["sent"]
                if sent != n:
                    raise SystemExit(f"{name}: only {sent} of {n} sent: {report.counts}")
                results.append(
                    {
                        "channel": name,
                        "messages": n,
                        "bare_per_s": n / bare_s,
                        "outbox_per_s": n / outbox_s,
                        "ratio": bare_s / outbox_s,
                        "overhead_ms_per_message": 1000 * (outbox_s - bare_s) / n,
                        "enqueue_per_s": n / enqueue_s,
                    }
                )
            engine.dispose()
    finally:
        smtp_server.close()
        http.shutdown()
        http.server_close()
        if pg is not None:
            pg.stop()

    table = Table(
        title=f"send: {n} messages per channel, concurrency {concurrency}, {args.backend}"
    )
    for column in (
        "channel",
        "bare msg/s",
        "outbox msg/s",
        "outbox / bare",
        "overhead ms/msg",
        "enqueue rows/s",
    ):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for r in results:
        table.add_row(
            r["channel"],
            f"{r['bare_per_s']:,.0f}",
            f"{r['outbox_per_s']:,.0f}",
            f"{r['ratio']:.2f}",
            f"{r['overhead_ms_per_message']:.2f}",
            f"{r['enqueue_per_s']:,.0f}",
        )
    console.print(table)
    print(
        json.dumps(
            {
                "benchmark": "send",
                "backend": args.backend,
                "concurrency": concurrency,
                "python": platform.python_version(),
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
