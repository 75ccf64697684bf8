"""``export_table``: a table of the store written to a file, whole or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, func, select

from tummler.app.export.chunks import read_chunks
from tummler.app.export.columns import TABLES, Column, columns_for
from tummler.app.export.kinds import DEFAULT_CHUNK_SIZE, ExportFormat, ExportKind, ExportSummary
from tummler.app.export.sinks import open_sink
from tummler.app.personal_files import remember_personal_file
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError

__all__ = ["count_rows", "export_table"]


def count_rows(engine: Engine, *, kind: ExportKind | str) -> int:
    """How many rows an export of ``kind`` will write: the total of a progress bar."""
    table = TABLES[_member(ExportKind, kind, "kind")]
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def export_table(
    engine: Engine,
    *,
    kind: ExportKind | str,
    path: Path,
    export_format: ExportFormat | str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
    overwrite: bool = False,
    escape_formulas: bool = True,
    clock: Clock | None = None,
) -> ExportSummary:
    """Write every row of ``kind`` to ``path`` in ``export_format``, one chunk at a time.

    The file appears only when the export succeeded: rows go to a hidden ``.partial`` file beside
    ``path`` that is renamed at the end, so a failed export never leaves a truncated file that looks
    complete.

    Parameters
    ----------
    engine
        The store.
    kind
        Contacts, decisions or events.
    path
        The file to write. Its directory must exist.
    export_format
        CSV or Parquet.
    chunk_size
        Rows per chunk: bounds memory, and is the Parquet row-group size. The file's content does not
        depend on it.
    on_chunk
        Called with the number of rows of each chunk once it is written (a progress bar).
    overwrite
        Replace ``path`` when it exists; otherwise an existing file is refused before anything is
        read, and again, atomically, when the finished file is put in place.
    escape_formulas
        In CSV, write a text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
        ``@``, tab or carriage return first; not a plain number) with a leading ``'``. ``False``
        writes text as it is. Parquet is never changed.
    clock
        When the file is recorded as written (it may hold personal data: ``personal_files``).

    Returns
    -------
    ExportSummary
        Rows, file, size and columns.

    Raises
    ------
    InputError
        When ``kind`` or ``export_format`` is unknown, ``chunk_size`` is not positive, the
        directory of ``path`` does not exist, or ``path`` exists and ``overwrite`` is false.
    """
    kind = _member(ExportKind, kind, "kind")
    export_format = _member(ExportFormat, export_format, "export_format")
    if chunk_size < 1:
        raise InputError(f"must be a positive number of rows, got {chunk_size}", field="chunk_size")
    path = Path(path)
    _check_target(path, overwrite=overwrite)
    partial = path.with_name(f".{path.name}.partial")
    try:
        columns, rows = _write_partial(
            engine, kind, partial, export_format, chunk_size, on_chunk, escape_formulas
        )
        # recorded before it appears: forgetting a person must find every copy of them
        remember_personal_file(engine, path, "export", now=(clock or SystemClock()).now())
        _publish(partial, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return ExportSummary(
        kind=kind,
        format=export_format,
        path=path,
        rows=rows,
        bytes=path.stat().st_size,
        columns=tuple(column.name for column in columns),
    )


def _check_target(path: Path, *, overwrite: bool) -> None:
    """Refuse a file that cannot be written before anything is read: no directory, or one there."""
    if not path.parent.is_dir():
        raise InputError(
            f"directory {path.parent} does not exist: create it or choose another --out",
            file=path,
        )
    if not overwrite and path.exists():
        raise _exists(path)


def _write_partial(
    engine: Engine,
    kind: ExportKind,
    partial: Path,
    export_format: ExportFormat,
    chunk_size: int,
    on_chunk: Callable[[int], None] | None,
    escape_formulas: bool,
) -> tuple[list[Column], int]:
    """Write every row, chunk by chunk from one snapshot, to the hidden file; its columns and rows."""
    rows = 0
    with _snapshot(engine) as connection:
        columns, layout = columns_for(connection, kind)
        sink = open_sink(partial, export_format, columns, escape_formulas=escape_formulas)
        try:
            for chunk in read_chunks(connection, kind, columns, layout, chunk_size):
                sink.write(chunk)
                written = len(chunk[columns[0].name]) if columns else 0
                rows += written
                if on_chunk is not None:
                    on_chunk(written)
        finally:
            sink.close()
    return columns, rows


def _exists(path: Path) -> InputError:
    return InputError(
        "the file already exists and is not replaced: choose another file with --out, "
        "or pass --force to replace it",
        file=path,
    )


def _publish(partial: Path, path: Path, *, overwrite: bool) -> None:
    """Put the finished file in place; without ``overwrite``, never over a file made meanwhile.

    A hard link fails when its name exists, so the check and the creation are one step. Where the
    file system has no hard links, the check comes just before the rename.
    """
    if overwrite:
        os.replace(partial, path)
        return
    try:
        os.link(partial, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError:
        if path.exists():
            raise _exists(path) from None
        os.replace(partial, path)


_Enum = TypeVar("_Enum", bound=StrEnum)


def _member(enum: type[_Enum], value: _Enum | str, name: str) -> _Enum:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise InputError(f"unknown {name} {value!r}: use one of {choices}", field=name) from None


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction; on PostgreSQL ``REPEATABLE READ``, so every query sees one snapshot.

    The header of a contacts export is found by a first pass; the snapshot keeps the second pass
    from meeting channels or attribute keys the header does not have (SQLite has no such level; the
    chunk code skips what the header lacks).
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection
