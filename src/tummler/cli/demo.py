"""``tummler demo``: the whole loop — plan, deliver, respond, learn, evaluate — on a simulated brand."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tummler.cli.context import console

if TYPE_CHECKING:
    from tummler.demo import DemoReport, DemoRound, SeedsReport


def demo(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Workspace to make: a new or empty directory, or an earlier demo (started afresh)."
        ),
    ] = Path("tummler-demo"),
    contacts: Annotated[
        int, typer.Option(min=50, max=1_000_000, help="People in the simulated brand.")
    ] = 20_000,
    rounds: Annotated[
        int, typer.Option(min=1, max=60, help="Plan → deliver → respond → learn → evaluate cycles.")
    ] = 20,
    seed: Annotated[int, typer.Option(help="Same seed (and day), same brand and results.")] = 7,
    seeds: Annotated[
        int,
        typer.Option(
            min=1,
            max=20,
            help="Run SEEDS seeds (SEED, SEED+1, ...) and compare tummler with every baseline "
            "over them, with intervals (5 or more for a fair verdict; each seed takes as long "
            "as the first). Only the first seed's workspace is kept.",
        ),
    ] = 1,
    smtp: Annotated[
        bool,
        typer.Option(
            "--smtp/--no-smtp",
            help=r"Send the e-mails over SMTP to a loopback server (needs tummler\[email]).",
        ),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(help="Where to write the HTML report (default: DIRECTORY/report.html)."),
    ] = None,
) -> None:
    """Run tummler's whole loop on a simulated brand and show what it learned, against baselines.

    Makes a workspace with the simulator's brand (people, their channels, consent, social graph and
    90 days of history), then, each round: plans a campaign with the promoted policy, delivers it
    through the outbox, lets the simulated people respond, learns a new policy version and promotes
    it when off-policy evaluation says so. The true value of every round is set beside
    send-to-all, best single action, random and the oracle, each played in its own copy of the
    simulated world (same people, same seeds); the HTML report ends it.
    """
    from tummler.core.clock import SystemClock
    from tummler.demo import run_seeds

    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rounds"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        on_step, on_round, on_seed = _progress_callbacks(progress, rounds=rounds, seeds=seeds)
        report = run_seeds(
            directory,
            seeds=seeds,
            seed=seed,
            clock=SystemClock(),
            contacts=contacts,
            rounds=rounds,
            smtp=smtp,
            html=html,
            on_step=on_step,
            on_round=on_round,
            on_seed=on_seed,
        )
    _show(report.first)
    _show_seeds(report)


def _progress_callbacks(
    progress: Progress, *, rounds: int, seeds: int
) -> tuple[Callable[[str], None], Callable[[DemoRound], None], Callable[[int, DemoReport], None]]:
    """What the demo tells the progress bar: each step, each round of the first seed (one line
    each), and each seed's totals when there are several."""
    task = progress.add_task("starting", total=rounds * seeds)
    first_seed = [True]

    def on_step(message: str) -> None:
        shown = escape(message)  # the bar's description is markup too
        if message.startswith("starting fresh"):
            progress.console.print(f"[yellow]{shown}[/yellow]", highlight=False)
        progress.update(task, description=shown)

    def on_round(done: DemoRound) -> None:
        progress.advance(task)
        if not first_seed[0]:
            return
        share = done.tummler / done.baselines["oracle"] if done.baselines["oracle"] else 0.0
        after = (
            f"promoted {_version(done.learned)}"
            if done.promoted
            else f"kept {_version(done.policy)}"
        )
        progress.console.print(
            f"  round {done.number:>2}: {done.sent:>5,} sent, {done.clicks:>4,} clicks, "
            f"value {done.tummler:5.1f} ({share:>3.0%} of oracle) · {after}",
            highlight=False,
        )

    def on_seed(number: int, done: DemoReport) -> None:
        first_seed[0] = False
        if seeds > 1:
            progress.console.print(f"  seed {number}: {_totals_line(done)}", highlight=False)

    return on_step, on_round, on_seed


def _totals_line(report: DemoReport) -> str:
    """One seed's totals in a line: tummler, then each baseline, send-to-all first."""
    from tummler.demo import COMPARED, totals

    summed = totals(report)
    return f"tummler {_value(summed['tummler'])}; " + ", ".join(
        f"{name} {_value(summed[name])}" for name in COMPARED
    )


def _interval(low: float, high: float) -> str:
    return "–" if low != low else f"[{low:+.1f}, {high:+.1f}]"  # nan: one seed, no interval


