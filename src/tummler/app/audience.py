"""Contacts as the audience language sees them, read from the store one chunk of ids at a time.

The one reader of a contact's *reach* (its channel identities and its current consent, the latest
consent event per channel name: :func:`tummler.app.consent.consent_log`) and of its last
engagement. Planning filters each chunk of its audience with it (:mod:`tummler.app.planning`), the
strategy check's realism measures audiences with it (:func:`tummler.app.strategy.load_contacts`),
and ``explain`` tells a contact outside an audience which conditions they fail with it: one rule
for all three.

Chunks are ranges of contact ids (``id > last``, ordered, limited), never an ``IN`` list, so the
queries of a chunk cost the same whatever the size of the base.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, select

from tummler.app.consent import consent_log
from tummler.core.clock import ensure_utc
from tummler.core.vocabulary import ConsentStatus, EventType
from tummler.store import models
from tummler.strategy import ContactColumns, Expression, evaluate

__all__ = [
    "CONTACT_VIEW_COLUMNS",
    "ENGAGEMENT_EVENTS",
    "ContactReach",
    "audience_view",
    "contact_chunks",
    "contact_view",
    "in_audience",
    "read_last_engaged",
    "read_reach",
]

#: Events that count as engaging for ``engaged_within``: a person chose to act. Opens are not
#: (privacy proxies open mail); sends, deliveries and bounces are the provider's doing.
ENGAGEMENT_EVENTS: tuple[EventType, ...] = (
    EventType.CLICKED,
    EventType.REPLIED,
    EventType.CONVERTED,
    EventType.VISITED,
)

#: The contact columns :func:`contact_view` reads, for every query that builds one.
CONTACT_VIEW_COLUMNS = (
    models.Contact.id,
    models.Contact.external_id,
    models.Contact.locale,
    models.Contact.time_zone,
    models.Contact.stage,
    models.Contact.attributes,
)


def contact_chunks(connection: Connection, chunk_size: int) -> Iterator[list[Any]]:
    """The store's contacts that were not forgotten, ordered by id, ``chunk_size`` rows at a time
    (each row has the :data:`CONTACT_VIEW_COLUMNS`)."""
    last_id = -1
    while True:
        rows = connection.execute(
            select(*CONTACT_VIEW_COLUMNS)
            .where(models.Contact.forgotten_at.is_(None), models.Contact.id > last_id)
            .order_by(models.Contact.id)
            .limit(chunk_size)
        ).all()
        if not rows:
            return
        last_id = int(rows[-1].id)
        yield list(rows)


@dataclass(frozen=True)
class ContactReach:
    """Identities and consent of some contacts under the store's raw channel names, and every
    consent event in order (the outbox's rule needs the latest across a channel's names).

    Attributes
    ----------
    identities, consents
        Raw channel name → ``(n,)`` the contact has an identity on it / its latest consent event
        for it is a grant; a name not present is false for everyone.
    consent_events
        ``(contact id, channel name, status)`` up to the moment read, by ``at`` then row id.
    """

    identities: dict[str, npt.NDArray[np.bool_]]
    consents: dict[str, npt.NDArray[np.bool_]]
    consent_events: list[tuple[int, str, str]]

    def kept(self, keep: npt.NDArray[np.bool_]) -> ContactReach:
        """The same reads for the contacts ``keep`` selects (the events need no cut: readers
        ignore contacts they have no row for)."""
        return ContactReach(
            {k: v[keep] for k, v in self.identities.items()},
            {k: v[keep] for k, v in self.consents.items()},
            self.consent_events,
        )

    @staticmethod
    def concat(parts: Sequence[ContactReach], sizes: Sequence[int]) -> ContactReach:
        """The reads of consecutive chunks (of ``sizes`` contacts each) as one."""
        return ContactReach(
            _concat_columns([p.identities for p in parts], sizes),
            _concat_columns([p.consents for p in parts], sizes),
            [event for p in parts for event in p.consent_events],
        )


def _concat_columns(
    parts: Sequence[Mapping[str, npt.NDArray[np.bool_]]], sizes: Sequence[int]
) -> dict[str, npt.NDArray[np.bool_]]:
    names = sorted({name for part in parts for name in part})
    return {
        name: np.concatenate(
            [part.get(name, np.zeros(size, bool)) for part, size in zip(parts, sizes, strict=True)]
        )
        for name in names
    }


def _positions(rows: Sequence[Any]) -> dict[int, int]:
    return {int(r.id): p for p, r in enumerate(rows)}


def read_reach(
    connection: Connection,
    rows: Sequence[Any],
    *,
    now: datetime,
    position: Mapping[int, int] | None = None,
) -> ContactReach:
    """The identities and consent (as of ``now``) of contact ``rows``, ordered by id.

    ``position``: contact id → row index, when the caller has it already.
    """
    size = len(rows)
    position = position if position is not None else _positions(rows)
    lo, hi = int(rows[0].id), int(rows[-1].id)

    def empty() -> npt.NDArray[np.bool_]:
        return np.zeros(size, bool)

    identities: defaultdict[str, npt.NDArray[np.bool_]] = defaultdict(empty)
    identity = models.ChannelIdentity
    for contact_id, channel in connection.execute(
        select(identity.contact_id, identity.channel)
        .where(identity.contact_id >= lo, identity.contact_id <= hi)
        .distinct()
    ):
        if contact_id in position:
            identities[channel][position[contact_id]] = True
    consent_events = consent_log(connection, now=now, contacts=(lo, hi))
    # per raw name, for the audience expression's consent("...")
    latest: dict[tuple[int, str], str] = {}
    for contact_id, channel, status in consent_events:
        latest[(contact_id, channel)] = status
    consents: defaultdict[str, npt.NDArray[np.bool_]] = defaultdict(empty)
    for (contact_id, channel), status in latest.items():
        if contact_id in position:
            consents[channel][position[contact_id]] = status == ConsentStatus.GRANTED.value
    return ContactReach(dict(identities), dict(consents), consent_events)


def read_last_engaged(
    connection: Connection, rows: Sequence[Any], *, now: datetime
) -> npt.NDArray[np.datetime64]:
    """``(n,)`` each contact's latest :data:`ENGAGEMENT_EVENTS` up to ``now`` (UTC, ``NaT``:
    never), for contact ``rows`` ordered by id."""
    position = _positions(rows)
    engaged = np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[us]")
    for contact_id, at in connection.execute(
        select(models.Event.contact_id, func.max(models.Event.at))
        .where(
            models.Event.contact_id >= int(rows[0].id),
            models.Event.contact_id <= int(rows[-1].id),
            models.Event.type.in_([e.value for e in ENGAGEMENT_EVENTS]),
            models.Event.at <= now,
        )
        .group_by(models.Event.contact_id)
    ):
        if contact_id in position and at is not None:
            engaged[position[contact_id]] = np.datetime64(
                _as_datetime(at).replace(tzinfo=None), "us"
            )
    return engaged


def _as_datetime(value: Any) -> datetime:
    # aggregates bypass the column type on SQLite, which then returns text
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return ensure_utc(value)


def audience_view(
    connection: Connection, rows: Sequence[Any], *, now: datetime
) -> tuple[ContactColumns, ContactReach]:
    """The audience language's view of contact ``rows`` (ordered by id) as of ``now``, and their
    reach as read for it."""
    reach = read_reach(connection, rows, now=now)
    view = contact_view(
        rows,
        now=now,
        consents=reach.consents,
        identities=reach.identities,
        last_engaged=read_last_engaged(connection, rows, now=now),
    )
    return view, reach


def in_audience(
    connection: Connection, rows: Sequence[Any], *, now: datetime, audience: Expression | None
) -> tuple[list[Any], ContactReach | None]:
    """The contact ``rows`` (ordered by id) that the ``audience`` expression keeps as of ``now``,
    and their reach as read for the filter (``None`` without an audience).

    Run before anything else is read of a chunk, so that a campaign for a tenth of the base reads
    the history of about a tenth.
    """
    if audience is None or not rows:
        return list(rows), None
    view, reach = audience_view(connection, rows, now=now)
    keep = evaluate(audience, view)
    return [row for row, kept in zip(rows, keep.tolist(), strict=True) if kept], reach.kept(keep)


def contact_view(
    rows: Sequence[Any],
    *,
    now: datetime,
    consents: Any,
    identities: Any,
    last_engaged: Any,
) -> ContactColumns:
    """The audience language's view of contact ``rows`` (with ``external_id``, ``locale``,
    ``time_zone``, ``stage`` and ``attributes``), with consent, identities and last engagement
    already gathered per channel name."""
    size = len(rows)
    attributes: defaultdict[str, list[Any]] = defaultdict(lambda: [None] * size)
    for i, row in enumerate(rows):
        for name, value in (row.attributes or {}).items():
            attributes[name][i] = value
    return ContactColumns(
        size=size,
        now=now,
        fields={
            "external_id": [r.external_id for r in rows],
            "locale": [r.locale for r in rows],
            "time_zone": [r.time_zone for r in rows],
            "stage": [r.stage for r in rows],
        },
        attributes=dict(attributes),
        consents=consents,
        identities=identities,
        last_engaged=last_engaged,
    )
