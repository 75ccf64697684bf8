"""The files tummler wrote that may hold personal data: recorded when written, scrubbed on forget.

Besides the store, tummler writes personal data to files a user asked for: the rejects file of an
import (the rows as they were read), exports, the dry run's outbox (every rendered message with
its address) and the document ``tummler person show --out`` writes. Each writer records the file's
absolute path here (:func:`record_personal_file`); forgetting a person (:mod:`tummler.app.privacy`)
then goes through every recorded file (:func:`scrub_personal_files`):

* a record that *is* the person's (one of its values is wholly one of their identifiers: the row of
  a rejects file with their e-mail, the dry-run line sent to them) is removed;
* a record that only *mentions* them (their handle inside someone else's text) is kept with the
  identifier replaced;
* a JSON document that mentions them (an access-request document) is deleted whole.

Each file is rewritten to a temporary file beside it and moved over the original, so that a crash
leaves the old file or the new one, never half of either. What this cannot reach is said, not
hidden: a file moved or deleted since (or written on another machine) is reported *missing*; a file
of an unknown format is reported *unknown format*; copies the user made, backups, and blocks the
file system keeps after a rewrite are beyond tummler (see ``docs/personal-data.md``).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from tummler.store.models import PersonalFile

__all__ = [
    "FileScrub",
    "Redact",
    "record_personal_file",
    "remember_personal_file",
    "scrub_personal_files",
]

#: Redacts one JSON value: returns it with the person's identifiers replaced by ``whole``.
Redact = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class FileScrub:
    """What forgetting did (or, in a dry run, would do) to one recorded file.

    ``status``: ``scrubbed`` (records removed or redacted), ``deleted`` (a document about the
    person), ``clean`` (nothing of theirs), ``missing`` (not on this machine any more), ``unknown
    format`` or ``failed`` (with ``detail``).
    """

    path: str
    kind: str
    status: str
    removed: int = 0
    redacted: int = 0
    detail: str | None = None


def record_personal_file(connection: Connection, path: Path, kind: str, *, now: datetime) -> None:
    """Remember that ``path`` was written and may hold personal data (``kind``: ``rejects``,
    ``export``, ``dry_run``, ``person_record``); writing the same path again only updates its
    time."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(PersonalFile).values(path=str(path.resolve()), kind=kind, written_at=now)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["path"], set_={"kind": kind, "written_at": now}
        )
    )


def remember_personal_file(engine: Engine, path: Path, kind: str, *, now: datetime) -> None:
    """:func:`record_personal_file` in a transaction of its own, for writers outside one."""
    with engine.begin() as connection:
        record_personal_file(connection, path, kind, now=now)


def scrub_personal_files(
    connection: Connection, redact: Redact, *, whole: str, dry_run: bool = False
) -> list[FileScrub]:
    """Remove or redact one person's records in every recorded file.

    Parameters
    ----------
    connection
        The store, to read the list of files.
    redact
        The person's redaction (:mod:`tummler.app.privacy`): a value it turns into exactly
        ``whole`` was wholly one of their identifiers.
    whole
        What ``redact`` puts in place of an identifier.
    dry_run
        Count what would change, write nothing.
    """
    files = connection.execute(
        select(PersonalFile.path, PersonalFile.kind).order_by(PersonalFile.id)
    ).all()
    scrubbed = [_scrub(Path(path), kind, redact, whole, dry_run) for path, kind in files]
    deleted = [scrub.path for scrub in scrubbed if scrub.status == "deleted"]
    if deleted and not dry_run:  # nothing left to look in
        connection.execute(delete(PersonalFile).where(PersonalFile.path.in_(deleted)))
    return scrubbed


def _scrub(path: Path, kind: str, redact: Redact, whole: str, dry_run: bool) -> FileScrub:
    suffix = path.suffix.lower()
    scrub = _SCRUBBERS.get(suffix)
    if not path.is_file():
        return FileScrub(str(path), kind, "missing")
    if scrub is None:
        return FileScrub(str(path), kind, "unknown format", detail=suffix or "no extension")
    try:
        return scrub(path, kind, redact, whole, dry_run)
    except (OSError, ValueError, csv.Error) as exc:
        return FileScrub(str(path), kind, "failed", detail=f"{type(exc).__name__}: {exc}")


def _is_theirs(before: Any, after: Any, whole: str) -> bool:
    """Whether redaction turned one whole value of a record into ``whole``."""
    if isinstance(before, str):
        return after == whole and before != whole
    if isinstance(before, dict):
        return any(
            _is_theirs(v, a, whole) for v, a in zip(before.values(), after.values(), strict=True)
        )
    if isinstance(before, list):
        return any(_is_theirs(v, a, whole) for v, a in zip(before, after, strict=True))
    return False


class _Tally:
    """Counts of one file's records: removed (theirs) and redacted (mentioning them)."""

    def __init__(self, redact: Redact, whole: str) -> None:
        self.redact, self.whole = redact, whole
        self.removed = self.redacted = 0

    def keep(self, record: Any) -> Any | None:
        """The record to write back: unchanged, redacted, or ``None`` to drop it."""
        after = self.redact(record)
        if _is_theirs(record, after, self.whole):
            self.removed += 1
            return None
        if after != record:
            self.redacted += 1
        return after

    def result(self, path: Path, kind: str) -> FileScrub:
        status = "scrubbed" if self.removed or self.redacted else "clean"
        return FileScrub(str(path), kind, status, self.removed, self.redacted)


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    """Write the new content beside ``path``, then move it over ``path`` in one step."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _csv(path: Path, kind: str, redact: Redact, whole: str, dry_run: bool) -> FileScrub:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    tally = _Tally(redact, whole)
    kept = rows[:1] + [row for row in map(tally.keep, rows[1:]) if row is not None]
    if not dry_run and (tally.removed or tally.redacted):

        def write(target: Path) -> None:
            with target.open("w", encoding="utf-8", newline="") as out:
                csv.writer(out).writerows(kept)

        _replace(path, write)
    return tally.result(path, kind)


def _jsonl(path: Path, kind: str, redact: Redact, whole: str, dry_run: bool) -> FileScrub:
    tally = _Tally(redact, whole)
    kept: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = tally.keep(json.loads(line))
            if record is not None:
                kept.append(json.dumps(record, ensure_ascii=False))
    if not dry_run and (tally.removed or tally.redacted):
        text = "".join(f"{record}\n" for record in kept)

        def write(target: Path) -> None:
            target.write_text(text, encoding="utf-8")

        _replace(path, write)
    return tally.result(path, kind)


def _json(path: Path, kind: str, redact: Redact, whole: str, dry_run: bool) -> FileScrub:
    document = json.loads(path.read_text(encoding="utf-8"))
    if redact(document) == document:
        return FileScrub(str(path), kind, "clean")
    if not dry_run:
        path.unlink()
    return FileScrub(str(path), kind, "deleted", removed=1)


def _parquet(path: Path, kind: str, redact: Redact, whole: str, dry_run: bool) -> FileScrub:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    tally = _Tally(redact, whole)
    rows = [row for row in map(tally.keep, table.to_pylist()) if row is not None]
    if not dry_run and (tally.removed or tally.redacted):
        scrubbed = pa.Table.from_pylist(rows, schema=table.schema)
        _replace(path, lambda target: pq.write_table(scrubbed, target))
    return tally.result(path, kind)


_SCRUBBERS: dict[str, Callable[[Path, str, Redact, str, bool], FileScrub]] = {
    ".csv": _csv,
    ".jsonl": _jsonl,
    ".json": _json,
    ".parquet": _parquet,
}
