"""Storing reported events: resolve each person (or delivery), then write them in one transaction.

See :mod:`tummler.app.callbacks` for the rules: one transaction per request, identities and
deliveries resolved in bulk, deduplication by provider event id, and consent revoked as
unsubscribes and complaints are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, select, update

from tummler.app.callbacks.events import (
    EventProblem,
    IncomingEvent,
    RecordReport,
    RejectedEventsError,
)
from tummler.app.callbacks.providers import bare_message_id
from tummler.app.consent import revocations, write_revocations
from tummler.app.ingest.schemas import (
    derived_event_id,
)
from tummler.app.suppression import Suppressions
from tummler.core.clock import Clock, SystemClock
from tummler.core.vocabulary import ChannelKind, DeliveryStatus, EventType
from tummler.store.database import conflict_insert, session_scope
from tummler.store.models import ChannelIdentity, Contact, Decision, Delivery, Event
from tummler.strategy import ComplaintScope

__all__ = ["record_events"]

_EVENTS: Table = Event.__table__  # type: ignore[assignment]


def record_events(
    engine: Engine,
    events: Sequence[IncomingEvent | None],
    *,
    on_complaint: ComplaintScope = ComplaintScope.CHANNEL,
    clock: Clock | None = None,
) -> RecordReport:
    """Store ``events`` in one transaction, each at most once; ``None`` items count as ignored.

    Parameters
    ----------
    engine
        The store.
    events
        The request's items in order (their positions are the indices named in problems).
    on_complaint
        The strategy's ``consent.on_complaint``: what a complaint revokes.
    clock
        When the revocations are recorded (default: the wall clock).

    Returns
    -------
    RecordReport
        ``accepted`` events written, ``duplicates`` already stored or repeated within the request,
        ``suppressed`` events about forgotten people (not stored), ``revoked`` consent events
        written for unsubscribes and complaints.

    Raises
    ------
    RejectedEventsError
        When an item names a person the store does not know; nothing is written then.
    """
    ignored = sum(1 for event in events if event is None)
    present = [(index, event) for index, event in enumerate(events) if event is not None]
    if not present:
        return RecordReport(accepted=0, duplicates=0, ignored=ignored)
    now = (clock or SystemClock()).now()
    with session_scope(engine) as session:
        connection = session.connection()
        keys = [e.suppression_key for _, e in present]
        forgotten = Suppressions.load(connection).suppressed(connection, filter(None, keys))
        suppressed = sum(1 for key in keys if key in forgotten)
        present = [(i, e) for i, e in present if e.suppression_key not in forgotten]
        rows, moves, repeated = _rows(present, _People(session, [e for _, e in present]))
        if not rows:
            return RecordReport(
                accepted=0, duplicates=repeated, ignored=ignored, suppressed=suppressed
            )
        written = _insert(session, rows, moves)
        # Every stored revoking event, new or already there: a revocation is written once anyway,
        # and an event stored before consent followed events gets its revocation now.
        revoked = write_revocations(
            connection,
            [
                revocation
                for row in rows.values()
                for revocation in revocations(
                    row["contact_id"],
                    row["type"],
                    row["channel"],
                    source=row["source"],
                    at=row["at"],
                    on_complaint=on_complaint,
                )
            ],
            now=now,
        )
    return RecordReport(
        accepted=written,
        duplicates=repeated + len(rows) - written,
        ignored=ignored,
        suppressed=suppressed,
        revoked=revoked,
    )


#: An event row keyed by ``(source, provider event id)``, and the delivery a stored one moves.
_Key = tuple[str, str]


class _People:
    """Who a request's events are about: by delivery (provider message id), external id, e-mail
    address or phone number, each looked up once for the whole request."""

    def __init__(self, session: Any, events: Sequence[IncomingEvent]) -> None:
        self.by_field = {
            "contact": _ids(
                session,
                select(Contact.external_id, Contact.id, Contact.external_id),
                Contact.external_id,
                {e.contact for e in events if e.contact is not None},
            ),
            "email": _ids(
                session,
                _identity_query(ChannelKind.EMAIL),
                ChannelIdentity.address,
                {e.email for e in events if e.email is not None},
            ),
            "phone": _ids(
                session,
                _identity_query(ChannelKind.SMS),
                ChannelIdentity.address,
                {e.phone for e in events if e.phone is not None},
            ),
        }
        self.deliveries = _deliveries(
            session,
            {bare_message_id(e.provider_message_id) for e in events if e.provider_message_id},
        )

    def find(
        self, index: int, event: IncomingEvent
    ) -> tuple[int, str, _Matched | None] | EventProblem:
        """(contact id, external id, matched delivery) of ``event``, or why nobody matches."""
        field, value = event.identity
        matched = (
            None
            if event.provider_message_id is None
            else self.deliveries.get(bare_message_id(event.provider_message_id))
        )
        if matched is not None:
            return matched.contact_id, matched.external_id, matched
        found = None if value is None else self.by_field[field].get(value)
        if found is not None:
            return found[0], found[1], None
        if value is None:
            reason = (
                f"no delivery with provider message id {event.provider_message_id!r} "
                "and no contact named: name the person (contact, email or phone)"
            )
        else:
            reason = (
                f"no contact with {_described(field)} {value!r}: import the contact "
                "(or its identity) first"
            )
        return EventProblem(index, field, reason, code="unknown_contact")


def _rows(
    present: Sequence[tuple[int, IncomingEvent]], people: _People
) -> tuple[dict[_Key, dict[str, Any]], dict[_Key, tuple[_Matched, IncomingEvent]], int]:
    """The ``events`` rows to insert (once per key), the deliveries they may move, and how many
    repeated a key already in the request.

    Raises
    ------
    RejectedEventsError
        With every item that names nobody the store knows.
    """
    problems: list[EventProblem] = []
    rows: dict[_Key, dict[str, Any]] = {}
    moves: dict[_Key, tuple[_Matched, IncomingEvent]] = {}
    repeated = 0
    for index, event in present:
        found = people.find(index, event)
        if isinstance(found, EventProblem):
            problems.append(found)
            continue
        contact_id, external_id, matched = found
        event_id = event.provider_event_id or derived_event_id(
            external_id, event.type.value, event.channel, event.at, event.value
        )
        key = (event.source, event_id)
        if key in rows:
            repeated += 1
            continue
        if matched is not None:
            moves[key] = (matched, event)
        rows[key] = {
            "decision_id": None if matched is None else matched.decision_id,
            "contact_id": contact_id,
            "channel": None if event.channel is None else event.channel.value,
            "type": event.type.value,
            "value": event.value,
            "at": event.at,
            "source": event.source,
            "provider_event_id": event_id,
        }
    if problems:
        raise RejectedEventsError(problems)
    return rows, moves, repeated


def _insert(
    session: Any,
    rows: dict[_Key, dict[str, Any]],
    moves: dict[_Key, tuple[_Matched, IncomingEvent]],
) -> int:
    """Insert the rows not stored yet; each new one that names a delivery moves it. Returns how
    many were new."""
    statement = (
        conflict_insert(_EVENTS, dialect=session.get_bind().dialect.name)
        .on_conflict_do_nothing(index_elements=["source", "provider_event_id"])
        .returning(_EVENTS.c.source, _EVENTS.c.provider_event_id)
    )
    inserted = session.execute(statement, list(rows.values())).all()
    for source, event_id in inserted:
        move = moves.get((str(source), str(event_id)))
        if move is not None:
            _follow(session, *move)
    return len(inserted)


@dataclass(frozen=True, slots=True)
class _Matched:
    """The delivery a provider message id names, with its decision and (unforgotten) contact."""

    delivery_id: int
    decision_id: int
    contact_id: int
    external_id: str


#: Statuses a callback may move: a delivery already failed, dead or skipped is never changed.
_OPEN = (DeliveryStatus.SENDING.value, DeliveryStatus.UNKNOWN.value)
_BOUNCEABLE = (*_OPEN, DeliveryStatus.SENT.value)


def _deliveries(session: Any, wanted: set[str]) -> dict[str, _Matched]:
    """Map each bare message id to the delivery holding it (with or without angle brackets)."""
    wanted.discard("")
    if not wanted:
        return {}
    candidates = sorted(wanted | {f"<{w}>" for w in wanted})
    found = session.execute(
        select(
            Delivery.provider_message_id,
            Delivery.id,
            Delivery.decision_id,
            Contact.id,
            Contact.external_id,
        )
        .join(Decision, Decision.id == Delivery.decision_id)
        .join(Contact, Contact.id == Decision.contact_id)
        .where(Delivery.provider_message_id.in_(candidates), Contact.forgotten_at.is_(None))
        .order_by(Delivery.id)
    ).all()
    matched: dict[str, _Matched] = {}
    for message_id, delivery_id, decision_id, contact_id, external in found:
        # Two deliveries with one message id cannot be told apart: the first (oldest) wins.
        matched.setdefault(
            bare_message_id(str(message_id)),
            _Matched(int(delivery_id), int(decision_id), int(contact_id), str(external)),
        )
    return matched


def _follow(session: Any, matched: _Matched, event: IncomingEvent) -> None:
    """Move the delivery where the provider's report is authoritative, never backwards."""
    if event.type is EventType.BOUNCED:
        reason = event.reason or f"{event.type.value} reported by {event.source}"
        session.execute(
            update(Delivery)
            .where(Delivery.id == matched.delivery_id, Delivery.status.in_(_BOUNCEABLE))
            .values(
                status=DeliveryStatus.FAILED.value,
                last_error=f"{event.source}: {reason}"[:2000],
                updated_at=event.at,
            )
        )
    elif event.type in (EventType.SENT, EventType.DELIVERED):
        session.execute(
            update(Delivery)
            .where(Delivery.id == matched.delivery_id, Delivery.status.in_(_OPEN))
            .values(status=DeliveryStatus.SENT.value, sent_at=event.at, updated_at=event.at)
        )


def _identity_query(channel: ChannelKind) -> Any:
    return (
        select(ChannelIdentity.address, Contact.id, Contact.external_id)
        .join(Contact, Contact.id == ChannelIdentity.contact_id)
        .where(ChannelIdentity.channel == channel.value)
    )


def _ids(session: Any, query: Any, column: Any, wanted: set[str]) -> dict[str, tuple[int, str]]:
    """Map each wanted value to (contact id, external id); forgotten people are not found."""
    if not wanted:
        return {}
    found = session.execute(
        query.where(column.in_(sorted(wanted)), Contact.forgotten_at.is_(None))
    ).all()
    return {str(key): (int(contact_id), str(external)) for key, contact_id, external in found}


def _described(field: str) -> str:
    return {
        "contact": "external id",
        "email": "e-mail address",
        "phone": "phone number",
        "provider_message_id": "provider message id",
    }[field]
