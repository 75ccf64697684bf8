"""Streaming readers: CSV, JSON Lines and Parquet, read in chunks of rows, never whole.

Every reader yields :class:`RowChunk` objects: the column names, each row's location and values, and the
rows that could not even be read (wrong column count, bytes that are not UTF-8, a line that is not JSON)
as rejects. Locations are **physical line numbers** for CSV and JSON Lines (the header is line 1; a quoted
CSV field that spans lines is located at its first line) and **row numbers** (from 1) for Parquet.

Text files are read in blocks of a few MiB and decoded a block at a time; only a block that is not valid
UTF-8 is decoded line by line, so that the bad lines — and only those — are rejected.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from tummler.app.ingest.schemas import MISSING, Reject, shown
from tummler.core.errors import InputError

__all__ = ["FileFormat", "RowChunk", "TableReader", "detect_format", "open_reader"]

_BLOCK = 4 << 20
_NOT_UTF8 = "not valid UTF-8: re-save the file as UTF-8"
_BINARY = (
    "not a text file (it holds NUL bytes): export it as CSV, JSON Lines or Parquet, "
    "or pass --format parquet if it is Parquet"
)


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


_EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.CSV,
    ".txt": FileFormat.CSV,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".json": FileFormat.JSONL,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
}


def detect_format(path: Path, forced: str | None = None) -> FileFormat:
    """The file's format: ``forced`` when given, else from the extension.

    Raises
    ------
    InputError
        When ``forced`` is not a known format or the extension says nothing.
    """
    if forced is not None:
        try:
            return FileFormat(forced.lower())
        except ValueError:
            raise InputError(
                f"unknown format {forced!r}: use csv, jsonl or parquet", field="--format"
            ) from None
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format from the extension {path.suffix!r}: name the file "
            ".csv, .jsonl or .parquet, or pass --format csv|jsonl|parquet",
            file=path,
        )
    return found


@dataclass(slots=True)
class RowChunk:
    """Up to ``chunk_rows`` rows: values aligned to ``columns`` (``MISSING`` where a key was absent)."""

    columns: tuple[str, ...]
    lines: list[int] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)
    problems: list[Reject] = field(default_factory=list)
    #: Progress after this chunk, in the reader's unit (bytes for text, rows for Parquet).
    done: int = 0

    @property
    def rows_read(self) -> int:
        """Rows seen in this chunk: readable ones plus those rejected while reading."""
        return len(self.rows) + len({problem.line for problem in self.problems})


class TableReader:
    """A file opened for streaming: its header (when known up front) and its chunks."""

    def __init__(self, path: Path, header: tuple[str, ...], total: int) -> None:
        self.path = path
        self.header = header
        #: Size of the work in the unit of ``RowChunk.done``.
        self.total = total

    def chunks(self, chunk_rows: int) -> Iterator[RowChunk]:  # pragma: no cover - abstract
        raise NotImplementedError


def open_reader(path: Path, file_format: FileFormat) -> TableReader:
    """Open ``path`` for streaming and read its header.

    Raises
    ------
    InputError
        When the file is missing, empty, binary, or has no usable header.
    """
    if not path.is_file():
        raise InputError("no such file", file=path)
    if file_format is FileFormat.CSV:
        return _CSVReader.open(path)
    if file_format is FileFormat.JSONL:
        return _JSONLReader.open(path)
    return _ParquetReader.open(path)


# --- text --------------------------------------------------------------------------------------------


def _first_block(path: Path) -> bytes:
    with path.open("rb") as handle:
        block = handle.read(1 << 16)
    if not block.strip():
        raise InputError("empty file: expected a header line naming the columns", file=path)
    header = block.split(b"\n", 1)[0]
    if header.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        b"\x00" in header and header.count(b"\x00") * 3 >= len(header)
    ):
        raise InputError("the file looks like UTF-16 text: re-save it as UTF-8", file=path, line=1)
    if b"\x00" in header:
        raise InputError(_BINARY, file=path)
    return block


class _Lines:
    """Decoded physical lines of a binary file; remembers which lines were not valid UTF-8."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.number = 0
        self.bad: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for body in self._bodies():
            yield from self._decode(body)

    def chained(self) -> Iterator[str]:
        """The same lines from a C-level iterator: no Python frame per line (for the CSV reader).

        Line numbers of bad lines are recorded when their block is decoded, before any of its lines
        is handed out; ``number`` counts the lines handed out so far, block by block.
        """
        return itertools.chain.from_iterable(map(self._block_lines, self._bodies()))

    def _block_lines(self, body: bytes) -> Iterator[str]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return iter(list(self._decode(body)))
        # Universal newlines, as io.StringIO(newline="") splits them: \n, \r and \r\n.
        self.number += text.count("\n") + text.count("\r") - text.count("\r\n")
        if text and text[-1] not in "\r\n":
            self.number += 1
        return io.StringIO(text, newline="")

    def _bodies(self) -> Iterator[bytes]:
        pending = b""
        first = True
        while True:
            block = self._handle.read(_BLOCK)
            if not block:
                if pending:
                    yield pending
                return
            block = pending + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                pending = block
                continue
            pending = block[cut:]
            body = block[:cut]
            if first:
                first = False
                if body.startswith(b"\xef\xbb\xbf"):
                    body = body[3:]
            yield body

    def _decode(self, body: bytes) -> Iterator[str]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("utf-8", "surrogateescape")
            for line in io.StringIO(text, newline=""):
                self.number += 1
                try:
                    line.encode("utf-8")
                except UnicodeEncodeError:
                    self.bad.add(self.number)
                yield line
            return
        for line in io.StringIO(text, newline=""):
            self.number += 1
            yield line


