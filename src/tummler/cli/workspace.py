"""``tummler init``, ``tummler status`` and ``tummler db upgrade``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tummler.cli.context import console, state

db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)


def init(
    ctx: typer.Context,
    directory: Annotated[
        Path | None, typer.Argument(help="Workspace directory (default: the current one).")
    ] = None,
) -> None:
    """Make a workspace: settings file, example strategy, migrated SQLite database."""
    from tummler.app.workspace import init_workspace

    target = directory or state(ctx).workspace or Path.cwd()
    settings = init_workspace(target)
    console.print(
        f"[green]Workspace ready[/green] in [bold]{escape(str(settings.workspace))}[/bold]"
    )
    console.print(f"  store: {settings.masked_database_url}", markup=False)
    console.print(
        "  next: [bold]tummler import contacts FILE[/bold], then [bold]tummler status[/bold]"
    )


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Counts per table, the database and its schema version."""
    from tummler.app.workspace import store_status

    report = store_status(state(ctx).engine)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "database": report.database,
                    "backend": report.backend,
                    "schema_revision": report.revision,
                    "schema_head": report.head,
                    "counts": report.counts,
                }
            )
        )
        return
    table = Table(title="tummler store", show_header=True)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(f"database: [bold]{escape(report.database)}[/bold] ({report.backend})")
    console.print(f"schema: {report.revision} (newest: {report.head})")
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the store's schema to this version of tummler."""
    from tummler.app.workspace import upgrade_store

    upgrade_store(state(ctx).settings)
    console.print("[green]schema up to date[/green]")
