"""Contacts over time: move many contacts' stages at once, and read contacts as they were.

``contacts`` holds each person's state now; ``contact_changes``
(:class:`~tummler.store.models.ContactChange`) holds every change of a stage or of the attributes,
append-only. Three things use it:

* :func:`set_stages` moves the stages of many contacts in one transaction and writes one history
  row per contact whose stage changed (the simulation's rounds, a CRM sync, the API);
* :func:`contacts_as_of` gives contacts with their stage and attributes as of a time, so that
  learning reads the features a decision was made on, not the ones it may have caused;
* :func:`stages_as_of` gives only the stages, for the movements between stages that the report
  counts over a campaign.

The state as of ``T`` is the latest history row at or before ``T`` (ties: the latest written). When
no row predates ``T``, the earliest row after it tells the stage (its ``stage_before``, or its
stage when it is the contact's first row) and its attributes are the earliest known; a contact
without any history row (made before there was a history, by hand) is read as it is now.
"""

from __future__ import annotations

import functools
import json
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    func,
    insert,
    select,
)

from tummler.core.errors import InputError, NotFoundError
from tummler.core.vocabulary import Stage
from tummler.store.database import one_of
from tummler.store.models import Contact, ContactChange
from tummler.store.types import sqlite_timestamp

__all__ = [
    "SOURCE_MAX_LENGTH",
    "ContactAsOf",
    "StageUpdate",
    "contacts_as_of",
    "latest_changes",
    "record_changes",
    "set_stages",
    "stages_as_of",
]

#: The longest ``source`` a history row holds (longer ones are cut).
SOURCE_MAX_LENGTH = 255

_CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
_CHANGES: Table = ContactChange.__table__  # type: ignore[assignment]
_STAGES = frozenset(stage.value for stage in Stage)
#: Contacts per read query: bounded parameter lists on every backend.
_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class StageUpdate:
    """What :func:`set_stages` did.

    Attributes
    ----------
    requested
        Contacts given.
    changed
        Contacts whose stage moved: each got a new stage, a new ``updated_at`` and a history row.
    unchanged
        Contacts already at the stage given: nothing was written for them.
    """

    requested: int
    changed: int
    unchanged: int


class ContactAsOf(NamedTuple):
    """A contact as it was at a time: the row shape planning reads contexts from."""

    id: int
    external_id: str
    locale: str | None
    time_zone: str
    stage: str
    attributes: dict[str, Any]


def _check_time(at: datetime, field: str) -> datetime:
    if not isinstance(at, datetime):
        raise InputError(f"give a datetime, got {type(at).__name__}", field=field)
    if at.tzinfo is None:
        raise InputError(
            f"{at.isoformat()} has no time zone: give an aware time (UTC)", field=field
        )
    return at.astimezone(UTC)


def _check_source(source: str) -> str:
    if not isinstance(source, str) or not source.strip():
        raise InputError(
            "say what made the change, e.g. 'simulation' or 'api' (a non-empty text)",
            field="source",
        )
    return source[:SOURCE_MAX_LENGTH]


def _resolve(connection: Connection, changes: Mapping[Any, Any]) -> tuple[list[int], list[str]]:
    """Contact ids and stage values from ``changes``; checks every key and stage first."""
    by_id: dict[int, str] = {}
    by_external: dict[str, str] = {}
    for key, stage in changes.items():
        value = str(stage.value if isinstance(stage, Stage) else stage)
        if value not in _STAGES:
            raise InputError(
                f"contact {key!r}: {stage!r} is not a stage; use one of "
                f"{', '.join(sorted(_STAGES))}",
                field="changes",
            )
        # numpy's integers and texts are welcome (a simulation's arrays), as plain int and str
        if isinstance(key, str):
            by_external[str(key)] = value
        elif isinstance(key, numbers.Integral) and not isinstance(key, bool | np.bool_):
            by_id[int(key)] = value
        else:
            raise InputError(
                f"contact {key!r}: give a contact id (int) or an external id (str)",
                field="changes",
            )
    dialect = connection.dialect.name
    if by_external:
        names = sorted(by_external)
        found = {
            str(external_id): int(contact_id)
            for external_id, contact_id in connection.execute(
                select(_CONTACTS.c.external_id, _CONTACTS.c.id).where(
                    one_of(_CONTACTS.c.external_id, names, dialect=dialect)
                )
            )
        }
        missing = [name for name in names if name not in found]
        if missing:
            raise NotFoundError(
                f"{len(missing)} external id(s) are not in the store, e.g. "
                f"{', '.join(map(repr, missing[:5]))}: import those contacts first"
            )
        for name, stage in by_external.items():
            by_id[found[name]] = stage
    return list(by_id), list(by_id.values())


