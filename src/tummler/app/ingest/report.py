"""What an import reports: its counts, its warnings, and an interruption with the counts so far."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ImportInterrupted", "ImportReport", "ImportWarning"]


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
