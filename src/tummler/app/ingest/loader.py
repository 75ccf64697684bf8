"""Batched, idempotent writes of validated rows, inside the caller's transaction.

Each function takes a SQLAlchemy ``Connection`` whose transaction the caller commits or rolls back, so
a batch is all or nothing. Bulk rows go through the raw driver on the same connection:

* **SQLite**: ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING`` (times as the text
  :func:`tummler.store.types.sqlite_timestamp` writes);
* **PostgreSQL**: ``COPY`` into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT``.

What "the same row" means, per kind (re-importing a file changes nothing):

=============  ================================================  ====================================
kind           key                                               when the key exists
=============  ================================================  ====================================
contacts       ``external_id``                                   attributes merged, time zone, locale
                                                                 and stage replaced when given;
                                                                 ``updated_at`` only on a change
identities     ``(channel, address)``                            kept as it is (first import wins)
consent        ``(contact, channel, status, at, source)``        kept: the log is append-only
events         ``(source, provider_event_id)``                   kept as it is
edges          ``(source, target, kind)``                        kept as it is
mentions       ``(channel, external_id)``                        kept as it is
=============  ================================================  ====================================

Duplicate keys inside one file follow the same rule, row after row: for contacts the later row wins
(within a batch only the final state is written; a contact listed twice with different values in two
different batches is written twice, and a re-import then updates it again); for every other kind the
first row wins and the later ones count as unchanged. Duplicates are not rejects.

An identity whose ``(channel, address)`` already belongs to another contact is left with that contact:
moving an address between people is a merge, not an import. The import reports it (a contact's
``email``/``phone`` as a warning, an identities row as a reject), asking :func:`address_holders` who
holds the addresses a batch could not add.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    insert,
    select,
    text,
)

from tummler.app.contacts import latest_changes, record_changes
from tummler.app.ingest.schemas import ImportKind
from tummler.store.database import one_of
from tummler.store.models import Contact

__all__ = [
    "SQLITE_IMPORT_CACHE_KIB",
    "WriteCounts",
    "address_holders",
    "prepare_connection",
    "resolve_contacts",
    "write_consent",
    "write_rows",
]


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """What one batch did: rows inserted, rows updated, identities added from contact columns."""

    inserted: int = 0
    updated: int = 0
    identities: int = 0


@dataclass(frozen=True, slots=True)
class _Target:
    table: str
    columns: tuple[str, ...]
    #: PostgreSQL types of the staging table's columns.
    types: tuple[str, ...]
    #: ``ON CONFLICT`` target; ``None`` for the consent log, de-duplicated with ``NOT EXISTS``.
    conflict: tuple[str, ...] | None


_TARGETS: dict[ImportKind, _Target] = {
    ImportKind.IDENTITIES: _Target(
        "channel_identities",
        ("contact_id", "channel", "address", "created_at"),
        ("bigint", "text", "text", "timestamptz"),
        ("channel", "address"),
    ),
    ImportKind.CONSENT: _Target(
        "consent_events",
        ("contact_id", "channel", "status", "source", "at", "recorded_at"),
        ("bigint", "text", "text", "text", "timestamptz", "timestamptz"),
        None,
    ),
    ImportKind.EVENTS: _Target(
        "events",
        ("contact_id", "channel", "type", "value", "at", "source", "provider_event_id"),
        ("bigint", "text", "text", "double precision", "timestamptz", "text", "text"),
        ("source", "provider_event_id"),
    ),
    ImportKind.EDGES: _Target(
        "social_edges",
        ("source_contact_id", "target_contact_id", "kind", "weight", "at"),
        ("bigint", "bigint", "text", "double precision", "timestamptz"),
        ("source_contact_id", "target_contact_id", "kind"),
    ),
    ImportKind.MENTIONS: _Target(
        "mentions",
        (
            "channel",
            "external_id",
            "author_handle",
            "text",
            "at",
            "contact_id",
            "sentiment",
            "topic",
        ),
        ("text", "text", "text", "text", "timestamptz", "bigint", "double precision", "text"),
        ("channel", "external_id"),
    ),
}

_CONTACTS: Table = Contact.__table__  # type: ignore[assignment]

_BINARY_TYPES = {
    "bigint": "int8",
    "text": "text",
    "double precision": "float8",
    "timestamptz": "timestamptz",
}

_CONSENT_KEY = ("contact_id", "channel", "status", "source", "at")


def resolve_contacts(connection: Connection, external_ids: Iterable[str]) -> dict[str, int]:
    """Map the contacts' external ids to ``contacts.id`` — one query, whatever the number of ids.

    Ids that are not in the store are simply absent from the result.
    """
    ids = sorted(set(external_ids))
    if not ids:
        return {}
    table = _CONTACTS
    query = select(table.c.external_id, table.c.id).where(
        one_of(table.c.external_id, ids, dialect=connection.dialect.name)
    )
    return {str(row[0]): int(row[1]) for row in connection.execute(query)}


def address_holders(
    connection: Connection, claims: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str], str]:
    """Addresses held by a contact other than the one claiming them, one query.

    ``claims`` are ``(channel, address, external id)``; the result maps each ``(channel, address)``
    that another contact holds to that contact's external id. The comparison runs in the database:
    importing the same file again, every address is found, and none comes back.
    """
    if not claims:
        return {}
    channels, addresses, owners = (list(column) for column in zip(*claims, strict=True))
    if connection.dialect.name == "postgresql":
        source = (
            "unnest(CAST(:channels AS text[]), CAST(:addresses AS text[]), "
            "CAST(:owners AS text[])) AS claim(channel, address, owner)"
        )
        parameters: dict[str, Any] = {
            "channels": channels,
            "addresses": addresses,
            "owners": owners,
        }
    else:
        source = (
            "(SELECT json_extract(value, '$[0]') AS channel, json_extract(value, '$[1]') AS "
            "address, json_extract(value, '$[2]') AS owner FROM json_each(:claims)) AS claim"
        )
        parameters = {"claims": json.dumps([list(claim) for claim in claims])}
    query = text(
        f"SELECT claim.channel, claim.address, contacts.external_id FROM {source} "
        "JOIN channel_identities AS held "
        "ON held.channel = claim.channel AND held.address = claim.address "
        "JOIN contacts ON contacts.id = held.contact_id "
        "WHERE contacts.external_id <> claim.owner"
    )
    rows = connection.execute(query, parameters).tuples()
    return {(channel, address): holder for channel, address, holder in rows}


#: SQLite's page cache for an importing connection, in KiB. The default (2 MiB) is far smaller than
#: the index pages a large import touches; with 64 MiB the inserts run about a third faster.
SQLITE_IMPORT_CACHE_KIB = 65_536


def prepare_connection(connection: Connection) -> None:
    """Tune the connection for bulk writes (SQLite: a larger page cache); harmless to repeat."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")


