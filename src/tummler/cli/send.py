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
    from sqlalchemy import Engine

    from tummler.app.outbox import Connectors, DeliveryOutcome, OutboxReport

__all__ = ["deliveries", "send"]

_STATUS_ORDER = ("sent", "retry", "deferred", "failed", "dead", "unknown", "skipped")


def _enqueue_all(engine: Engine, campaign: str | None, clock: Clock) -> int:
    """Enqueue ``campaign`` (or every campaign with decisions); returns deliveries created."""
    from sqlalchemy import select

    from tummler.app.outbox import enqueue
    from tummler.store import models

    if campaign is not None:
        return enqueue(engine, campaign, clock=clock).created
    with engine.connect() as connection:
        keys = list(
            connection.scalars(
                select(models.Campaign.key)
                .where(
                    models.Campaign.id.in_(
                        select(models.Decision.campaign_id).where(
                            models.Decision.channel.is_not(None)
                        )
                    )
                )
                .order_by(models.Campaign.key)
            )
        )
    return sum(enqueue(engine, key, clock=clock).created for key in keys)


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
        typer.Option("--dry-run", help="Write every message to outbox/dry-run.jsonl instead."),
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
            envvar="TUMMLER_PUBLIC_URL",
            help="Where the HTTP app is reachable; e-mails get unsubscribe links to it.",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the retry jitter (default: settings).")
    ] = None,
) -> None:
    """Enqueue planned decisions and hand them to the channel connectors.

    Each decision becomes one delivery (never two); consent, quiet hours and the fatigue cap are
    checked again just before each send. Connectors come from TUMMLER_* variables (see
    ``tummler.app.connectors``); --dry-run writes the messages to a file instead.
    """
    import asyncio

    from tummler.app.connectors import build_connectors, dry_run_path
    from tummler.app.outbox import OutboxReport, SendRules, Unsubscribe
    from tummler.app.strategy import read_workspace_strategy
    from tummler.app.unsubscribe import unsubscribe_key
    from tummler.core.randomness import make_rng

    cli = state(ctx)
    settings = cli.settings
    clock = SystemClock()
    connectors = build_connectors(settings, clock=clock, dry_run=dry_run)
    if not connectors:
        raise ConfigError(
            "no connector is configured: set TUMMLER_SMTP_HOST (and the other TUMMLER_* "
            "variables of a channel), or rehearse with --dry-run"
        )
    loaded = read_workspace_strategy(settings.workspace)
    rules = (
        SendRules()
        if loaded.strategy is None
        else SendRules.from_strategy(loaded.strategy.strategy)
    )
    unsubscribe = None if public_url is None else Unsubscribe(public_url, unsubscribe_key(settings))
    rng = make_rng(seed if seed is not None else settings.seed)
    engine = cli.engine
    total = OutboxReport()
    started = time.perf_counter()
    options: dict[str, Any] = {
        "clock": clock,
        "rng": rng,
        "concurrency": concurrency,
        "max_attempts": max_attempts,
        "rules": rules,
        "campaign": campaign,
        "unsubscribe": unsubscribe,
    }
    try:
        # One event loop for every pass: HTTP connectors keep a connection pool bound to it.
        asyncio.run(_serve(engine, connectors, total, once=once, poll=poll, options=options))
    except KeyboardInterrupt:
        error_console.print("stopped; deliveries in flight are recovered by the next run")
    _print_summary(total, time.perf_counter() - started)
    if dry_run:
        console.print(f"dry run: messages written to {dry_run_path(settings)}", highlight=False)


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

    from tummler.app.outbox import count_due, run_outbox

    try:
        while True:
            # decisions planned since the last pass become deliveries too
            created = _enqueue_all(engine, options["campaign"], options["clock"])
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
    from sqlalchemy import func, select

    from tummler.store import models

    if status is not None and status not in {s.value for s in DeliveryStatus}:
        known = ", ".join(s.value for s in DeliveryStatus)
        raise InputError(f"unknown status {status!r}; use one of {known}", field="--status")
    cli = state(ctx)
    query = (
        select(
            models.Delivery.id,
            models.Campaign.key,
            models.Delivery.channel,
            models.Delivery.status,
            models.Delivery.attempts,
            models.Delivery.scheduled_at,
            models.Delivery.sent_at,
            models.Delivery.last_error,
        )
        .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
        .join(models.Campaign, models.Campaign.id == models.Decision.campaign_id)
    )
    counting = (
        select(models.Delivery.status, func.count(models.Delivery.id))
        .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
        .join(models.Campaign, models.Campaign.id == models.Decision.campaign_id)
        .group_by(models.Delivery.status)
    )
    if status is not None:
        query = query.where(models.Delivery.status == status)
        counting = counting.where(models.Delivery.status == status)
    if campaign is not None:
        query = query.where(models.Campaign.key == campaign)
        counting = counting.where(models.Campaign.key == campaign)
    with cli.engine.connect() as connection:
        rows = connection.execute(query.order_by(models.Delivery.id.desc()).limit(limit)).all()
        counts = Counter({str(s): int(n) for s, n in connection.execute(counting)})
    table = Table(title="Deliveries")
    for name in ("id", "campaign", "channel", "status", "attempts", "due", "sent", "last error"):
        table.add_column(name, justify="right" if name in {"id", "attempts"} else "left")
    for row in rows:
        table.add_row(
            str(row.id),
            escape(row.key),
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