def set_stages(
    engine: Engine,
    changes: Mapping[int, Stage | str] | Mapping[str, Stage | str],
    *,
    at: datetime,
    source: str,
) -> StageUpdate:
    """Move many contacts to new relationship stages at once, with their history, in one transaction.

    Only contacts whose stage differs from the one given are written: their ``stage`` and
    ``updated_at`` change, and one :class:`~tummler.store.models.ContactChange` row records the
    stage before and after, the attributes, ``at`` and ``source``. Everything is set-based (the
    moves go to a temporary table, then one insert of history and one update, whatever the number
    of contacts): 20,000 contacts take about 0.2 s on SQLite.

    Parameters
    ----------
    engine
        The store.
    changes
        Contact → its stage now. A contact is named by its id (``int``, ``contacts.id``) or its
        external id (``str``); the stage is a :class:`~tummler.core.vocabulary.Stage` or its value.
    at
        When the stages moved (timezone-aware). History is kept in time order: ``at`` may not be
        earlier than a change already recorded for one of the contacts that move.
    source
        What moved them (``simulation``, ``api``, ``crm-sync``...); cut to 255 characters.

    Returns
    -------
    StageUpdate
        Contacts given, changed and unchanged.

    Raises
    ------
    InputError
        Before anything is written: a stage that is not one, a key that is neither an id nor an
        external id, a naive ``at``, an empty ``source``, or ``at`` before a recorded change.
    NotFoundError
        When a contact is not in the store; nothing is written.

    Examples
    --------
    Each round of a simulation::

        set_stages(engine, {"c-17": "customer", "c-42": Stage.LAPSED}, at=now, source="simulation")
    """
    at = _check_time(at, "at")
    source = _check_source(source)
    with engine.begin() as connection:
        ids, stages = _resolve(connection, changes)
        if not ids:
            return StageUpdate(0, 0, 0)
        moves = _Moves(connection, at)
        moves.load(list(zip(ids, stages, strict=True)))
        missing = moves.unknown_contacts()
        if missing:
            raise NotFoundError(
                f"contact id(s) {', '.join(map(str, missing))} are not in the store: "
                "give ids of contacts.id (or external ids as text)"
            )
        moves.check_order()
        changed = moves.apply(source)
        return StageUpdate(len(ids), changed, len(ids) - changed)


