"""`tummler report`: what each campaign changed, in the terminal, as JSON, or as one HTML page.

Register in ``tummler.cli.main``::

    app.command()(report.report)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tummler.cli.context import CLIState, console, state
from tummler.core.clock import SystemClock
from tummler.core.errors import InputError

if TYPE_CHECKING:
    from tummler.app.reporting import (
        BreadthDepth,
        CampaignReport,
        CellResponse,
        LogReport,
        ObjectiveSpec,
        StoreReport,
    )

__all__ = ["report"]


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_COLOURS = {"effect": "green", "no_effect": "white", "underpowered": "yellow"}


def _fmt(value: float | None, rate: bool) -> str:
    if value is None:
        return "–"
    return f"{value:.2%}" if rate else f"{value:.4g}"


def _lift_row(table: Table, campaign: CampaignReport) -> None:
    name, lift = campaign.key, campaign.lift
    if lift is None:
        sending = campaign.sending
        if not sending.nothing_sent:
            why = "no holdout yet"
        elif sending.waiting:
            why = "nothing sent yet"
        else:
            why = "nothing was sent"
        table.add_row(escape(name), "–", "–", "–", "–", why)
        return
    rate = lift.kind == "rate"
    low, high = lift.difference_interval.low, lift.difference_interval.high
    colour = _COLOURS[lift.verdict.value]
    table.add_row(
        escape(name),
        _fmt(lift.treated_mean, rate),
        _fmt(lift.holdout_mean, rate),
        f"{lift.difference * 100:+.2f} pp" if rate else f"{lift.difference:+.4g}",
        f"{low * 100:+.2f} to {high * 100:+.2f} pp" if rate else f"{low:+.4g} to {high:+.4g}",
        f"[{colour}]{lift.verdict.value.replace('_', ' ')}[/{colour}]",
    )


def _cells_line(what: str, cells: CellResponse | None) -> None:
    if cells is None or not cells.cells:
        return
    tag = "[green]causal[/green]" if cells.causal else "[yellow]not causal[/yellow]"
    # The most credible best cell: the highest lower bound, not the highest noisy estimate.
    measured = [i for i in range(len(cells.cells)) if math.isfinite(cells.ci_low[i])]
    if not measured:
        return
    best = max(measured, key=lambda i: cells.ci_low[i])
    name = str(cells.cells[best])
    if cells.dimension == "hour of week":
        hour = int(cells.cells[best])  # type: ignore[call-overload]
        name = f"{_DAYS[hour // 24]} {hour % 24:02d}:00 UTC"
    console.print(
        f"  {what} ({tag}): best {escape(name)} at {cells.estimate[best]:.2%} "
        f"\\[{cells.ci_low[best]:.2%}, {cells.ci_high[best]:.2%}] — {escape(cells.message)}",
        highlight=False,
    )


def _breadth_words(b: BreadthDepth) -> str:
    """Reach and depth in words; a share or a mean of nobody is said, never printed as NaN."""
    reach = f"breadth: {b.reached:,} of {b.audience:,} reached ({b.reach_share:.1%})"
    if b.reached == 0:
        return f"{reach}; depth: nobody reached yet, so no engagement to measure"
    if b.engaged == 0:
        return f"{reach}; depth: none of the {b.reached:,} reached has engaged yet"
    return (
        f"{reach}; depth: {b.engaged:,} engaged ({b.share_engaged:.1%}), "
        f"{b.engagement_per_engaged:.2f} engagements per engaged person"
    )


def _interval_words(low: float, high: float) -> str:
    """``low – high``, or "–" when one point cannot give an interval."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"{low:.4f} – {high:.4f}"


def _movement_cell(count: int, before: int, now: int) -> str:
    """A cell of the stage movement table: green when people moved closer, red when back."""
    if count and now > before:
        return f"[green]{count:,}[/green]"
    if count and now < before:
        return f"[red]{count:,}[/red]"
    return f"{count:,}"


