"""The ``tummler`` command: one Typer app, a module per command group.

Typer reads every command's signature to build the command tree, so ``tummler --help`` and every
command import all the modules in ``tummler.cli`` before anything runs. Keep them cheap: a command
module imports its services (and with them SQLAlchemy, SciPy, pyarrow, Jinja2...) inside the command
function, types its signature with builtins, ``Path``, ``typer`` and enums from cheap modules, and
imports the services' types for its helpers under ``TYPE_CHECKING``. tests/cli/test_cli_startup.py fails
when a heavy package is loaded at start-up.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tummler.cli import (
    demo,
    export,
    ingest,
    learn,
    listen,
    person,
    plan,
    report,
    send,
    serve,
    strategy,
    workspace,
)
from tummler.cli.context import CLIState, error_console
from tummler.core.errors import TummlerError

app = typer.Typer(
    name="tummler",
    help="tummler: which lever to pull, for whom, when — or none.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    workspace_dir: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar="TUMMLER_WORKSPACE",
            help="Workspace directory (default: the current one).",
        ),
    ] = None,
) -> None:
    state = CLIState(workspace=workspace_dir)
    ctx.obj = state
    ctx.call_on_close(state.close)
    logging.basicConfig(level=state.settings.log_level if state.workspace else logging.WARNING)


app.command()(workspace.init)
app.command()(workspace.status)
app.command()(demo.demo)
app.command("plan")(plan.plan)
app.command("explain")(plan.explain)
app.command()(learn.learn)
app.command()(learn.evaluate)
app.command()(report.report)
app.command()(send.send)
app.command()(send.deliveries)
app.command()(serve.serve)
app.add_typer(workspace.db_app, name="db")
app.add_typer(ingest.import_app, name="import")
app.add_typer(export.export_app, name="export")
app.add_typer(person.person_app, name="person")
app.add_typer(strategy.strategy_app, name="strategy")
app.add_typer(listen.listen_app, name="listen")


def main() -> None:
    """Run the CLI; a ``TummlerError`` becomes a one-line message and exit code 1.

    The message is escaped: Rich would read ``[api]`` in an install hint as a style tag and drop it.
    """
    try:
        app()
    except TummlerError as exc:
        error_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None
