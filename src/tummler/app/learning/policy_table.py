"""A policy given as a probability table: "what if we had sent 80% e-mail?".

The question a team asks most often of its logs is not about a learned model but about a rule of
thumb: a split of the traffic, overall or per segment. ``tummler evaluate --log LOG --policy
TABLE.csv`` weighs such a rule, written as a CSV file:

- per action, the same split for everyone::

      action,probability
      email,0.8
      sms,0.2

- per segment and action, where the columns before ``action`` name context columns of the log and
  each row's values in them name a segment (one column or several: ``plan,region,action,...``)::

      plan,action,probability
      free,email,0.9
      free,sms,0.1
      pro,email,0.5
      pro,sms,0.5

An action a segment does not list gets probability 0. Every segment's probabilities sum to 1 (to
within :data:`SUM_TOLERANCE`, then exactly: decimals rounded by hand are accepted). Every segment
the log holds must be in the table; a segment of the table the log never holds is not used. The
file is checked when it is read and again against the log, and each problem names the file, the
line and the column: an unknown action, a probability that is not a number in [0, 1], a segment
whose probabilities do not sum to 1, a segment or action listed twice, a column that is no context
column of the log, a segment of the log missing from the table.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tummler.app.ingest import LoggedBandit
from tummler.core.errors import InputError

__all__ = ["SUM_TOLERANCE", "ProbabilityTable", "is_probability_table", "read_probability_table"]

#: How far a segment's probabilities may sum from 1 (0.333 + 0.333 + 0.334 is 1; 0.9 is not).
SUM_TOLERANCE = 1e-3
_SUFFIXES = (".csv", ".tsv")
_TRUE, _FALSE = ("true", "yes"), ("false", "no")

FloatArray = npt.NDArray[np.float64]
Segment = tuple[str, ...]
#: A segment as the log's values: text for a category, a number for a numeric column.
_Key = tuple[str | float, ...]
#: A segment column's distinct values in the log, and each round's index into them.
_Values = tuple[list[str | float], npt.NDArray[np.int64]]


@dataclass(frozen=True)
class _Row:
    line: int
    segment: Segment
    action: str
    probability: float


@dataclass(frozen=True)
class ProbabilityTable:
    """A context-free or per-segment split of the traffic over actions, read from a CSV file.

    Attributes
    ----------
    source
        The file, named in every error.
    segment_columns
        The context columns whose values name a segment; empty for one split for everyone.
    rows
        Every row of the file, with its line (line 1 is the header).
    """

    source: str
    segment_columns: tuple[str, ...]
    rows: tuple[_Row, ...]

    def action_dist(self, logs: LoggedBandit) -> FloatArray:
        """The ``(n, k)`` distribution over the actions of ``logs``: each round gets its
        segment's split.

        Raises
        ------
        InputError
            An action the log does not have; a segment column that is not a context column of
            the log (or is hashed), or a segment's value that cannot be one of its values; a
            segment of the log the table lacks.
        """
        index = {name: j for j, name in enumerate(logs.action_names)}
        values = [_segment_values(logs, column, self.source) for column in self.segment_columns]
        splits: dict[_Key, FloatArray] = {}
        for row in self.rows:
            if row.action not in index:
                raise InputError(
                    f"action {row.action!r} is not an action of the log {logs.source}; its "
                    f"actions are {', '.join(logs.action_names[:20])}",
                    file=self.source,
                    line=row.line,
                    field="action",
                )
            split = splits.setdefault(self._key(row, values), np.zeros(logs.n_actions))
            split[index[row.action]] = row.probability
        for split in splits.values():
            split /= split.sum()  # within SUM_TOLERANCE of 1 (read_probability_table): made exact
        if not self.segment_columns:
            return np.repeat(splits[()][None, :], logs.n_rounds, axis=0)
        return self._segmented(logs, values, splits)

    def _key(self, row: _Row, values: list[_Values]) -> _Key:
        """A row's segment as the log's values of the segment columns."""
        key: list[str | float] = []
        for cell, (labels, _), column in zip(
            row.segment, values, self.segment_columns, strict=True
        ):
            value = _canonical(cell, labels)
            if value is None:
                raise InputError(
                    f"{cell!r} is not a number, and the log's column {column!r} holds numbers",
                    file=self.source,
                    line=row.line,
                    field=column,
                )
            key.append(value)
        return tuple(key)

    def _segmented(
        self, logs: LoggedBandit, values: list[_Values], splits: Mapping[_Key, FloatArray]
    ) -> FloatArray:
        """Each round's segment's split: the segment read back from the log's encoded context."""
        codes = np.zeros(logs.n_rounds, dtype=np.int64)
        for labels, code in values:  # one combined code per distinct segment of the log
            codes = codes * len(labels) + code
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        table = np.zeros((first.size, logs.n_actions))
        for s, row in enumerate(first.tolist()):
            segment = tuple(labels[code[row]] for labels, code in values)
            split = splits.get(segment)
            if split is None:
                count = int((inverse.reshape(-1) == s).sum())
                raise InputError(
                    f"the segment {_describe(self.segment_columns, segment)} holds {count:,} "
                    f"round(s) of the log (the first at row {row + 1}) but is missing from the "
                    f"table; add its rows: its actions and their probabilities",
                    file=self.source,
                    field=self.segment_columns[0],
                )
            table[s] = split
        return np.asarray(table[inverse.reshape(-1)], dtype=np.float64)