def _print_campaign(campaign: CampaignReport) -> None:
    console.rule(
        escape(f"campaign {campaign.key} · objective {campaign.objective} · {campaign.kpi}")
    )
    if campaign.variants is not None:
        v = campaign.variants
        table = Table("variant", "sends", "rate", "P(best)", title="variants")
        for i, label in enumerate(v.labels):
            table.add_row(
                escape(label),
                f"{v.trials[i]:,}",
                f"{v.posterior_mean[i]:.2%}",
                f"{v.probability_best[i]:.1%}",
            )
        console.print(table)
        if campaign.sequential is not None:
            console.print(
                f"  mSPRT (always valid): {campaign.sequential.reason}",
                highlight=False,
                markup=False,
            )
    sending = campaign.sending
    if sending.planned:
        words = f"sends: {escape(sending.message)}"
        unsettled = sending.waiting or sending.nothing_sent
        console.print(f"  [yellow]{words}[/yellow]" if unsettled else f"  {words}", highlight=False)
    _cells_line("send time", campaign.send_time)
    _cells_line("channel", campaign.channels)
    if campaign.roi is not None:
        console.print(f"  ROI: {campaign.roi.message}", highlight=False, markup=False)
    if campaign.breadth is not None:
        console.print(f"  {_breadth_words(campaign.breadth)}", highlight=False)
    if campaign.stages:
        console.print(
            "  stages at the report's time: "
            + ", ".join(f"{k} {v:,}" for k, v in campaign.stages.items()),
            highlight=False,
        )
    movement = campaign.stage_movement
    if movement is not None:
        names = [str(stage) for stage in movement.stages]
        table = Table(
            "before ↓ now →",
            *names,
            title="movements between stages (before: at the campaign's first decision)",
        )
        for i, (name, counts) in enumerate(zip(names, movement.counts, strict=True)):
            if sum(counts):
                table.add_row(name, *(_movement_cell(n, i, j) for j, n in enumerate(counts)))
        console.print(table)
        by_group = campaign.stage_movement_by_group
        groups = ", ".join(
            f"{name} {by_group[name].net_movement:+.1%}"
            for name in ("treated", "holdout")
            if name in by_group
        )
        console.print(
            f"  {movement.moved_up:,} moved closer, {movement.moved_down:,} fell back, "
            f"{movement.stayed:,} stayed: net {movement.net_movement:+.1%}"
            + (f" ({groups})" if groups else ""),
            highlight=False,
        )


def _print_store(result: StoreReport) -> None:
    table = Table(
        "campaign", "treated", "holdout", "lift", "interval", "verdict", title="holdout lift"
    )
    for campaign in result.campaigns:
        _lift_row(table, campaign)
    console.print(table)
    for campaign in result.campaigns:
        if campaign.lift is not None:
            colour = _COLOURS[campaign.lift.verdict.value]
            console.print(
                f"[{colour}]•[/{colour}] {escape(campaign.lift.message)}", highlight=False
            )
    for campaign in result.campaigns:
        _print_campaign(campaign)
    goals = [o for o in result.objectives if o.goal is not None]
    if goals:
        table = Table("objective", "status", "progress", "in words", title="goals")
        for objective in goals:
            assert objective.goal is not None
            progress = objective.goal.progress
            table.add_row(
                escape(objective.id),
                objective.goal.status.value,
                "–" if progress is None else f"{progress:.0%}",
                escape(objective.goal.message),
            )
        console.print(table)
    if result.learning_curve:
        table = Table("policy", "version", "sends", "KPI", "interval", title="learning curve")
        for point in result.learning_curve:
            table.add_row(
                escape(point.policy),
                str(point.version),
                f"{point.n:,}",
                f"{point.mean:.4f}",
                _interval_words(point.interval.low, point.interval.high),
            )
        console.print(table)


