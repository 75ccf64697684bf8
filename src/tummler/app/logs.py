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

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tummler.core.errors import InputError

__all__ = ["ROLES", "LoggedBandit", "experiment_to_log", "read_logged_bandit"]

#: The columns with a meaning; every other column is a context feature.
ROLES: tuple[str, ...] = ("action", "reward", "propensity", "timestamp", "position")
_REQUIRED = ("action", "reward", "propensity")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


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


class _Locator:
    """Turns a 0-based row into the file location an :class:`InputError` names."""

    def __init__(self, path: Path, csv: bool) -> None:
        self.path = path
        self.csv = csv

    def error(self, reason: str, *, row: int | None = None, field: str | None = None) -> InputError:
        if row is None:
            return InputError(reason, file=self.path, field=field)
        if self.csv:  # line 1 is the header
            return InputError(reason, file=self.path, line=row + 2, field=field)
        return InputError(f"row {row + 1}: {reason}", file=self.path, field=field)


def _read_table(path: Path) -> tuple[pa.Table, _Locator]:
    if not path.is_file():
        raise InputError("file not found; check the path", file=path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"not a readable Parquet file ({exc})", file=path) from exc
        return table, _Locator(path, csv=False)
    if ".csv" not in suffixes and ".tsv" not in suffixes:
        raise InputError(
            "unknown file type; a logged-bandit file ends in .csv (optionally .csv.gz) or .parquet",
            file=path,
        )
    parse = pa_csv.ParseOptions(delimiter="\t" if ".tsv" in suffixes else ",")
    try:
        table = pa_csv.read_csv(path, parse_options=parse)
    except pa.ArrowInvalid:
        # A column whose type changes after the first block: read everything as text and let
        # the per-column conversion below name the offending line.
        try:
            header = pa_csv.open_csv(path, parse_options=parse).schema.names
            convert = pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()))
            table = pa_csv.read_csv(path, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            raise InputError(f"not a readable CSV file ({exc})", file=path) from exc
    return table, _Locator(path, csv=True)


def _is_index(name: str) -> bool:
    """A column that pandas wrote for its index: no name, or ``Unnamed: 0``."""
    return name == "" or name.startswith("Unnamed: ")


def _column(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def _first_null(column: pa.Array) -> int | None:
    if column.null_count == 0:
        return None
    return int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])


