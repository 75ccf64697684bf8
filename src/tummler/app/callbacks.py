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
  that matches nobody is refused, naming the item and the value. One that names a forgotten person
  (:mod:`tummler.app.suppression`) is counted as *suppressed* and not stored: not an error, the
  store keeping its promise;
* **consent follows**: an ``unsubscribed`` or ``complained`` event appends the consent revocation it
  implies (:func:`tummler.app.consent.revocations`) in the same transaction, so the next plan and the
  outbox's check at send time already see it.

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

Twilio incoming messages (the number's "a message comes in" webhook, :func:`twilio_reply`): every
reply is a ``replied`` event from the sender (``From``); a reply that is one of the carriers'
opt-out keywords (:data:`SMS_STOP_WORDS`: ``STOP``, ``STOPALL``, ``UNSUBSCRIBE``, ``CANCEL``,
``END``, ``QUIT``, alone in the message, in any case — the single-word rule Twilio applies), or that
Twilio's Advanced Opt-Out marks ``OptOutType=STOP``, is also an ``unsubscribed`` event on ``sms``,
which revokes SMS consent at once. An opt-in keyword (``START``) does not grant consent: a grant
needs the brand's own record of it.

Deliveries. A report that carries the provider's message id (SendGrid ``sg_message_id`` without the
``.filter…`` suffix SendGrid appends, Mailgun ``message.headers.message-id``, Twilio ``MessageSid``, the
generic ``provider_message_id``) is matched to the outbox row whose ``provider_message_id`` holds it —
for SMTP, the Message-ID tummler set (:func:`tummler.deliver.stable_message_id`; angle brackets do not
matter). A matched event is stored against that delivery's decision and contact, so attribution needs no
guess; a report that matches no delivery falls back to its recipient address, as before. Where the
provider is authoritative the delivery's status follows, never backwards: a bounce (or drop) moves a
``sending``/``unknown``/``sent`` delivery to ``failed`` with the provider's reason; ``sent`` and
``delivered`` confirm a ``sending``/``unknown`` one as ``sent``; a ``failed``, ``dead`` or ``skipped``
delivery is never changed. Only a newly stored event moves a delivery, so a retried webhook changes
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, select, update

from tummler.app.consent import revocations, write_revocations
from tummler.app.ingest.schemas import (
    FieldError,
    derived_event_id,
    normalize_email,
    normalize_phone,
    parse_timestamp,
)
from tummler.app.suppression import Suppressions, external_id_key, identity_key
from tummler.core.clock import Clock, SystemClock, ensure_utc
from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind, DeliveryStatus, EventType
from tummler.store.database import conflict_insert, session_scope
from tummler.store.models import ChannelIdentity, Contact, Decision, Delivery, Event
from tummler.strategy import ComplaintScope

__all__ = [
    "MAILGUN_EVENTS",
    "SENDGRID_EVENTS",
    "SMS_STOP_WORDS",
    "TWILIO_STATUSES",
    "EventProblem",
    "IncomingEvent",
    "RecordReport",
    "RejectedEventsError",
    "bare_message_id",
    "mailgun_event",
    "record_events",
    "sendgrid_events",
    "twilio_event",
    "twilio_reply",
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

#: Replies that opt out of SMS (the US carriers' standard keywords, as Twilio honours them).
SMS_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})