def write_rows(
    connection: Connection,
    kind: ImportKind,
    rows: Sequence[Sequence[Any]],
    contact_ids: dict[str, int],
    now: datetime,
    *,
    source: str = "import",
) -> WriteCounts:
    """Write validated ``rows`` of ``kind`` (contact references resolved through ``contact_ids``).

    ``source`` is what the contacts' history rows say made the change (``import:<file name>``).
    """
    if not rows:
        return WriteCounts()
    if kind is ImportKind.CONTACTS:
        return _write_contacts(connection, rows, now, source)
    target = _TARGETS[kind]
    # Times go to SQLite as the text the ORM writes, to PostgreSQL as timestamptz.
    stamp = _keep if connection.dialect.name == "postgresql" else _sqlite_text
    records = _records(kind, rows, contact_ids, stamp(now), stamp)
    return WriteCounts(inserted=_bulk_insert(connection, target, records))


def write_consent(
    connection: Connection,
    records: Sequence[tuple[int, str, str, str, datetime]],
    *,
    now: datetime,
) -> int:
    """Append consent events ``(contact id, channel, status, source, at)`` recorded at ``now``.

    The import's rule for the consent log: an event already in the log (same contact, channel,
    status, source and time) is not written again. Returns how many were written.
    """
    if not records:
        return 0
    stamp = _keep if connection.dialect.name == "postgresql" else _sqlite_text
    recorded = stamp(now)
    rows = [
        (c, channel, status, source, stamp(at), recorded)
        for c, channel, status, source, at in records
    ]
    return _bulk_insert(connection, _TARGETS[ImportKind.CONSENT], rows)


def _keep(value: Any) -> Any:
    return value