class _Moves:
    """The requested moves in a temporary table, applied to the store by three set-based statements.

    Comparing, writing history and updating happen in SQL: 20,000 contacts never pass through
    Python row by row (on SQLite the per-row overhead of one statement per contact was most of the
    time).
    """

    _TABLE = "tummler_stage_moves"

    def __init__(self, connection: Connection, at: datetime) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.mark = "%s" if self.postgres else "?"
        self.at: Any = at if self.postgres else sqlite_timestamp(at)
        self.at_value = at

    def _sql(self, statement: str, parameters: Any = ()) -> Any:
        return self.connection.exec_driver_sql(statement.replace("?", self.mark), parameters)

    def load(self, rows: list[tuple[int, str]]) -> None:
        if self.postgres:
            self._sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._TABLE} "
                "(contact_id bigint PRIMARY KEY, stage text NOT NULL) ON COMMIT DELETE ROWS"
            )
            self._sql(f"TRUNCATE {self._TABLE}")
            driver = self.connection.connection.driver_connection
            statement = f"COPY {self._TABLE} (contact_id, stage) FROM STDIN"
            with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
            # A temporary table is never analyzed on its own: without statistics the planner
            # guesses its size and joins it badly.
            self._sql(f"ANALYZE {self._TABLE}")
        else:
            self._sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._TABLE} "
                "(contact_id INTEGER PRIMARY KEY, stage TEXT NOT NULL)"
            )
            self._sql(f"DELETE FROM {self._TABLE}")
            self._sql(f"INSERT INTO {self._TABLE} (contact_id, stage) VALUES (?, ?)", rows)

    def unknown_contacts(self) -> list[int]:
        found = self._sql(
            f"SELECT m.contact_id FROM {self._TABLE} m "
            "LEFT JOIN contacts c ON c.id = m.contact_id WHERE c.id IS NULL "
            "ORDER BY m.contact_id LIMIT 5"
        )
        return [int(row[0]) for row in found]

    def check_order(self) -> None:
        found = self._sql(
            f"SELECT h.contact_id, h.changed_at FROM {self._TABLE} m "
            "JOIN contacts c ON c.id = m.contact_id AND c.stage <> m.stage "
            "JOIN contact_changes h ON h.contact_id = m.contact_id AND h.changed_at > ? "
            "ORDER BY h.changed_at DESC LIMIT 1",
            (self.at,),
        ).first()
        if found is not None:
            raise InputError(
                f"{self.at_value.isoformat()} is before a change already recorded for contact "
                f"{int(found[0])} (at {_as_datetime(found[1]).isoformat()}): history is kept in "
                "time order; move stages at that time or later",
                field="at",
            )

    def apply(self, source: str) -> int:
        history = self._sql(
            "INSERT INTO contact_changes "
            "(contact_id, changed_at, stage_before, stage, attributes, source) "
            f"SELECT c.id, ?, c.stage, m.stage, c.attributes, ? FROM {self._TABLE} m "
            "JOIN contacts c ON c.id = m.contact_id WHERE c.stage <> m.stage "
            "ORDER BY c.id",
            (self.at, source),
        )
        changed = int(history.rowcount)
        if changed and self.postgres:
            self._sql(
                f"UPDATE contacts c SET stage = m.stage, updated_at = ? FROM {self._TABLE} m "
                "WHERE c.id = m.contact_id AND c.stage <> m.stage",
                (self.at,),
            )
        elif changed:  # UPDATE ... FROM needs SQLite 3.33; this form works everywhere
            self._sql(
                f"UPDATE contacts SET stage = (SELECT m.stage FROM {self._TABLE} m "
                "WHERE m.contact_id = contacts.id), updated_at = ? "
                f"WHERE id IN (SELECT m.contact_id FROM {self._TABLE} m "
                "JOIN contacts c ON c.id = m.contact_id WHERE c.stage <> m.stage)",
                (self.at,),
            )
        return changed


def _as_datetime(value: Any) -> datetime:
    # raw SQL bypasses the column type on SQLite, which then returns text
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    stored: datetime = value
    return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


def latest_changes(connection: Connection, contact_ids: Iterable[int]) -> dict[int, datetime]:
    """When each contact's latest recorded change happened (contacts without history are absent).

    One query per 50,000 contacts.
    """
    ids = sorted({int(i) for i in contact_ids})
    out: dict[int, datetime] = {}
    for start in range(0, len(ids), 50_000):
        chunk = ids[start : start + 50_000]
        out.update(
            (int(contact_id), _as_datetime(at))
            for contact_id, at in connection.execute(
                select(_CHANGES.c.contact_id, func.max(_CHANGES.c.changed_at))
                .where(one_of(_CHANGES.c.contact_id, chunk, dialect=connection.dialect.name))
                .group_by(_CHANGES.c.contact_id)
            )
        )
    return out


