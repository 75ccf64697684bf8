"""Events and mentions as columnar logs, with records and import rows on demand.

Ninety days of history for 20,000 people is about a million events: they are kept as arrays and
turned into :class:`EventRecord` objects or import rows only when asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.vocabulary import ConsentStatus, EventType
from tummler.simulate._population import Population
from tummler.simulate._state import Outcomes
from tummler.simulate._tables import CHANNELS, CONTACT_REF, FloatArray, IntArray

__all__ = [
    "EVENT_TYPES",
    "MENTION_TOPICS",
    "SENTIMENTS",
    "EventLog",
    "EventRecord",
    "MentionLog",
    "MentionRecord",
    "outcome_events",
]

#: Event type code ``t`` is ``EVENT_TYPES[t]``.
EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
#: What people talk about when they mention the brand (not the same as a message's TOPICS).
MENTION_TOPICS = ("delivery", "billing", "product", "support")
#: Sentiment code: 0 negative, 1 neutral, 2 positive; the score is ``code - 1``.
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class EventRecord:
    """One event: contact index, type, channel (``None`` for none), time, value, provider id."""

    contact: int
    type: EventType
    channel: str | None
    at: datetime
    value: float | None
    provider_event_id: str


@dataclass(frozen=True, eq=False)
class EventLog:
    """Events as arrays. ``channel`` is ``-1`` for none, ``value`` NaN for none, ``at`` unix seconds.

    ``send_at`` and ``variant`` identify the send an event follows; with the contact, channel and
    type they make the provider event id, which is therefore unique and the same on every run.
    """

    contact: IntArray
    type: IntArray
    channel: IntArray
    at: IntArray
    value: FloatArray
    send_at: IntArray
    variant: IntArray

    def __len__(self) -> int:
        return int(self.contact.shape[0])

    @classmethod
    def empty(cls) -> EventLog:
        ints = np.zeros(0, dtype=np.int64)
        return cls(ints, ints, ints, ints, np.zeros(0), ints, ints)

    @classmethod
    def concat(cls, logs: Sequence[EventLog]) -> EventLog:
        """All events of ``logs``, sorted by time (stable)."""
        if not logs:
            return cls.empty()
        parts = {
            name: np.concatenate([getattr(log, name) for log in logs])
            for name in ("contact", "type", "channel", "at", "value", "send_at", "variant")
        }
        order = np.argsort(parts["at"], kind="stable")
        return cls(**{name: array[order] for name, array in parts.items()})

    def count(self, event_type: EventType) -> int:
        """How many events of one type."""
        return int((self.type == EVENT_TYPES.index(event_type)).sum())

    def provider_event_ids(self, prefix: str = "sim") -> list[str]:
        """Deterministic ids: the send (contact, channel, variant, time) and the event type."""
        return [
            f"{prefix}-{c}-{ch}-{v}-{s}-{EVENT_TYPES[t].value}"
            for c, ch, v, s, t in zip(
                self.contact.tolist(),
                self.channel.tolist(),
                self.variant.tolist(),
                self.send_at.tolist(),
                self.type.tolist(),
                strict=True,
            )
        ]

    def records(self, prefix: str = "sim") -> Iterator[EventRecord]:
        """The events one by one, their provider ids made with ``prefix``."""
        ids = self.provider_event_ids(prefix)
        for i, (c, t, ch, at, value) in enumerate(
            zip(
                self.contact.tolist(),
                self.type.tolist(),
                self.channel.tolist(),
                self.at.tolist(),
                self.value.tolist(),
                strict=True,
            )
        ):
            yield EventRecord(
                contact=c,
                type=EVENT_TYPES[t],
                channel=CHANNELS[ch].value if ch >= 0 else None,
                at=datetime.fromtimestamp(at, UTC),
                value=None if np.isnan(value) else value,
                provider_event_id=ids[i],
            )

    def consent_rows(
        self, population: Population, source: str = "unsubscribe link"
    ) -> list[dict[str, Any]]:
        """Rows for ``tummler import consent``: one revocation per unsubscribe event."""
        index = np.flatnonzero(self.type == EVENT_TYPES.index(EventType.UNSUBSCRIBED))
        return [
            {
                CONTACT_REF: str(population.external_id[self.contact[i]]),
                "channel": CHANNELS[int(self.channel[i])].value,
                "status": ConsentStatus.REVOKED.value,
                "source": source,
                "at": datetime.fromtimestamp(int(self.at[i]), UTC),
            }
            for i in index.tolist()
        ]

    def columns(self, population: Population, source: str = "simulator") -> dict[str, Any]:
        """Columns for ``tummler import events`` (``IMPORT_COLUMNS["events"]``).

        Times are ``datetime64[s]`` (UTC); a missing channel or value is ``None`` in an object
        column, so that ``pyarrow.table`` writes a null (not an empty string or NaN, which an
        importer rightly refuses). ``pandas.DataFrame`` takes the dict as it is too.
        """
        channel_names = np.asarray([c.value for c in CHANNELS] + [None], dtype=object)
        type_names = np.asarray([t.value for t in EVENT_TYPES])
        value = self.value.astype(object)
        value[np.isnan(self.value)] = None
        return {
            CONTACT_REF: population.external_id[self.contact],
            "type": type_names[self.type],
            "channel": channel_names[self.channel],
            "value": value,
            "at": self.at.astype("datetime64[s]"),
            "source": np.full(len(self), source),
            "provider_event_id": np.asarray(self.provider_event_ids(), dtype=np.str_),
        }

    def rows(self, population: Population, source: str = "simulator") -> list[dict[str, Any]]:
        """Rows for ``tummler import events`` (``datetime`` times, ``None`` for no channel/value)."""
        return [
            {
                CONTACT_REF: str(population.external_id[record.contact]),
                "type": record.type.value,
                "channel": record.channel,
                "value": record.value,
                "at": record.at,
                "source": source,
                "provider_event_id": record.provider_event_id,
            }
            for record in self.records()
        ]


def outcome_events(
    population: Population, outcomes: Outcomes, rng: np.random.Generator
) -> EventLog:
    """The events a provider would report for a round's outcomes, with realistic delays.

    Delivered (or bounced) within a minute. Most opens happen around the person's own peak hour
    of activity (so the hours at which someone acts, read off their events, reveal their daily
    rhythm), the others within an hour or so; a click follows its open by minutes, a conversion
    its click within the hour; replies, unsubscribes and complaints come hours later. Refused
    sends (no identity or consent) leave no event.
    """
    sent = outcomes.sent_at
    m = len(outcomes)
    to_peak = np.mod(population.hidden.peak_hour[outcomes.contact] - outcomes.hour, 24.0) * 3600.0
    at_peak = np.maximum(to_peak + rng.normal(0.0, 2700.0, size=m), 60.0)
    soon = rng.exponential(3600.0, size=m) + 60.0
    delays = {
        "deliver": rng.integers(2, 60, size=m),
        "open": np.round(np.where(rng.random(m) < 0.6, at_peak, soon)).astype(np.int64),
        "click": np.round(rng.exponential(600.0, size=m)).astype(np.int64) + 5,
        "convert": np.round(rng.exponential(1800.0, size=m)).astype(np.int64) + 30,
        "later": np.round(rng.exponential(5 * 3600.0, size=m)).astype(np.int64) + 60,
    }
    opened_at = sent + delays["open"]
    clicked_at = opened_at + delays["click"]
    nan = np.full(m, np.nan)
    kinds: list[tuple[EventType, npt.NDArray[np.bool_], IntArray, FloatArray]] = [
        (EventType.DELIVERED, outcomes.delivered, sent + delays["deliver"], nan),
        (
            EventType.BOUNCED,
            outcomes.allowed & ~outcomes.delivered,
            sent + delays["deliver"],
            nan,
        ),
        (EventType.OPENED, outcomes.opened, opened_at, nan),
        (EventType.CLICKED, outcomes.clicked, clicked_at, nan),
        (EventType.CONVERTED, outcomes.converted, clicked_at + delays["convert"], outcomes.value),
        (EventType.REPLIED, outcomes.replied, sent + delays["later"], nan),
        (EventType.UNSUBSCRIBED, outcomes.unsubscribed, sent + delays["later"] + 17, nan),
        (EventType.COMPLAINED, outcomes.complained, sent + delays["later"] + 29, nan),
    ]
    logs = []
    for event_type, happened, at, value in kinds:
        index = np.flatnonzero(happened)
        logs.append(
            EventLog(
                contact=outcomes.contact[index],
                type=np.full(index.shape[0], EVENT_TYPES.index(event_type), dtype=np.int64),
                channel=outcomes.channel[index],
                at=at[index],
                value=value[index],
                send_at=sent[index],
                variant=outcomes.variant[index],
            )
        )
    return EventLog.concat(logs)


@dataclass(frozen=True)
class MentionRecord:
    """One public post about the brand; ``contact`` is ``None`` for authors outside the base."""

    channel: str
    external_id: str
    author_handle: str
    text: str
    at: datetime
    contact: int | None
    sentiment: float
    topic: str


@dataclass(frozen=True, eq=False)
class MentionLog:
    """Mentions as arrays; ``sentiment`` and ``topic`` are the truth a listener should recover.

    ``contact`` is ``-1`` for authors outside the contact base; ``sentiment`` is ``-1``, ``0`` or
    ``1``; ``topic`` indexes :data:`MENTION_TOPICS`.
    """

    channel: IntArray
    external_id: npt.NDArray[np.str_]
    author_handle: npt.NDArray[np.str_]
    text: npt.NDArray[np.str_]
    at: IntArray
    contact: IntArray
    sentiment: FloatArray
    topic: IntArray

    def __len__(self) -> int:
        return int(self.channel.shape[0])

    def records(self) -> Iterator[MentionRecord]:
        """The mentions one by one."""
        for i in range(len(self)):
            contact = int(self.contact[i])
            yield MentionRecord(
                channel=CHANNELS[int(self.channel[i])].value,
                external_id=str(self.external_id[i]),
                author_handle=str(self.author_handle[i]),
                text=str(self.text[i]),
                at=datetime.fromtimestamp(int(self.at[i]), UTC),
                contact=contact if contact >= 0 else None,
                sentiment=float(self.sentiment[i]),
                topic=MENTION_TOPICS[int(self.topic[i])],
            )

    def rows(self) -> list[dict[str, Any]]:
        """Rows for ``tummler import mentions``: ``channel,external_id,author_handle,text,at``."""
        return [
            {
                "channel": record.channel,
                "external_id": record.external_id,
                "author_handle": record.author_handle,
                "text": record.text,
                "at": record.at,
            }
            for record in self.records()
        ]
