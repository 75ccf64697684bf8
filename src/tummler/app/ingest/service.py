"""``import_file``: read a file in chunks, validate each row, write accepted rows in atomic batches.

Besides rejects, an import reports warnings: rows it imported but that need a look (an external id
given twice in the file, an address that already belongs to another contact) and columns that look
like a field but are not read as one (``timezone`` for ``time_zone``). Both go to the summary; the
rows also go to the rejects file, marked ``imported`` in its ``outcome`` column.

Two promises hold on this way in as on every other: a row about a forgotten person (its external id,
address or handle is on the suppression list, :mod:`tummler.app.suppression`) is counted as
*suppressed* and written nowhere, not even to the rejects file; and an imported ``unsubscribed`` or
``complained`` event revokes consent in the batch that stores it (:mod:`tummler.app.consent`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import phonenumbers
from sqlalchemy import Engine

from tummler.app.ingest.attributes import ATTRIBUTE_TYPES
from tummler.app.ingest.batches import ImportJob, ImportTally, commit_batch
from tummler.app.ingest.lookalikes import lookalike_columns, lookalike_warning
from tummler.app.ingest.readers import FileFormat, RowChunk, detect_format, open_reader
from tummler.app.ingest.rejects import RejectsFile
from tummler.app.ingest.report import ImportInterrupted, ImportReport, ImportWarning
from tummler.app.ingest.schemas import ImportKind, KindSchema, schema_for
from tummler.app.ingest.validation import RowValidator, RowWarning
from tummler.app.personal_files import remember_personal_file
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError
from tummler.strategy import ComplaintScope

__all__ = ["Progress", "import_file"]

#: Called after each batch with (work done, total work): bytes for CSV and JSON Lines, rows for Parquet.
Progress = Callable[[int, int], None]


def _column_names(
    header: tuple[str, ...], mapping: Mapping[str, str] | None, schema: KindSchema, path: Path
) -> dict[str, str]:
    """File column → field name, from ``mapping`` (field → file column); checks both sides."""
    renames: dict[str, str] = {}
    for field_name, column_name in (mapping or {}).items():
        if field_name not in schema.names and not schema.extras_to_attributes:
            raise InputError(
                f"--map names an unknown field {field_name!r}; the fields of {schema.kind} are: "
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
    attribute_types: Mapping[str, str] | None = None,
    on_complaint: ComplaintScope = ComplaintScope.CHANNEL,
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
        Gives ``created_at`` / ``updated_at`` / ``recorded_at``, and "now" for consent: a consent
        dated after now plus :data:`~tummler.app.ingest.schemas.CLOCK_SKEW` is rejected.
    default_region
        ISO 3166 region (``DE``, ``US``...) for phone numbers written without ``+<country code>``.
    progress
        Called after each batch with (done, total) in bytes (text) or rows (Parquet).
    attribute_types
        Attribute name → ``string``, ``number`` or ``boolean``, as the strategy declares them: a
        contact whose declared attribute holds another type is rejected. Others are typed as read.
    on_complaint
        The strategy's ``consent.on_complaint``: what an imported complaint revokes.

    Returns
    -------
    ImportReport
        Counts of rows read, accepted, inserted, updated, unchanged, rejected and suppressed, and
        warnings.

    Raises
    ------
    InputError
        Before anything is written, when the file cannot be read at all: missing, empty, not of its
        format, a header without the required columns, a bad option.
    StoreError
        When the database refuses a batch; the batches before it stay committed, that batch leaves
        nothing, and importing the file again resumes safely (it is idempotent).
    ImportInterrupted
        On Ctrl-C (it is a ``KeyboardInterrupt``): the same, with the report of what was committed.
    """
    clock = clock or SystemClock()
    kind, default_region = _checked_options(kind, batch_size, default_region, attribute_types)
    path = Path(path)
    fmt: FileFormat = detect_format(path, file_format)
    reader = open_reader(path, fmt)
    started = clock.now()
    schema = schema_for(kind, default_region=default_region, now=started)
    renames = _column_names(reader.header, mapping, schema, path)
    _check_required_columns(schema, reader.header, renames, path, fmt)
    rejects = RejectsFile.beside(path, rejects_path)
    job = ImportJob.of(schema, path, fmt, clock, on_complaint)
    validators = _Validators(schema, renames, attribute_types)
    tally = ImportTally()
    with _cyclic_gc_paused():
        try:
            for chunk in reader.chunks(batch_size):
                _import_chunk(engine, job, validators, chunk, rejects, tally)
                if progress is not None:
                    progress(chunk.done, reader.total)
        except KeyboardInterrupt:
            raise ImportInterrupted(_report(job, tally, rejects, validators, started)) from None
        finally:
            _close_rejects(engine, rejects, clock)
    return _report(job, tally, rejects, validators, started)


