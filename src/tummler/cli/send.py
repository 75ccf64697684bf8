"""``tummler send`` works off the outbox; ``tummler deliveries`` shows what is in it."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from tummler.cli.context import console, error_console, state
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import ConfigError, InputError
from tummler.core.vocabulary import DeliveryStatus

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Engine

    from tummler.app.dry_run import DryRunReport
    from tummler.app.outbox import (
        Connectors,
        DeliveryOutcome,
        OutboxReport,
        SendRules,
        Unsubscribe,
    )
    from tummler.core.settings import Settings

__all__ = ["deliveries", "send"]

_STATUS_ORDER = ("sent", "retry", "deferred", "failed", "dead", "unknown", "skipped")
_DRY_RUN_ORDER = ("rendered", "deferred", "skipped", "failed")


def send(
    ctx: typer.Context,
    campaign: Annotated[
        str | None,
        typer.Option("--campaign", "-c", help="Only this campaign (default: every campaign)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-n", min=1, max=256, help="Sends in flight at once.")
    ] = 8,
    once: Annotated[
        bool,
        typer.Option("--once", help="Send what is due now and stop (default: keep polling)."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Render every planned message now, whatever its slot, to "
            "outbox/dry-run.jsonl and exit; nothing is sent and the outbox is left as it was.",
        ),
    ] = False,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, help="Attempts before a delivery is dead.")
    ] = 5,
    poll: Annotated[
        float, typer.Option("--poll", min=0.1, help="Seconds between passes without --once.")
    ] = 10.0,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="Where the HTTP app (tummler serve) is reachable, e.g. https://brand.example: "
            "e-mails' unsubscribe links point to it. Marketing e-mail is not sent without it. "
            "Default: the public_url setting (TUMMLER_PUBLIC_URL).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the retry jitter (default: settings).")
    ] = None,
) -> None:
    """Enqueue planned decisions and hand them to the channel connectors.

    Each decision becomes one delivery (never two); consent, quiet hours and the fatigue cap are
    checked again just before each send. Marketing e-mail goes out only with an unsubscribe link
    (--public-url); a campaign marked `category: transactional` may go without. Connectors come
    from TUMMLER_* variables (see ``tummler.app.connectors``); --dry-run renders every planned
    message to a file instead, and exits.
    """
    from tummler.core.randomness import make_rng

    cli = state(ctx)
    settings = cli.settings
    clock = SystemClock()
    rules = _send_rules(settings)
    base_url = public_url if public_url is not None else settings.public_url
    if dry_run:
        _dry_run(
            cli.engine, settings, clock=clock, rules=rules, campaign=campaign, base_url=base_url
        )
        return
    connectors = _configured_connectors(settings, clock)
    rng = make_rng(seed if seed is not None else settings.seed)
    engine = cli.engine
    options: dict[str, Any] = {
        "clock": clock,
        "rng": rng,
        "concurrency": concurrency,
        "max_attempts": max_attempts,
        "rules": rules,
        "campaign": campaign,
        "unsubscribe": _unsubscribe(settings, base_url),
    }
    _send_until_done(engine, connectors, once=once, poll=poll, options=options)


def _configured_connectors(settings: Settings, clock: Clock) -> Connectors:
    """The settings' connectors; refused when there is none, since nothing could be sent."""
    from tummler.app.connectors import build_connectors

    connectors = build_connectors(settings, clock=clock)
    if not connectors:
        raise ConfigError(
            "no connector is configured: set TUMMLER_SMTP_HOST (and the other TUMMLER_* "
            "variables of a channel), or rehearse with --dry-run"
        )
    return connectors


def _send_until_done(
    engine: Engine, connectors: Connectors, *, once: bool, poll: float, options: dict[str, Any]
) -> None:
    """Serve the outbox until done (``once``) or Ctrl-C, then print what was handled."""
    import asyncio

    from tummler.app.outbox import OutboxReport

    total = OutboxReport()
    started = time.perf_counter()
    try:
        # One event loop for every pass: HTTP connectors keep a connection pool bound to it.
        asyncio.run(_serve(engine, connectors, total, once=once, poll=poll, options=options))
    except KeyboardInterrupt:
        error_console.print("stopped; deliveries in flight are recovered by the next run")
    _print_summary(total, time.perf_counter() - started)