def record_changes(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append history rows in the caller's transaction (the contacts import uses this).

    Each row has ``contact_id``, ``changed_at``, ``stage_before`` (``None`` for a first state),
    ``stage``, ``attributes`` (the whole document after the change) and ``source``.
    """
    if not rows:
        return 0
    if connection.dialect.name == "sqlite":
        # The driver directly, with the text the ORM would store: an import of a million contacts
        # writes a million rows here, and the ORM's per-row processing doubled their cost.
        # An import's rows share one time: it is formatted once, not once per row.
        stamp = functools.lru_cache(maxsize=16)(sqlite_timestamp)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(
                "INSERT INTO contact_changes "
                "(contact_id, changed_at, stage_before, stage, attributes, source) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        row["contact_id"],
                        stamp(row["changed_at"]),
                        row["stage_before"],
                        row["stage"],
                        json.dumps(row["attributes"]),
                        str(row["source"])[:SOURCE_MAX_LENGTH],
                    )
                    for row in rows
                ],
            )
        finally:
            cursor.close()
        return len(rows)
    connection.execute(
        insert(_CHANGES),
        [{**row, "source": str(row["source"])[:SOURCE_MAX_LENGTH]} for row in rows],
    )
    return len(rows)


# --- as of a time ------------------------------------------------------------------------------


def _as_of_query(chunk: list[int], at: datetime, *, profile: bool) -> Any:
    contacts = _CONTACTS
    before = _CHANGES.alias("before_at")
    after = _CHANGES.alias("after_at")
    x, y = _CHANGES.alias("x"), _CHANGES.alias("y")
    latest = (
        select(x.c.id)
        .where(x.c.contact_id == contacts.c.id, x.c.changed_at <= at)
        .order_by(x.c.changed_at.desc(), x.c.id.desc())
        .limit(1)
        .correlate(contacts)
        .scalar_subquery()
    )
    earliest_after = (
        select(y.c.id)
        .where(y.c.contact_id == contacts.c.id, y.c.changed_at > at)
        .order_by(y.c.changed_at.asc(), y.c.id.asc())
        .limit(1)
        .correlate(contacts)
        .scalar_subquery()
    )
    # The two history rows of each contact are found first (one index probe each), then joined.
    picks = (
        select(
            contacts.c.id.label("contact_id"),
            latest.label("before_id"),
            earliest_after.label("after_id"),
        )
        .where(contacts.c.id.in_(chunk))
        .subquery("picks")
    )
    stage = func.coalesce(before.c.stage, after.c.stage_before, after.c.stage, contacts.c.stage)
    columns: list[Any] = [contacts.c.id, stage.label("stage")]
    if profile:
        attributes = func.coalesce(before.c.attributes, after.c.attributes, contacts.c.attributes)
        columns = [
            contacts.c.id,
            contacts.c.external_id,
            contacts.c.locale,
            contacts.c.time_zone,
            stage.label("stage"),
            attributes.label("attributes"),
        ]
    return (
        select(*columns)
        .select_from(
            picks.join(contacts, contacts.c.id == picks.c.contact_id)
            .outerjoin(before, before.c.id == picks.c.before_id)
            .outerjoin(after, after.c.id == picks.c.after_id)
        )
        .order_by(contacts.c.id)
    )


def _chunks(contact_ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted({int(i) for i in contact_ids})
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def contacts_as_of(
    connection: Connection, contact_ids: Iterable[int], at: datetime
) -> list[ContactAsOf]:
    """The contacts with their stage and attributes as of ``at``, in id order.

    The rest of the row (external id, locale, time zone) is read as it is now: the history keeps
    stages and attributes only. See the module's docstring for which history row gives the state,
    and for contacts without history (read as they are now). One query per 5,000 contacts.

    Parameters
    ----------
    connection
        An open connection to the store.
    contact_ids
        The contacts (``contacts.id``); ids not in the store are left out of the result.
    at
        The time (timezone-aware).
    """
    at = _check_time(at, "at")
    out: list[ContactAsOf] = []
    for chunk in _chunks(contact_ids):
        for row in connection.execute(_as_of_query(chunk, at, profile=True)):
            attributes = row.attributes
            if isinstance(attributes, str):  # coalesce() of JSON comes back as text on SQLite
                attributes = json.loads(attributes)
            out.append(
                ContactAsOf(
                    int(row.id),
                    str(row.external_id),
                    row.locale,
                    str(row.time_zone),
                    str(row.stage),
                    dict(attributes or {}),
                )
            )
    return out


def stages_as_of(
    connection: Connection, contact_ids: Iterable[int], at: datetime
) -> dict[int, str]:
    """Each contact's relationship stage as of ``at`` (see the module's docstring for the rule).

    Ids not in the store are left out. One query per 5,000 contacts.
    """
    at = _check_time(at, "at")
    out: dict[int, str] = {}
    for chunk in _chunks(contact_ids):
        out.update(
            (int(contact_id), str(stage))
            for contact_id, stage in connection.execute(_as_of_query(chunk, at, profile=False))
        )
    return out