_EVENTS: Table = Event.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """One event as a caller reported it, checked field by field but not yet tied to a contact.

    Exactly one of ``contact`` (external id), ``email`` (normalized, lower case) and ``phone``
    (E.164) names the person; with a ``provider_message_id`` the person may go unnamed (the delivery
    names them) and the address is the fallback when no delivery matches. ``provider_event_id``
    ``None``: derived from the event's content. ``reason``: the provider's words for a bounce.
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
    provider_message_id: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        named = [n for n in ("contact", "email", "phone") if getattr(self, n) is not None]
        if len(named) > 1 or (not named and self.provider_message_id is None):
            raise InputError(
                "name the person with exactly one of contact (external id), email or phone; "
                f"got {', '.join(named) if named else 'none'}",
                field="contact",
            )
        if self.value is not None and not math.isfinite(self.value):
            raise InputError("must be a finite number", field="value")
        object.__setattr__(self, "at", ensure_utc(self.at))

    @property
    def suppression_key(self) -> str | None:
        """The key the suppression list knows the named person by (``None``: none is named)."""
        if self.contact is not None:
            return external_id_key(self.contact)
        if self.email is not None:
            return identity_key(ChannelKind.EMAIL.value, self.email)
        if self.phone is not None:
            return identity_key(ChannelKind.SMS.value, self.phone)
        return None

    @property
    def identity(self) -> tuple[str, str | None]:
        """Which field names the person, and its value (``None``: only the message id does)."""
        if self.contact is not None:
            return "contact", self.contact
        if self.email is not None:
            return "email", self.email
        if self.phone is not None:
            return "phone", self.phone
        return "provider_message_id", None


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
    """What one request did: events written, duplicates skipped, provider reports ignored, events
    about forgotten people not stored, consent revocations written."""

    accepted: int
    duplicates: int
    ignored: int = 0
    suppressed: int = 0
    revoked: int = 0


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


def bare_message_id(raw: str) -> str:
    """A provider message id as the outbox and the callbacks can both match it.

    Angle brackets (an SMTP Message-ID as tummler stores it, ``<hash@domain>``) and surrounding
    white space are dropped, so ``<abc@x>`` from one side meets ``abc@x`` from the other.

    >>> bare_message_id(" <71324a3f@news.example.org> ")
    '71324a3f@news.example.org'
    """
    return raw.strip().removeprefix("<").removesuffix(">").strip()


def _text_or_none(raw: Any, limit: int = 1000) -> str | None:
    if raw is None or raw == "" or isinstance(raw, dict | list):
        return None
    return str(raw).strip()[:limit] or None


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
        message_id = _provider_id(item.get("sg_message_id"), index, "sg_message_id", problems)
        if message_id is not None:
            # SendGrid appends ".filter<n>...." to the X-Message-Id its send API returned.
            message_id = message_id.split(".filter", 1)[0] or None
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
                provider_message_id=message_id,
                reason=_text_or_none(item.get("reason")) or _text_or_none(item.get("response")),
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
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = _provider_id(
        headers.get("message-id") if isinstance(headers, dict) else None,
        0,
        "message.headers.message-id",
        problems,
    )
    status = data.get("delivery-status")
    reason = (
        _text_or_none(status.get("message")) or _text_or_none(status.get("description"))
        if isinstance(status, dict)
        else None
    ) or _text_or_none(data.get("reason"))
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
        provider_message_id=message_id,
        reason=reason,
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
        provider_message_id=sid,
        reason=(
            f"Twilio {status}, error {params['ErrorCode']}"
            if params.get("ErrorCode")
            else f"Twilio {status}"
        )
        if kind is EventType.BOUNCED
        else None,
    )


def twilio_reply(params: Mapping[str, str], *, now: datetime) -> list[IncomingEvent]:
    """The events of one incoming SMS (Twilio's message webhook): a reply, and an opt-out if it is one.

    ``now`` is the events' time: the webhook carries none.

    Raises
    ------
    RejectedEventsError
        When ``MessageSid`` or ``From`` is missing or unusable.
    """
    problems: list[EventProblem] = []
    sid = _provider_id(_field(params, "MessageSid", 0, problems), 0, "MessageSid", problems)
    phone = _checked(normalize_phone, _field(params, "From", 0, problems), 0, "From", problems)
    if problems:
        raise RejectedEventsError([EventProblem(None, p.field, p.reason) for p in problems])
    assert phone is not None

    def event(kind: EventType, suffix: str) -> IncomingEvent:
        return IncomingEvent(
            kind,
            now,
            phone=phone,
            channel=ChannelKind.SMS,
            source="twilio",
            provider_event_id=f"{sid}/{suffix}",
        )

    word = (params.get("Body") or "").strip().strip(".!").upper()
    if word in SMS_STOP_WORDS or (params.get("OptOutType") or "").upper() == "STOP":
        return [event(EventType.REPLIED, "reply"), event(EventType.UNSUBSCRIBED, "stop")]
    return [event(EventType.REPLIED, "reply")]


# --- storing -------------------------------------------------------------------------------------


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