def _send_rules(settings: Settings) -> SendRules:
    """The workspace strategy's send-time rules; consent only without a strategy."""
    from tummler.app.outbox import SendRules
    from tummler.app.strategy import read_workspace_strategy

    loaded = read_workspace_strategy(settings.workspace)
    if loaded.strategy is None:
        return SendRules()
    return SendRules.from_strategy(loaded.strategy.strategy)


def _unsubscribe(settings: Settings, base_url: str | None) -> Unsubscribe | None:
    """The unsubscribe links' base URL and key; ``None`` without a base URL (then the outbox
    sends no marketing e-mail). In production the URL must be https: RFC 8058 one-click
    unsubscribe, which mailbox providers require of bulk senders, accepts nothing else."""
    from urllib.parse import urlsplit

    from tummler.app.outbox import Unsubscribe
    from tummler.app.unsubscribe import unsubscribe_key
    from tummler.core.settings import Environment

    if base_url is None:
        return None
    if settings.environment is Environment.PRODUCTION and urlsplit(base_url).scheme != "https":
        raise ConfigError(
            f"--public-url {base_url!r} must be an https URL in production: one-click "
            "unsubscribe links (RFC 8058) are https only"
        )
    return Unsubscribe(base_url, unsubscribe_key(settings))


def _dry_run(
    engine: Engine,
    settings: Settings,
    *,
    clock: Clock,
    rules: SendRules,
    campaign: str | None,
    base_url: str | None,
) -> None:
    """Render every planned message to the dry run's file and say what a send would do."""
    import asyncio

    from tummler.app.connectors import dry_run_path
    from tummler.app.dry_run import dry_run_outbox
    from tummler.app.outbox import PLACEHOLDER_PUBLIC_URL, Unsubscribe
    from tummler.app.unsubscribe import unsubscribe_key

    links = Unsubscribe(base_url or PLACEHOLDER_PUBLIC_URL, unsubscribe_key(settings))
    report = asyncio.run(
        dry_run_outbox(
            engine,
            dry_run_path(settings),
            clock=clock,
            unsubscribe=links,
            rules=rules,
            campaign=campaign,
        )
    )
    if not report.messages:
        console.print(
            "dry run: nothing to send: no planned message is waiting in the outbox (plan a "
            "campaign with `tummler plan`); no file written",
            highlight=False,
        )
        return
    _print_dry_run(report, clock.now())
    if report.path is None:
        console.print("dry run: no message would be sent; no file written", highlight=False)
        return
    console.print(
        f"dry run: {len(report.written)} messages written to {report.path}; nothing was sent "
        "and the outbox is as it was",
        highlight=False,
    )
    if base_url is None and report.marketing_emails:
        console.print(
            f"[yellow]note:[/yellow] no public URL is set, so the unsubscribe links point to "
            f"{PLACEHOLDER_PUBLIC_URL}; a real `tummler send` refuses these "
            f"{report.marketing_emails} marketing e-mails until you give it --public-url "
            "(or TUMMLER_PUBLIC_URL, or public_url in tummler.toml)",
            highlight=False,
        )


def _print_dry_run(report: DryRunReport, now: datetime) -> None:
    table = Table(title="Dry run")
    table.add_column("channel")
    statuses = [s for s in _DRY_RUN_ORDER if any(c[s] for c in report.by_channel.values())]
    for status in statuses:
        table.add_column(status, justify="right")
    table.add_column("due later", justify="right")
    later = Counter(m.channel for m in report.written if m.due > now)
    for channel, counts in sorted(report.by_channel.items()):
        table.add_row(escape(channel), *(str(counts[s]) for s in statuses), str(later[channel]))
    console.print(table)
    for (status, reason), count in report.reasons.most_common(10):
        console.print(f"{count} {status}: {escape(reason)}", highlight=False)
    if later:
        last = max(m.due for m in report.written)
        console.print(
            f"{sum(later.values())} are due later than now (the last at {last:%Y-%m-%d %H:%M} "
            "UTC): `tummler send` hands each over at its slot",
            highlight=False,
        )


