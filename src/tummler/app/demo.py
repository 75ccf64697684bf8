"""``tummler demo``: a workspace with an example brand, taken through import, check and plan.

This is the README's main job: it shows on the embedded SQLite default what tummler does with a
brand's data, in well under a minute, and leaves a workspace to explore.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from tummler.app.examples import write_example_data
from tummler.app.ingest import ImportReport, import_file
from tummler.app.planning import PlanReport, plan_campaign
from tummler.app.strategy import check_workspace_strategy
from tummler.app.workspace import StoreStatus, init_workspace, open_store, store_status
from tummler.core.clock import Clock
from tummler.strategy import Finding

__all__ = ["DemoReport", "run_demo"]

#: The example data covers the four weeks before "now", so that every check has recent history.
_HISTORY = timedelta(days=28)


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo did, step by step."""

    workspace: Path
    imports: tuple[ImportReport, ...]
    findings: tuple[Finding, ...]
    plans: tuple[PlanReport, ...]
    status: StoreStatus


def run_demo(
    directory: Path,
    *,
    clock: Clock,
    seed: int = 7,
    contacts: int = 2_000,
    on_step: Callable[[str], None] | None = None,
) -> DemoReport:
    """Make a workspace in ``directory``, import an example brand, check its strategy, plan.

    Parameters
    ----------
    directory
        The workspace to make (kept if it exists: the demo is idempotent, imports upsert).
    clock
        "Now": the example history ends here and the plans start here.
    seed
        Same seed, same data and same decisions.
    contacts
        Size of the example brand.
    on_step
        Called with a short description before each step (for progress display).
    """
    step = on_step or (lambda _message: None)
    step("making the workspace")
    settings = init_workspace(directory)
    # Whole days, so that running the demo again the same day imports the same files: nothing changes.
    today = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    files = write_example_data(
        directory / "data", seed=seed, contacts=contacts, start=today - _HISTORY
    )
    engine = open_store(settings)
    try:
        imports = []
        for kind, path in files.in_import_order():
            step(f"importing {kind}")
            imports.append(import_file(engine, kind, path, clock=clock))
        step("checking the strategy")
        loaded, findings = check_workspace_strategy(directory, engine=engine, clock=clock)
        plans = []
        if loaded.strategy is not None:
            for document in loaded.campaigns:
                key = document.campaign.id
                step(f"planning {key}")
                plans.append(
                    plan_campaign(
                        engine, workspace=directory, campaign_key=key, clock=clock, seed=seed
                    )
                )
        return DemoReport(
            workspace=directory,
            imports=tuple(imports),
            findings=tuple(findings),
            plans=tuple(plans),
            status=store_status(engine),
        )
    finally:
        engine.dispose()
