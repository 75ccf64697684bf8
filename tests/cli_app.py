"""The ``tummler`` commands under test, as the CLI registers them, on one workspace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from tummler.cli.context import CLIState


def cli_app(workspace: Path, *commands: Callable[..., Any], **groups: typer.Typer) -> typer.Typer:
    """A Typer app whose root opens ``workspace`` (and closes it after the command), with
    ``commands`` under their function names and ``groups`` under their keyword names."""
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        cli = CLIState(workspace=workspace)
        ctx.obj = cli
        ctx.call_on_close(cli.close)

    for command in commands:
        app.command(command.__name__)(command)
    for name, group in groups.items():
        app.add_typer(group, name=name)
    return app
