"""Validated, streaming import of contacts, identities, consent, events, edges and mentions.

``import_file`` reads CSV, JSON Lines or Parquet in chunks (a file of any size is never loaded whole),
validates every row, writes rejected rows to a rejects file with the line, field and reason, and commits
accepted rows in atomic batches; importing the same file again changes nothing.

Conventions: a timestamp without a zone is UTC and a plain number is unix seconds; e-mail addresses are
stored in lower case, phone numbers in E.164.
"""

from tummler.app.ingest.readers import FileFormat
from tummler.app.ingest.schemas import ImportKind
from tummler.app.ingest.service import (
    ImportInterrupted,
    ImportReport,
    ImportWarning,
    Progress,
    default_rejects_path,
    import_file,
)

__all__ = [
    "FileFormat",
    "ImportInterrupted",
    "ImportKind",
    "ImportReport",
    "ImportWarning",
    "Progress",
    "default_rejects_path",
    "import_file",
]
