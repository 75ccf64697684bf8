"""The strategy's rules that the worker re-checks at send time, and the unsubscribe links.

The rules themselves (quiet hours, the critical overrides) are :mod:`tummler.decide`'s, the same
ones the planner applies; this module only carries a strategy's settings to the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr

from tummler.app.unsubscribe import unsubscribe_url
from tummler.core.clock import ensure_utc
from tummler.core.vocabulary import ChannelKind
from tummler.decide import Override, quiet_until
from tummler.strategy import MessageCategory, Strategy

__all__ = [
    "PLACEHOLDER_PUBLIC_URL",
    "SET_PUBLIC_URL",
    "ChannelRule",
    "SendRules",
    "Unsubscribe",
    "is_transactional",
    "message_attributes",
    "needs_unsubscribe",
    "quiet_until_utc",
]


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """What the worker needs to know about one channel of the strategy.

    Attributes
    ----------
    kind
        The channel's kind: picks the connector and the consent/identity names.
    public
        A public post (no recipient needed) or a private message.
    quiet_hours
        ``(start, end)`` local times with no sends (may wrap midnight), or ``None``.
    frequency_cap
        ``(count, window)``: at most ``count`` sends on this channel per ``window``, or ``None``.
    consent_required
        Whether a granted consent is needed (a public post may not need one).
    """

    kind: ChannelKind
    public: bool = False
    quiet_hours: tuple[time, time] | None = None
    frequency_cap: tuple[int, timedelta] | None = None
    consent_required: bool = True


@dataclass(frozen=True, slots=True)
class SendRules:
    """The strategy's rules the worker re-checks at send time.

    Build it with :meth:`from_strategy`; the default (no strategy) knows each channel only by its
    kind (``email``...) and checks consent only.
    """

    channels: Mapping[str, ChannelRule] = field(default_factory=dict)
    fatigue_window: timedelta | None = None
    fatigue_cap: int | None = None
    critical_overrides: frozenset[Override] = frozenset()

    def __post_init__(self) -> None:
        # names as written in a strategy file ("fatigue") become the one vocabulary
        overrides = frozenset(Override(o) for o in self.critical_overrides)
        object.__setattr__(self, "critical_overrides", overrides)

    @classmethod
    def from_strategy(cls, strategy: Strategy) -> SendRules:
        """The channels' quiet hours and caps, the shared fatigue cap and the critical overrides."""
        channels = {
            channel.id: ChannelRule(
                kind=channel.kind,
                public=channel.public,
                quiet_hours=None
                if channel.quiet_hours is None
                else (channel.quiet_hours.start, channel.quiet_hours.end),
                frequency_cap=None
                if channel.frequency_cap is None
                else (channel.frequency_cap.count, channel.frequency_cap.window),
                consent_required=channel.consent_required,
            )
            for channel in strategy.channels
        }
        policy = strategy.lever_policy
        return cls(
            channels=channels,
            fatigue_window=policy.fatigue.window,
            fatigue_cap=policy.fatigue.cap,
            critical_overrides=frozenset(policy.critical_overrides),
        )

    def rule(self, channel: str) -> ChannelRule | None:
        """The rule for a delivery's channel id; a bare kind (``email``) gets a default rule."""
        found = self.channels.get(channel)
        if found is not None:
            return found
        try:
            return ChannelRule(kind=ChannelKind(channel))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """How e-mails get their unsubscribe link: the HTTP app's public URL and the signing key.

    Raises
    ------
    ConfigError
        When ``base_url`` is not an http(s) URL with a host.
    """

    base_url: str
    key: SecretStr

    def __post_init__(self) -> None:
        unsubscribe_url(self.base_url, "")  # refuses a base URL no link can be made from


#: The base URL a dry run gives unsubscribe links when no public URL is set: ``.invalid`` never
#: resolves (RFC 2606), and the name says what is missing.
PLACEHOLDER_PUBLIC_URL = "https://public-url-not-set.invalid"

#: What to do when marketing e-mail has no unsubscribe link.
SET_PUBLIC_URL = (
    "give the outbox the public URL of the HTTP app (`tummler serve`) that unsubscribe links "
    "point to: `tummler send --public-url https://...`, TUMMLER_PUBLIC_URL or public_url in "
    "tummler.toml"
)


def message_attributes(definition: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The ``message:`` attributes of a stored campaign definition (``{}`` when it has none)."""
    found = (definition or {}).get("message")
    return found if isinstance(found, Mapping) else {}


def is_transactional(definition: Mapping[str, Any] | None) -> bool:
    """Whether a stored campaign definition marks its message ``category: transactional``."""
    category = message_attributes(definition).get("category")
    return bool(category == MessageCategory.TRANSACTIONAL.value)


def needs_unsubscribe(kind: ChannelKind, *, transactional: bool) -> bool:
    """Marketing e-mail must carry an unsubscribe link and the one-click headers (RFC 8058);
    a transactional message (a receipt, a password reset) may go without.

    >>> needs_unsubscribe(ChannelKind.EMAIL, transactional=False)
    True
    >>> needs_unsubscribe(ChannelKind.EMAIL, transactional=True)
    False
    >>> needs_unsubscribe(ChannelKind.SMS, transactional=False)
    False
    """
    return kind is ChannelKind.EMAIL and not transactional


def quiet_until_utc(now: datetime, zone: str, quiet_hours: tuple[time, time]) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC) in the time zone ``zone`` (an unknown zone
    counts as UTC), or ``None`` outside them: :func:`tummler.decide.quiet_until` on the local
    clock."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    ending = quiet_until(now.astimezone(tz), *quiet_hours)
    return None if ending is None else ensure_utc(ending)