class _CSVReader(TableReader):
    def __init__(self, path: Path, header: tuple[str, ...], total: int, delimiter: str) -> None:
        super().__init__(path, header, total)
        self._delimiter = delimiter

    @classmethod
    def open(cls, path: Path) -> _CSVReader:
        block = _first_block(path)
        head = block.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf")
        try:
            header_line = head.decode("utf-8")
        except UnicodeDecodeError:
            if b"\x00" in block:
                raise InputError(_BINARY, file=path) from None
            raise InputError(f"the header line is {_NOT_UTF8}", file=path, line=1) from None
        delimiter = max(",;\t|", key=header_line.count)
        if header_line.count(delimiter) == 0:
            delimiter = ","
        header = next(csv.reader([header_line], delimiter=delimiter), [])
        names = tuple(name.strip() for name in header)
        _check_header(path, names)
        return cls(path, names, path.stat().st_size, delimiter)

    def chunks(self, chunk_rows: int) -> Iterator[RowChunk]:
        width = len(self.header)
        with self.path.open("rb") as handle:
            lines = _Lines(handle)
            reader = csv.reader(lines.chained(), delimiter=self._delimiter)
            next(reader)  # the header, read in open()
            chunk = RowChunk(self.header)
            previous_end = reader.line_num
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    start = previous_end + 1
                    previous_end = reader.line_num
                    chunk.problems.append(Reject(start, "", "", f"unreadable CSV: {exc}"))
                    continue
                start = previous_end + 1
                previous_end = reader.line_num
                if not row:
                    continue  # a blank line
                if lines.bad:
                    bad = [n for n in lines.bad if start <= n <= previous_end]
                    lines.bad.difference_update(n for n in list(lines.bad) if n <= previous_end)
                    if bad:
                        value = shown(
                            self._delimiter.join(row)
                            .encode("utf-8", "surrogateescape")
                            .decode("utf-8", "backslashreplace")
                        )
                        chunk.problems.append(Reject(start, "", value, _NOT_UTF8))
                        continue
                if len(row) != width:
                    what = "truncated row?" if len(row) < width else "unquoted delimiter?"
                    chunk.problems.append(
                        Reject(
                            start,
                            "",
                            shown(self._delimiter.join(row)),
                            f"expected {width} columns, found {len(row)} ({what})",
                        )
                    )
                else:
                    chunk.lines.append(start)
                    chunk.rows.append(row)
                if len(chunk.rows) >= chunk_rows:
                    chunk.done = handle.tell()
                    yield chunk
                    chunk = RowChunk(self.header)
            chunk.done = self.total
            yield chunk


