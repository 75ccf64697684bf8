"""The dry run: every planned message rendered to a file now, whatever its slot, the store unchanged,
and the command exits — so that a real send later still sends every message."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from deliver_servers import SmtpServer
from test_outbox import NOW, UNSUBSCRIBE, seed_campaign, smtp, work
from tummler.app.dry_run import DryRunReport, dry_run_outbox
from tummler.app.outbox import (
    PLACEHOLDER_PUBLIC_URL,
    ChannelRule,
    SendRules,
    Unsubscribe,
    enqueue,
)
from tummler.app.workspace import init_workspace, open_store
from tummler.core.clock import FrozenClock
from tummler.core.vocabulary import ChannelKind, ConsentStatus
from tummler.store import models
from tummler.store.database import session_scope

PLACEHOLDER = Unsubscribe(PLACEHOLDER_PUBLIC_URL, UNSUBSCRIBE.key)
#: E-mail with the example strategy's quiet hours, 21:00 to 08:00 in the contact's time zone.
RULES = SendRules(
    channels={"email": ChannelRule(ChannelKind.EMAIL, quiet_hours=(clock_time(21), clock_time(8)))}
)
TOMORROW_NOON = NOW + timedelta(days=1)


@pytest.fixture
def smtp_server() -> Any:
    server = SmtpServer()
    yield server
    server.close()


def all_deliveries(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(models.Delivery.__table__))]


def revoke(engine: Engine, contact_id: int) -> None:
    with session_scope(engine) as session:
        session.add(
            models.ConsentEvent(
                contact_id=contact_id,
                channel="email",
                status=ConsentStatus.REVOKED.value,
                source="unsubscribe-link",
                at=NOW - timedelta(hours=1),
                recorded_at=NOW - timedelta(hours=1),
            )
        )


def dry_run(engine: Engine, path: Path, unsubscribe: Unsubscribe = PLACEHOLDER) -> DryRunReport:
    return asyncio.run(
        dry_run_outbox(engine, path, clock=FrozenClock(NOW), unsubscribe=unsubscribe, rules=RULES)
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_dry_run_renders_every_planned_message_whatever_its_slot_and_changes_nothing(
    engine: Engine, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    def seed(campaign: str, **options: Any) -> list[int]:
        options.setdefault("holdouts", 0)
        options.setdefault("no_sends", 0)
        address = f"{campaign}{{i}}@example.org"
        return seed_campaign(engine, campaign=campaign, address=address, **options).contact_ids

    clock = FrozenClock(NOW)
    spring = seed("spring", n=3, holdouts=1, no_sends=1, at=TOMORROW_NOON)  # not enqueued yet
    revoke(engine, spring[1])
    seed("night", n=1, at=NOW + timedelta(days=1, hours=11))  # 23:00 UTC: in the quiet hours
    seed("receipts", n=1, category="transactional", at=NOW - timedelta(hours=1))
    enqueue(engine, "receipts", clock=clock)  # a pending delivery whose slot has passed
    seed("done", n=1)
    enqueue(engine, "done", clock=clock)
    with session_scope(engine) as session:
        session.execute(update(models.Delivery).values(status="sent", sent_at=NOW))
        session.execute(
            update(models.Delivery)
            .where(models.Delivery.idempotency_key.like("receipts:%"))
            .values(status="pending", sent_at=None)
        )
    seed("broken", n=1, body="Hi {{ nickname }}", at=TOMORROW_NOON)
    before = all_deliveries(engine)
    path = tmp_path / "outbox" / "dry-run.jsonl"

    report = dry_run(engine, path)

    assert report.path == path
    outcomes = Counter((m.campaign, m.status) for m in report.messages)
    assert outcomes == Counter(
        {
            ("spring", "rendered"): 2,
            ("spring", "skipped"): 1,
            ("night", "deferred"): 1,
            ("receipts", "rendered"): 1,
            ("broken", "failed"): 1,
        }
    )
    by_campaign = {m.campaign: m for m in report.messages if m.status != "skipped"}
    assert by_campaign["receipts"].due == NOW  # its slot has passed: a send hands it over now
    assert by_campaign["spring"].due == TOMORROW_NOON  # its slot
    assert by_campaign["night"].due == datetime(2026, 3, 4, 8, 0, tzinfo=UTC)  # quiet hours' end
    reasons = {status: f"{count} × {reason}" for (status, reason), count in report.reasons.items()}
    assert "consent revoked" in reasons["skipped"]
    assert "nickname" in reasons["failed"]
    assert report.marketing_emails == 3  # the receipt is transactional
    written = lines(path)
    assert sorted(line["to"] for line in written) == [
        "night0@example.org",
        "receipts0@example.org",
        "spring0@example.org",
        "spring2@example.org",
    ]
    for line in written:
        assert line["unsubscribe_url"].startswith(f"{PLACEHOLDER_PUBLIC_URL}/unsubscribe/")
    assert all_deliveries(engine) == before  # nothing enqueued, claimed or marked sent
    assert not path.with_name("dry-run.jsonl.partial").exists()

    # a second dry run replaces the file: the same messages, not twice as many
    again = dry_run(engine, path, UNSUBSCRIBE)
    assert len(again.written) == 4
    assert [line["idempotency_key"] for line in lines(path)] == [
        line["idempotency_key"] for line in written
    ]
    assert all(line["unsubscribe_url"].startswith("https://brand.test/") for line in lines(path))

    # the real send at the slot still sends what the dry run showed as due by then
    for key in ("spring", "night", "broken"):
        enqueue(engine, key, clock=clock)
    sending = FrozenClock(TOMORROW_NOON + timedelta(minutes=5))
    sent = work(engine, {"email": smtp(smtp_server)}, sending, rules=RULES)
    assert sent.counts == Counter({"sent": 3, "skipped": 1, "failed": 1})
    received = sorted(m.rcpt_tos[0] for m in smtp_server.received)
    assert received == ["receipts0@example.org", "spring0@example.org", "spring2@example.org"]
    # the night's message waits for the quiet hours' end, as the dry run said
    sending.advance(timedelta(hours=11))
    assert work(engine, {"email": smtp(smtp_server)}, sending, rules=RULES).counts == Counter(
        {"deferred": 1}
    )
    sending.advance(by_campaign["night"].due - sending.now())
    assert work(engine, {"email": smtp(smtp_server)}, sending, rules=RULES).counts == Counter(
        {"sent": 1}
    )


def test_with_nothing_planned_a_dry_run_writes_no_file(engine: Engine, tmp_path: Path) -> None:
    seed_campaign(engine, n=1, holdouts=2, no_sends=2)
    enqueue(engine, "spring", clock=FrozenClock(NOW))
    with session_scope(engine) as session:
        session.execute(update(models.Delivery).values(status="sent", sent_at=NOW))
    path = tmp_path / "outbox" / "dry-run.jsonl"
    report = dry_run(engine, path)
    assert report.messages == []
    assert report.path is None
    assert not path.parent.exists()


def test_a_dry_run_that_cannot_record_its_file_leaves_no_copy_behind(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is recorded in personal_files before it appears; when that fails, the rendered
    messages (every address) must not stay on disk where a forget would not look."""
    import tummler.app.dry_run as dry_run_module

    def cannot_record(*args: Any, **kwargs: Any) -> None:
        raise OSError("the store is read-only")

    seed_campaign(engine, n=2, holdouts=0, no_sends=0)
    path = tmp_path / "outbox" / "dry-run.jsonl"
    path.parent.mkdir()
    path.write_text("the last dry run\n", encoding="utf-8")
    monkeypatch.setattr(dry_run_module, "remember_personal_file", cannot_record)
    with pytest.raises(OSError, match="read-only"):
        dry_run(engine, path)
    assert [p.name for p in path.parent.iterdir()] == ["dry-run.jsonl"]
    assert path.read_text(encoding="utf-8") == "the last dry run\n"


