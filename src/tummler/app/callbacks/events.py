"""The events a caller reports, the problems found in them, and what storing them did."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tummler.app.suppression import external_id_key, identity_key
from tummler.core.clock import ensure_utc
from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind, EventType

__all__ = ["EventProblem", "IncomingEvent", "RecordReport", "RejectedEventsError"]


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
