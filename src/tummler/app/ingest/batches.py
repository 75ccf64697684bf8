"""Writing one batch of an import's accepted rows in one transaction, and counting it as it commits.

Rows about forgotten people leave first; rows naming unknown contacts, repeated external ids and
addresses held by another contact are refused or warned about on the way; an imported unsubscribe
or complaint revokes consent in the same transaction.
"""

from __future__ import annotations

import functools
import signal
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from tummler.app.consent import REVOKING_EVENTS, revocations, write_revocations
from tummler.app.ingest.loader import (
    WriteCounts,
    address_holders,
    prepare_connection,
    resolve_contacts,
    write_rows,
)
from tummler.app.ingest.readers import FileFormat
from tummler.app.ingest.schemas import ImportKind, KindSchema
from tummler.app.ingest.validation import Reject, RowWarning
from tummler.app.suppression import Suppressions, external_id_key, identity_key
from tummler.core.clock import Clock
from tummler.core.errors import StoreError
from tummler.strategy import ComplaintScope

__all__ = ["BatchCounts", "ImportJob", "ImportTally", "commit_batch"]

_UNKNOWN_CONTACT = "unknown contact: no contact has this external id (import contacts first)"
_REPEATED_ID = "external_id repeated within the file: the later row wins"
_HELD_ADDRESS = "an e-mail address or phone number already belongs to another contact: not stored"


@functools.cache
def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


@dataclass(frozen=True, slots=True)
class ImportJob:
    """What every batch of one import shares."""

    kind: ImportKind
    path: Path
    file_format: FileFormat
    clock: Clock
    on_complaint: ComplaintScope
    #: the fields that name a contact by external id, and their positions in a validated row
    references: list[str]
    positions: list[int]
    #: contacts: external id → the line that first gave it; grows over the whole file
    first_lines: dict[str, int]

    @classmethod
    def of(
        cls,
        schema: KindSchema,
        path: Path,
        file_format: FileFormat,
        clock: Clock,
        on_complaint: ComplaintScope,
    ) -> ImportJob:
        references = [spec.name for spec in schema.fields if spec.contact_ref]
        positions = [schema.index(name) for name in references]
        return cls(schema.kind, path, file_format, clock, on_complaint, references, positions, {})


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What one batch wrote, counted once it is committed."""

    accepted: int
    inserted: int
    updated: int
    identities: int
    suppressed: int
    revoked: int


@dataclass(slots=True)
class ImportTally:
    """The import's counts so far: what the report says, also when the import is interrupted."""

    read: int = 0
    accepted: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    identities: int = 0
    batches: int = 0
    suppressed: int = 0
    revoked: int = 0

    def add(self, batch: BatchCounts) -> None:
        """Count a committed batch."""
        self.accepted += batch.accepted
        self.inserted += batch.inserted
        self.updated += batch.updated
        self.identities += batch.identities
        self.suppressed += batch.suppressed
        self.revoked += batch.revoked
        self.batches += 1


def commit_batch(
    engine: Engine,
    job: ImportJob,
    lines: Sequence[int],
    good: list[tuple[int, Sequence[Any]]],
    bad: list[Reject],
    warned: list[RowWarning],
    tally: ImportTally,
) -> None:
    """Write a batch in one transaction and count it as it commits; a refusal names its lines."""
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            batch = _write_batch(connection, job, good, bad, warned)
            with _interrupts_held():  # a committed batch is always counted
                transaction.commit()
                tally.add(batch)
    except _driver_errors() as exc:
        unit = "row" if job.file_format is FileFormat.PARQUET else "line"
        raise StoreError(
            f"{job.path}: the database refused the batch of {unit}s {lines[0]}–{lines[-1]} "
            f"({_short(exc)}); it was rolled back, the {tally.batches} batch(es) before it "
            "are committed. Fix the cause and import the file again: rows already "
            "imported are left as they are."
        ) from exc


def _write_batch(
    connection: Connection,
    job: ImportJob,
    good: list[tuple[int, Sequence[Any]]],
    bad: list[Reject],
    warned: list[RowWarning],
) -> BatchCounts:
    """Write a batch's validated rows in the open transaction; rows refused on the way go to ``bad``.

    Rows about forgotten people leave first, before anything could quote them in the rejects file
    (a repeated id, an unknown contact); an imported unsubscribe or complaint revokes consent in
    this same transaction.
    """
    prepare_connection(connection)
    unsuppressed = _unsuppressed(connection, job.kind, good, job.positions)
    if job.kind is ImportKind.CONTACTS:
        warned += _repeated_ids(unsuppressed, job.first_lines)
    kept, ids = _known_contacts(connection, job, unsuppressed, bad)
    counts = write_rows(
        connection,
        job.kind,
        [row for _, row in kept],
        ids,
        job.clock.now(),
        source=f"import:{job.path.name}",
    )
    kept = _held_elsewhere(connection, job.kind, kept, counts, bad, warned)
    revoked = (
        _revoke(connection, kept, ids, job.on_complaint, job.clock)
        if job.kind is ImportKind.EVENTS
        else 0
    )
    return BatchCounts(
        accepted=len(kept),
        inserted=counts.inserted,
        updated=counts.updated,
        identities=counts.identities,
        suppressed=len(good) - len(unsuppressed),
        revoked=revoked,
    )


