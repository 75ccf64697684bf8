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

Where each job lives: :mod:`~tummler.app.export.kinds` says what can be exported and where,
:mod:`~tummler.app.export.columns` lays out the columns, :mod:`~tummler.app.export.chunks` reads
the rows, :mod:`~tummler.app.export.sinks` writes them, and :mod:`~tummler.app.export.service`
runs an export.
"""

from tummler.app.export.kinds import (
    DEFAULT_CHUNK_SIZE,
    EXPORTS_DIRECTORY,
    IDENTITY_SEPARATOR,
    ExportFormat,
    ExportKind,
    ExportSummary,
    default_export_path,
)
from tummler.app.export.service import count_rows, export_table

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
