"""Streaming readers: CSV, JSON Lines and Parquet, read in chunks of rows, never whole.

Every reader yields :class:`RowChunk` objects: the column names, each row's location and values, and the
rows that could not even be read (wrong column count, bytes that are not UTF-8, a line that is not JSON)
as rejects. Locations are **physical line numbers** for CSV and JSON Lines (the header is line 1; a quoted
CSV field that spans lines is located at its first line) and **row numbers** (from 1) for Parquet.

Text files are read in blocks of a few MiB and decoded a block at a time; only a block that is not valid
UTF-8 is decoded line by line, so that the bad lines — and only those — are rejected.

A CSV quote that is never closed makes the following lines one field. A row that spans several lines
is therefore checked again with strict quoting rules (its lines are still in the block being read):
when its quotes do not pair up — the file ends inside the quote, or a later quote "closes" it with
text after it — the row is rejected as an unclosed quote starting on its first line, and every line
it swallowed is rejected too, with that reason, so none is lost without a word.
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

from tummler.app.ingest.fields import MISSING, shown
from tummler.app.ingest.validation import Reject
from tummler.core.errors import InputError

__all__ = ["FileFormat", "RowChunk", "TableReader", "detect_format", "open_reader"]

_BLOCK = 4 << 20
_NOT_UTF8 = "not valid UTF-8: re-save the file as UTF-8"
_BINARY = (
    "not a text file (it holds NUL bytes): export it as CSV, JSON Lines or Parquet, "
    "or pass --format parquet if it is Parquet"
)
_UTF16 = "the file looks like UTF-16 text: re-save it as UTF-8"


class FileFormat(StrEnum):
    """The formats an import reads."""

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
    if header.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(block):
        raise InputError(_UTF16, file=path, line=1)
    if b"\x00" in header:
        raise InputError(_BINARY, file=path)
    return block


def _utf16_without_bom(block: bytes) -> bool:
    """Text in UTF-16 without a byte order mark: every other byte is NUL, the others are not.

    A binary file (an executable, an image, an archive) holds NUL bytes too, but at odd and even
    offsets alike; the header of a UTF-16 file written from plain names has them at one parity only.
    """
    sample = block[: 1 << 12]
    sample = sample[: len(sample) - len(sample) % 2]
    if len(sample) < 4 or b"\x00" not in sample:
        return False
    even, odd = sample[0::2], sample[1::2]
    for zeros, text in ((even, odd), (odd, even)):
        if zeros.count(0) >= 0.9 * len(zeros) and text.count(0) == 0:
            return True
    return False


class _Lines:
    """Decoded physical lines of a binary file; remembers which lines were not valid UTF-8."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.number = 0
        self.bad: set[int] = set()
        #: The blocks handed out last, as [first line number, text, its lines once split]: a row
        #: that spans several lines ends in the newest and starts in it or the one before.
        self._recent: list[list[Any]] = []

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
        first = self.number + 1
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            decoded = list(self._decode(body))
            self._remember([first, None, decoded])
            return iter(decoded)
        self._remember([first, text, None])
        # Universal newlines, as io.StringIO(newline="") splits them: \n, \r and \r\n.
        self.number += text.count("\n") + text.count("\r") - text.count("\r\n")
        if text and text[-1] not in "\r\n":
            self.number += 1
        return io.StringIO(text, newline="")

    def _remember(self, block: list[Any]) -> None:
        self._recent = [*self._recent[-1:], block]

    def raw(self, start: int, end: int) -> list[str] | None:
        """Physical lines ``start`` to ``end`` as read (with their line breaks), while still held.

        Only lines of the last two blocks are held; ``None`` for older ones.
        """
        if not self._recent or start < self._recent[0][0]:
            return None
        found: list[str] = []
        for block in self._recent:
            if block[2] is None:
                block[2] = io.StringIO(block[1], newline="").readlines()
            first, lines = block[0], block[2]
            found += lines[max(start - first, 0) : max(end - first + 1, 0)]
        return found if len(found) == end - start + 1 else None

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
            # One blank line past the end: a blank row normally, but a quote left open at the end
            # of the file takes it in, and the row then ends after the file's last line.
            text = itertools.chain(lines.chained(), ("\n",))
            reader = csv.reader(text, delimiter=self._delimiter)
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
                    if previous_end > start:  # a quoted field ran on over many lines
                        end = min(previous_end, lines.number)
                        detail = f"it grew past the CSV field size limit ({exc})"
                        chunk.problems += self._unclosed(lines, start, end, detail)
                        lines.bad.difference_update(range(start, end + 1))
                    else:
                        chunk.problems.append(Reject(start, "", "", f"unreadable CSV: {exc}"))
                    continue
                start = previous_end + 1
                previous_end = reader.line_num
                if not row:
                    continue  # a blank line
                if previous_end > start:
                    unpaired = self._quotes_unpaired(lines, start, previous_end)
                    if unpaired is not None:
                        end = min(previous_end, lines.number)
                        chunk.problems += self._unclosed(lines, start, end, unpaired)
                        lines.bad.difference_update(range(start, end + 1))
                        continue
                if lines.bad:
                    bad = [n for n in lines.bad if start <= n <= previous_end]
                    lines.bad.difference_update(n for n in list(lines.bad) if n <= previous_end)
                    if bad:
                        chunk.problems.append(
                            Reject(start, "", _raw_shown(self._delimiter.join(row)), _NOT_UTF8)
                        )
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

    def _quotes_unpaired(self, lines: _Lines, start: int, end: int) -> str | None:
        """Why the row on lines ``start``–``end`` is an unclosed quote, or ``None`` if it is not.

        The lenient reader took the lines as one row; read strictly, a quote that was never closed
        ends the file inside the field, and one "closed" by the next quote in the file leaves text
        after that quote. A field that really spans lines reads the same either way.
        """
        if end > lines.number:  # it took in the blank line past the end
            return "the file ends inside it"
        raw = lines.raw(start, end)
        if raw is None:  # pragma: no cover - a field over more than a block (MiBs) of lines
            return None
        try:
            for _ in csv.reader(raw, delimiter=self._delimiter, strict=True):
                pass
        except csv.Error:
            return "a later quote closes it with text right after it"
        return None

    def _unclosed(self, lines: _Lines, start: int, end: int, detail: str) -> list[Reject]:
        """Rejects for an unclosed quote on line ``start`` and for each line it swallowed."""
        raw = lines.raw(start, end) or []
        text = [line.rstrip("\r\n") for line in raw]
        span = f"lines {start}–{end}" if end > start else f"line {start}"
        reason = (
            f"unclosed quote starting on line {start}: the quoted field runs over {span} "
            f"and {detail}; close the quote (a quote inside a quoted field is written "
            "twice) and import the file again"
        )
        problems = [Reject(start, "", _raw_shown(text[0]) if text else "", reason)]
        swallowed = (
            f"swallowed by the unclosed quote starting on line {start}: close that quote and "
            "import the file again"
        )
        for line in range(start + 1, end + 1):
            value = text[line - start] if line - start < len(text) else ""
            if text and not value.strip():
                continue  # a blank line is no row
            problems.append(Reject(line, "", _raw_shown(value), swallowed))
        return problems


def _raw_shown(text: str) -> str:
    """A line as the rejects file shows it: bytes that were not UTF-8 as ``\\xNN``."""
    return shown(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


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