async def _serve(
    engine: Engine,
    connectors: Connectors,
    total: OutboxReport,
    *,
    once: bool,
    poll: float,
    options: dict[str, Any],
) -> None:
    """Pass after pass over the outbox (one with ``once``), adding each pass's outcomes to
    ``total`` as they come so that an interrupted run still reports them."""
    import asyncio

    from tummler.app.outbox import count_due, enqueue_planned, run_outbox

    try:
        while True:
            # decisions planned since the last pass become deliveries too
            created = enqueue_planned(engine, options["campaign"], clock=options["clock"])
            if created:
                console.print(f"enqueued {created} new deliveries", highlight=False)
            due = count_due(engine, clock=options["clock"], campaign_key=options["campaign"])
            with Progress(
                TextColumn("sending"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
                disable=due == 0,
            ) as bar:
                task = bar.add_task("sending", total=due)

                def progress(
                    outcome: DeliveryOutcome, bar: Progress = bar, task: TaskID = task
                ) -> None:
                    total.outcomes.append(outcome)
                    bar.advance(task)

                report = await run_outbox(engine, connectors, progress=progress, **options)
            total.recovered += report.recovered
            if once:
                return
            await asyncio.sleep(poll)
    finally:
        for connector in {id(c): c for c in connectors.values()}.values():
            await connector.aclose()


def _print_summary(report: OutboxReport, seconds: float) -> None:
    table = Table(title="Outbox")
    table.add_column("channel")
    statuses = [s for s in _STATUS_ORDER if report.counts[s]] or ["sent"]
    for status in statuses:
        table.add_column(status, justify="right")
    for channel, counts in sorted(report.by_channel.items()):
        table.add_row(escape(channel), *(str(counts[s]) for s in statuses))
    console.print(table)
    sent = report.counts["sent"]
    rate = sent / seconds if seconds > 0 else 0.0
    console.print(
        f"{len(report.outcomes)} deliveries handled, {sent} sent ({rate:,.1f}/s); "
        f"{report.recovered} recovered from a stopped worker",
        highlight=False,
    )
    if report.counts["unknown"]:
        console.print(
            "[yellow]note:[/yellow] deliveries marked unknown may or may not have gone out: "
            "`tummler deliveries --status unknown` lists them",
            highlight=False,
        )


def deliveries(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="Only this status (e.g. failed).")
    ] = None,
    campaign: Annotated[
        str | None, typer.Option("--campaign", "-c", help="Only this campaign.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most rows shown.")] = 50,
) -> None:
    """List deliveries with their status, attempts and last error, newest first."""
    from tummler.app.outbox import list_deliveries

    if status is not None and status not in {s.value for s in DeliveryStatus}:
        known = ", ".join(s.value for s in DeliveryStatus)
        raise InputError(f"unknown status {status!r}; use one of {known}", field="--status")
    listing = list_deliveries(state(ctx).engine, status=status, campaign=campaign, limit=limit)
    rows, counts = listing.rows, listing.counts
    table = Table(title="Deliveries")
    for name in ("id", "campaign", "channel", "status", "attempts", "due", "sent", "last error"):
        table.add_column(name, justify="right" if name in {"id", "attempts"} else "left")
    for row in rows:
        table.add_row(
            str(row.id),
            escape(row.campaign),
            escape(row.channel),
            row.status,
            str(row.attempts),
            f"{row.scheduled_at:%Y-%m-%d %H:%M}",
            "" if row.sent_at is None else f"{row.sent_at:%Y-%m-%d %H:%M}",
            escape((row.last_error or "")[:120]),
        )
    console.print(table)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no deliveries"
    shown = f" (showing the newest {len(rows)})" if sum(counts.values()) > len(rows) else ""
    console.print(f"{summary}{shown}", highlight=False)
