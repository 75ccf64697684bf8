"""The ``tummler`` commands under test, as the CLI registers them.

:func:`cli_app` opens one given workspace; :func:`rooted_cli_app` puts the commands under the real
root callback, which takes ``--workspace``/``-w`` (or ``$TUMMLER_WORKSPACE``) like ``tummler`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from tummler.cli.context import CLIState
from tummler.cli.main import _root


def cli_app(workspace: Path, *commands: Callable[..., Any], **groups: typer.Typer) -> typer.Typer:
    """A Typer app whose root opens ``workspace`` (and closes it after the command), with
    ``commands`` under their function names and ``groups`` under their keyword names."""
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        cli = CLIState(workspace=workspace)
        ctx.obj = cli
        ctx.call_on_close(cli.close)

    return _register(app, commands, groups)


def rooted_cli_app(*commands: Callable[..., Any], **groups: typer.Typer) -> typer.Typer:
    """A Typer app on ``tummler``'s own root callback, with ``commands`` under their function
    names and ``groups`` under their keyword names."""
    app = typer.Typer()
    app.callback()(_root)
    return _register(app, commands, groups)


def _register(
    app: typer.Typer, commands: tuple[Callable[..., Any], ...], groups: dict[str, typer.Typer]
) -> typer.Typer:
    for command in commands:
        app.command(command.__name__)(command)
    for name, group in groups.items():
        app.add_typer(group, name=name)
    return app
