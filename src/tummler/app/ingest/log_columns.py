"""A logged-bandit file's table, and its columns checked and encoded at the door.

Reads a log (CSV, gzipped CSV, TSV or Parquet) into an Arrow table, and turns its columns into
NumPy arrays: numbers, whole numbers, timestamps and action names, each refused with an
:class:`~tummler.core.errors.InputError` that names the file, the line (CSV) or row (Parquet) and
the column; and context features encoded once, numeric columns as they are and text columns as
categories, one-hot or hashed with a stable hash (CRC-32).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tummler.core.errors import InputError

__all__ = [
    "FeatureEncoding",
    "FloatArray",
    "IntArray",
    "Locator",
    "action_text",
    "column_array",
    "is_index",
    "numeric_column",
    "read_table",
    "sorted_action_names",
    "timestamp_column",
    "whole_numbers",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Locator:
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


def read_table(path: Path) -> tuple[pa.Table, Locator]:
    """The log as an Arrow table, and the locator its errors name lines or rows with."""
    if not path.is_file():
        raise InputError("file not found; check the path", file=path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"not a readable Parquet file ({exc})", file=path) from exc
        return table, Locator(path, csv=False)
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
    return table, Locator(path, csv=True)


def is_index(name: str) -> bool:
    """A column that pandas wrote for its index: no name, or ``Unnamed: 0``."""
    return name == "" or name.startswith("Unnamed: ")


def column_array(table: pa.Table, name: str) -> pa.Array:
    """The column ``name`` as one Arrow array."""
    return table.column(name).combine_chunks()


def _first_null(column: pa.Array) -> int | None:
    if column.null_count == 0:
        return None
    return int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])


def numeric_column(column: pa.Array, name: str, where: Locator, what: str) -> FloatArray:
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


def whole_numbers(values: FloatArray, name: str, where: Locator, what: str) -> IntArray:
    """``values`` as integers, or an InputError naming the first that is not whole."""
    fractional = values != np.round(values)
    if fractional.any():
        row = int(np.flatnonzero(fractional)[0])
        raise where.error(f"{values[row]} is not a whole number; {what}", row=row, field=name)
    return values.astype(np.int64)


def timestamp_column(column: pa.Array, name: str, where: Locator) -> npt.NDArray[np.datetime64]:
    """The column as ``datetime64[us]`` in UTC, or an InputError naming the first bad value."""
    null = _first_null(column)
    if null is not None:
        raise where.error("missing timestamp; fill it or drop the column", row=null, field=name)
    target = pa.timestamp("us", tz="UTC")
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        converted = pc.cast(column, target)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        seconds = numeric_column(column, name, where, "a timestamp in Unix seconds")
        converted = pa.array(np.round(seconds * 1e6).astype(np.int64), type=target)
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return _parse_timestamps(column, name, where)
    else:
        raise where.error(f"column of type {column.type} is not a timestamp", field=name)
    micros = converted.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(micros, dtype="datetime64[us]")


def _parse_timestamps(column: pa.Array, name: str, where: Locator) -> npt.NDArray[np.datetime64]:
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


@dataclass(frozen=True)
class FeatureEncoding:
    """How text columns become context features.

    Attributes
    ----------
    categorical
        Columns encoded as categories even though they hold numbers.
    max_categories
        A text column with at most this many distinct values is one-hot encoded; above it, hashed.
    hash_buckets
        Columns a hashed text feature gets.
    """

    categorical: frozenset[str]
    max_categories: int
    hash_buckets: int

    def encode(
        self, table: pa.Table, names: list[str], where: Locator
    ) -> tuple[FloatArray, tuple[str, ...]]:
        """Encode feature columns: numbers as they are, text (or ``categorical``) one-hot or hashed."""
        n = table.num_rows
        # First each column's plan, then one allocation filled in place: stacking blocks would copy
        # the whole matrix again.
        plans: list[tuple[list[str], FloatArray | None, IntArray | None]] = []
        for name in names:
            column = column_array(table, name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            kind = column.type
            numeric = (
                pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)
            )
            if numeric and name not in self.categorical:
                plans.append(
                    ([name], numeric_column(column, name, where, "a numeric feature"), None)
                )
                continue
            categories, inverse = _categories(column)
            if len(categories) <= self.max_categories:
                plans.append(([f"{name}={value}" for value in categories], None, inverse))
            else:
                buckets = np.array(
                    [zlib.crc32(value.encode("utf-8")) % self.hash_buckets for value in categories],
                    dtype=np.int64,
                )
                plans.append(
                    ([f"{name}#{b}" for b in range(self.hash_buckets)], None, buckets[inverse])
                )
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


def action_text(column: pa.Array, name: str, where: Locator) -> npt.NDArray[np.str_]:
    """The logged actions as text, or an InputError naming the first missing one."""
    null = _first_null(column)
    if null is not None:
        raise where.error(
            "missing action; every row needs the action it logged", row=null, field=name
        )
    if pa.types.is_floating(column.type):
        values = numeric_column(column, name, where, "an action")
        return whole_numbers(values, name, where, "a numeric action must be a whole number").astype(
            str
        )
    text = np.asarray(column.cast(pa.string()).to_numpy(zero_copy_only=False)).astype(str)
    blank = np.char.str_len(np.char.strip(text)) == 0
    if blank.any():
        raise where.error(
            "missing action; every row needs the action it logged",
            row=int(np.flatnonzero(blank)[0]),
            field=name,
        )
    return text


def sorted_action_names(names: npt.NDArray[np.str_]) -> list[str]:
    """The actions sorted, numerically when every one is a whole number."""
    try:
        return [str(v) for v in sorted(names.tolist(), key=int)]
    except ValueError:
        return sorted(str(v) for v in names.tolist())