def _records(
    kind: ImportKind,
    rows: Sequence[Sequence[Any]],
    ids: dict[str, int],
    now: Any,
    stamp: Callable[[Any], Any],
) -> list[tuple[Any, ...]]:
    if kind is ImportKind.EVENTS:
        # contact, type, at, channel, value, source, provider_event_id
        if stamp is _sqlite_text:  # the hot path, with the conversion written out
            return [
                (ids[r[0]], r[3], r[1], r[4], r[2].isoformat(" ", "microseconds")[:26], r[5], r[6])
                for r in rows
            ]
        return [(ids[r[0]], r[3], r[1], r[4], stamp(r[2]), r[5], r[6]) for r in rows]
    if kind is ImportKind.IDENTITIES:
        return [(ids[r[0]], r[1], r[2], now) for r in rows]
    if kind is ImportKind.CONSENT:
        # contact, channel, status, at, source
        return [(ids[r[0]], r[1], r[2], r[4], stamp(r[3]), now) for r in rows]
    if kind is ImportKind.EDGES:
        return [(ids[r[0]], ids[r[1]], r[2], r[3], stamp(r[4])) for r in rows]
    # mentions: channel, external_id, at, author_handle, text, contact, sentiment, topic
    return [
        (r[0], r[1], r[3], r[4], stamp(r[2]), None if r[5] is None else ids[r[5]], r[6], r[7])
        for r in rows
    ]


def _bulk_insert(connection: Connection, target: _Target, records: list[tuple[Any, ...]]) -> int:
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        return _copy_insert(driver, target, records)
    return _sqlite_insert(driver, target, records)


def _sqlite_text(value: datetime | None) -> str | None:
    # The same text as tummler.store.types.sqlite_timestamp; isoformat is C code, strftime is not.
    return None if value is None else value.isoformat(" ", "microseconds")[:26]


def _sqlite_insert(driver: Any, target: _Target, records: list[tuple[Any, ...]]) -> int:
    names = ", ".join(target.columns)
    if target.conflict is not None:
        marks = ", ".join("?" * len(target.columns))
        sql = (
            f"INSERT INTO {target.table} ({names}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(target.conflict)}) DO NOTHING"
        )
    else:
        numbered = ", ".join(f"?{i}" for i in range(1, len(target.columns) + 1))
        same = " AND ".join(f"{name} = ?{target.columns.index(name) + 1}" for name in _CONSENT_KEY)
        sql = (
            f"INSERT INTO {target.table} ({names}) SELECT {numbered} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target.table} WHERE {same})"
        )
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, records)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _copy_insert(driver: Any, target: _Target, records: list[tuple[Any, ...]]) -> int:
    stage = f"tummler_stage_{target.table}"
    names = ", ".join(target.columns)
    definition = ", ".join(
        f"{name} {kind}" for name, kind in zip(target.columns, target.types, strict=True)
    )
    with driver.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ({definition}) ON COMMIT DELETE ROWS"
        )
        # A fresh, empty staging file per batch (ON COMMIT DELETE ROWS alone keeps the old one).
        cursor.execute(f"TRUNCATE {stage}")
        # Binary COPY: the server need not parse text (timestamps above all).
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_BINARY_TYPES[kind] for kind in target.types])
            for record in records:
                copy.write_row(record)
        if target.conflict is not None:
            cursor.execute(
                f"INSERT INTO {target.table} ({names}) SELECT {names} FROM {stage} "
                f"ON CONFLICT ({', '.join(target.conflict)}) DO NOTHING"
            )
        else:
            key = ", ".join(_CONSENT_KEY)
            same = " AND ".join(f"t.{name} = s.{name}" for name in _CONSENT_KEY)
            cursor.execute(
                f"INSERT INTO {target.table} ({names}) SELECT DISTINCT ON ({key}) {names} "
                f"FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM {target.table} t WHERE {same})"
            )
        return int(cursor.rowcount)


# --- contacts ----------------------------------------------------------------------------------------


def _write_contacts(
    connection: Connection, rows: Sequence[Sequence[Any]], now: datetime, source: str
) -> WriteCounts:
    """Upsert contacts; within the batch, a later row for the same external id wins.

    Rows are applied in file order (a later row's attributes merged over the earlier ones) and only
    the batch's final state is compared with the store: a contact counts as updated, and gets a new
    ``updated_at``, only when that final state differs. Counts are per contact, so a contact listed
    twice in one batch counts once (the other row as unchanged).

    The contacts' history (``contact_changes``) gets one row per new contact (its first state) and
    one per contact whose stage or attributes changed (before and after), in the same transaction;
    a change of time zone or locale alone is not history, and an unchanged contact writes nothing,
    so that importing the same file again writes no history either.
    """
    original = _stored_contacts(connection, sorted({row[0] for row in rows}))
    state = {external_id: dict(values) for external_id, values in original.items()}
    inserted, addresses = _apply_rows(state, rows)
    _insert_new(connection, state, now)
    updated = _update_changed(connection, state, original, now)
    _record_history(connection, state, original, now, source)
    identities = 0
    if addresses:
        created = now if connection.dialect.name == "postgresql" else _sqlite_text(now)
        records = [
            (state[ext]["id"], channel, address, created) for ext, channel, address in addresses
        ]
        identities = _bulk_insert(connection, _TARGETS[ImportKind.IDENTITIES], records)
    return WriteCounts(inserted=inserted, updated=updated, identities=identities)


