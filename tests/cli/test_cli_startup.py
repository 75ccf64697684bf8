"""The CLI starts cheaply: ``tummler --help`` and a command's start-up import no analytics stack.

Typer builds the command tree from every command's signature, so ``tummler --help`` (and every
command, before it runs) imports every module in ``tummler.cli``. Those modules import their services
inside the command functions; these tests fail when one of them (or ``tummler`` itself) imports a
heavy package at start-up again. They check ``sys.modules`` in a fresh interpreter, not timings, so
that they fail the same way on a fast and on a loaded machine.

The CLI keeps a few copies of service constants that appear in signatures (``--format`` choices,
defaults, the import kinds), so that it need not import the services to build its help; the drift
tests at the end fail when a copy and its original disagree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

#: Packages that take most of a cold start (SciPy alone about a second) and that no command needs
#: before it runs: importing the CLI or rendering its help must not load them.
HEAVY = ("scipy", "pyarrow", "fastapi", "jinja2", "pandas", "sqlalchemy", "numpy")

#: Packages a command that only reads the store (``tummler status``) must not load either.
ANALYTICS = ("scipy", "pyarrow", "fastapi", "jinja2", "pandas")

#: The command modules, each guarded on its own (``demo`` and ``main`` through the whole CLI).
COMMAND_MODULES = (
    "context",
    "export",
    "ingest",
    "learn",
    "person",
    "plan",
    "report",
    "send",
    "serve",
    "strategy",
    "workspace",
)


def _loaded_after(code: str, watched: tuple[str, ...]) -> list[str]:
    """Run ``code`` in a fresh interpreter; the ``watched`` packages it left in ``sys.modules``."""
    script = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted(m for m in {watched!r} if m in sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    loaded: list[str] = json.loads(completed.stdout.strip().splitlines()[-1])
    return loaded


def test_the_command_modules_import_no_heavy_package() -> None:
    code = "\n".join(f"import tummler.cli.{name}" for name in COMMAND_MODULES)
    assert _loaded_after(code, HEAVY) == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The probe itself works: a module that does import a heavy package is reported."""
    assert _loaded_after("import tummler.core.randomness", HEAVY) == ["numpy"]


def test_the_import_service_leaves_the_log_reader_unloaded() -> None:
    """Importing files reads CSV, JSON Lines or Parquet; the logged-bandit reader's pyarrow compute
    and CSV modules (about 40 MB resident) load only when a log is read."""
    watched = ("pyarrow.compute", "pyarrow.csv")
    assert _loaded_after("import tummler.app.ingest", watched) == []
    assert _loaded_after("from tummler.app.ingest import read_logged_bandit", watched) == list(
        watched
    )


def test_importing_the_cli_and_rendering_every_help_loads_no_heavy_package() -> None:
    code = """
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner
from tummler.cli.main import app

runner = CliRunner()

def walk(command, path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (path, result.output)
    if isinstance(command, TyperGroup):
        context = typer.Context(command)
        for name in command.list_commands(context):
            walk(command.get_command(context, name), [*path, name])

walk(typer.main.get_command(app), [])
"""
    assert _loaded_after(code, HEAVY) == []


def test_status_loads_no_analytics_package(tmp_path: Path) -> None:
    from tummler.app.workspace import init_workspace

    init_workspace(tmp_path)
    # A root like tummler.cli.main's, so that this test does not depend on the other commands.
    code = f"""
import typer
from typer.testing import CliRunner
from tummler.cli import workspace
from tummler.cli.context import CLIState

app = typer.Typer()

@app.callback()
def root(ctx: typer.Context) -> None:
    ctx.obj = CLIState(workspace={str(tmp_path)!r})

app.command()(workspace.status)
result = CliRunner().invoke(app, ["status", "--json"])
assert result.exit_code == 0, result.output
assert '"counts"' in result.output, result.output
"""
    assert _loaded_after(code, ANALYTICS) == []


def _every_command(group: TyperGroup, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    context = typer.Context(group)
    found: list[tuple[str, ...]] = [path]
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, TyperGroup):
            found.extend(_every_command(command, (*path, name)))
        else:
            found.append((*path, name))
    return found


def test_every_command_builds_and_renders_its_help() -> None:
    """Typer resolves every signature (no hint left to a name imported only for type checking)."""
    from tummler.cli.main import app

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    paths = _every_command(root)
    names = {" ".join(path) for path in paths}
    assert {"status", "plan", "import contacts", "export events", "strategy check"} <= names
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path


def test_import_commands_match_the_import_kinds() -> None:
    from tummler.app.ingest import ImportKind
    from tummler.cli import ingest

    assert list(ingest._FIELDS_HELP) == [kind.value for kind in ImportKind]


def test_export_choices_match_the_export_service() -> None:
    from tummler.app.export import DEFAULT_CHUNK_SIZE, ExportFormat
    from tummler.cli import export

    assert [f.value for f in export.FormatChoice] == [f.value for f in ExportFormat]
    assert export.DEFAULT_CHUNK_SIZE == DEFAULT_CHUNK_SIZE


def test_learn_choices_match_the_learning_service() -> None:
    from tummler.app.learning import DEFAULT_POLICY_KIND, LEARNABLE_KINDS
    from tummler.cli import learn

    assert learn.DEFAULT_POLICY_KIND == DEFAULT_POLICY_KIND
    assert learn.LEARNABLE_KINDS == LEARNABLE_KINDS
