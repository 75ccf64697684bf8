"""The rejects file: every row not imported, and every row imported with a warning, with why."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from tummler.app.csv_cells import neutralize_formula
from tummler.app.ingest.report import ImportWarning
from tummler.app.ingest.validation import Reject, RowWarning
from tummler.core.errors import InputError

__all__ = ["RejectsFile", "default_rejects_path"]

#: Lines listed per warning in the summary (the rejects file lists every one).
_WARNING_LINES = 20


def default_rejects_path(path: Path) -> Path:
    """Where rejects go by default: next to the input, ``<name>.rejects.csv``."""
    return path.with_name(f"{path.stem}.rejects.csv")


class RejectsFile:
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
    def beside(cls, path: Path, rejects_path: Path | str | None) -> RejectsFile:
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
