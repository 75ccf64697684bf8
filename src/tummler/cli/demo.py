"""``tummler demo``: the whole path on an example brand, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tummler.app.demo import run_demo
from tummler.cli.context import console
from tummler.core.clock import SystemClock


def demo(
    directory: Annotated[
        Path, typer.Argument(help="Workspace to make (kept if it exists).")
    ] = Path("tummler-demo"),
    contacts: Annotated[int, typer.Option(min=2, help="People in the example brand.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data and decisions.")] = 7,
) -> None:
    """Make a workspace with an example brand: import it, check its strategy, plan its campaigns."""
    with console.status("starting") as status:
        report = run_demo(
            directory,
            clock=SystemClock(),
            seed=seed,
            contacts=contacts,
            on_step=lambda message: status.update(message),
        )

    imports = Table(title="1. import", title_justify="left")
    for column in ("kind", "read", "inserted", "updated", "unchanged", "rejected"):
        imports.add_column(column, justify="left" if column == "kind" else "right")
    for item in report.imports:
        imports.add_row(
            item.kind,
            *(
                f"{n:,}"
                for n in (
                    item.rows_read,
                    item.inserted,
                    item.updated,
                    item.unchanged,
                    item.rejected,
                )
            ),
        )
    console.print(imports)

    console.print("[bold]2. strategy check[/bold]")
    if not report.findings:
        console.print(
            "  no findings: every campaign traces to an objective and respects its channels"
        )
    for finding in report.findings:
        console.print(f"  {finding.severity}: {finding.message}", highlight=False)

    plans = Table(title="3. plan", title_justify="left")
    for column in ("campaign", "audience", "sends", "no send", "holdout", "value"):
        plans.add_column(column, justify="left" if column in {"campaign", "sends"} else "right")
    for plan in report.plans:
        sends = "\n".join(
            f"{channel} {n:,}" for channel, n in sorted(plan.sends_per_channel.items())
        )
        plans.add_row(
            plan.campaign,
            f"{plan.audience:,}",
            sends or "none",
            f"{plan.no_sends:,}",
            f"{plan.holdout:,}",
            f"{plan.expected_value:.1f}",
        )
    console.print(plans)
    if report.plans:
        console.print(
            f"  decided by {report.plans[0].policy}; every decision is stored with its propensity"
        )

    console.print(f"\nWorkspace: [bold]{report.workspace}[/bold]  ({report.status.database})")
    first = report.plans[0].campaign if report.plans else "CAMPAIGN"
    console.print("Next, from inside it:")
    console.print("  tummler status                      what the store holds")
    console.print("  tummler strategy show               objective → campaigns → channels")
    console.print(f"  tummler explain CONTACT {first}")
    console.print("                                      why this lever (or none) for this person")
    console.print("  tummler export decisions --format csv")
