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

import csv
import functools
import gc
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import phonenumbers
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from tummler.app.consent import REVOKING_EVENTS, revocations, write_revocations
from tummler.app.csv_cells import neutralize_formula
from tummler.app.ingest.attributes import ATTRIBUTE_TYPES
from tummler.app.ingest.loader import (
    WriteCounts,
    address_holders,
    prepare_connection,
    resolve_contacts,
    write_rows,
)
from tummler.app.ingest.lookalikes import lookalike_columns, lookalike_warning
from tummler.app.ingest.readers import FileFormat, detect_format, open_reader
from tummler.app.ingest.schemas import ImportKind, KindSchema, schema_for
from tummler.app.ingest.validation import Reject, RowValidator, RowWarning
from tummler.app.personal_files import remember_personal_file
from tummler.app.suppression import Suppressions, external_id_key, identity_key
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError, StoreError
from tummler.strategy import ComplaintScope

__all__ = [
    "ImportInterrupted",
    "ImportReport",
    "ImportWarning",
    "Progress",
    "default_rejects_path",
    "import_file",
]

#: Called after each batch with (work done, total work): bytes for CSV and JSON Lines, rows for Parquet.
Progress = Callable[[int, int], None]

_UNKNOWN_CONTACT = "unknown contact: no contact has this external id (import contacts first)"
_REPEATED_ID = "external_id repeated within the file: the later row wins"
_HELD_ADDRESS = "an e-mail address or phone number already belongs to another contact: not stored"
#: Lines listed per warning in the summary (the rejects file lists every one).
_WARNING_LINES = 20