def _print_log(result: LogReport) -> None:
    level = f"{1 - result.alpha:.0%}"
    table = Table(
        "action", "rounds", "mean reward", f"{level} interval", title=escape(result.source)
    )
    for action in result.actions:
        table.add_row(
            escape(action.action),
            f"{action.n:,}",
            f"{action.mean:.4f}",
            f"{action.interval.low:.4f} – {action.interval.high:.4f}",
        )
    console.print(table)
    table = Table(
        "action", "lift", f"{level} interval", "relative", f"over {escape(result.control)}"
    )
    for lift in result.lifts:
        relative = "–" if lift.relative_lift is None else f"{lift.relative_lift:+.1%}"
        table.add_row(
            escape(lift.action),
            f"{lift.difference:+.4f}",
            f"{lift.interval.low:+.4f} – {lift.interval.high:+.4f}",
            relative,
            "[green]effect[/green]" if lift.significant else "no clear effect",
        )
    console.print(table)
    for lift in result.lifts:
        console.print(f"• {lift.message}", highlight=False, markup=False)


def _log_result(
    log: Path, control: str | None, *, campaign: str | None, as_of: str | None
) -> LogReport:
    """The report of the logged experiment in ``log``.

    Raises
    ------
    InputError
        Without ``--control``, or with a campaign or ``--as-of`` (they name the store).
    """
    from tummler.app.reporting import log_report

    if control is None:
        raise InputError(
            "--log needs --control ACTION: the action the others are compared to",
            field="control",
        )
    if campaign is not None or as_of is not None:
        raise InputError("--log measures a file: leave out CAMPAIGN and --as-of", field="campaign")
    return log_report(log, control=control)


def _store_result(cli: CLIState, campaign: str | None, as_of: str | None) -> StoreReport:
    """The workspace's report as of ``as_of``, measured against its strategy's objectives and
    channel costs, after attributing the events that arrived since the last run."""
    from tummler.app.attribution import attribute_events, objective_windows
    from tummler.app.reporting import objective_specs, parse_as_of, store_report
    from tummler.app.strategy import read_workspace_strategy

    when = parse_as_of(as_of, now=SystemClock().now())
    loaded = read_workspace_strategy(cli.settings.workspace)
    specs: dict[str, ObjectiveSpec] = {}
    costs: dict[str, float] = {}
    if loaded.strategy is not None:
        strategy = loaded.strategy.strategy
        specs = objective_specs(strategy)
        costs = {channel.id: channel.cost_per_send for channel in strategy.channels}
        # Attribution is incremental and idempotent: events that arrived since the last run
        # are joined to their decisions so that the report counts them.
        attribute_events(cli.engine, windows=objective_windows(strategy))
    return store_report(
        cli.engine,
        as_of=when,
        campaign=campaign,
        specs=specs,
        channel_costs=costs,
        rng=cli.settings.seed if cli.settings.seed is not None else 0,
    )


def report(
    ctx: typer.Context,
    campaign: Annotated[
        str | None, typer.Argument(help="One campaign's id; default: every campaign.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", dir_okay=False, help="Also write a self-contained HTML page here."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Report as of this date or time (UTC; default: now)."),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            dir_okay=False,
            help="Measure a past experiment in a logged-bandit file instead (needs no workspace).",
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option("--control", help="With --log: the action the others are compared to."),
    ] = None,
) -> None:
    """What each campaign changed, for whom, at what cost: lift, variants, timing, ROI, goals."""
    from tummler.app.reporting import LogReport
    from tummler.web import write_html

    result: StoreReport | LogReport
    if log is not None:
        result = _log_result(log, control, campaign=campaign, as_of=as_of)
    else:
        if control is not None:
            raise InputError("--control goes with --log FILE", field="control")
        result = _store_result(state(ctx), campaign, as_of)
    if html is not None:
        write_html(result, html)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    if isinstance(result, LogReport):
        _print_log(result)
    else:
        _print_store(result)
    if html is not None:
        console.print(f"wrote {html}", highlight=False, markup=False)
