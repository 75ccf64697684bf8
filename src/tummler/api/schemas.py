"""What the API reads and answers: ``XCreate`` for bodies, ``XPublic`` for responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tummler.app.callbacks import IncomingEvent, RecordReport
from tummler.app.ingest.schemas import normalize_email, normalize_phone, parse_timestamp
from tummler.core.vocabulary import ChannelKind, EventType

__all__ = ["EventBatch", "EventCreate", "EventsAccepted", "HealthPublic", "unstorable"]


def unstorable(text: str) -> str | None:
    """Why no store can hold ``text`` (a NUL character, an unpaired surrogate), or ``None``.

    JSON can carry both (``"\\u0000"``, ``"\\ud800"``); PostgreSQL refuses the first and UTF-8 the
    second, so they are refused at the door, with the field, instead of failing in the store.

    >>> unstorable("ana") is None
    True
    >>> unstorable("a\\x00b")
    'a NUL character (\\\\u0000)'
    """
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "an unpaired surrogate (\\ud800 to \\udfff, not UTF-8)"
    return None


def _email(raw: str | None) -> str | None:
    return None if raw is None else normalize_email(raw)


def _phone(raw: str | None) -> str | None:
    if raw is None:
        return None
    # The API has no --default-region: a number must carry its country code.
    if not raw.strip().startswith(("+", "00")):
        raise ValueError("a phone number needs its country code in E.164, e.g. +33612345678")
    return normalize_phone(raw)


class EventCreate(BaseModel):
    """One event: who (at most one of ``contact``, ``email``, ``phone``, or a ``provider_message_id``
    that finds the delivery and so the person), what, when, from where.

    ``at`` is ISO 8601 (no zone = UTC) or unix seconds. Without ``provider_event_id`` the event gets an
    id derived from its content, the same the file import derives, so sending it twice stores it once.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    contact: str | None = Field(
        default=None, min_length=1, max_length=255, description="The contact's external id."
    )
    email: Annotated[str | None, AfterValidator(_email)] = Field(
        default=None, description="The contact's e-mail address (an identity on the email channel)."
    )
    phone: Annotated[str | None, AfterValidator(_phone)] = Field(
        default=None, description="The contact's phone number in E.164 (+33612345678)."
    )
    type: EventType
    channel: ChannelKind | None = None
    value: float | None = Field(
        default=None, allow_inf_nan=False, description="e.g. the revenue of a conversion."
    )
    at: Annotated[datetime, BeforeValidator(parse_timestamp)] = Field(
        description="When it happened: ISO 8601 (no zone = UTC) or unix seconds."
    )
    source: str = Field(default="api", min_length=1, max_length=64)
    provider_event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The sender's id of this event; a repeat of (source, id) is a duplicate.",
    )
    provider_message_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The provider's message id (or the SMTP Message-ID tummler set): ties the event "
        "to its delivery and decision; the person may then go unnamed.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if isinstance(value, str) and (why := unstorable(value)) is not None:
            raise PydanticCustomError(
                "unstorable_text", "text with {why} cannot be stored", {"why": why}
            )
        return value

    @model_validator(mode="after")
    def _one_person(self) -> EventCreate:
        named = [n for n in ("contact", "email", "phone") if getattr(self, n) is not None]
        if len(named) > 1 or (not named and self.provider_message_id is None):
            raise PydanticCustomError(
                "one_identity",
                "name the person with exactly one of contact (external id), email or phone "
                "(or give provider_message_id); got {named}",
                {"named": ", ".join(named) or "none"},
            )
        return self

    def to_incoming(self) -> IncomingEvent:
        return IncomingEvent(
            self.type,
            self.at,
            contact=self.contact,
            email=self.email,
            phone=self.phone,
            channel=self.channel,
            value=self.value,
            source=self.source,
            provider_event_id=self.provider_event_id,
            provider_message_id=self.provider_message_id,
        )


class EventBatch(RootModel[list[EventCreate]]):
    """One event, or a JSON array of them (stored all together or not at all)."""

    root: list[EventCreate] = Field(max_length=10_000)

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class EventsAccepted(BaseModel):
    """What a POST of events did."""

    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events already stored (or repeated in the request).")
    ignored: int = Field(
        default=0, description="Provider reports that carry nothing to learn from (not stored)."
    )
    suppressed: int = Field(
        default=0,
        description="Events about people who were forgotten: refused, not stored, not an error.",
    )
    revoked: int = Field(
        default=0, description="Consent revocations written for unsubscribes and complaints."
    )

    @classmethod
    def of(cls, report: RecordReport) -> EventsAccepted:
        return cls(
            accepted=report.accepted,
            duplicates=report.duplicates,
            ignored=report.ignored,
            suppressed=report.suppressed,
            revoked=report.revoked,
        )


class HealthPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    version: str
