"""The README's main job: `tummler demo` takes an example brand through import, check and plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from tummler.app.demo import run_demo
from tummler.app.workspace import open_store
from tummler.cli.main import app
from tummler.core.clock import FrozenClock
from tummler.core.settings import load_settings
from tummler.store.models import Decision

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_demo_imports_checks_and_plans(tmp_path: Path) -> None:
    report = run_demo(tmp_path / "ws", clock=FrozenClock(NOW), contacts=200, seed=3)

    assert [item.kind for item in report.imports] == [
        "contacts",
        "identities",
        "consent",
        "events",
        "edges",
        "mentions",
    ]
    assert all(item.rejected == 0 and item.inserted > 0 for item in report.imports)
    assert not any(f.severity == "error" for f in report.findings)
    assert len(report.plans) == 2
    engine = open_store(load_settings(tmp_path / "ws"))
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Decision))
    engine.dispose()
    assert stored == sum(plan.decisions for plan in report.plans)
    assert all(sum(plan.sends_per_channel.values()) > 0 for plan in report.plans)


def test_running_the_demo_again_the_same_day_changes_no_data(tmp_path: Path) -> None:
    run_demo(tmp_path / "ws", clock=FrozenClock(NOW), contacts=100)
    again = run_demo(tmp_path / "ws", clock=FrozenClock(NOW.replace(hour=17)), contacts=100)
    assert all(item.inserted == 0 and item.updated == 0 for item in again.imports)


def test_demo_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", str(tmp_path / "ws"), "--contacts", "100"])
    assert result.exit_code == 0, result.output
    assert "3. plan" in result.output
    assert "first-order-welcome" in result.output
