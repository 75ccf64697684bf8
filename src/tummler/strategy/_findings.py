"""What a check reports: a finding with its severity, a stable code, a message and where it is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Finding", "Severity", "duplicates", "has_errors"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or note) in the strategy or a campaign file.

    ``code`` is stable (tests and scripts match on it); ``message`` says what is wrong and what to do;
    ``line`` and ``column`` are 1-based, ``None`` when the finding is about the file as a whole.
    """

    severity: Severity
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def location(self) -> str:
        """``file:line:column`` as editors and terminals link it."""
        parts = [self.file or "<strategy>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.value} [{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


def has_errors(findings: Iterable[Finding]) -> bool:
    """Whether any finding is an error (``tummler strategy check`` then exits non-zero)."""
    return any(f.severity is Severity.ERROR for f in findings)


def duplicates(ids: Iterable[str]) -> list[str]:
    """The ids used more than once (each once, in order of first use): a ``duplicate-id`` finding."""
    return [key for key, count in Counter(ids).items() if count > 1]
