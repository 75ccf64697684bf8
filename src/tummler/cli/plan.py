"""`tummler plan CAMPAIGN` and `tummler explain CONTACT CAMPAIGN`: decide, and say why."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from tummler.cli.context import console, state
from tummler.core.clock import Clock, FrozenClock, SystemClock

if TYPE_CHECKING:
    from tummler.app.planning import DecisionExplanation, PlanReport

__all__ = ["explain", "plan"]

_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
_PHASES = {"read": "reading contacts", "write": "writing decisions"}


def plan(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="The campaign's id (its file in campaigns/).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and summarize, write nothing.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of every random choice (default: the settings' seed)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="Plan as of this time (UTC; default: now).", formats=_FORMATS),
    ] = None,
) -> None:
    """Decide, for every contact in the campaign's audience, a channel, slot and variant — or none.

    Writes one decision per lever (holdout and no-send included) with its propensity and reasons;
    planning again replaces the decisions that have no delivery yet.
    """
    from tummler.app.planning import plan_campaign

    cli = state(ctx)
    clock: Clock = SystemClock() if as_of is None else FrozenClock(as_of)
    chosen_seed = seed if seed is not None else cli.settings.seed
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(_PHASES.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        report = plan_campaign(
            cli.engine,
            workspace=cli.settings.workspace,
            campaign_key=campaign,
            clock=clock,
            seed=chosen_seed,
            dry_run=dry_run,
            progress=progress,
        )
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    _print_report(report)


def _print_report(report: PlanReport) -> None:
    what = "would decide (dry run, nothing written)" if report.dry_run else "decided"
    console.print(
        f"[bold]{escape(report.campaign)}[/bold]: {what} for {report.audience} contacts "
        f"with {escape(report.policy)} (seed {report.seed}) in "
        f"{report.seconds:.2f} s — {report.contacts_per_second:,.0f} contacts/s",
        highlight=False,
    )
    console.print(
        f"horizon {report.horizon_start:%Y-%m-%d %H:%M} → {report.horizon_end:%Y-%m-%d %H:%M} UTC; "
        f"{report.decisions} decision rows; replaced {report.replaced}; kept {report.kept} "
        "contacts whose decisions already have a delivery",
        highlight=False,
    )
    summary = Table(title="Decisions")
    summary.add_column("what")
    summary.add_column("contacts", justify="right")
    for channel, count in report.sends_per_channel.items():
        summary.add_row(f"send on {escape(channel)}", str(count))
    summary.add_row("no send (holdout included)", str(report.no_sends))
    summary.add_row("holdout", str(report.holdout))
    summary.add_row("expected value of the sends", f"{report.expected_value:.3f}")
    console.print(summary)
    if report.sends_per_slot:
        slots = Table(title="Sends per local send time")
        slots.add_column("local time")
        slots.add_column("sends", justify="right")
        for local, count in report.sends_per_slot.items():
            slots.add_row(local, str(count))
        console.print(slots)
    if report.budgets:
        budgets = Table(title="Spend caps")
        for column in ("channel", "limit", "spent", "sends", "shadow price", "dropped", "moved"):
            budgets.add_column(column, justify="left" if column == "channel" else "right")
        for b in report.budgets:
            budgets.add_row(
                escape(b.channel),
                f"{b.limit:,.2f}",
                f"{b.spend:,.2f}",
                f"{b.sends}/{b.sends_allowed}",
                f"{b.shadow_price:.4g}",
                str(b.dropped),
                str(b.moved),
            )
        console.print(budgets)
    removed = [(c, r, k) for c, rules in report.removed.items() for r, k in rules.items()]
    if removed:
        rules_table = Table(title="Levers removed by rules")
        rules_table.add_column("channel")
        rules_table.add_column("rule")
        rules_table.add_column("contacts", justify="right")
        for channel, rule, count in removed:
            rules_table.add_row(escape(channel), rule, str(count))
        console.print(rules_table)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)


def explain(
    ctx: typer.Context,
    contact: Annotated[str, typer.Argument(help="The contact's external id.")],
    campaign: Annotated[str, typer.Argument(help="The campaign's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Explain a contact's decision in a campaign: the rules that removed levers, the choice against
    the runner-up, and the features that weighed most."""
    from tummler.app.planning import explain_decision

    cli = state(ctx)
    explanation = explain_decision(
        cli.engine, contact=contact, campaign_key=campaign, workspace=cli.settings.workspace
    )
    if as_json:
        console.print_json(json.dumps(explanation.to_dict()))
        return
    _print_explanation(explanation)


def _print_explanation(e: DecisionExplanation) -> None:
    console.print(
        f"[bold]{escape(e.contact)}[/bold] in [bold]{escape(e.campaign)}[/bold] "
        f"(decided {e.decided_at:%Y-%m-%d %H:%M} UTC by {escape(e.policy)}):",
        highlight=False,
    )
    console.print(e.summary, highlight=False, markup=False)
    if e.levers:
        table = Table()
        table.add_column("lever")
        table.add_column("send at (UTC)")
        table.add_column("local")
        table.add_column("propensity", justify="right")
        table.add_column("expected value", justify="right")
        for lever in e.levers:
            table.add_row(
                escape(f"{lever.channel} / {lever.variant}"),
                f"{lever.send_at:%Y-%m-%d %H:%M}" if lever.send_at else "",
                lever.local_time or "",
                f"{lever.propensity:.3f}",
                "" if lever.expected_value is None else f"{lever.expected_value:.4f}",
            )
        console.print(table)
    if e.contributions:
        weights = Table(title=f"Largest feature contributions (chosen − {e.runner_up})")
        weights.add_column("feature")
        weights.add_column("contribution", justify="right")
        for name, value in e.contributions:
            weights.add_row(escape(name), f"{value:+.4f}")
        console.print(weights)
