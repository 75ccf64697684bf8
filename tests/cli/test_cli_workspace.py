"""``tummler init``, ``status`` and ``db upgrade``: what they print, with secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_app import cli_app
from tummler.app import workspace as workspace_service
from tummler.cli.workspace import db_app, init, status
from tummler.core.settings import Settings, mask_url

SECRET = "s3cr3t-never-printed"
REMOTE = f"postgresql+psycopg://brand:{SECRET}@db.invalid/tummler"


def test_init_prints_the_database_url_with_its_password_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated: list[str] = []

    def upgrade(settings: Settings) -> None:  # no server behind db.invalid: record the call
        migrated.append(settings.resolved_database_url)

    monkeypatch.setattr(workspace_service, "upgrade_store", upgrade)
    monkeypatch.setenv("TUMMLER_DATABASE_URL", REMOTE)
    result = CliRunner().invoke(cli_app(tmp_path, init), ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert migrated == [REMOTE]
    assert SECRET not in result.output
    assert "postgresql+psycopg://brand:***@db.invalid/tummler" in result.output


def test_init_status_and_upgrade_on_the_embedded_store(tmp_path: Path) -> None:
    app = cli_app(tmp_path, init, status, db=db_app)
    runner = CliRunner()
    made = runner.invoke(app, ["init", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert "Workspace ready" in made.output
    assert "sqlite:" in made.output
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "schema up to date" in upgraded.output
    shown = runner.invoke(app, ["status", "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"backend": "sqlite"' in shown.output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (REMOTE, "postgresql+psycopg://brand:***@db.invalid/tummler"),
        ("sqlite:///tummler.db", "sqlite:///tummler.db"),
        (
            "postgresql+psycopg://brand@db.invalid/tummler",
            "postgresql+psycopg://brand@db.invalid/tummler",
        ),
    ],
)
def test_one_masking_rule_for_database_urls(url: str, shown: str) -> None:
    assert mask_url(url) == shown
