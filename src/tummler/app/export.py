"""Export contacts, decisions and events as CSV or Parquet, streaming so that memory stays bounded.

The store is the system of record; an export is how its data leaves for a spreadsheet, a notebook or
another system. Five choices shape this module:

* **Streaming.** The main table is read through one server-side cursor (``yield_per``) inside one
  transaction, so the file is a consistent snapshot; each chunk is written before the next is read (a
  CSV block, or a Parquet row group), so a table of any size never sits in memory.
* **Round trip.** A contacts export is a file that ``tummler import contacts`` accepts again, its
  profile, ``email``, ``phone`` and attribute columns named as the importer names them. Its
  columns: ``external_id``, ``time_zone``, ``locale``, ``stage``; one column per channel with the
  contact's first address there (``email``, ``phone`` for SMS, ``mastodon``...); ``other_identities`` with any further addresses as ``channel:address`` joined by
  ``;``; one ``consent_<channel>`` column with the current consent (``granted``, ``revoked`` or
  empty); then one column per attribute key. Internal ids and bookkeeping times are left out,
  because the importer takes any column it does not know for an attribute. (A value that begins
  like a formula comes back exactly only from a CSV written with ``escape_formulas=False``, or from
  Parquet: see below.)
* **No personal data of forgotten people.** A forgotten contact's row carries only its opaque token,
  ``UTC`` and its stage, whatever the store holds.
* **Safe to open in a spreadsheet.** A CSV text cell that a spreadsheet would run as a formula gets
  a leading ``'`` (see ``tummler.app.csv_cells``); numbers, booleans and times are never changed.
  ``escape_formulas=False`` writes text as it is, for a program rather than a spreadsheet. Parquet
  is typed and written as it is.
* **Nothing is replaced by surprise.** An existing file is replaced only when asked; by default an
  export goes to the workspace's ``exports`` folder, named by kind and time, beside nothing else.

Times are ISO 8601 in UTC in CSV (``2026-03-01T12:00:00+00:00``) and ``timestamp[us, tz=UTC]`` in
Parquet. Events and decisions carry the contact's ``external_id`` beside its internal id.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute

from tummler.app.csv_cells import neutralize_formula
from tummler.app.personal_files import remember_personal_file
from tummler.core.clock import Clock, SystemClock, ensure_utc
from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind
from tummler.store.models import (
    Campaign,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    Decision,
    Event,
    PolicyVersion,
    Variant,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EXPORTS_DIRECTORY",
    "IDENTITY_SEPARATOR",
    "ExportFormat",
    "ExportKind",
    "ExportSummary",
    "count_rows",
    "default_export_path",
    "export_table",
]

#: Rows read and written per chunk: one Parquet row group, one round trip to the database.
DEFAULT_CHUNK_SIZE = 10_000
#: Joins the ``channel:address`` pairs of the ``other_identities`` cell (no address contains it).
IDENTITY_SEPARATOR = ";"
#: The workspace's folder for exports written without ``--out``.
EXPORTS_DIRECTORY = "exports"


class ExportKind(StrEnum):
    """What can be exported."""

    CONTACTS = "contacts"
    DECISIONS = "decisions"
    EVENTS = "events"


class ExportFormat(StrEnum):
    """The file formats an export can be written in; the value is also the file extension."""

    CSV = "csv"
    PARQUET = "parquet"

    @classmethod
    def from_path(cls, path: Path) -> ExportFormat:
        """The format a file name asks for: ``.parquet`` or ``.pq`` is Parquet, anything else CSV."""
        return cls.PARQUET if path.suffix.lower() in {".parquet", ".pq"} else cls.CSV


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote: the one-line summary the CLI prints."""

    kind: ExportKind
    format: ExportFormat
    path: Path
    rows: int
    bytes: int
    columns: tuple[str, ...]


def default_export_path(
    workspace: Path, kind: ExportKind, export_format: ExportFormat, *, now: datetime
) -> Path:
    """``exports/<kind>-<UTC time>.<ext>`` in ``workspace``: ``exports/contacts-20260301T120000Z.csv``.

    Not ``contacts.csv`` beside the workspace's own files, which is the name of the file a brand
    imports its contacts from; a time in the name keeps every export, and one folder holds them.
    The caller makes the folder.
    """
    stamp = ensure_utc(now).strftime("%Y%m%dT%H%M%SZ")
    return workspace / EXPORTS_DIRECTORY / f"{kind.value}-{stamp}.{export_format.value}"


