"""Read logged-bandit files: any tool's decision logs, in the format of docs/logged-bandit-format.md.

A log is a CSV or Parquet file with one row per logged decision: the columns ``action``, ``reward``
and ``propensity``, optionally ``timestamp`` and ``position``, and every other column a context
feature. An optional action-feature file, keyed by ``action``, describes each action. The reader
checks every value at the door and returns a :class:`LoggedBandit` of NumPy arrays that the pure
modules (``tummler.evaluate``, ``tummler.learn``) take as they are.

Context features are encoded here, once: numeric and boolean columns as they are, text columns as
categories: one-hot when a column has at most ``max_categories`` distinct values, otherwise hashed
into ``hash_buckets`` columns with a stable hash (CRC-32), so a file always encodes the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from tummler.app.ingest.log_columns import (
    FeatureEncoding,
    FloatArray,
    IntArray,
    Locator,
    action_text,
    column_array,
    is_index,
    numeric_column,
    read_table,
    sorted_action_names,
    timestamp_column,
    whole_numbers,
)
from tummler.core.errors import InputError

__all__ = ["ROLES", "LoggedBandit", "experiment_to_log", "read_logged_bandit"]

#: The columns with a meaning; every other column is a context feature.
ROLES: tuple[str, ...] = ("action", "reward", "propensity", "timestamp", "position")
_REQUIRED = ("action", "reward", "propensity")


@dataclass(frozen=True, eq=False)
class LoggedBandit:
    """Logged decisions as arrays, ready for off-policy evaluation and learning.

    Attributes
    ----------
    context
        ``(n, d)`` encoded context features, float.
    action
        ``(n,)`` index of the logged action into ``action_names``.
    reward, propensity
        ``(n,)`` reward and the logging policy's probability of the logged action, in (0, 1].
    feature_names
        ``d`` names of the columns of ``context``: ``col`` for a numeric column, ``col=value`` for
        a one-hot category, ``col#b`` for hash bucket ``b``.
    action_names
        ``k`` action names as text, in the order of the action-feature file when there is one,
        otherwise sorted (numerically when every action is a whole number).
    position
        ``(n,)`` 0-based slot in the slate (the file's position minus 1), or None.
    timestamp
        ``(n,)`` ``datetime64[us]`` in UTC, or None.
    action_context
        ``(k, d_a)`` encoded action features, or None without an action-feature file.
    action_feature_names
        ``d_a`` names of the columns of ``action_context``.
    source
        The file the rounds came from.
    """

    context: FloatArray
    action: IntArray
    reward: FloatArray
    propensity: FloatArray
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]
    position: IntArray | None = None
    timestamp: npt.NDArray[np.datetime64] | None = None
    action_context: FloatArray | None = None
    action_feature_names: tuple[str, ...] = ()
    source: str = ""

    @property
    def n_rounds(self) -> int:
        """Number of logged decisions."""
        return int(self.action.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions ``k``."""
        return len(self.action_names)

    @property
    def n_positions(self) -> int:
        """Number of slate positions (1 without a position column)."""
        return 1 if self.position is None else int(self.position.max()) + 1


def _role_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    mapping = dict(zip(ROLES, ROLES, strict=True))
    for role, column in (columns or {}).items():
        if role not in mapping:
            raise InputError(
                f"columns maps {role!r}, which is not a role; the roles are {', '.join(ROLES)}",
                field=role,
            )
        mapping[role] = column
    return mapping


def _read_action_features(
    path: Path, key: str, encoding: FeatureEncoding
) -> tuple[list[str], FloatArray, tuple[str, ...]]:
    """The action-feature file: its actions in file order and their encoded features."""
    table, where = read_table(path)
    if key not in table.schema.names:
        raise where.error(
            f"no {key!r} column; an action-feature file has one row per action, keyed by {key!r}",
            field=key,
        )
    keys = action_text(column_array(table, key), key, where)
    unique, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        value = unique[np.flatnonzero(counts > 1)[0]]
        row = int(np.flatnonzero(keys == value)[1])
        raise where.error(
            f"action {str(value)!r} appears twice; keep one row per action", row=row, field=key
        )
    features = [n for n in table.schema.names if n != key and not is_index(n)]
    context, names = encoding.encode(table, features, where)
    return [str(k) for k in keys.tolist()], context, names


def read_logged_bandit(
    path: str | Path,
    *,
    action_features: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    categorical: Iterable[str] = (),
    ignore: Iterable[str] = (),
    max_categories: int = 32,
    hash_buckets: int = 16,
) -> LoggedBandit:
    """Read and check a logged-bandit file (CSV or Parquet) and its optional action features.

    Parameters
    ----------
    path
        The log: ``.csv``, ``.csv.gz``, ``.tsv`` or ``.parquet``.
    action_features
        Optional file with one row per action, keyed by the ``action`` column; its other
        columns become ``action_context`` and its row order the order of ``action_names``.
    columns
        Where the log names a role differently, a map from role to column, e.g.
        ``{"action": "item_id", "reward": "click", "propensity": "propensity_score"}`` for the
        Open Bandit Dataset. The action-feature file is keyed by the same column name.
    categorical
        Feature columns to encode as categories even though they hold numbers (a zip code, a
        numeric segment id), in the log or the action-feature file.
    ignore
        Columns of the log to leave out: outcomes other than the reward (they would leak the
        future into the context), identifiers, free text.
    max_categories
        A text column with at most this many distinct values is one-hot encoded; above it, hashed.
    hash_buckets
        Columns a hashed text feature gets.

    Returns
    -------
    LoggedBandit

    Raises
    ------
    InputError
        Naming the file, line (CSV) or row (Parquet) and column: a missing file or column, an empty
        log, a missing or non-numeric reward, a propensity outside (0, 1], a NaN, a position below
        1, an action absent from the action-feature file.
    """
    encoding = _checked_encoding(categorical, ignore, max_categories, hash_buckets)
    ignored = frozenset(ignore)
    path = Path(path)
    roles = _role_columns(columns)
    table, where = read_table(path)
    _check_required(table, roles, where)
    names, action, action_context, action_feature_names = _actions(
        table, roles["action"], where, action_features, encoding
    )
    reward = numeric_column(
        column_array(table, roles["reward"]), roles["reward"], where, "the reward"
    )
    propensity = _propensity(table, roles["propensity"], where)
    position, timestamp = _slate_and_time(table, roles, where)
    context, feature_names = _context(table, roles, ignored, encoding, where)
    return LoggedBandit(
        context=context,
        action=action,
        reward=reward,
        propensity=propensity,
        feature_names=feature_names,
        action_names=tuple(names),
        position=position,
        timestamp=timestamp,
        action_context=action_context,
        action_feature_names=action_feature_names,
        source=str(path),
    )


def _slate_and_time(
    table: pa.Table, roles: Mapping[str, str], where: Locator
) -> tuple[IntArray | None, npt.NDArray[np.datetime64] | None]:
    """The optional position and timestamp columns, checked; None for each the log lacks."""
    present = set(table.schema.names)
    position = _position(table, roles["position"], where) if roles["position"] in present else None
    timestamp = None
    if roles["timestamp"] in present:
        name = roles["timestamp"]
        timestamp = timestamp_column(column_array(table, name), name, where)
    return position, timestamp


def _context(
    table: pa.Table,
    roles: Mapping[str, str],
    ignored: frozenset[str],
    encoding: FeatureEncoding,
    where: Locator,
) -> tuple[FloatArray, tuple[str, ...]]:
    """The encoded context: every column that has no role and is not ignored (which must exist)."""
    unknown = sorted(ignored - set(table.schema.names))
    if unknown:
        raise where.error(
            f"ignore names {', '.join(map(repr, unknown))}, not a column of the log",
            field=unknown[0],
        )
    taken = {roles[r] for r in ROLES} | ignored
    features = [n for n in table.schema.names if n not in taken and not is_index(n)]
    return encoding.encode(table, features, where)


def _checked_encoding(
    categorical: Iterable[str], ignore: Iterable[str], max_categories: int, hash_buckets: int
) -> FeatureEncoding:
    """The reader's options checked at the door, as the context's encoding.

    Raises
    ------
    InputError
        When a bound is not a positive integer, or a list of columns is one string.
    """
    if (
        isinstance(max_categories, bool)
        or not isinstance(max_categories, int)
        or max_categories < 1
    ):
        raise InputError(f"max_categories = {max_categories!r} must be a positive integer")
    if isinstance(hash_buckets, bool) or not isinstance(hash_buckets, int) or hash_buckets < 1:
        raise InputError(f"hash_buckets = {hash_buckets!r} must be a positive integer")
    for option, value in (("categorical", categorical), ("ignore", ignore)):
        if isinstance(value, str):
            raise InputError(
                f"{option} = {value!r} must be a list of column names, not one string",
                field=option,
            )
    return FeatureEncoding(frozenset(categorical), max_categories, hash_buckets)


def _check_required(table: pa.Table, roles: Mapping[str, str], where: Locator) -> None:
    """Refuse a log without the action, reward and propensity columns, or without rows."""
    present = set(table.schema.names)
    for role in _REQUIRED:
        if roles[role] not in present:
            hint = "" if roles[role] == role else f" (the column given for {role!r})"
            raise where.error(
                f"no {roles[role]!r} column{hint}; a logged-bandit file needs the columns "
                f"action, reward and propensity (rename them or pass columns=...)",
                field=roles[role],
            )
    if table.num_rows == 0:
        raise where.error("the log has no rows; it needs at least one logged decision")


def _actions(
    table: pa.Table,
    action_column: str,
    where: Locator,
    action_features: str | Path | None,
    encoding: FeatureEncoding,
) -> tuple[list[str], IntArray, FloatArray | None, tuple[str, ...]]:
    """The action names, each row's action index into them, and the encoded action features.

    With an action-feature file, its rows give the actions and their order, and a logged action
    it lacks is refused; without one, the logged actions sorted (numerically when they are whole
    numbers).
    """
    logged = action_text(column_array(table, action_column), action_column, where)
    unique, inverse = np.unique(logged, return_inverse=True)
    if action_features is None:
        names = sorted_action_names(unique)
        order = {name: i for i, name in enumerate(names)}
        action = np.array([order[str(u)] for u in unique.tolist()], dtype=np.int64)[inverse]
        return names, action, None, ()
    names, action_context, action_feature_names = _read_action_features(
        Path(action_features), action_column, encoding
    )
    lookup = {name: i for i, name in enumerate(names)}
    unique_index = np.array([lookup.get(str(u), -1) for u in unique.tolist()], dtype=np.int64)
    action = unique_index[inverse]
    if (action < 0).any():
        row = int(np.flatnonzero(action < 0)[0])
        raise where.error(
            f"action {str(logged[row])!r} is not in the action-feature file {action_features}; "
            f"add a row for it there",
            row=row,
            field=action_column,
        )
    return names, action, action_context, action_feature_names


def _propensity(table: pa.Table, name: str, where: Locator) -> FloatArray:
    """The logging policy's probabilities of the logged actions, each in (0, 1]."""
    propensity = numeric_column(column_array(table, name), name, where, "the propensity")
    outside = (propensity <= 0.0) | (propensity > 1.0)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise where.error(
            f"propensity {propensity[row]} is outside (0, 1]; it is the logging policy's "
            f"probability of the logged action (a deterministic policy logs 1)",
            row=row,
            field=name,
        )
    return propensity


def _position(table: pa.Table, name: str, where: Locator) -> IntArray:
    """The 0-based slate slots of the file's 1-based positions."""
    values = numeric_column(column_array(table, name), name, where, "the position")
    slots = whole_numbers(values, name, where, "a position is a slot number 1, 2, ...")
    if (slots < 1).any():
        row = int(np.flatnonzero(slots < 1)[0])
        raise where.error(
            f"position {slots[row]} is below 1; positions count slots from 1 (the top)",
            row=row,
            field=name,
        )
    return slots - 1


def experiment_to_log(
    source: str | Path,
    out: str | Path,
    *,
    action: str,
    reward: str,
    outcomes: Iterable[str] = (),
) -> Path:
    """Write a uniformly randomized experiment's table as a logged-bandit CSV.

    A past A/B/n test is a logged bandit whose logging policy chose each arm with the same
    probability: ``action`` names the arm column, ``reward`` the outcome to learn or measure, and
    the propensity of every row is 1 / (number of arms seen). The other outcome columns
    (``outcomes``) are dropped, since the sender could not have known them; every remaining column
    is context.

    Parameters
    ----------
    source
        The experiment's table (CSV or Parquet), one row per person.
    out
        The logged-bandit CSV to write (its folder is made if needed).
    action, reward
        The arm column and the reward column (numeric or boolean).
    outcomes
        Further outcome columns to leave out of the context.

    Raises
    ------
    InputError
        When a named column is missing or the reward is not numeric.
    """
    source = Path(source)
    table, _ = read_table(source)
    dropped = {action, reward, *outcomes}
    missing = sorted(dropped - set(table.schema.names))
    if missing:
        raise InputError(
            f"no column {missing[0]!r}; the file has {', '.join(table.schema.names)}", file=source
        )
    try:
        rewards = table.column(reward).cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(
            f"reward column must be numeric ({exc})", file=source, field=reward
        ) from exc
    arms = pc.count_distinct(table.column(action)).as_py()
    converted = pa.table(
        {
            "action": table.column(action).cast(pa.string()),
            "reward": rewards,
            "propensity": pa.array(np.full(table.num_rows, 1.0 / max(arms, 1))),
            **{name: table.column(name) for name in table.schema.names if name not in dropped},
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pa_csv.write_csv(converted, out)
    return out