class _JSONLReader(TableReader):
    @classmethod
    def open(cls, path: Path) -> _JSONLReader:
        block = _first_block(path)
        for number, raw in enumerate(block.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                first = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise InputError(
                    "not JSON Lines: the first line is not a JSON object (one object per line)",
                    file=path,
                    line=number,
                ) from None
            if not isinstance(first, dict):
                raise InputError(
                    "not JSON Lines: expected one JSON object per line", file=path, line=number
                )
            names = tuple(str(key) for key in first)
            _check_header(path, names)
            return cls(path, names, path.stat().st_size)
        raise InputError("empty file: no JSON object found", file=path)  # pragma: no cover

    def chunks(self, chunk_rows: int) -> Iterator[RowChunk]:
        with self.path.open("rb") as handle:
            lines = _Lines(handle)
            objects: list[dict[str, Any]] = []
            numbers: list[int] = []
            problems: list[Reject] = []
            for text in lines:
                number = lines.number
                if not text.strip():
                    continue
                if number in lines.bad:
                    lines.bad.discard(number)
                    value = text.encode("utf-8", "surrogateescape").decode(
                        "utf-8", "backslashreplace"
                    )
                    problems.append(Reject(number, "", shown(value.strip()), _NOT_UTF8))
                    continue
                try:
                    item = json.loads(text)
                except ValueError as exc:
                    problems.append(Reject(number, "", shown(text.strip()), f"not JSON: {exc}"))
                    continue
                if not isinstance(item, dict):
                    problems.append(Reject(number, "", shown(text.strip()), "not a JSON object"))
                    continue
                objects.append(item)
                numbers.append(number)
                if len(objects) >= chunk_rows:
                    yield self._chunk(objects, numbers, problems, handle.tell())
                    objects, numbers, problems = [], [], []
            yield self._chunk(objects, numbers, problems, self.total)

    def _chunk(
        self,
        objects: list[dict[str, Any]],
        numbers: list[int],
        problems: list[Reject],
        done: int,
    ) -> RowChunk:
        columns: dict[str, None] = dict.fromkeys(self.header)
        for item in objects:
            for key in item:
                columns.setdefault(key)
        names = tuple(columns)
        rows = [[item.get(name, MISSING) for name in names] for item in objects]
        return RowChunk(names, numbers, rows, problems, done)


# --- Parquet -----------------------------------------------------------------------------------------


class _ParquetReader(TableReader):
    def __init__(self, path: Path, header: tuple[str, ...], total: int, handle: Any) -> None:
        super().__init__(path, header, total)
        self._file = handle

    @classmethod
    def open(cls, path: Path) -> _ParquetReader:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if path.stat().st_size == 0:
            raise InputError("empty file: expected a Parquet file", file=path)
        try:
            handle = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"not a Parquet file ({exc})", file=path) from None
        names = tuple(handle.schema_arrow.names)
        _check_header(path, names)
        return cls(path, names, int(handle.metadata.num_rows), handle)

    def chunks(self, chunk_rows: int) -> Iterator[RowChunk]:
        import pyarrow as pa

        number = 0
        try:
            batches = self._file.iter_batches(batch_size=chunk_rows)
            for batch in batches:
                columns = [column.to_pylist() for column in batch.columns]
                rows = list(zip(*columns, strict=True)) if columns else []
                lines = list(range(number + 1, number + 1 + len(rows)))
                number += len(rows)
                yield RowChunk(self.header, lines, rows, [], number)
        except pa.ArrowException as exc:
            raise InputError(
                f"the Parquet file is damaged after row {number}: {exc}", file=self.path
            ) from None
        if number == 0:
            yield RowChunk(self.header, done=self.total)


def _check_header(path: Path, names: tuple[str, ...]) -> None:
    for position, name in enumerate(names, start=1):
        if not name:
            raise InputError(
                f"column {position} of the header has no name: name every column",
                file=path,
                line=1,
            )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                f"column {name!r} appears twice in the header: rename one", file=path, line=1
            )
        seen.add(name)