@dataclass(frozen=True, slots=True)
class ImportWarning:
    """Something the import did that may not be what was meant.

    ``rows`` counts the rows it concerns and ``lines`` lists the first of them (line numbers, or row
    numbers for Parquet); both are 0 and empty for a warning about the file's columns.
    """

    message: str
    rows: int = 0
    lines: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did.

    ``accepted == inserted + updated + unchanged`` and
    ``rows_read == accepted + rejected + suppressed``. ``identities_added`` counts channel identities
    made from a contacts file's ``email``/``phone``; ``suppressed`` the rows about forgotten people;
    ``revoked`` the consent revocations written for imported unsubscribes and complaints.
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
    warnings: tuple[ImportWarning, ...] = ()
    suppressed: int = 0
    revoked: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``top_reasons`` as a list of ``{"reason", "rows"}``)."""
        data = asdict(self)
        data["top_reasons"] = [{"reason": r, "rows": n} for r, n in self.top_reasons]
        data["warnings"] = [
            {"warning": w.message, "rows": w.rows, "lines": list(w.lines)} for w in self.warnings
        ]
        return data


class ImportInterrupted(KeyboardInterrupt):
    """The import was interrupted (Ctrl-C): the batches before are committed, the current one is not.

    ``report`` counts what was committed. Importing the same file again resumes: rows already
    imported are left as they are.
    """

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"import interrupted after {report.batches} committed batch(es)")
        self.report = report


def default_rejects_path(path: Path) -> Path:
    """Where rejects go by default: next to the input, ``<name>.rejects.csv``."""
    return path.with_name(f"{path.stem}.rejects.csv")


class _RejectsFile:
    """The rejects CSV (line, field, value, reason, outcome), opened on the first entry only.

    ``outcome`` is ``rejected`` for a row that was not imported and ``imported`` for one imported
    with a warning. Its text cells quote the input back to a person, often in a spreadsheet: one
    that would run as a formula is written with a leading ``'`` (``neutralize_formula``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._writer: Any = None
        self.reasons: Counter[str] = Counter()
        #: summary → [rows, their first lines, the last line counted]
        self.warned: dict[str, list[Any]] = {}

    def write(self, rejects: list[Reject], warnings: Sequence[RowWarning] = ()) -> None:
        if not rejects and not warnings:
            return
        if self._writer is None:
            try:
                self._handle = self.path.open(
                    "w", encoding="utf-8", errors="backslashreplace", newline=""
                )
            except OSError as exc:
                raise InputError(f"cannot write the rejects file: {exc}", file=self.path) from None
            self._writer = csv.writer(self._handle)
            self._writer.writerow(("line", "field", "value", "reason", "outcome"))
        entries = [(r.line, r.field, r.value, r.reason, "rejected") for r in rejects]
        entries += [(w.line, w.field, w.value, w.reason, "imported") for w in warnings]
        entries.sort(key=lambda entry: entry[0])
        self._writer.writerows(
            (line, *map(neutralize_formula, (field, value, reason)), outcome)
            for line, field, value, reason, outcome in entries
        )
        for reject in rejects:
            self.reasons[f"{reject.field}: {reject.reason}" if reject.field else reject.reason] += 1
        for warning in sorted(warnings, key=lambda w: w.line):
            tally = self.warned.setdefault(warning.summary, [0, [], 0])
            if tally[2] != warning.line:  # one row may have several warnings of a kind
                tally[0] += 1
                tally[2] = warning.line
                if len(tally[1]) < _WARNING_LINES:
                    tally[1].append(warning.line)

    def summary(self) -> list[ImportWarning]:
        """The rows' warnings, one per kind, with how many rows and their first lines."""
        return [
            ImportWarning(message, rows, tuple(lines))
            for message, (rows, lines, _) in self.warned.items()
        ]

    @classmethod
    def beside(cls, path: Path, rejects_path: Path | str | None) -> _RejectsFile:
        """The rejects file of the input ``path``: ``rejects_path``, or the default beside it."""
        rejects = cls(Path(rejects_path) if rejects_path else default_rejects_path(path))
        if rejects.path.resolve() == path.resolve():
            raise InputError(
                "the rejects file would overwrite the input: give another --rejects path",
                file=path,
                field="--rejects",
            )
        return rejects

    @property
    def written(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


@functools.cache
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
    rejects = _RejectsFile.beside(path, rejects_path)
    job = _Job.of(schema, path, fmt, clock, on_complaint)
    validators = _Validators(schema, renames, attribute_types)
    tally = _Tally()
    with _cyclic_gc_paused():
        try:
            for chunk in reader.chunks(batch_size):
                good, bad = validators.of(chunk.columns).validate(chunk.lines, chunk.rows)
                bad.extend(chunk.problems)
                warned: list[RowWarning] = []
                if good:
                    _commit_batch(engine, job, chunk.lines, good, bad, warned, tally)
                rejects.write(bad, warned)
                tally.read += len(chunk.rows) + len({p.line for p in chunk.problems})
                tally.rejected += len({reject.line for reject in bad})
                if progress is not None:
                    progress(chunk.done, reader.total)
        except KeyboardInterrupt:
            raise ImportInterrupted(_report(job, tally, rejects, validators, started)) from None
        finally:
            rejects.close()
            if rejects.written:  # it quotes rows: forgetting a person must find them there too
                remember_personal_file(engine, rejects.path, "rejects", now=clock.now())
    return _report(job, tally, rejects, validators, started)


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


@dataclass(frozen=True, slots=True)
class _Job:
    """What every batch of one import shares."""

    kind: ImportKind
    path: Path
    file_format: FileFormat
    clock: Clock
    on_complaint: ComplaintScope
    #: the fields that name a contact by external id, and their positions in a validated row
    references: list[str]
    positions: list[int]
    #: contacts: external id → the line that first gave it; grows over the whole file
    first_lines: dict[str, int]

    @classmethod
    def of(
        cls,
        schema: KindSchema,
        path: Path,
        file_format: FileFormat,
        clock: Clock,
        on_complaint: ComplaintScope,
    ) -> _Job:
        references = [spec.name for spec in schema.fields if spec.contact_ref]
        positions = [schema.index(name) for name in references]
        return cls(schema.kind, path, file_format, clock, on_complaint, references, positions, {})


@dataclass(frozen=True, slots=True)
class _BatchCounts:
    """What one batch wrote, counted once it is committed."""

    accepted: int
    inserted: int
    updated: int
    identities: int
    suppressed: int
    revoked: int


@dataclass(slots=True)
class _Tally:
    """The import's counts so far: what the report says, also when the import is interrupted."""

    read: int = 0
    accepted: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    identities: int = 0
    batches: int = 0
    suppressed: int = 0
    revoked: int = 0

    def add(self, batch: _BatchCounts) -> None:
        """Count a committed batch."""
        self.accepted += batch.accepted
        self.inserted += batch.inserted
        self.updated += batch.updated
        self.identities += batch.identities
        self.suppressed += batch.suppressed
        self.revoked += batch.revoked
        self.batches += 1


def _report(
    job: _Job,
    tally: _Tally,
    rejects: _RejectsFile,
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


def _commit_batch(
    engine: Engine,
    job: _Job,
    lines: Sequence[int],
    good: list[tuple[int, Sequence[Any]]],
    bad: list[Reject],
    warned: list[RowWarning],
    tally: _Tally,
) -> None:
    """Write a batch in one transaction and count it as it commits; a refusal names its lines."""
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            batch = _write_batch(connection, job, good, bad, warned)
            with _interrupts_held():  # a committed batch is always counted
                transaction.commit()
                tally.add(batch)
    except _driver_errors() as exc:
        unit = "row" if job.file_format is FileFormat.PARQUET else "line"
        raise StoreError(
            f"{job.path}: the database refused the batch of {unit}s {lines[0]}–{lines[-1]} "
            f"({_short(exc)}); it was rolled back, the {tally.batches} batch(es) before it "
            "are committed. Fix the cause and import the file again: rows already "
            "imported are left as they are."
        ) from exc


def _write_batch(
    connection: Connection,
    job: _Job,
    good: list[tuple[int, Sequence[Any]]],
    bad: list[Reject],
    warned: list[RowWarning],
) -> _BatchCounts:
    """Write a batch's validated rows in the open transaction; rows refused on the way go to ``bad``.

    Rows about forgotten people leave first, before anything could quote them in the rejects file
    (a repeated id, an unknown contact); an imported unsubscribe or complaint revokes consent in
    this same transaction.
    """
    prepare_connection(connection)
    unsuppressed = _unsuppressed(connection, job.kind, good, job.positions)
    if job.kind is ImportKind.CONTACTS:
        warned += _repeated_ids(unsuppressed, job.first_lines)
    kept, ids = _known_contacts(connection, job, unsuppressed, bad)
    counts = write_rows(
        connection,
        job.kind,
        [row for _, row in kept],
        ids,
        job.clock.now(),
        source=f"import:{job.path.name}",
    )
    kept = _held_elsewhere(connection, job.kind, kept, counts, bad, warned)
    revoked = (
        _revoke(connection, kept, ids, job.on_complaint, job.clock)
        if job.kind is ImportKind.EVENTS
        else 0
    )
    return _BatchCounts(
        accepted=len(kept),
        inserted=counts.inserted,
        updated=counts.updated,
        identities=counts.identities,
        suppressed=len(good) - len(unsuppressed),
        revoked=revoked,
    )


def _suppression_keys(kind: ImportKind, row: Sequence[Any], refs: list[int]) -> list[str]:
    """What the suppression list may know a row's people by: its contact references and, for
    contacts, identities and mentions, the addresses and handles it carries."""
    keys = [external_id_key(row[p]) for p in refs if row[p] is not None]
    if kind is ImportKind.CONTACTS:  # external_id, time_zone, locale, stage, email, phone
        keys.append(external_id_key(row[0]))
        keys += [identity_key(ch, row[i]) for ch, i in (("email", 4), ("sms", 5)) if row[i]]
    elif kind is ImportKind.IDENTITIES:  # contact, channel, address
        keys.append(identity_key(row[1], row[2]))
    elif kind is ImportKind.MENTIONS and row[3]:  # channel, external_id, at, author_handle
        keys.append(identity_key(row[0], row[3]))
    return keys


def _unsuppressed(
    connection: Connection,
    kind: ImportKind,
    good: list[tuple[int, Sequence[Any]]],
    refs: list[int],
) -> list[tuple[int, Sequence[Any]]]:
    """``good`` without the rows about forgotten people (counted by the caller, written nowhere)."""
    suppressions = Suppressions.load(connection)
    if suppressions.empty:
        return good
    keys = [_suppression_keys(kind, row, refs) for _, row in good]
    forgotten = suppressions.suppressed(connection, (key for row in keys for key in row))
    if not forgotten:
        return good
    return [item for item, row in zip(good, keys, strict=True) if forgotten.isdisjoint(row)]


def _revoke(
    connection: Connection,
    good: list[tuple[int, Sequence[Any]]],
    ids: dict[str, int],
    on_complaint: ComplaintScope,
    clock: Clock,
) -> int:
    """Append the consent revocations of a batch's unsubscribes and complaints."""
    # events: contact, type, at, channel, value, source, provider_event_id
    return write_revocations(
        connection,
        [
            revocation
            for _, row in good
            if row[1] in REVOKING_EVENTS  # the other events imply none: no call for each
            for revocation in revocations(
                ids[row[0]], row[1], row[3], source=row[5], at=row[2], on_complaint=on_complaint
            )
        ],
        now=clock.now(),
    )


def _known_contacts(
    connection: Connection, job: _Job, good: list[tuple[int, Sequence[Any]]], bad: list[Reject]
) -> tuple[list[tuple[int, Sequence[Any]]], dict[str, int]]:
    """The rows whose contact references are all in the store, and their contacts' ids.

    A row that names an unknown contact is rejected (``bad``) for each reference it cannot resolve.
    """
    if not job.references:
        return good, {}
    wanted = {row[p] for _, row in good for p in job.positions}
    wanted.discard(None)
    ids = resolve_contacts(connection, wanted)
    if wanted <= ids.keys():
        return good, ids
    kept: list[tuple[int, Sequence[Any]]] = []
    for line, row in good:
        unknown = False
        for position, name in zip(job.positions, job.references, strict=True):
            value = row[position]
            if value is not None and value not in ids:
                bad.append(Reject(line, name, value, _UNKNOWN_CONTACT))
                unknown = True
        if not unknown:
            kept.append((line, row))
    return kept, ids


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C until the block ends: then a batch's commit and its count go together.

    Ctrl-C raises ``KeyboardInterrupt`` only in the main thread under Python's own handler; there,
    the handler is swapped for one that notes the signal, and the interrupt is raised afterwards.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda number, _frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def _repeated_ids(
    good: Sequence[tuple[int, Sequence[Any]]], first_lines: dict[str, int]
) -> list[RowWarning]:
    """Warnings for contacts whose external id an earlier row of the file already gave.

    ``first_lines`` (external id → its first line) grows over the whole file: it holds one entry per
    contact in the file, as the store will.
    """
    warnings: list[RowWarning] = []
    for line, row in good:
        first = first_lines.setdefault(row[0], line)
        if first != line:
            reason = (
                f"external_id also on line {first}: this later row's values win (cells it leaves "
                "empty keep the earlier row's); if they are two people, give each its own id"
            )
            warnings.append(RowWarning(line, "external_id", row[0], reason, _REPEATED_ID))
    return warnings


def _held_elsewhere(
    connection: Connection,
    kind: ImportKind,
    good: list[tuple[int, Sequence[Any]]],
    counts: WriteCounts,
    bad: list[Reject],
    warned: list[RowWarning],
) -> list[tuple[int, Sequence[Any]]]:
    """Report the addresses of ``good`` that another contact holds; return the rows that stay.

    An address belongs to one person, so the write left it with its holder. A contact row stays
    imported with a warning for its ``email`` or ``phone``; an identities row, which is nothing but
    the address, is rejected. Asks the store only when the batch added fewer identities than it gave.
    """
    if kind is ImportKind.CONTACTS:
        given = [
            (line, row[0], field, channel, row[index])
            for line, row in good
            for field, channel, index in _ADDRESS_COLUMNS
            if row[index] is not None
        ]
        if counts.identities == len(given):
            return good
    elif kind is ImportKind.IDENTITIES:
        given = [(line, row[0], "address", row[1], row[2]) for line, row in good]
        if counts.inserted == len(given):
            return good
    else:
        return good
    claims = [(channel, address, contact) for _, contact, _, channel, address in given]
    holders = address_holders(connection, claims)
    refused: set[int] = set()
    for line, contact, field, channel, address in given:
        holder = holders.get((channel, address))
        if holder is None or holder == contact:
            continue
        reason = (
            f"already belongs to contact {holder}: an address belongs to one person, so it is not "
            f"stored for {contact}; if both are one person, give them one external id"
        )
        if kind is ImportKind.CONTACTS:
            warned.append(RowWarning(line, field, address, reason, _HELD_ADDRESS))
        else:
            bad.append(Reject(line, field, address, reason))
            refused.add(line)
    return [(line, row) for line, row in good if line not in refused] if refused else good


#: A contact row's address columns: (field, channel, position in the validated row).
_ADDRESS_COLUMNS = (("email", "email", 4), ("phone", "sms", 5))


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
