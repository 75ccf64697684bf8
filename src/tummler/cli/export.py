"""`tummler export`: export contacts, decisions and events as CSV or Parquet."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tummler.cli.context import console, error_console, state

if TYPE_CHECKING:
    from tummler.app.export import ExportSummary

export_app = typer.Typer(
    help="Export contacts, decisions and events as CSV or Parquet.", no_args_is_help=True
)


class FormatChoice(StrEnum):
    """The ``--format`` choices: the values of ``tummler.app.export.ExportFormat``.

    A copy, so that the CLI starts without importing the export service (and pyarrow with it);
    tests/cli/test_cli_startup.py fails when the two drift apart.
    """

    CSV = "csv"
    PARQUET = "parquet"


#: ``tummler.app.export.DEFAULT_CHUNK_SIZE``, copied for the same reason (and checked by the same test).
DEFAULT_CHUNK_SIZE = 10_000

_FormatOption = Annotated[
    FormatChoice | None,
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        help="csv or parquet (default: from the --out extension, else csv).",
    ),
]
_OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        dir_okay=False,
        help="File to write. Default: the workspace's exports/<kind>-<UTC time>.<format>.",
    ),
]
_ForceOption = Annotated[
    bool, typer.Option("--force", help="Replace the file if it exists (otherwise an error).")
]
_NoEscapeOption = Annotated[
    bool,
    typer.Option(
        "--no-escape-formulas",
        help="Write CSV text as it is. By default a cell that a spreadsheet would run as a formula "
        "(=, +, -, @ first) gets a leading '.",
    ),
]
_ChunkOption = Annotated[
    int,
    typer.Option("--chunk-size", min=1, help="Rows read and written at a time (bounds memory)."),
]


def _export_command(kind_name: str, help_text: str) -> None:
    """Register ``tummler export <kind_name>``: every kind takes the same options."""

    def command(
        ctx: typer.Context,
        export_format: _FormatOption = None,
        out: _OutOption = None,
        chunk_size: _ChunkOption = DEFAULT_CHUNK_SIZE,
        force: _ForceOption = False,
        no_escape_formulas: _NoEscapeOption = False,
    ) -> None:
        _export(
            ctx,
            kind_name,
            export_format,
            out,
            chunk_size,
            force=force,
            escape_formulas=not no_escape_formulas,
        )

    command.__doc__ = help_text
    export_app.command(kind_name)(command)


_export_command(
    "contacts",
    """Contacts with their identities (email, phone, mastodon...), consent_<channel> and attributes.

    The file can be imported again with `tummler import contacts` (with --no-escape-formulas, or as
    Parquet, when a value begins with =, +, - or @). Forgotten people export without personal data.
    """,
)
_export_command(
    "decisions",
    "Every decision with its campaign, the contact's external id, propensity and reasons.",
)
_export_command("events", "Every event with the contact's external id; times in ISO 8601 UTC.")


def _export(
    ctx: typer.Context,
    kind_name: str,
    file_format: FormatChoice | None,
    out: Path | None,
    chunk_size: int,
    *,
    force: bool,
    escape_formulas: bool,
) -> None:
    from tummler.app.export import (
        ExportFormat,
        ExportKind,
        count_rows,
        default_export_path,
        export_table,
    )
    from tummler.core.clock import SystemClock

    kind = ExportKind(kind_name)
    if file_format is not None:
        export_format = ExportFormat(file_format.value)
    else:
        export_format = ExportFormat.from_path(out) if out is not None else ExportFormat.CSV
    engine = state(ctx).engine
    if out is not None:
        path = out
    else:
        workspace = state(ctx).settings.workspace
        path = default_export_path(workspace, kind, export_format, now=SystemClock().now())
        path.parent.mkdir(exist_ok=True)
    total = count_rows(engine, kind=kind)
    progress = Progress(
        TextColumn(f"exporting {kind.value}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=error_console,
        transient=True,
        # A bar is noise for what is written in one chunk.
        disable=total <= chunk_size,
    )
    with progress:
        task = progress.add_task(kind.value, total=total)
        summary = export_table(
            engine,
            kind=kind,
            path=path,
            export_format=export_format,
            chunk_size=chunk_size,
            on_chunk=lambda rows: progress.advance(task, rows),
            overwrite=force,
            escape_formulas=escape_formulas,
        )
    console.print(_summary_line(summary), highlight=False)


def _summary_line(summary: ExportSummary) -> str:
    return (
        f"exported {summary.rows:,} {summary.kind.value} to {summary.path} "
        f"({summary.format.value}, {_size(summary.bytes)})"
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"
