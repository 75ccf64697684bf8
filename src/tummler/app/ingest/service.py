"""``import_file``: read a file in chunks, validate each row, write accepted rows in atomic batches."""

from __future__ import annotations

import csv
import gc
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import phonenumbers
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tummler.app.csv_cells import neutralize_formula
from tummler.app.ingest.loader import prepare_connection, resolve_contacts, write_rows
from tummler.app.ingest.readers import FileFormat, detect_format, open_reader
from tummler.app.ingest.schemas import ImportKind, Reject, RowValidator, schema_for
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError, StoreError

__all__ = ["ImportReport", "Progress", "default_rejects_path", "import_file"]

#: Called after each batch with (work done, total work): bytes for CSV and JSON Lines, rows for Parquet.
Progress = Callable[[int, int], None]

_UNKNOWN_CONTACT = "unknown contact: no contact has this external id (import contacts first)"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did.

    ``accepted == inserted + updated + unchanged`` and ``rows_read == accepted + rejected``.
    ``identities_added`` counts channel identities made from a contacts file's ``email``/``phone``.
    """

    kind: str
    path: str
    file_format: str
    rows_read: int
    accepted: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    batches: int
    rejects_path: str | None
    top_reasons: tuple[tuple[str, int], ...]
    identities_added: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``top_reasons`` as a list of ``{"reason", "rows"}``)."""
        data = asdict(self)
        data["top_reasons"] = [{"reason": r, "rows": n} for r, n in self.top_reasons]
        return data


def default_rejects_path(path: Path) -> Path:
    """Where rejects go by default: next to the input, ``<name>.rejects.csv``."""
    return path.with_name(f"{path.stem}.rejects.csv")


