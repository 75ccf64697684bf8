"""Where chunks are written: a CSV file (formulas neutralized) or a Parquet file (row groups)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from tummler.app.csv_cells import neutralize_formula
from tummler.app.export.chunks import Chunk
from tummler.app.export.columns import BOOLEAN, TEXT, TIMESTAMP, Column, json_text
from tummler.app.export.kinds import ExportFormat

__all__ = ["open_sink"]


class _Sink(Protocol):
    def write(self, chunk: Chunk) -> None: ...

    def close(self) -> None: ...


def open_sink(
    path: Path, export_format: ExportFormat, columns: Sequence[Column], *, escape_formulas: bool
) -> _Sink:
    """A writer of ``columns`` to ``path`` in ``export_format``."""
    if export_format is ExportFormat.PARQUET:
        return _ParquetSink(path, columns)
    return _CSVSink(path, columns, escape_formulas=escape_formulas)


class _CSVSink:
    """RFC 4180 CSV in UTF-8 with a header row; an empty cell is a missing value.

    With ``escape_formulas``, the header and every text or JSON cell go through
    ``neutralize_formula``; number, boolean and time cells are rendered from typed values and
    cannot hold a formula.
    """

    def __init__(self, path: Path, columns: Sequence[Column], *, escape_formulas: bool) -> None:
        self._columns = list(columns)
        self._file = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        text: Callable[[str], str] = neutralize_formula if escape_formulas else str
        self._writer.writerow([text(column.name) for column in self._columns])
        self._cells = [_csv_cell(column, text) for column in self._columns]

    def write(self, chunk: Chunk) -> None:
        cells = [
            [cell(value) for value in chunk[column.name]]
            for column, cell in zip(self._columns, self._cells, strict=True)
        ]
        self._writer.writerows(zip(*cells, strict=True))

    def close(self) -> None:
        self._file.close()


def _csv_cell(column: Column, text: Callable[[str], str]) -> Callable[[Any], str]:
    """How a column's values are written in CSV: chosen once per column, applied per value.

    ``text`` renders the cells that can hold outside text (text and JSON columns).
    """
    if column.is_json:
        return lambda value: "" if value is None else text(json_text(value))
    if column.type == TIMESTAMP:
        return lambda value: "" if value is None else value.isoformat()
    if column.type == BOOLEAN:
        return lambda value: "" if value is None else ("true" if value else "false")
    if column.type == TEXT:
        # Text attributes hold only strings; other text columns come from string columns.
        return lambda value: "" if value is None else text(value)
    return lambda value: "" if value is None else str(value)


class _ParquetSink:
    """One Parquet file with a fixed schema and one row group per chunk."""

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self._columns = list(columns)
        self._schema = pa.schema([pa.field(column.name, column.type) for column in columns])
        self._writer = pq.ParquetWriter(path, self._schema)

    def write(self, chunk: Chunk) -> None:
        arrays = []
        for column in self._columns:
            values = chunk[column.name]
            if column.is_json:
                values = [None if value is None else json_text(value) for value in values]
            arrays.append(pa.array(values, type=column.type))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()
