"""Providers' webhook shapes (SendGrid, Mailgun, Twilio) turned into :class:`IncomingEvent` items.

Each parser checks its payload field by field and collects every problem, naming the item and the
field, so that one request reports all its mistakes at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tummler.app.callbacks.events import EventProblem, IncomingEvent, RejectedEventsError
from tummler.app.ingest.fields import (
    FieldError,
    normalize_email,
    normalize_phone,
    parse_timestamp,
)
from tummler.core.vocabulary import ChannelKind, EventType

__all__ = [
    "MAILGUN_EVENTS",
    "SENDGRID_EVENTS",
    "SMS_STOP_WORDS",
    "TWILIO_STATUSES",
    "bare_message_id",
    "mailgun_event",
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