def _import_chunk(
    engine: Engine,
    job: ImportJob,
    validators: _Validators,
    chunk: RowChunk,
    rejects: RejectsFile,
    tally: ImportTally,
) -> None:
    """Validate one chunk, commit its accepted rows in one transaction, and file its rejects."""
    good, bad = validators.of(chunk.columns).validate(chunk.lines, chunk.rows)
    bad.extend(chunk.problems)
    warned: list[RowWarning] = []
    if good:
        commit_batch(engine, job, chunk.lines, good, bad, warned, tally)
    rejects.write(bad, warned)
    tally.read += len(chunk.rows) + len({p.line for p in chunk.problems})
    tally.rejected += len({reject.line for reject in bad})


def _close_rejects(engine: Engine, rejects: RejectsFile, clock: Clock) -> None:
    """Close the rejects file and, when it was written, record it: it quotes rows, so forgetting a
    person must find them there too."""
    rejects.close()
    if rejects.written:
        remember_personal_file(engine, rejects.path, "rejects", now=clock.now())


def _checked_options(
    kind: ImportKind | str,
    batch_size: int,
    default_region: str | None,
    attribute_types: Mapping[str, str] | None,
) -> tuple[ImportKind, str | None]:
    """The import's kind and region, once its options are checked (before the file is opened)."""
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
    for name, declared in (attribute_types or {}).items():
        if declared not in ATTRIBUTE_TYPES:
            raise InputError(
                f"attribute {name!r} is declared {declared!r}: use one of "
                f"{', '.join(ATTRIBUTE_TYPES)}",
                field="attribute_types",
            )
    return kind, default_region


def _check_required_columns(
    schema: KindSchema,
    header: tuple[str, ...],
    renames: Mapping[str, str],
    path: Path,
    fmt: FileFormat,
) -> None:
    """Refuse a file without the kind's required columns, naming a look-alike to ``--map``."""
    present = [renames.get(name, name) for name in header]
    missing = [name for name in schema.required if name not in present]
    if not missing:
        return
    hints = "".join(
        f" (the file's {column!r} looks like {field}: --map {field}={column})"
        for column, field in lookalike_columns(schema, present)
        if field in missing
    )
    raise InputError(
        f"missing required column{'s' if len(missing) > 1 else ''} "
        f"{', '.join(map(repr, missing))}; the file has: {', '.join(header)}. "
        f"Rename them or map yours with --map FIELD=COLUMN{hints}",
        file=path,
        line=1 if fmt is not FileFormat.PARQUET else None,
    )


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Switch the cyclic garbage collector off for the block, and back on if it was on.

    Each chunk allocates hundreds of thousands of small lists and tuples, none of them in a cycle;
    the collector would walk them over and over (a third of the import's time).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class _Validators:
    """One :class:`RowValidator` per layout of columns (JSON Lines objects may differ in keys), and
    the warnings about columns that look like a field, collected as layouts are met."""

    def __init__(
        self,
        schema: KindSchema,
        renames: Mapping[str, str],
        attribute_types: Mapping[str, str] | None,
    ) -> None:
        self._schema = schema
        self._renames = renames
        self._attribute_types = attribute_types
        self._by_columns: dict[tuple[str, ...], RowValidator] = {}
        #: the warnings, in the order met, each once (a dict keeps the order)
        self.column_warnings: dict[str, None] = {}

    def of(self, file_columns: Sequence[str]) -> RowValidator:
        """The validator of a chunk whose columns are ``file_columns`` (before ``--map``)."""
        columns = tuple(self._renames.get(name, name) for name in file_columns)
        validator = self._by_columns.get(columns)
        if validator is None:
            validator = RowValidator(self._schema, columns, self._attribute_types)
            self._by_columns[columns] = validator
            for column, field_name in lookalike_columns(self._schema, columns):
                self.column_warnings[lookalike_warning(self._schema, column, field_name)] = None
        return validator


def _report(
    job: ImportJob,
    tally: ImportTally,
    rejects: RejectsFile,
    validators: _Validators,
    started: datetime,
) -> ImportReport:
    return ImportReport(
        kind=job.kind.value,
        path=str(job.path),
        file_format=job.file_format.value,
        rows_read=tally.read,
        accepted=tally.accepted,
        inserted=tally.inserted,
        updated=tally.updated,
        unchanged=tally.accepted - tally.inserted - tally.updated,
        rejected=tally.rejected,
        batches=tally.batches,
        rejects_path=str(rejects.path) if rejects.written else None,
        top_reasons=tuple(rejects.reasons.most_common(5)),
        identities_added=tally.identities,
        seconds=(job.clock.now() - started).total_seconds(),
        warnings=(*map(ImportWarning, validators.column_warnings), *rejects.summary()),
        suppressed=tally.suppressed,
        revoked=tally.revoked,
    )