class _RejectsFile:
    """The rejects CSV (line, field, value, reason), opened on the first reject only.

    Its text cells quote the input back to a person, often in a spreadsheet: one that would run as
    a formula is written with a leading ``'`` (``neutralize_formula``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._writer: Any = None
        self.reasons: Counter[str] = Counter()

    def write(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        if self._writer is None:
            try:
                self._handle = self.path.open(
                    "w", encoding="utf-8", errors="backslashreplace", newline=""
                )
            except OSError as exc:
                raise InputError(f"cannot write the rejects file: {exc}", file=self.path) from None
            self._writer = csv.writer(self._handle)
            self._writer.writerow(("line", "field", "value", "reason"))
        rejects.sort(key=lambda reject: reject.line)
        self._writer.writerows(
            (r.line, *map(neutralize_formula, (r.field, r.value, r.reason))) for r in rejects
        )
        for reject in rejects:
            self.reasons[f"{reject.field}: {reject.reason}" if reject.field else reject.reason] += 1

    @property
    def written(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


def _column_names(
    header: tuple[str, ...], mapping: Mapping[str, str] | None, kind: ImportKind, path: Path
) -> dict[str, str]:
    """File column → field name, from ``mapping`` (field → file column); checks both sides."""
    schema = schema_for(kind)
    renames: dict[str, str] = {}
    for field_name, column_name in (mapping or {}).items():
        if field_name not in schema.names and not schema.extras_to_attributes:
            raise InputError(
                f"--map names an unknown field {field_name!r}; the fields of {kind} are: "
                f"{', '.join(schema.names)}",
                field=field_name,
            )
        if column_name not in header:
            raise InputError(
                f"--map {field_name}={column_name}: the file has no column {column_name!r}; "
                f"its columns are: {', '.join(header)}",
                file=path,
                field=column_name,
            )
        renames[column_name] = field_name
    fields = [renames.get(name, name) for name in header]
    doubled = sorted({name for name in fields if fields.count(name) > 1})
    if doubled:
        raise InputError(
            f"after --map, more than one column is called {', '.join(map(repr, doubled))}: "
            "map or rename only one of them",
            file=path,
        )
    return renames


def import_file(
    engine: Engine,
    kind: ImportKind | str,
    path: Path | str,
    *,
    mapping: Mapping[str, str] | None = None,
    file_format: str | None = None,
    rejects_path: Path | str | None = None,
    batch_size: int = 10_000,
    clock: Clock | None = None,
    default_region: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV, JSON Lines or Parquet file of ``kind`` into the store.

    The file is read ``batch_size`` rows at a time. Each row is validated; rejected rows go to the
    rejects file with their line, field, value and reason, and never stop the import. The accepted rows
    of a batch are written in one transaction: a batch is committed whole or not at all. Re-importing
    the same file changes nothing (see :mod:`tummler.app.ingest.loader` for what "the same row" means
    per kind).

    Parameters
    ----------
    engine
        The store.
    kind
        ``contacts``, ``identities``, ``consent``, ``events``, ``edges`` or ``mentions``.
    path
        The file; its format comes from the extension unless ``file_format`` is given.
    mapping
        Field name → the file's column name, for files whose columns are named otherwise.
    file_format
        ``csv``, ``jsonl`` or ``parquet``, to override the extension.
    rejects_path
        Where to write rejected rows; default ``<name>.rejects.csv`` next to the input. Written only
        when a row is rejected.
    batch_size
        Rows per read chunk and per transaction.
    clock
        Gives ``created_at`` / ``updated_at`` / ``recorded_at``.
    default_region
        ISO 3166 region (``DE``, ``US``...) for phone numbers written without ``+<country code>``.
    progress
        Called after each batch with (done, total) in bytes (text) or rows (Parquet).

    Returns
    -------
    ImportReport
        Counts of rows read, accepted, inserted, updated, unchanged and rejected.

    Raises
    ------
    InputError
        Before anything is written, when the file cannot be read at all: missing, empty, not of its
        format, a header without the required columns, a bad option.
    StoreError
        When the database refuses a batch; the batches before it stay committed, that batch leaves
        nothing, and importing the file again resumes safely (it is idempotent).
    """
    clock = clock or SystemClock()
    try:
        kind = ImportKind(kind)
    except ValueError:
        raise InputError(
            f"unknown import kind {kind!r}: use one of {', '.join(k.value for k in ImportKind)}",
            field="kind",
        ) from None
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}", field="batch_size")
    if default_region is not None:
        default_region = default_region.upper()
        if default_region not in phonenumbers.SUPPORTED_REGIONS:
            raise InputError(
                f"unknown region {default_region!r}: give an ISO 3166 code such as DE or US",
                field="--default-region",
            )
    path = Path(path)
    fmt: FileFormat = detect_format(path, file_format)
    reader = open_reader(path, fmt)
    renames = _column_names(reader.header, mapping, kind, path)
    schema = schema_for(kind, default_region=default_region)
    present = {renames.get(name, name) for name in reader.header}
    missing = [name for name in schema.required if name not in present]
    if missing:
        raise InputError(
            f"missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; the file has: {', '.join(reader.header)}. "
            "Rename them or map yours with --map FIELD=COLUMN",
            file=path,
            line=1 if fmt is not FileFormat.PARQUET else None,
        )
    references = [spec.name for spec in schema.fields if spec.contact_ref]
    positions = [schema.index(name) for name in references]

    rejects = _RejectsFile(Path(rejects_path) if rejects_path else default_rejects_path(path))
    if rejects.path.resolve() == path.resolve():
        raise InputError(
            "the rejects file would overwrite the input: give another --rejects path",
            file=path,
            field="--rejects",
        )
    validators: dict[tuple[str, ...], RowValidator] = {}
    errors = _driver_errors()
    started = clock.now()
    # Each chunk allocates hundreds of thousands of small lists and tuples, none of them in a cycle;
    # the cyclic garbage collector would walk them over and over (a third of the import's time).
    # It is switched off for the import and restored afterwards.
    collecting = gc.isenabled()
    gc.disable()
    read = accepted = rejected = inserted = updated = identities = batches = 0
    try:
        for chunk in reader.chunks(batch_size):
            columns = tuple(renames.get(name, name) for name in chunk.columns)
            validator = validators.get(columns)
            if validator is None:
                validator = validators[columns] = RowValidator(schema, columns)
            good, bad = validator.validate(chunk.lines, chunk.rows)
            bad.extend(chunk.problems)
            if good:
                try:
                    with engine.begin() as connection:
                        prepare_connection(connection)
                        ids: dict[str, int] = {}
                        if references:
                            wanted = {row[p] for _, row in good for p in positions}
                            wanted.discard(None)
                            ids = resolve_contacts(connection, wanted)
                            good = _keep_known(good, positions, references, ids, bad)
                        counts = write_rows(
                            connection,
                            kind,
                            [row for _, row in good],
                            ids,
                            clock.now(),
                            source=f"import:{path.name}",
                        )
                except errors as exc:
                    first, last = chunk.lines[0], chunk.lines[-1]
                    unit = "row" if fmt is FileFormat.PARQUET else "line"
                    raise StoreError(
                        f"{path}: the database refused the batch of {unit}s {first}–{last} "
                        f"({_short(exc)}); it was rolled back, the {batches} batch(es) before it "
                        "are committed. Fix the cause and import the file again: rows already "
                        "imported are left as they are."
                    ) from exc
                inserted += counts.inserted
                updated += counts.updated
                identities += counts.identities
                batches += 1
            rejects.write(bad)
            chunk_rejected = len({reject.line for reject in bad})
            read += len(chunk.rows) + len({p.line for p in chunk.problems})
            rejected += chunk_rejected
            accepted += len(good)
            if progress is not None:
                progress(chunk.done, reader.total)
    finally:
        rejects.close()
        if collecting:
            gc.enable()
    return ImportReport(
        kind=kind.value,
        path=str(path),
        file_format=fmt.value,
        rows_read=read,
        accepted=accepted,
        inserted=inserted,
        updated=updated,
        unchanged=accepted - inserted - updated,
        rejected=rejected,
        batches=batches,
        rejects_path=str(rejects.path) if rejects.written else None,
        top_reasons=tuple(rejects.reasons.most_common(5)),
        identities_added=identities,
        seconds=(clock.now() - started).total_seconds(),
    )


def _keep_known(
    good: list[tuple[int, Sequence[Any]]],
    positions: list[int],
    names: list[str],
    ids: dict[str, int],
    bad: list[Reject],
) -> list[tuple[int, Sequence[Any]]]:
    wanted = {row[p] for _, row in good for p in positions}
    wanted.discard(None)
    if wanted <= ids.keys():
        return good
    kept: list[tuple[int, Sequence[Any]]] = []
    for line, row in good:
        unknown = False
        for position, name in zip(positions, names, strict=True):
            value = row[position]
            if value is not None and value not in ids:
                bad.append(Reject(line, name, value, _UNKNOWN_CONTACT))
                unknown = True
        if not unknown:
            kept.append((line, row))
    return kept


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
