"""`tummler strategy`: the brand's strategy file and its campaigns: check and show."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from tummler.cli.context import console, error_console, state
from tummler.core.clock import Clock, FrozenClock, SystemClock
from tummler.core.errors import ConfigError, StrategyError

if TYPE_CHECKING:
    from tummler.app.strategy import Finding

strategy_app = typer.Typer(
    help="The brand's strategy file and its campaigns: check and show.", no_args_is_help=True
)

#: By ``Severity`` value (a ``StrEnum``: its members are these strings), so that this module does not
#: import the strategy service at start-up.
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


class SchemaKind(StrEnum):
    STRATEGY = "strategy"
    CAMPAIGN = "campaign"


@strategy_app.command("check")
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip the realism check (do not open the store).")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the check too.")] = False,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            help="Measure audiences and baselines as of this time (UTC; default: now).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        ),
    ] = None,
) -> None:
    """Check the strategy and every campaign: trace, channel norms, consistency, realism.

    Exits with 1 when there are errors (or warnings, with --strict).
    """
    from tummler.app.strategy import Severity, check_workspace_strategy, has_errors

    cli = state(ctx)
    settings = cli.settings
    engine = None
    if not offline:
        try:
            engine = cli.engine
        except ConfigError as exc:
            error_console.print(
                f"[yellow]note:[/yellow] no store ({escape(str(exc))}); realism not checked"
            )
    clock: Clock = SystemClock() if as_of is None else FrozenClock(as_of)
    _, findings = check_workspace_strategy(settings.workspace, engine=engine, clock=clock)
    if as_json:
        console.print_json(json.dumps([f.to_dict() for f in findings]))
    else:
        _print_findings(findings)
    failed = has_errors(findings) or (
        strict and any(f.severity is Severity.WARNING for f in findings)
    )
    if failed:
        raise typer.Exit(code=1)


def _print_findings(findings: list[Finding]) -> None:
    from tummler.app.strategy import Severity

    for finding in findings:
        style = _STYLE[finding.severity]
        console.print(
            f"{escape(finding.location)}: [{style}]{finding.severity.value}[/{style}] "
            f"[dim]\\[{finding.code}][/dim] {escape(finding.message)}",
            highlight=False,
            soft_wrap=True,
        )
    counts = {s: sum(f.severity is s for f in findings) for s in Severity}
    summary = (
        f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s), "
        f"{counts[Severity.INFO]} note(s)"
    )
    if counts[Severity.ERROR]:
        console.print(f"[bold red]✗[/bold red] {summary}")
    else:
        console.print(f"[green]✓[/green] strategy check passed: {summary}")


@strategy_app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the map as JSON.")] = False,
) -> None:
    """The map objective → campaigns → channels, as a tree or as JSON."""
    from tummler.app.strategy import Severity, read_workspace_strategy, strategy_map

    loaded = read_workspace_strategy(state(ctx).settings.workspace)
    if loaded.strategy is None:
        errors = [f for f in loaded.findings if f.severity is Severity.ERROR]
        raise StrategyError(
            "the strategy cannot be read: "
            + "; ".join(str(f) for f in errors)
            + " (run `tummler strategy check`)"
        )
    mapping = strategy_map(loaded.strategy.strategy, [d.campaign for d in loaded.campaigns])
    if as_json:
        console.print_json(json.dumps(mapping))
        return
    console.print(_tree(mapping))
    for finding in loaded.findings:
        error_console.print(f"[yellow]skipped:[/yellow] {escape(str(finding))}", highlight=False)


def _tree(mapping: dict[str, Any]) -> Tree:
    tree = Tree(f"[bold]{escape(mapping['brand'])}[/bold]")
    for objective in mapping["objectives"]:
        kpi = objective["kpi"]
        branch = tree.add(
            f"[bold cyan]{escape(objective['id'])}[/bold cyan] — {kpi['event']} ({kpi['measure']}), "
            f"target {escape(objective['target_text'])} within {objective['horizon']}; an "
            f"unsubscribe costs {objective['penalties']['unsubscribed']:g}, a complaint "
            f"{objective['penalties']['complained']:g}"
        )
        if not objective["campaigns"]:
            branch.add("[dim]no campaign yet[/dim]")
        for campaign in objective["campaigns"]:
            _add_campaign(branch, campaign)
    if mapping["untraced"]:
        orphans = tree.add("[bold red]campaigns with an unknown objective[/bold red]")
        for campaign in mapping["untraced"]:
            _add_campaign(orphans, campaign)
    return tree


def _add_campaign(branch: Tree, campaign: dict[str, Any]) -> None:
    details = ", ".join(
        f"{name} {escape(str(campaign[name]))}"
        for name in ("audience", "pillar", "urgency")
        if campaign[name] is not None
    )
    node = branch.add(
        f"[green]{escape(campaign['id'])}[/green] [dim]({details}, holdout "
        f"{campaign['holdout_share']:.0%})[/dim]"
    )
    for channel in campaign["channels"]:
        kind = channel["kind"] or "unknown channel"
        where = (
            "" if channel["public"] is None else (" public" if channel["public"] else " private")
        )
        variants = ", ".join(channel["variants"]) or "none"
        caps = _caps_text(channel)
        node.add(
            f"{escape(channel['id'])} [dim]({kind}{where}; variants: {escape(variants)}"
            f"{escape(caps)})[/dim]"
        )


def _caps_text(channel: dict[str, Any]) -> str:
    parts = []
    if channel.get("spend_cap") is not None:
        parts.append(f"spend cap {channel['spend_cap']:g} for this campaign")
    shared = channel.get("shared_spend_cap")
    if shared:
        parts.append(f"{shared['amount']:g} per {shared['window']} across campaigns")
    return "".join(f"; {p}" for p in parts)


@strategy_app.command("schema")
def schema(
    kind: Annotated[
        SchemaKind, typer.Argument(help="Which file's schema: strategy or campaign.")
    ] = SchemaKind.STRATEGY,
) -> None:
    """Print the JSON Schema of strategy.yaml (or of a campaign file) for editors."""
    from tummler.app.strategy import campaign_json_schema, strategy_json_schema

    document = strategy_json_schema() if kind is SchemaKind.STRATEGY else campaign_json_schema()
    typer.echo(json.dumps(document, indent=2))


@strategy_app.command("sync")
def sync(ctx: typer.Context) -> None:
    """Write the campaigns into the store (keyed by campaign id) once the check has no errors."""
    from tummler.app.strategy import sync_campaigns

    cli = state(ctx)
    report, _ = sync_campaigns(cli.engine, cli.settings.workspace, clock=SystemClock())
    console.print(
        f"[green]campaigns synced[/green]: {len(report.created)} created, "
        f"{len(report.updated)} updated"
    )
    for kept in report.variants_kept:
        console.print(f"  kept variant {escape(kept)}: decisions refer to it")