def count_rows(engine: Engine, *, kind: ExportKind | str) -> int:
    """How many rows an export of ``kind`` will write: the total of a progress bar."""
    table = _TABLES[_member(ExportKind, kind, "kind")]
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def export_table(
    engine: Engine,
    *,
    kind: ExportKind | str,
    path: Path,
    export_format: ExportFormat | str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
    overwrite: bool = False,
    escape_formulas: bool = True,
    clock: Clock | None = None,
) -> ExportSummary:
    """Write every row of ``kind`` to ``path`` in ``export_format``, one chunk at a time.

    The file appears only when the export succeeded: rows go to a hidden ``.partial`` file beside
    ``path`` that is renamed at the end, so a failed export never leaves a truncated file that looks
    complete.

    Parameters
    ----------
    engine
        The store.
    kind
        Contacts, decisions or events.
    path
        The file to write. Its directory must exist.
    export_format
        CSV or Parquet.
    chunk_size
        Rows per chunk: bounds memory, and is the Parquet row-group size. The file's content does not
        depend on it.
    on_chunk
        Called with the number of rows of each chunk once it is written (a progress bar).
    overwrite
        Replace ``path`` when it exists; otherwise an existing file is refused before anything is
        read, and again, atomically, when the finished file is put in place.
    escape_formulas
        In CSV, write a text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
        ``@``, tab or carriage return first; not a plain number) with a leading ``'``. ``False``
        writes text as it is. Parquet is never changed.
    clock
        When the file is recorded as written (it may hold personal data: ``personal_files``).

    Returns
    -------
    ExportSummary
        Rows, file, size and columns.

    Raises
    ------
    InputError
        When ``kind`` or ``export_format`` is unknown, ``chunk_size`` is not positive, the
        directory of ``path`` does not exist, or ``path`` exists and ``overwrite`` is false.
    """
    kind = _member(ExportKind, kind, "kind")
    export_format = _member(ExportFormat, export_format, "export_format")
    if chunk_size < 1:
        raise InputError(f"must be a positive number of rows, got {chunk_size}", field="chunk_size")
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(
            f"directory {path.parent} does not exist: create it or choose another --out",
            file=path,
        )
    if not overwrite and path.exists():
        raise _exists(path)
    partial = path.with_name(f".{path.name}.partial")
    rows = 0
    try:
        with _snapshot(engine) as connection:
            columns, layout = _columns_for(connection, kind)
            sink = _open_sink(partial, export_format, columns, escape_formulas=escape_formulas)
            try:
                for chunk in _chunks(connection, kind, columns, layout, chunk_size):
                    sink.write(chunk)
                    written = len(chunk[columns[0].name]) if columns else 0
                    rows += written
                    if on_chunk is not None:
                        on_chunk(written)
            finally:
                sink.close()
        # recorded before it appears: forgetting a person must find every copy of them
        remember_personal_file(engine, path, "export", now=(clock or SystemClock()).now())
        _publish(partial, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return ExportSummary(
        kind=kind,
        format=export_format,
        path=path,
        rows=rows,
        bytes=path.stat().st_size,
        columns=tuple(column.name for column in columns),
    )


def _exists(path: Path) -> InputError:
    return InputError(
        "the file already exists and is not replaced: choose another file with --out, "
        "or pass --force to replace it",
        file=path,
    )


def _publish(partial: Path, path: Path, *, overwrite: bool) -> None:
    """Put the finished file in place; without ``overwrite``, never over a file made meanwhile.

    A hard link fails when its name exists, so the check and the creation are one step. Where the
    file system has no hard links, the check comes just before the rename.
    """
    if overwrite:
        os.replace(partial, path)
        return
    try:
        os.link(partial, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError:
        if path.exists():
            raise _exists(path) from None
        os.replace(partial, path)


_Enum = TypeVar("_Enum", bound=StrEnum)


def _member(enum: type[_Enum], value: _Enum | str, name: str) -> _Enum:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise InputError(f"unknown {name} {value!r}: use one of {choices}", field=name) from None


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction; on PostgreSQL ``REPEATABLE READ``, so every query sees one snapshot.

    The header of a contacts export is found by a first pass; the snapshot keeps the second pass
    from meeting channels or attribute keys the header does not have (SQLite has no such level; the
    chunk code skips what the header lacks).
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


# --- columns ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    """One output column: its name and its Arrow type (which also drives the CSV rendering)."""

    name: str
    type: pa.DataType
    #: JSON documents are written as compact JSON text in both formats.
    is_json: bool = False


_INT = pa.int64()
_FLOAT = pa.float64()
_BOOL = pa.bool_()
_TEXT = pa.string()
_TIME = pa.timestamp("us", tz="UTC")

_TABLES = {
    ExportKind.CONTACTS: Contact.__table__,
    ExportKind.DECISIONS: Decision.__table__,
    ExportKind.EVENTS: Event.__table__,
}

#: The decisions export: (column, expression) in file order.
_DECISION_COLUMNS: tuple[tuple[_Column, InstrumentedAttribute[Any]], ...] = (
    (_Column("id", _INT), Decision.id),
    (_Column("campaign_id", _INT), Decision.campaign_id),
    (_Column("campaign", _TEXT), Campaign.key),
    (_Column("contact_id", _INT), Decision.contact_id),
    (_Column("contact_external_id", _TEXT), Contact.external_id),
    (_Column("lever", _INT), Decision.lever),
    (_Column("channel", _TEXT), Decision.channel),
    (_Column("send_at", _TIME), Decision.send_at),
    (_Column("variant_id", _INT), Decision.variant_id),
    (_Column("variant", _TEXT), Variant.key),
    (_Column("action", _INT), Decision.action),
    (_Column("propensity", _FLOAT), Decision.propensity),
    (_Column("expected_value", _FLOAT), Decision.expected_value),
    (_Column("policy_version_id", _INT), Decision.policy_version_id),
    (_Column("policy", _TEXT), PolicyVersion.name),
    (_Column("policy_version", _INT), PolicyVersion.version),
    (_Column("holdout", _BOOL), Decision.holdout),
    (_Column("reasons", _TEXT, is_json=True), Decision.reasons),
    (_Column("decided_at", _TIME), Decision.decided_at),
)

#: The events export: (column, expression) in file order.
_EVENT_COLUMNS: tuple[tuple[_Column, InstrumentedAttribute[Any]], ...] = (
    (_Column("id", _INT), Event.id),
    (_Column("contact_id", _INT), Event.contact_id),
    (_Column("contact_external_id", _TEXT), Contact.external_id),
    (_Column("decision_id", _INT), Event.decision_id),
    (_Column("channel", _TEXT), Event.channel),
    (_Column("type", _TEXT), Event.type),
    (_Column("value", _FLOAT), Event.value),
    (_Column("at", _TIME), Event.at),
    (_Column("source", _TEXT), Event.source),
    (_Column("provider_event_id", _TEXT), Event.provider_event_id),
)

#: The contacts export's leading columns, named as ``tummler import contacts`` expects them.
_CONTACT_COLUMNS = (
    _Column("external_id", _TEXT),
    _Column("time_zone", _TEXT),
    _Column("locale", _TEXT),
    _Column("stage", _TEXT),
)


def _decisions_query() -> Select[Any]:
    return (
        select(*(expression for _, expression in _DECISION_COLUMNS))
        .join(Contact, Contact.id == Decision.contact_id)
        .join(Campaign, Campaign.id == Decision.campaign_id)
        .outerjoin(Variant, Variant.id == Decision.variant_id)
        .outerjoin(PolicyVersion, PolicyVersion.id == Decision.policy_version_id)
        .order_by(Decision.id)
    )


def _events_query() -> Select[Any]:
    return (
        select(*(expression for _, expression in _EVENT_COLUMNS))
        .join(Contact, Contact.id == Event.contact_id)
        .order_by(Event.id)
    )


#: The importer's name for the column of a channel's address, where it differs from the channel's.
_IDENTITY_COLUMN = {ChannelKind.SMS.value: "phone"}
#: Addresses beyond the first on a channel, as ``channel:address`` joined by ``;``.
_OTHER_IDENTITIES = "other_identities"


@dataclass(frozen=True, slots=True)
class _ContactLayout:
    """The contacts export's variable part, found by a first pass over the store."""

    channels: tuple[str, ...]
    #: (attribute key, its column), in column order
    attributes: tuple[tuple[str, _Column], ...]

    def columns(self) -> list[_Column]:
        return [
            *_CONTACT_COLUMNS,
            *(_Column(_identity_column(channel), _TEXT) for channel in self.channels),
            _Column(_OTHER_IDENTITIES, _TEXT),
            *(_Column(f"consent_{channel}", _TEXT) for channel in self.channels),
            *(column for _, column in self.attributes),
        ]


def _identity_column(channel: str) -> str:
    return _IDENTITY_COLUMN.get(channel, channel)


def _columns_for(
    connection: Connection, kind: ExportKind
) -> tuple[list[_Column], _ContactLayout | None]:
    if kind is ExportKind.DECISIONS:
        return [column for column, _ in _DECISION_COLUMNS], None
    if kind is ExportKind.EVENTS:
        return [column for column, _ in _EVENT_COLUMNS], None
    layout = _contact_layout(connection)
    return layout.columns(), layout


def _contact_layout(connection: Connection) -> _ContactLayout:
    """Channels and attribute columns of the contacts export.

    Every known channel has its columns, so that the same store always exports the same leading
    columns; channels outside the vocabulary that the store holds come after them. Attribute keys
    are collected by streaming the ``attributes`` column alone, so memory grows with the number of
    distinct keys, not of contacts. An attribute whose values are all booleans, all integers or all
    numbers gets that Parquet type; any other is text. An attribute named like a fixed column is
    exported as ``attributes.<key>``.
    """
    seen = set(connection.scalars(select(ChannelIdentity.channel).distinct()))
    seen |= set(connection.scalars(select(ConsentEvent.channel).distinct()))
    known = [channel.value for channel in ChannelKind]
    channels = (*known, *sorted(seen - set(known)))

    kinds: dict[str, set[type]] = {}
    stream = connection.execute(
        select(Contact.attributes)
        .where(Contact.forgotten_at.is_(None))
        .execution_options(yield_per=DEFAULT_CHUNK_SIZE)
    )
    for (attributes,) in stream:
        for key, value in (attributes or {}).items():
            found = kinds.setdefault(key, set())
            if value is not None:
                found.add(type(value))
    reserved = {column.name for column in _ContactLayout(channels, ()).columns()}
    attributes = []
    for key in sorted(kinds):
        name = f"attributes.{key}" if key in reserved else key
        attributes.append((key, _Column(name, _attribute_type(kinds[key]))))
    return _ContactLayout(channels=channels, attributes=tuple(attributes))


def _attribute_type(kinds: set[type]) -> pa.DataType:
    if kinds and kinds <= {bool}:
        return _BOOL
    if kinds and kinds <= {int}:
        return _INT
    if kinds and kinds <= {int, float}:
        return _FLOAT
    return _TEXT


# --- chunks ----------------------------------------------------------------------------------

#: A chunk: column name -> Python values, one per row.
_Chunk = dict[str, list[Any]]


def _chunks(
    connection: Connection,
    kind: ExportKind,
    columns: Sequence[_Column],
    layout: _ContactLayout | None,
    chunk_size: int,
) -> Iterator[_Chunk]:
    if layout is not None:
        yield from _contact_chunks(connection, layout, chunk_size)
        return
    query = _decisions_query() if kind is ExportKind.DECISIONS else _events_query()
    # Options on the statement, not the connection: the side queries of a chunk are not streamed.
    result = connection.execute(query.execution_options(yield_per=chunk_size))
    for rows in result.partitions():
        yield {column.name: [row[i] for row in rows] for i, column in enumerate(columns)}


def _contact_chunks(
    connection: Connection, layout: _ContactLayout, chunk_size: int
) -> Iterator[_Chunk]:
    """Contacts with their identities and current consent, one chunk of contacts at a time.

    Contacts are streamed in id order; the identities and consent events of a chunk are read with one
    range query each on ``contact_id`` (between the chunk's first and last id), which every backend
    answers from an index and which needs no list of ids as parameters.
    """
    columns = layout.columns()
    query = select(
        Contact.id,
        Contact.external_id,
        Contact.time_zone,
        Contact.locale,
        Contact.stage,
        Contact.attributes,
        Contact.forgotten_at,
    ).order_by(Contact.id)
    attribute_columns = dict(layout.attributes)
    result = connection.execute(query.execution_options(yield_per=chunk_size))
    for rows in result.partitions():
        # Columns are filled by position, and only where there is something: the work grows with
        # the identities, consent events and attributes held, not with contacts × channels.
        n = len(rows)
        chunk: _Chunk = {column.name: [None] * n for column in columns}
        position = {row.id: i for i, row in enumerate(rows)}
        forgotten = [row.forgotten_at is not None for row in rows]
        chunk["external_id"] = [row.external_id for row in rows]
        chunk["time_zone"] = [
            "UTC" if forgotten[i] else row.time_zone for i, row in enumerate(rows)
        ]
        chunk["locale"] = [None if forgotten[i] else row.locale for i, row in enumerate(rows)]
        chunk["stage"] = [row.stage for row in rows]

        first, last = rows[0].id, rows[-1].id
        others: dict[int, list[str]] = {}
        for contact_id, channel, address in connection.execute(
            select(ChannelIdentity.contact_id, ChannelIdentity.channel, ChannelIdentity.address)
            .where(ChannelIdentity.contact_id.between(first, last))
            .order_by(ChannelIdentity.contact_id, ChannelIdentity.id)
        ):
            i = position.get(contact_id)
            values = chunk.get(_identity_column(channel))
            # A contact or channel that appeared after this export began is left out.
            if i is None or values is None or forgotten[i]:
                continue
            if values[i] is None:
                values[i] = address
            else:
                others.setdefault(i, []).append(f"{channel}:{address}")
        for i, pairs in others.items():
            chunk[_OTHER_IDENTITIES][i] = IDENTITY_SEPARATOR.join(pairs)
        # Ordered so that the last event seen per (contact, channel) is its current state.
        for contact_id, channel, status in connection.execute(
            select(ConsentEvent.contact_id, ConsentEvent.channel, ConsentEvent.status)
            .where(ConsentEvent.contact_id.between(first, last))
            .order_by(ConsentEvent.contact_id, ConsentEvent.at, ConsentEvent.id)
        ):
            i = position.get(contact_id)
            values = chunk.get(f"consent_{channel}")
            if i is not None and values is not None and not forgotten[i]:
                values[i] = status

        for i, row in enumerate(rows):
            if forgotten[i] or not row.attributes:
                continue
            for key, value in row.attributes.items():
                column = attribute_columns.get(key)
                if column is not None:
                    chunk[column.name][i] = _attribute_value(value, column.type)
        yield chunk


def _attribute_value(value: Any, arrow_type: pa.DataType) -> Any:
    """An attribute as its column holds it: typed when the column is, otherwise text."""
    if value is None or arrow_type != _TEXT or isinstance(value, str):
        return value
    return _json_text(value)


def _json_text(value: Any) -> str:
    """Compact, key-sorted JSON: the same document always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- sinks -----------------------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, chunk: _Chunk) -> None: ...

    def close(self) -> None: ...


def _open_sink(
    path: Path, export_format: ExportFormat, columns: Sequence[_Column], *, escape_formulas: bool
) -> _Sink:
    if export_format is ExportFormat.PARQUET:
        return _ParquetSink(path, columns)
    return _CSVSink(path, columns, escape_formulas=escape_formulas)


class _CSVSink:
    """RFC 4180 CSV in UTF-8 with a header row; an empty cell is a missing value.

    With ``escape_formulas``, the header and every text or JSON cell go through
    ``neutralize_formula``; number, boolean and time cells are rendered from typed values and
    cannot hold a formula.
    """

    def __init__(self, path: Path, columns: Sequence[_Column], *, escape_formulas: bool) -> None:
        self._columns = list(columns)
        self._file = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        text: Callable[[str], str] = neutralize_formula if escape_formulas else str
        self._writer.writerow([text(column.name) for column in self._columns])
        self._cells = [_csv_cell(column, text) for column in self._columns]

    def write(self, chunk: _Chunk) -> None:
        cells = [
            [cell(value) for value in chunk[column.name]]
            for column, cell in zip(self._columns, self._cells, strict=True)
        ]
        self._writer.writerows(zip(*cells, strict=True))

    def close(self) -> None:
        self._file.close()


def _csv_cell(column: _Column, text: Callable[[str], str]) -> Callable[[Any], str]:
    """How a column's values are written in CSV: chosen once per column, applied per value.

    ``text`` renders the cells that can hold outside text (text and JSON columns).
    """
    if column.is_json:
        return lambda value: "" if value is None else text(_json_text(value))
    if column.type == _TIME:
        return lambda value: "" if value is None else value.isoformat()
    if column.type == _BOOL:
        return lambda value: "" if value is None else ("true" if value else "false")
    if column.type == _TEXT:
        # Text attributes hold only strings; other text columns come from string columns.
        return lambda value: "" if value is None else text(value)
    return lambda value: "" if value is None else str(value)


class _ParquetSink:
    """One Parquet file with a fixed schema and one row group per chunk."""

    def __init__(self, path: Path, columns: Sequence[_Column]) -> None:
        self._columns = list(columns)
        self._schema = pa.schema([pa.field(column.name, column.type) for column in columns])
        self._writer = pq.ParquetWriter(path, self._schema)

    def write(self, chunk: _Chunk) -> None:
        arrays = []
        for column in self._columns:
            values = chunk[column.name]
            if column.is_json:
                values = [None if value is None else _json_text(value) for value in values]
            arrays.append(pa.array(values, type=column.type))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()
