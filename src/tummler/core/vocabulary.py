"""The domain's closed vocabularies: channels, stages, event types and the like.

These are ``StrEnum`` so that they store and print as their plain value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ChannelKind",
    "ConsentStatus",
    "DeliveryStatus",
    "EdgeKind",
    "EventType",
    "Override",
    "Stage",
]


class ChannelKind(StrEnum):
    """The kinds of lever a brand can pull."""

    EMAIL = "email"
    SMS = "sms"
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    LINKEDIN = "linkedin"
    WEBHOOK = "webhook"


class Stage(StrEnum):
    """Where a relationship stands; it moves with good and bad experiences."""

    PROSPECT = "prospect"
    SUBSCRIBER = "subscriber"
    CUSTOMER = "customer"
    ADVOCATE = "advocate"
    LAPSED = "lapsed"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    REVOKED = "revoked"


class EventType(StrEnum):
    """What a person did, or what a provider reported, after (or without) a message.

    ``opened`` is recorded but is not a reward by default: privacy proxies open mail on their own.
    """

    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    CONVERTED = "converted"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"
    VISITED = "visited"


class EdgeKind(StrEnum):
    FOLLOWS = "follows"
    MENTIONS = "mentions"
    REPLIED = "replied"
    REFERRED = "referred"


class DeliveryStatus(StrEnum):
    """The outbox's states. ``unknown``: the connector may or may not have handed it over."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


class Override(StrEnum):
    """What a ``critical`` message may override. Consent is never overridable.

    One vocabulary for the strategy file, the planner and the outbox (see
    :mod:`tummler.decide` for the rules themselves).
    """

    LEVER_BUDGET = "lever_budget"
    FATIGUE = "fatigue"
    FREQUENCY_CAP = "frequency_cap"
    QUIET_HOURS = "quiet_hours"
    RELEVANCE = "relevance"