def _show_seeds(report: SeedsReport) -> None:
    """tummler minus each baseline over the seeds: per seed, the mean, its interval, the wins."""
    n = len(report.seeds)
    table = Table(
        title=f"4. tummler minus each baseline, total over the rounds, {n} seed(s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.add_column("baseline", no_wrap=True)
    shown_seeds = report.seeds if n <= 3 else ()
    for s in shown_seeds:
        table.add_column(f"seed {s}", justify="right", no_wrap=True)
    for column in ("mean", "95% interval", "won"):
        table.add_column(column, justify="right", no_wrap=True)
    for d in report.differences:
        table.add_row(
            d.baseline,
            *(f"{v:+.1f}" for v in d.per_seed[: len(shown_seeds)]),
            f"{d.mean:+.1f}",
            _interval(d.low, d.high),
            f"{d.wins}/{d.seeds}",
        )
    console.print(table)
    hint = (
        "  One seed gives no interval: `--seeds 5` runs five brands (about five times as long)."
        if n == 1
        else "  Paired over the seeds (same brand and response seeds for every policy); the "
        "interval is Student's t on the mean difference."
    )
    console.print(hint, style="dim", highlight=False)


def _version(spec: str | None) -> str:
    """``v3`` for the stored version ``name@3``."""
    return f"v{(spec or '').rsplit('@', 1)[-1]}"


def _share(part: Sequence[float], whole: Sequence[float]) -> str:
    total = sum(whole)
    return f"{sum(part) / total:.0%}" if total > 0 else "–"


def _count(n: int) -> str:
    """A count in at most seven characters: ``999,999``, then millions (``1.2M``)."""
    return f"{n:,}" if n < 1_000_000 else f"{n / 1e6:.1f}M"


def _value(value: float) -> str:
    """A value in at most seven characters: ``-9999.9``, then thousands (``12.3k``) or millions."""
    if abs(value) < 10_000:
        return f"{value:.1f}"
    if abs(value) < 1_000_000:
        return f"{value / 1e3:.1f}k"
    return f"{value / 1e6:.1f}M"


def _rounds_table(rounds: Sequence[DemoRound], baselines: Sequence[str]) -> Table:
    """Each round's true value beside the baselines', one line a round in 80 columns.

    A terminal that is not one (CI, a pipe) is 80 columns wide, and a cut cell ("12,3…") hides the
    figure the table is for: every cell is at most seven characters, two-word headers take two
    lines, and the policy column says what happened after the round (``v3→v4``: promoted).
    """
    table = Table(
        title="3. each round's true expected reward (the simulator knows it)",
        title_justify="left",
        caption="policy v3→v4: v3 planned the round, v4 was learned from it and promoted",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    headers = {"send to all": "send\nall", "best single action": "best\nsingle"}
    for column in ("round", "policy", "sent", "clicks", "tummler", *baselines):
        table.add_column(headers.get(column, column), justify="right", no_wrap=True)
    for r in rounds:
        after = f"→{_version(r.learned)}" if r.promoted else ""
        table.add_row(
            str(r.number),
            f"{_version(r.policy)}{after}",
            _count(r.sent),
            _count(r.clicks),
            f"[bold]{_value(r.tummler)}[/bold]",
            *(_value(r.baselines[name]) for name in baselines),
        )
    table.add_row(
        "total",
        "",
        _count(sum(r.sent for r in rounds)),
        _count(sum(r.clicks for r in rounds)),
        f"[bold]{_value(sum(r.tummler for r in rounds))}[/bold]",
        *(_value(sum(r.baselines[name] for r in rounds)) for name in baselines),
    )
    return table


def _show(report: DemoReport) -> None:
    from tummler.demo import COMPARED

    imports = Table(title="1. the brand, imported", title_justify="left")
    for column in ("kind", "rows"):
        imports.add_column(column, justify="left" if column == "kind" else "right")
    for item in report.imports:
        imports.add_row(item.kind, f"{item.accepted:,}")
    console.print(imports)

    errors = sum(1 for f in report.findings if f.severity == "error")
    warnings = sum(1 for f in report.findings if f.severity == "warning")
    console.print(
        f"[bold]2. strategy check[/bold]: {len(report.rounds)} campaigns trace to the objective; "
        f"{errors} error(s), {warnings} warning(s) (`tummler strategy check` lists them)"
    )

    console.print(_rounds_table(report.rounds, COMPARED))
    half = max(1, len(report.rounds) // 4)
    first, last = report.rounds[:half], report.rounds[-half:]
    console.print(f"  In all: {_totals_line(report)}.", highlight=False)
    console.print(
        f"  tummler reached {_share([r.tummler for r in first], [r.baselines['oracle'] for r in first])} "
        f"of the oracle's value in the first {half} round(s) and "
        f"{_share([r.tummler for r in last], [r.baselines['oracle'] for r in last])} in the last "
        f"{half}.",
        highlight=False,
    )
    console.print(
        "  True value = clicks − unsubscribes − 2 × complaints − cost, for the round's cohort less "
        "tummler's holdout; each baseline is played in its own copy of the world (same people, "
        "same seeds), so the unsubscribes and fatigue it causes cost it later.",
        style="dim",
    )
    if report.smtp_received is not None:
        console.print(
            f"  The loopback SMTP server received {report.smtp_received:,} e-mail(s).",
            highlight=False,
        )
    spent = sum(report.seconds.values())
    where = ", ".join(
        f"{name} {seconds:.0f}s"
        for name, seconds in sorted(report.seconds.items(), key=lambda item: -item[1])
    )
    console.print(f"  {spent:.0f} s in all: {where}.", style="dim", highlight=False)
    if report.started_fresh:
        console.print("  (the earlier demo run in this directory was replaced)", style="dim")

    last_round = report.rounds[-1].campaign if report.rounds else "CAMPAIGN"
    console.print(
        f"\nWorkspace: [bold]{escape(str(report.workspace))}[/bold]  "
        f"({escape(report.status.database)})",
        highlight=False,
    )
    console.print(f"HTML report: [bold]{escape(str(report.html))}[/bold]", highlight=False)
    console.print(f"Next, from inside it (cd {report.workspace}):", highlight=False, markup=False)
    console.print("  tummler status                          what the store holds")
    console.print("  tummler report                          lift, channels, send times, goals")
    console.print(
        f"  tummler explain {report.example_contact} {last_round}",
        highlight=False,
        markup=False,
    )
    console.print(
        "                                          why this lever (or none) for this person"
    )
    console.print("  tummler strategy show                   objective → campaigns → channels")