def _stored_contacts(connection: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored state of the contacts ``ids`` names, by external id (absent: not stored yet)."""
    table = _CONTACTS
    query = select(
        table.c.id,
        table.c.external_id,
        table.c.attributes,
        table.c.time_zone,
        table.c.locale,
        table.c.stage,
    ).where(one_of(table.c.external_id, ids, dialect=connection.dialect.name))
    return {
        external_id: {
            "id": contact_id,
            "attributes": dict(attributes or {}),
            "time_zone": time_zone,
            "locale": locale,
            "stage": stage,
            "new": False,
        }
        for contact_id, external_id, attributes, time_zone, locale, stage in connection.execute(
            query
        )
    }


def _apply_rows(
    state: dict[str, dict[str, Any]], rows: Sequence[Sequence[Any]]
) -> tuple[int, list[tuple[str, str, str]]]:
    """Apply ``rows`` in file order to ``state``; returns the new contacts' count and the
    ``(external id, channel, address)`` of their e-mail addresses and phone numbers."""
    inserted = 0
    addresses: list[tuple[str, str, str]] = []
    for external_id, time_zone, locale, stage, email, phone, attributes in rows:
        current = state.get(external_id)
        if current is None:
            state[external_id] = {
                "id": None,
                "attributes": attributes,
                "time_zone": time_zone or "UTC",
                "locale": locale,
                "stage": stage or "prospect",
                "new": True,
            }
            inserted += 1
        else:
            current["attributes"] = {**current["attributes"], **attributes}
            current["time_zone"] = time_zone or current["time_zone"]
            current["locale"] = locale or current["locale"]
            current["stage"] = stage or current["stage"]
        if email is not None:
            addresses.append((external_id, "email", email))
        if phone is not None:
            addresses.append((external_id, "sms", phone))
    return inserted, addresses


def _insert_new(connection: Connection, state: dict[str, dict[str, Any]], now: datetime) -> None:
    """Insert the new contacts of ``state`` and note their ids in it."""
    table = _CONTACTS
    fresh = [
        {
            "external_id": external_id,
            "attributes": values["attributes"],
            "time_zone": values["time_zone"],
            "locale": values["locale"],
            "stage": values["stage"],
            "created_at": now,
            "updated_at": now,
        }
        for external_id, values in state.items()
        if values["new"]
    ]
    if fresh:
        returned = connection.execute(
            insert(table).returning(table.c.id, table.c.external_id), fresh
        )
        for contact_id, external_id in returned:
            state[external_id]["id"] = contact_id


def _update_changed(
    connection: Connection,
    state: dict[str, dict[str, Any]],
    original: dict[str, dict[str, Any]],
    now: datetime,
) -> int:
    """Write the stored contacts whose final state differs from the store's; returns how many."""
    table = _CONTACTS
    changed = [
        {
            "b_id": values["id"],
            "attributes": values["attributes"],
            "time_zone": values["time_zone"],
            "locale": values["locale"],
            "stage": values["stage"],
            "updated_at": now,
        }
        for external_id, values in state.items()
        if not values["new"] and values != original[external_id]
    ]
    if changed:
        connection.execute(
            table.update().where(table.c.id == bindparam("b_id")),
            changed,
        )
    return len(changed)


def _record_history(
    connection: Connection,
    state: dict[str, dict[str, Any]],
    original: dict[str, dict[str, Any]],
    now: datetime,
    source: str,
) -> None:
    """One history row per new contact and per contact whose stage or attributes changed."""
    moved = [
        external_id
        for external_id, values in state.items()
        if values["new"]
        or values["stage"] != original[external_id]["stage"]
        or values["attributes"] != original[external_id]["attributes"]
    ]
    # History stays in time order: a clock behind the recorded changes (a file imported again
    # after a simulation moved stages into the future) records its change at the latest one.
    latest = latest_changes(connection, [state[e]["id"] for e in moved if not state[e]["new"]])
    history = [
        {
            "contact_id": state[external_id]["id"],
            "changed_at": max(now, latest.get(state[external_id]["id"], now)),
            "stage_before": None if state[external_id]["new"] else original[external_id]["stage"],
            "stage": state[external_id]["stage"],
            "attributes": state[external_id]["attributes"],
            "source": source,
        }
        for external_id in moved
    ]
    record_changes(connection, history)
