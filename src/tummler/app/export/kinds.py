"""What can be exported, in which formats, and where an export goes by default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from tummler.core.clock import ensure_utc

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EXPORTS_DIRECTORY",
    "IDENTITY_SEPARATOR",
    "ExportFormat",
    "ExportKind",
    "ExportSummary",
    "default_export_path",
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