def _suppression_keys(kind: ImportKind, row: Sequence[Any], refs: list[int]) -> list[str]:
    """What the suppression list may know a row's people by: its contact references and, for
    contacts, identities and mentions, the addresses and handles it carries."""
    keys = [external_id_key(row[p]) for p in refs if row[p] is not None]
    if kind is ImportKind.CONTACTS:  # external_id, time_zone, locale, stage, email, phone
        keys.append(external_id_key(row[0]))
        keys += [identity_key(ch, row[i]) for ch, i in (("email", 4), ("sms", 5)) if row[i]]
    elif kind is ImportKind.IDENTITIES:  # contact, channel, address
        keys.append(identity_key(row[1], row[2]))
    elif kind is ImportKind.MENTIONS and row[3]:  # channel, external_id, at, author_handle
        keys.append(identity_key(row[0], row[3]))
    return keys


def _unsuppressed(
    connection: Connection,
    kind: ImportKind,
    good: list[tuple[int, Sequence[Any]]],
    refs: list[int],
) -> list[tuple[int, Sequence[Any]]]:
    """``good`` without the rows about forgotten people (counted by the caller, written nowhere)."""
    suppressions = Suppressions.load(connection)
    if suppressions.empty:
        return good
    keys = [_suppression_keys(kind, row, refs) for _, row in good]
    forgotten = suppressions.suppressed(connection, (key for row in keys for key in row))
    if not forgotten:
        return good
    return [item for item, row in zip(good, keys, strict=True) if forgotten.isdisjoint(row)]


def _revoke(
    connection: Connection,
    good: list[tuple[int, Sequence[Any]]],
    ids: dict[str, int],
    on_complaint: ComplaintScope,
    clock: Clock,
) -> int:
    """Append the consent revocations of a batch's unsubscribes and complaints."""
    # events: contact, type, at, channel, value, source, provider_event_id
    return write_revocations(
        connection,
        [
            revocation
            for _, row in good
            if row[1] in REVOKING_EVENTS  # the other events imply none: no call for each
            for revocation in revocations(
                ids[row[0]], row[1], row[3], source=row[5], at=row[2], on_complaint=on_complaint
            )
        ],
        now=clock.now(),
    )


def _known_contacts(
    connection: Connection, job: ImportJob, good: list[tuple[int, Sequence[Any]]], bad: list[Reject]
) -> tuple[list[tuple[int, Sequence[Any]]], dict[str, int]]:
    """The rows whose contact references are all in the store, and their contacts' ids.

    A row that names an unknown contact is rejected (``bad``) for each reference it cannot resolve.
    """
    if not job.references:
        return good, {}
    wanted = {row[p] for _, row in good for p in job.positions}
    wanted.discard(None)
    ids = resolve_contacts(connection, wanted)
    if wanted <= ids.keys():
        return good, ids
    kept: list[tuple[int, Sequence[Any]]] = []
    for line, row in good:
        unknown = False
        for position, name in zip(job.positions, job.references, strict=True):
            value = row[position]
            if value is not None and value not in ids:
                bad.append(Reject(line, name, value, _UNKNOWN_CONTACT))
                unknown = True
        if not unknown:
            kept.append((line, row))
    return kept, ids


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C until the block ends: then a batch's commit and its count go together.

    Ctrl-C raises ``KeyboardInterrupt`` only in the main thread under Python's own handler; there,
    the handler is swapped for one that notes the signal, and the interrupt is raised afterwards.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda number, _frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def _repeated_ids(
    good: Sequence[tuple[int, Sequence[Any]]], first_lines: dict[str, int]
) -> list[RowWarning]:
    """Warnings for contacts whose external id an earlier row of the file already gave.

    ``first_lines`` (external id → its first line) grows over the whole file: it holds one entry per
    contact in the file, as the store will.
    """
    warnings: list[RowWarning] = []
    for line, row in good:
        first = first_lines.setdefault(row[0], line)
        if first != line:
            reason = (
                f"external_id also on line {first}: this later row's values win (cells it leaves "
                "empty keep the earlier row's); if they are two people, give each its own id"
            )
            warnings.append(RowWarning(line, "external_id", row[0], reason, _REPEATED_ID))
    return warnings


def _held_elsewhere(
    connection: Connection,
    kind: ImportKind,
    good: list[tuple[int, Sequence[Any]]],
    counts: WriteCounts,
    bad: list[Reject],
    warned: list[RowWarning],
) -> list[tuple[int, Sequence[Any]]]:
    """Report the addresses of ``good`` that another contact holds; return the rows that stay.

    An address belongs to one person, so the write left it with its holder. A contact row stays
    imported with a warning for its ``email`` or ``phone``; an identities row, which is nothing but
    the address, is rejected. Asks the store only when the batch added fewer identities than it gave.
    """
    if kind is ImportKind.CONTACTS:
        given = [
            (line, row[0], field, channel, row[index])
            for line, row in good
            for field, channel, index in _ADDRESS_COLUMNS
            if row[index] is not None
        ]
        if counts.identities == len(given):
            return good
    elif kind is ImportKind.IDENTITIES:
        given = [(line, row[0], "address", row[1], row[2]) for line, row in good]
        if counts.inserted == len(given):
            return good
    else:
        return good
    claims = [(channel, address, contact) for _, contact, _, channel, address in given]
    holders = address_holders(connection, claims)
    refused: set[int] = set()
    for line, contact, field, channel, address in given:
        holder = holders.get((channel, address))
        if holder is None or holder == contact:
            continue
        reason = (
            f"already belongs to contact {holder}: an address belongs to one person, so it is not "
            f"stored for {contact}; if both are one person, give them one external id"
        )
        if kind is ImportKind.CONTACTS:
            warned.append(RowWarning(line, field, address, reason, _HELD_ADDRESS))
        else:
            bad.append(Reject(line, field, address, reason))
            refused.add(line)
    return [(line, row) for line, row in good if line not in refused] if refused else good


#: A contact row's address columns: (field, channel, position in the validated row).
_ADDRESS_COLUMNS = (("email", "email", 4), ("phone", "sms", 5))


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
