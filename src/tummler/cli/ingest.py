"""`tummler import`: import contacts, identities, consent, events, edges and mentions from CSV, JSONL or Parquet.

Exit codes: 0 when the import ran — even when some rows were rejected (they are in the rejects file);
1 when nothing could be read (missing, empty or unreadable file, missing required columns, a bad option)
or the database refused a batch; 130 when interrupted (Ctrl-C): the batches committed before stay, and
running the same command again resumes.

Attributes the workspace's ``strategy.yaml`` declares are checked against their declared type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from tummler.cli.context import console, error_console, state
from tummler.core.errors import InputError, TummlerError

if TYPE_CHECKING:
    from tummler.app.ingest import ImportKind, ImportReport
    from tummler.cli.context import CLIState

import_app = typer.Typer(
    help="Import contacts, identities, consent, events, edges and mentions from CSV, JSONL or Parquet.",
    no_args_is_help=True,
)

#: One command per value of ``tummler.app.ingest.ImportKind``, with the columns it reads. Keyed by the
#: plain value so that the CLI starts without importing the import service (its readers load pyarrow);
#: tests/cli/test_cli_startup.py fails when these keys and ``ImportKind`` drift apart.
_FIELDS_HELP: dict[str, str] = {
    "contacts": "external_id (required), time_zone, locale, stage, email, phone; "
    "other columns become attributes",
    "identities": "contact_external_id, channel, address (all required)",
    "consent": "contact_external_id, channel, status, at (required), source",
    "events": "contact_external_id, type, at (required), channel, value, source, provider_event_id",
    "edges": "source_external_id, target_external_id, kind (required), weight, at",
    "mentions": "channel, external_id, at (required), author_handle, text, "
    "contact_external_id, sentiment, topic",
}


def _mapping(pairs: list[str] | None, mapping_file: Path | None) -> dict[str, str]:
    import yaml

    mapping: dict[str, str] = {}
    if mapping_file is not None:
        try:
            loaded: Any = yaml.safe_load(mapping_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read the mapping file: {exc}", file=mapping_file) from None
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise InputError(
                "the mapping file must hold `field: column` pairs, e.g. `external_id: customer_id`",
                file=mapping_file,
            )
        mapping.update(loaded)
    for pair in pairs or []:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise InputError(
                f"--map {pair!r}: write FIELD=COLUMN, e.g. --map external_id=customer_id",
                field="--map",
            )
        mapping[field.strip()] = column.strip()
    return mapping


def _render(report: ImportReport) -> None:
    console.print(f"import {report.kind} from [bold]{escape(report.path)}[/bold]", highlight=False)
    table = Table(show_header=True)
    table.add_column("rows")
    table.add_column("count", justify="right")
    for label, value in (
        ("read", report.rows_read),
        ("accepted", report.accepted),
        ("inserted", report.inserted),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("rejected", report.rejected),
    ):
        table.add_row(label, f"{value:,}")
    if report.identities_added:
        table.add_row("identities added", f"{report.identities_added:,}")
    if report.suppressed:
        table.add_row("suppressed (forgotten people)", f"{report.suppressed:,}")
    if report.revoked:
        table.add_row("consent revoked (unsubscribes, complaints)", f"{report.revoked:,}")
    console.print(table)
    if report.top_reasons:
        reasons = Table(title="top rejection reasons", show_header=True)
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for reason, count in report.top_reasons:
            reasons.add_row(escape(reason), f"{count:,}")
        console.print(reasons)
    for warning in report.warnings:
        where = ""
        if warning.rows:
            plural = "s" if warning.rows > 1 else ""
            unit = "row" if report.file_format == "parquet" else "line"
            lines = ", ".join(map(str, warning.lines))
            more = warning.rows - len(warning.lines)
            rest = f", … {more:,} more" if more > 0 else ""
            where = f" ({warning.rows:,} row{plural}: {unit}{plural} {lines}{rest})"
        console.print(
            f"[bold yellow]warning:[/bold yellow] {escape(warning.message)}{where}", highlight=False
        )
    if report.rejects_path:
        what = "rejects and warnings" if any(w.rows for w in report.warnings) else "rejected rows"
        console.print(f"{what}: [bold]{escape(report.rejects_path)}[/bold]", highlight=False)


def _interrupted(report: ImportReport, as_json: bool) -> None:
    """Say what an interrupted import committed, and that running it again resumes."""
    if as_json:
        console.print_json(json.dumps({**report.to_dict(), "interrupted": True}))
    rows = report.accepted
    error_console.print(
        f"interrupted: {report.batches:,} {'batch' if report.batches == 1 else 'batches'} "
        f"committed ({rows:,} rows); the batch in progress was rolled back. Run the same command "
        "again to resume: rows already imported are left as they are.",
        highlight=False,
    )


def _strategy_options(cli: CLIState, kind: ImportKind) -> dict[str, Any]:
    """What the workspace's strategy tells an import of ``kind``, read only for the kinds it
    concerns: what an imported complaint revokes (events), the declared attribute types (contacts)."""
    from tummler.app.ingest import ImportKind
    from tummler.app.strategy import consent_rules

    if kind is ImportKind.EVENTS:
        return {"on_complaint": consent_rules(cli.settings.workspace).on_complaint}
    if kind is ImportKind.CONTACTS:
        return {"attribute_types": _attribute_types(cli)}
    return {}


def _attribute_types(cli: CLIState) -> dict[str, str] | None:
    """The attribute types ``strategy.yaml`` declares; ``None`` (and a note) when it cannot be read."""
    from tummler.app.strategy import read_workspace_strategy

    workspace = cli.settings.workspace
    if not (workspace / "strategy.yaml").is_file():
        return None
    loaded = read_workspace_strategy(workspace)
    if loaded.strategy is None:
        error_console.print(
            "note: strategy.yaml could not be read (see `tummler strategy check`): attribute "
            "types are not checked",
            highlight=False,
        )
        return None
    attributes = loaded.strategy.strategy.attributes
    return {name: spec.type for name, spec in attributes.items()}


def _run(
    ctx: typer.Context,
    kind_name: str,
    file: Path,
    file_format: str | None,
    pairs: list[str] | None,
    mapping_file: Path | None,
    rejects: Path | None,
    default_region: str | None,
    as_json: bool,
) -> None:
    from tummler.app.ingest import ImportInterrupted, ImportKind, import_file

    kind = ImportKind(kind_name)
    cli = state(ctx)
    try:
        mapping = _mapping(pairs, mapping_file)
        engine = cli.engine
        options: dict[str, Any] = {
            "mapping": mapping,
            "file_format": file_format,
            "rejects_path": rejects,
            "batch_size": cli.settings.import_batch_size,
            "default_region": default_region,
            **_strategy_options(cli, kind),
        }
        if as_json or not console.is_terminal:
            report = import_file(engine, kind, file, **options)
        else:
            with Progress(
                TextColumn(f"importing {kind.value}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("read", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                report = import_file(engine, kind, file, progress=advance, **options)
    except ImportInterrupted as interrupted:
        _interrupted(interrupted.report, as_json)
        raise typer.Exit(130) from None
    except TummlerError as exc:
        error_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        _render(report)


def _command(kind: str) -> Any:
    def command(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="CSV, JSON Lines (.jsonl) or Parquet file.")],
        file_format: Annotated[
            str | None,
            typer.Option("--format", help="csv, jsonl or parquet (default: from the extension)."),
        ] = None,
        pairs: Annotated[
            list[str] | None,
            typer.Option(
                "--map", help="FIELD=COLUMN: read FIELD from the file's COLUMN (repeatable)."
            ),
        ] = None,
        mapping_file: Annotated[
            Path | None,
            typer.Option("--mapping", help="YAML file of `field: column` pairs."),
        ] = None,
        rejects: Annotated[
            Path | None,
            typer.Option(
                "--rejects", help="Rejected rows' CSV (default: <file>.rejects.csv beside it)."
            ),
        ] = None,
        default_region: Annotated[
            str | None,
            typer.Option(
                "--default-region", help="Region (DE, US...) of phone numbers without +country."
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON summary instead of tables.")
        ] = False,
    ) -> None:
        _run(ctx, kind, file, file_format, pairs, mapping_file, rejects, default_region, as_json)

    command.__doc__ = (
        f"Import {kind} from FILE. Columns: {_FIELDS_HELP[kind]}. Times without a zone "
        "are UTC; plain numbers are unix seconds. Exit code 0 when the import ran (even with "
        "rejected rows), 1 when nothing could be read, 130 when interrupted (run it again to "
        "resume)."
    )
    return command


for _kind in _FIELDS_HELP:
    import_app.command(_kind, short_help=f"Import {_kind} from a CSV, JSONL or Parquet file.")(
        _command(_kind)
    )
