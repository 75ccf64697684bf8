"""Validated, streaming import of contacts, identities, consent, events, edges and mentions.

``import_file`` reads CSV, JSON Lines or Parquet in chunks (a file of any size is never loaded whole),
validates every row, writes rejected rows to a rejects file with the line, field and reason, and commits
accepted rows in atomic batches; importing the same file again changes nothing.

:func:`read_logged_bandit` reads another tool's decision logs (docs/logged-bandit-format.md) into
arrays for off-policy evaluation and learning; :func:`experiment_to_log` turns a past randomized
experiment into such a log.

Conventions: a timestamp without a zone is UTC and a plain number is unix seconds; e-mail addresses are
stored in lower case, phone numbers in E.164.
"""

from typing import TYPE_CHECKING, Any

from tummler.app.ingest.readers import FileFormat
from tummler.app.ingest.rejects import default_rejects_path
from tummler.app.ingest.report import ImportInterrupted, ImportReport, ImportWarning
from tummler.app.ingest.schemas import ImportKind
from tummler.app.ingest.service import Progress, import_file

if TYPE_CHECKING:
    from tummler.app.ingest.logged_bandit import (
        ROLES,
        LoggedBandit,
        experiment_to_log,
        read_logged_bandit,
    )

#: The logged-bandit reader loads pyarrow's compute and CSV modules (about 40 MB): only on first use,
#: so that importing files does not pay for it.
_LOGGED_BANDIT = frozenset({"ROLES", "LoggedBandit", "experiment_to_log", "read_logged_bandit"})

__all__ = [
    "ROLES",
    "FileFormat",
    "ImportInterrupted",
    "ImportKind",
    "ImportReport",
    "ImportWarning",
    "LoggedBandit",
    "Progress",
    "default_rejects_path",
    "experiment_to_log",
    "import_file",
    "read_logged_bandit",
]


def __getattr__(name: str) -> Any:
    if name in _LOGGED_BANDIT:
        from tummler.app.ingest import logged_bandit

        return getattr(logged_bandit, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