def _numeric(column: pa.Array, name: str, where: _Locator, what: str) -> FloatArray:
    """The column as float64, or an InputError naming the first row that is not a number."""
    null = _first_null(column)
    if null is not None:
        raise where.error(f"missing value; every row needs {what}", row=null, field=name)
    if pa.types.is_boolean(column.type) or pa.types.is_integer(column.type):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_floating(column.type):
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            values = np.asarray(
                pc.cast(pc.utf8_trim_whitespace(column), pa.float64()).to_numpy(
                    zero_copy_only=False
                ),
                dtype=np.float64,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for row, text in enumerate(column.to_pylist()):
                try:
                    float(text)
                except ValueError:
                    raise where.error(
                        f"{text!r} is not a number; {what} must be numeric", row=row, field=name
                    ) from None
            raise where.error(
                f"not readable as numbers; write {what} as plain decimals", field=name
            ) from None
    else:
        raise where.error(
            f"column of type {column.type} is not numeric; {what} must be numeric", field=name
        )
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise where.error(
            f"{values[row]} is not a finite number; {what} must be finite", row=row, field=name
        )
    return values


def _whole(values: FloatArray, name: str, where: _Locator, what: str) -> IntArray:
    fractional = values != np.round(values)
    if fractional.any():
        row = int(np.flatnonzero(fractional)[0])
        raise where.error(f"{values[row]} is not a whole number; {what}", row=row, field=name)
    return values.astype(np.int64)


def _timestamps(column: pa.Array, name: str, where: _Locator) -> npt.NDArray[np.datetime64]:
    null = _first_null(column)
    if null is not None:
        raise where.error("missing timestamp; fill it or drop the column", row=null, field=name)
    target = pa.timestamp("us", tz="UTC")
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        converted = pc.cast(column, target)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        seconds = _numeric(column, name, where, "a timestamp in Unix seconds")
        converted = pa.array(np.round(seconds * 1e6).astype(np.int64), type=target)
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _parse_timestamps(column, name, where)
    else:
        raise where.error(f"column of type {column.type} is not a timestamp", field=name)
    micros = converted.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(micros, dtype="datetime64[us]")


def _parse_timestamps(column: pa.Array, name: str, where: _Locator) -> npt.NDArray[np.datetime64]:
    """ISO 8601 text to UTC: with an offset (``Z``, ``+02:00``) as written, without one as UTC."""
    zoned = pc.match_substring_regex(pc.utf8_trim_whitespace(column), r"(Z|z|[+-]\d\d(:?\d\d)?)$")
    mask = np.asarray(zoned.to_numpy(zero_copy_only=False), dtype=bool)
    micros = np.empty(len(column), dtype=np.int64)
    try:
        aware = pc.cast(pc.filter(column, zoned), pa.timestamp("us", tz="UTC"))
        naive = pc.cast(pc.filter(column, pc.invert(zoned)), pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for row, text in enumerate(column.to_pylist()):
            kind = pa.timestamp("us", tz="UTC") if mask[row] else pa.timestamp("us")
            try:
                pc.cast(pa.array([text]), kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise where.error(
                    f"{text!r} is not an ISO 8601 timestamp (e.g. 2024-05-01T09:30:00Z)",
                    row=row,
                    field=name,
                ) from None
        raise where.error(
            "not readable as timestamps; write ISO 8601 (2024-05-01T09:30:00Z)", field=name
        ) from None
    micros[mask] = aware.cast(pa.int64()).to_numpy(zero_copy_only=False)
    micros[~mask] = naive.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return micros.astype("datetime64[us]")


def _categories(column: pa.Array) -> tuple[list[str], IntArray]:
    """The sorted distinct values of a text column (empty cells as ``""``) and each row's index."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    encoded = pc.dictionary_encode(pc.fill_null(column, ""))
    values = [str(v) for v in encoded.dictionary.to_pylist()]
    order = sorted(range(len(values)), key=values.__getitem__)
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return [values[i] for i in order], rank[indices]


def _encode(
    table: pa.Table,
    names: list[str],
    where: _Locator,
    *,
    categorical: frozenset[str],
    max_categories: int,
    hash_buckets: int,
) -> tuple[FloatArray, tuple[str, ...]]:
    """Encode feature columns: numbers as they are, text (or ``categorical``) one-hot or hashed."""
    n = table.num_rows
    # First each column's plan, then one allocation filled in place: stacking blocks would copy
    # the whole matrix again.
    plans: list[tuple[list[str], FloatArray | None, IntArray | None]] = []
    for name in names:
        column = _column(table, name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        kind = column.type
        numeric = (
            pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)
        )
        if numeric and name not in categorical:
            plans.append(([name], _numeric(column, name, where, "a numeric feature"), None))
            continue
        categories, inverse = _categories(column)
        if len(categories) <= max_categories:
            plans.append(([f"{name}={value}" for value in categories], None, inverse))
        else:
            buckets = np.array(
                [zlib.crc32(value.encode("utf-8")) % hash_buckets for value in categories],
                dtype=np.int64,
            )
            plans.append(([f"{name}#{b}" for b in range(hash_buckets)], None, buckets[inverse]))
    width = sum(len(columns) for columns, _, _ in plans)
    context = np.zeros((n, width), dtype=np.float64)
    rows = np.arange(n)
    offset = 0
    for columns, values, hot in plans:
        if hot is not None:
            context[rows, offset + hot] = 1.0
        else:
            context[:, offset] = values
        offset += len(columns)
    return context, tuple(name for columns, _, _ in plans for name in columns)


def _action_text(column: pa.Array, name: str, where: _Locator) -> npt.NDArray[np.str_]:
    null = _first_null(column)
    if null is not None:
        raise where.error(
            "missing action; every row needs the action it logged", row=null, field=name
        )
    if pa.types.is_floating(column.type):
        values = _numeric(column, name, where, "an action")
        return _whole(values, name, where, "a numeric action must be a whole number").astype(str)
    text = np.asarray(column.cast(pa.string()).to_numpy(zero_copy_only=False)).astype(str)
    blank = np.char.str_len(np.char.strip(text)) == 0
    if blank.any():
        raise where.error(
            "missing action; every row needs the action it logged",
            row=int(np.flatnonzero(blank)[0]),
            field=name,
        )
    return text


def _sorted_names(names: npt.NDArray[np.str_]) -> list[str]:
    try:
        return [str(v) for v in sorted(names.tolist(), key=int)]
    except ValueError:
        return sorted(str(v) for v in names.tolist())


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
    path: Path,
    key: str,
    *,
    categorical: frozenset[str],
    max_categories: int,
    hash_buckets: int,
) -> tuple[list[str], FloatArray, tuple[str, ...]]:
    table, where = _read_table(path)
    if key not in table.schema.names:
        raise where.error(
            f"no {key!r} column; an action-feature file has one row per action, keyed by {key!r}",
            field=key,
        )
    keys = _action_text(_column(table, key), key, where)
    unique, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        value = unique[np.flatnonzero(counts > 1)[0]]
        row = int(np.flatnonzero(keys == value)[1])
        raise where.error(
            f"action {str(value)!r} appears twice; keep one row per action", row=row, field=key
        )
    features = [n for n in table.schema.names if n != key and not _is_index(n)]
    context, names = _encode(
        table,
        features,
        where,
        categorical=categorical,
        max_categories=max_categories,
        hash_buckets=hash_buckets,
    )
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
    categorical_ = frozenset(categorical)
    ignored = frozenset(ignore)
    path = Path(path)
    roles = _role_columns(columns)
    table, where = _read_table(path)
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

    action_column = roles["action"]
    logged = _action_text(_column(table, action_column), action_column, where)
    action_context: FloatArray | None = None
    action_feature_names: tuple[str, ...] = ()
    if action_features is not None:
        names, action_context, action_feature_names = _read_action_features(
            Path(action_features),
            action_column,
            categorical=categorical_,
            max_categories=max_categories,
            hash_buckets=hash_buckets,
        )
        lookup = {name: i for i, name in enumerate(names)}
        unique, inverse = np.unique(logged, return_inverse=True)
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
    else:
        unique, inverse = np.unique(logged, return_inverse=True)
        names = _sorted_names(unique)
        order = {name: i for i, name in enumerate(names)}
        action = np.array([order[str(u)] for u in unique.tolist()], dtype=np.int64)[inverse]

    reward = _numeric(_column(table, roles["reward"]), roles["reward"], where, "the reward")
    propensity = _numeric(
        _column(table, roles["propensity"]), roles["propensity"], where, "the propensity"
    )
    outside = (propensity <= 0.0) | (propensity > 1.0)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise where.error(
            f"propensity {propensity[row]} is outside (0, 1]; it is the logging policy's "
            f"probability of the logged action (a deterministic policy logs 1)",
            row=row,
            field=roles["propensity"],
        )

    position: IntArray | None = None
    if roles["position"] in present:
        name = roles["position"]
        values = _numeric(_column(table, name), name, where, "the position")
        slots = _whole(values, name, where, "a position is a slot number 1, 2, ...")
        if (slots < 1).any():
            row = int(np.flatnonzero(slots < 1)[0])
            raise where.error(
                f"position {slots[row]} is below 1; positions count slots from 1 (the top)",
                row=row,
                field=name,
            )
        position = slots - 1

    timestamp = None
    if roles["timestamp"] in present:
        timestamp = _timestamps(_column(table, roles["timestamp"]), roles["timestamp"], where)

    unknown = sorted(ignored - present)
    if unknown:
        raise where.error(
            f"ignore names {', '.join(map(repr, unknown))}, not a column of the log",
            field=unknown[0],
        )
    taken = {roles[r] for r in ROLES} | ignored
    features = [n for n in table.schema.names if n not in taken and not _is_index(n)]
    context, feature_names = _encode(
        table,
        features,
        where,
        categorical=categorical_,
        max_categories=max_categories,
        hash_buckets=hash_buckets,
    )
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
    table, _ = _read_table(source)
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