# ------------------------------------------------------------------------------------------ CLI


def tummler(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI in a fresh process, as a user runs it; a command that does not end
    fails the test instead of hanging it."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TUMMLER_") or key == "TUMMLER_DATA_DIR"
    }
    environ |= {
        "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
        "TUMMLER_WORKSPACE": str(workspace),
        "COLUMNS": "200",
        **env,
    }
    code = "import sys; from tummler.cli.main import main; sys.argv[0] = 'tummler'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        check=False,
    )


def test_tummler_send_dry_run_renders_tomorrows_messages_now_and_exits(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    settings = init_workspace(workspace)  # the example strategy: e-mail quiet 21:00 to 08:00
    slot = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)
    store = open_store(settings)
    try:
        seed_campaign(store, n=3, at=slot)
    finally:
        store.dispose()
    path = workspace / "outbox" / "dry-run.jsonl"

    done = tummler(workspace, "send", "--dry-run")

    assert done.returncode == 0, done.stderr
    assert f"3 messages written to {path}" in done.stdout
    assert "nothing was sent" in done.stdout
    assert "due later" in done.stdout
    assert "refuses these 3 marketing e-mails" in done.stdout
    assert "--public-url" in done.stdout
    written = lines(path)
    assert sorted(line["to"] for line in written) == [f"person{i}@example.org" for i in range(3)]
    assert all(line["unsubscribe_url"].startswith(PLACEHOLDER_PUBLIC_URL) for line in written)
    store = open_store(settings)
    try:
        assert all_deliveries(store) == []  # the outbox is as it was
    finally:
        store.dispose()

    linked = tummler(workspace, "send", "--dry-run", "--public-url", "https://brand.test")
    assert linked.returncode == 0, linked.stderr
    assert "refuses" not in linked.stdout
    assert all(line["unsubscribe_url"].startswith("https://brand.test/") for line in lines(path))


def test_tummler_send_dry_run_with_nothing_planned_says_so_and_writes_no_file(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    for args in (["send", "--dry-run"], ["send", "--dry-run", "--once"]):
        done = tummler(workspace, *args)
        assert done.returncode == 0, done.stderr
        assert "nothing to send" in done.stdout
        assert "no file written" in done.stdout
        assert not (workspace / "outbox" / "dry-run.jsonl").exists()