def is_probability_table(spec: str) -> bool:
    """Whether ``--policy spec`` names a probability table (a ``.csv`` or ``.tsv`` file)."""
    return Path(spec).suffix.lower() in _SUFFIXES


def read_probability_table(path: str | Path) -> ProbabilityTable:
    """Read and check a probability table (see the module docstring for its layout).

    Raises
    ------
    InputError
        Naming the file, line and column: a missing file, no ``action`` or ``probability``
        column, no rows, a probability that is not a number in [0, 1], a segment and action
        listed twice, a segment whose probabilities do not sum to 1.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found; check the path of the probability table", file=path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        segment_columns = _check_header(header, path)
        rows = [
            _row(path, line, header, cells, len(segment_columns))
            for line, cells in enumerate(reader, start=2)
            if any(cell.strip() for cell in cells)
        ]
    if not rows:
        raise InputError(
            "the probability table has no rows; give one row per action (and segment) with its "
            "probability",
            file=path,
        )
    _check_sums(rows, segment_columns, path)
    return ProbabilityTable(str(path), segment_columns, tuple(rows))


def _check_header(header: list[str], path: Path) -> tuple[str, ...]:
    """The segment columns: every column before ``action``, ``probability`` last."""
    if header[-2:] != ["action", "probability"] or len(set(header)) != len(header):
        raise InputError(
            f"the header is {','.join(header) or '(empty)'}; a probability table's columns are "
            f"action,probability, or the segment's context columns first "
            f"(e.g. plan,action,probability)",
            file=path,
            line=1,
        )
    return tuple(header[:-2])


def _row(path: Path, line: int, header: list[str], cells: list[str], n_segment: int) -> _Row:
    if len(cells) != len(header):
        raise InputError(
            f"{len(cells)} cells where the header has {len(header)} ({','.join(header)})",
            file=path,
            line=line,
        )
    cells = [cell.strip() for cell in cells]
    if not cells[-2]:
        raise InputError("missing action", file=path, line=line, field="action")
    try:
        probability = float(cells[-1])
    except ValueError:
        probability = math.nan
    if not 0.0 <= probability <= 1.0:  # NaN fails too
        raise InputError(
            f"probability {cells[-1]!r} is not a number in [0, 1]",
            file=path,
            line=line,
            field="probability",
        )
    return _Row(line, tuple(cells[:n_segment]), cells[-2], probability)


def _check_sums(rows: list[_Row], segment_columns: tuple[str, ...], path: Path) -> None:
    """Each segment lists an action once, and its probabilities sum to 1."""
    totals: dict[Segment, float] = {}
    seen: set[tuple[Segment, str]] = set()
    last: dict[Segment, int] = {}
    for row in rows:
        if (row.segment, row.action) in seen:
            where = f" in segment {_describe(segment_columns, row.segment)}" if row.segment else ""
            raise InputError(
                f"action {row.action!r} is listed twice{where}; keep one row for it",
                file=path,
                line=row.line,
                field="action",
            )
        seen.add((row.segment, row.action))
        totals[row.segment] = totals.get(row.segment, 0.0) + row.probability
        last[row.segment] = row.line
    for segment, total in totals.items():
        if abs(total - 1.0) > SUM_TOLERANCE:
            where = f"of segment {_describe(segment_columns, segment)} " if segment else ""
            raise InputError(
                f"the probabilities {where}sum to {total:.6g}, not 1; a policy takes some action "
                f"(list each action with its share, the shares summing to 1)",
                file=path,
                line=last[segment],
                field="probability",
            )


def _segment_values(logs: LoggedBandit, column: str, source: str) -> _Values:
    """A context column's distinct values in the log, and each round's index into them: read
    back from the encoding (a number as it is, a category from its one-hot columns)."""
    names = logs.feature_names
    if column in names:
        values, code = np.unique(logs.context[:, names.index(column)], return_inverse=True)
        return [float(v) for v in values.tolist()], np.asarray(code.reshape(-1), np.int64)
    prefix = f"{column}="
    hot = [j for j, name in enumerate(names) if name.startswith(prefix)]
    if hot:
        code = np.asarray(logs.context[:, hot].argmax(axis=1), np.int64)
        return [names[j][len(prefix) :] for j in hot], code
    if any(name.startswith(f"{column}#") for name in names):
        reason = (
            "has too many distinct values to be one-hot encoded, so its values were hashed and "
            "cannot be told apart; segment on a column with fewer values"
        )
    else:
        shown = ", ".join(names[:20]) or "none"
        reason = f"is not a context column of the log (its context columns: {shown})"
    raise InputError(f"the segment column {column!r} {reason}", file=source, line=1, field=column)


def _canonical(value: str, labels: list[str | float]) -> str | float | None:
    """A table's cell as the log's value of its column: a number for a numeric column (``true``
    and ``false`` are 1 and 0), the text otherwise; None when it cannot be one."""
    if not labels or isinstance(labels[0], str):
        return value
    lowered = value.lower()
    if lowered in _TRUE or lowered in _FALSE:
        return 1.0 if lowered in _TRUE else 0.0
    try:
        return float(value)
    except ValueError:
        return None


def _describe(columns: tuple[str, ...], segment: tuple[str | float, ...]) -> str:
    """``plan=free, region=north``."""
    return ", ".join(
        f"{c}={v:g}" if isinstance(v, float) else f"{c}={v}"
        for c, v in zip(columns, segment, strict=True)
    )
