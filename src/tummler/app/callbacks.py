"""Events from outside, as they arrive: validate, resolve the person, store once.

Providers (SendGrid, Mailgun, Twilio) and a brand's own systems report what happened after a message:
delivered, opened, clicked, bounced, unsubscribed, complained, converted. This service turns each report
into an ``events`` row:

* **one transaction per request**: every item is checked and every person resolved before anything is
  written, so a request with one bad item stores nothing (the caller gets every problem at once, each
  with its item index and field);
* **once**: events are keyed by ``(source, provider_event_id)``; an event already stored, or repeated
  within the request, counts as a duplicate and is not written again — providers retry, and a retried
  webhook must change nothing. An event without a provider id gets the same derived id the file import
  gives it (:func:`tummler.app.ingest.schemas.derived_event_id`), so the API and the import agree;
* **a known person**: an event names its contact by external id, e-mail address or phone number; one
  that matches nobody (or a forgotten person) is refused, naming the item and the value.

Provider event names map onto :class:`~tummler.core.vocabulary.EventType` through the tables below
(``None``: a report worth nothing to learning, counted as *ignored* and not stored).

SendGrid (Event Webhook ``event``):

===================  =============  ==============================================================
SendGrid             tummler        why
===================  =============  ==============================================================
processed            sent           accepted for delivery
delivered            delivered
open                 opened         stored, not a reward by default
click                clicked
bounce               bounced
dropped              bounced        never delivered (suppressed, invalid)
spamreport           complained
unsubscribe          unsubscribed
group_unsubscribe    unsubscribed   unsubscribed from the brand's group: the same signal
deferred             (ignored)      a retry is under way; the outcome comes later
group_resubscribe    (ignored)      consent is managed by the consent log, not by events
===================  =============  ==============================================================

Mailgun (``event-data.event``): ``accepted`` → sent, ``delivered`` → delivered, ``opened`` → opened,
``clicked`` → clicked, ``failed`` → bounced when ``severity`` is ``permanent`` (a ``temporary`` failure
is ignored: Mailgun retries), ``rejected`` → bounced, ``unsubscribed`` → unsubscribed, ``complained`` →
complained, ``stored`` → ignored.

Twilio (``MessageStatus`` of a status callback): ``sent`` → sent, ``delivered`` → delivered,
``undelivered`` and ``failed`` → bounced, ``read`` → opened; ``queued``, ``accepted``, ``scheduled``,
``sending``, ``canceled``, ``receiving`` and ``received`` are ignored. A message goes through several
statuses, so its event id is ``<MessageSid>/<MessageStatus>``; the callback carries no time, so the
event's time is when it arrived.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from tummler.app.ingest.schemas import (
    FieldError,
    derived_event_id,
    normalize_email,
    normalize_phone,
    parse_timestamp,
)
from tummler.core.clock import ensure_utc
from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind, EventType
from tummler.store.database import session_scope
from tummler.store.models import ChannelIdentity, Contact, Event

__all__ = [
    "MAILGUN_EVENTS",
    "SENDGRID_EVENTS",
    "TWILIO_STATUSES",
    "EventProblem",
    "IncomingEvent",
    "RecordReport",
    "RejectedEventsError",
    "mailgun_event",
    "record_events",
    "sendgrid_events",
    "twilio_event",
]

SENDGRID_EVENTS: Mapping[str, EventType | None] = {
    "processed": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "bounce": EventType.BOUNCED,
    "dropped": EventType.BOUNCED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.UNSUBSCRIBED,
    "deferred": None,
    "group_resubscribe": None,
}

MAILGUN_EVENTS: Mapping[str, EventType | None] = {
    "accepted": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
    "failed": EventType.BOUNCED,  # permanent only; see mailgun_event
    "rejected": EventType.BOUNCED,
    "unsubscribed": EventType.UNSUBSCRIBED,
    "complained": EventType.COMPLAINED,
    "stored": None,
}

TWILIO_STATUSES: Mapping[str, EventType | None] = {
    "sent": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "undelivered": EventType.BOUNCED,
    "failed": EventType.BOUNCED,
    "read": EventType.OPENED,
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "canceled": None,
    "receiving": None,
    "received": None,
}

_EVENTS: Table = Event.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """One event as a caller reported it, checked field by field but not yet tied to a contact.

    Exactly one of ``contact`` (external id), ``email`` (normalized, lower case) and ``phone``
    (E.164) names the person. ``provider_event_id`` ``None``: derived from the event's content.
    """

    type: EventType
    at: datetime
    contact: str | None = None
    email: str | None = None
    phone: str | None = None
    channel: ChannelKind | None = None
    value: float | None = None
    source: str = "api"
    provider_event_id: str | None = None

    def __post_init__(self) -> None:
        named = [n for n in ("contact", "email", "phone") if getattr(self, n) is not None]
        if len(named) != 1:
            raise InputError(
                "name the person with exactly one of contact (external id), email or phone; "
                f"got {', '.join(named) if named else 'none'}",
                field="contact",
            )
        if self.value is not None and not math.isfinite(self.value):
            raise InputError("must be a finite number", field="value")
        object.__setattr__(self, "at", ensure_utc(self.at))

    @property
    def identity(self) -> tuple[str, str]:
        """Which field names the person, and its value."""
        if self.contact is not None:
            return "contact", self.contact
        if self.email is not None:
            return "email", self.email
        assert self.phone is not None  # __post_init__ guarantees one
        return "phone", self.phone


@dataclass(frozen=True, slots=True)
class EventProblem:
    """Why one item of a request was refused: its index in the request (``None``: the whole body)."""

    index: int | None
    field: str
    reason: str
    #: A short machine-readable kind: ``invalid`` or ``unknown_contact``.
    code: str = "invalid"

    def __str__(self) -> str:
        where = "body" if self.index is None else f"item {self.index}"
        return f"{where}, field {self.field!r}: {self.reason}"


class RejectedEventsError(InputError):
    """A request with items that cannot be stored; nothing of it was written.

    ``problems`` lists every bad item with its index and field, so a caller can fix them all at once.
    """

    def __init__(self, problems: Sequence[EventProblem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        first = self.problems[0] if self.problems else None
        super().__init__(
            f"{len(self.problems)} item(s) refused, nothing stored: {shown}{more}",
            field=None if first is None else first.field,
        )


@dataclass(frozen=True, slots=True)
class RecordReport:
    """What one request did: events written, duplicates skipped, provider reports ignored."""

    accepted: int
    duplicates: int
    ignored: int = 0


# --- provider shapes -----------------------------------------------------------------------------


def _field(item: Mapping[str, Any], name: str, index: int, problems: list[EventProblem]) -> Any:
    value = item.get(name)
    if value is None or value == "":
        problems.append(EventProblem(index, name, "missing required value"))
    return value


def _checked(
    parse: Any, raw: Any, index: int, name: str, problems: list[EventProblem], *args: Any
) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return parse(raw, *args)
    except FieldError as exc:
        problems.append(EventProblem(index, name, str(exc)))
        return None


def _provider_id(raw: Any, index: int, name: str, problems: list[EventProblem]) -> str | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool | dict | list):
        problems.append(EventProblem(index, name, "expected text"))
        return None
    text = str(raw).strip()
    if len(text) > 255:
        problems.append(EventProblem(index, name, "longer than 255 characters"))
        return None
    return text


def sendgrid_events(payload: Any) -> list[IncomingEvent | None]:
    """The events of one SendGrid Event Webhook POST (a JSON array); ``None`` for ignored ones.

    Raises
    ------
    RejectedEventsError
        When the body is not an array of objects, or an item lacks ``email``, ``event`` or
        ``timestamp`` or holds a value that cannot be used — every problem, with its item index.
    """
    if not isinstance(payload, list):
        raise RejectedEventsError(
            [EventProblem(None, "body", "expected a JSON array of SendGrid events")]
        )
    problems: list[EventProblem] = []
    events: list[IncomingEvent | None] = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            problems.append(EventProblem(index, "item", "expected a JSON object"))
            events.append(None)
            continue
        name = _field(item, "event", index, problems)
        email = _checked(
            normalize_email, _field(item, "email", index, problems), index, "email", problems
        )
        at = _checked(
            parse_timestamp,
            _field(item, "timestamp", index, problems),
            index,
            "timestamp",
            problems,
        )
        event_id = _provider_id(item.get("sg_event_id"), index, "sg_event_id", problems)
        if name is not None and (not isinstance(name, str) or name not in SENDGRID_EVENTS):
            problems.append(
                EventProblem(
                    index,
                    "event",
                    f"unknown SendGrid event {name!r}; known: {', '.join(SENDGRID_EVENTS)}",
                )
            )
            name = None
        kind = SENDGRID_EVENTS.get(name) if isinstance(name, str) else None
        if kind is None or email is None or at is None:
            events.append(None)
            continue
        events.append(
            IncomingEvent(
                kind,
                at,
                email=email,
                channel=ChannelKind.EMAIL,
                source="sendgrid",
                provider_event_id=event_id,
            )
        )
    if problems:
        raise RejectedEventsError(problems)
    return events


def mailgun_event(payload: Any) -> IncomingEvent | None:
    """The event of one Mailgun webhook POST (its ``event-data``); ``None`` when it is ignored.

    The signature is the caller's to check (:mod:`tummler.api`); this reads the event only.

    Raises
    ------
    RejectedEventsError
        When ``event-data`` or one of its ``event``, ``recipient``, ``timestamp``, ``id`` is missing or
        unusable.
    """
    data = payload.get("event-data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise RejectedEventsError(
            [EventProblem(None, "event-data", "expected an object with the Mailgun event")]
        )
    problems: list[EventProblem] = []
    name = _field(data, "event", 0, problems)
    email = _checked(
        normalize_email, _field(data, "recipient", 0, problems), 0, "recipient", problems
    )
    at = _checked(parse_timestamp, _field(data, "timestamp", 0, problems), 0, "timestamp", problems)
    event_id = _provider_id(_field(data, "id", 0, problems), 0, "id", problems)
    if name is not None and (not isinstance(name, str) or name not in MAILGUN_EVENTS):
        problems.append(
            EventProblem(
                0, "event", f"unknown Mailgun event {name!r}; known: {', '.join(MAILGUN_EVENTS)}"
            )
        )
    if problems:
        raise RejectedEventsError(
            [EventProblem(None, f"event-data.{p.field}", p.reason) for p in problems]
        )
    kind = MAILGUN_EVENTS[name]
    if kind is None or (name == "failed" and data.get("severity") == "temporary"):
        return None
    assert email is not None  # no problems: both parsed
    assert at is not None
    return IncomingEvent(
        kind,
        at,
        email=email,
        channel=ChannelKind.EMAIL,
        source="mailgun",
        provider_event_id=event_id,
    )


def twilio_event(params: Mapping[str, str], *, now: datetime) -> IncomingEvent | None:
    """The event of one Twilio SMS status callback (form fields); ``None`` when it is ignored.

    ``now`` is the event's time: status callbacks carry none.

    Raises
    ------
    RejectedEventsError
        When ``MessageSid``, ``MessageStatus`` or ``To`` is missing or unusable.
    """
    problems: list[EventProblem] = []
    sid = _provider_id(_field(params, "MessageSid", 0, problems), 0, "MessageSid", problems)
    status = _field(params, "MessageStatus", 0, problems)
    phone = _checked(normalize_phone, _field(params, "To", 0, problems), 0, "To", problems)
    if status is not None and status not in TWILIO_STATUSES:
        problems.append(
            EventProblem(
                0,
                "MessageStatus",
                f"unknown status {status!r}; known: {', '.join(TWILIO_STATUSES)}",
            )
        )
    if problems:
        raise RejectedEventsError([EventProblem(None, p.field, p.reason) for p in problems])
    kind = TWILIO_STATUSES[status]
    if kind is None:
        return None
    assert phone is not None
    return IncomingEvent(
        kind,
        now,
        phone=phone,
        channel=ChannelKind.SMS,
        source="twilio",
        provider_event_id=f"{sid}/{status}",
    )


# --- storing -------------------------------------------------------------------------------------


def record_events(engine: Engine, events: Sequence[IncomingEvent | None]) -> RecordReport:
    """Store ``events`` in one transaction, each at most once; ``None`` items count as ignored.

    Parameters
    ----------
    engine
        The store.
    events
        The request's items in order (their positions are the indices named in problems).

    Returns
    -------
    RecordReport
        ``accepted`` events written, ``duplicates`` already stored or repeated within the request.

    Raises
    ------
    RejectedEventsError
        When an item names a person the store does not know; nothing is written then.
    """
    ignored = sum(1 for event in events if event is None)
    present = [(index, event) for index, event in enumerate(events) if event is not None]
    if not present:
        return RecordReport(accepted=0, duplicates=0, ignored=ignored)
    with session_scope(engine) as session:
        by_external = _ids(
            session,
            select(Contact.external_id, Contact.id, Contact.external_id),
            Contact.external_id,
            {e.contact for _, e in present if e.contact is not None},
        )
        by_email = _ids(
            session,
            _identity_query(ChannelKind.EMAIL),
            ChannelIdentity.address,
            {e.email for _, e in present if e.email is not None},
        )
        by_phone = _ids(
            session,
            _identity_query(ChannelKind.SMS),
            ChannelIdentity.address,
            {e.phone for _, e in present if e.phone is not None},
        )
        problems: list[EventProblem] = []
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        repeated = 0
        for index, event in present:
            field, value = event.identity
            found = {"contact": by_external, "email": by_email, "phone": by_phone}[field].get(value)
            if found is None:
                problems.append(
                    EventProblem(
                        index,
                        field,
                        f"no contact with {_described(field)} {value!r}: import the contact "
                        "(or its identity) first",
                        code="unknown_contact",
                    )
                )
                continue
            contact_id, external_id = found
            event_id = event.provider_event_id or derived_event_id(
                external_id, event.type.value, event.channel, event.at, event.value
            )
            key = (event.source, event_id)
            if key in rows:
                repeated += 1
                continue
            rows[key] = {
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
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(_EVENTS)
            .on_conflict_do_nothing(index_elements=["source", "provider_event_id"])
            .returning(_EVENTS.c.id)
        )
        written = len(session.execute(statement, list(rows.values())).all())
    return RecordReport(
        accepted=written, duplicates=repeated + len(rows) - written, ignored=ignored
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
    return {"contact": "external id", "email": "e-mail address", "phone": "phone number"}[field]
