"""Injected time: "now" comes from a clock so that tests can freeze it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock", "ensure_utc"]


class Clock(Protocol):
    """Anything that tells the current time, timezone-aware, in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until told to move.

    >>> from datetime import datetime, UTC, timedelta
    >>> clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    >>> clock.advance(timedelta(hours=2)).now().isoformat()
    '2026-01-01T02:00:00+00:00'
    """

    def __init__(self, at: datetime) -> None:
        self._at = ensure_utc(at)

    def now(self) -> datetime:
        return self._at

    def advance(self, by: timedelta) -> FrozenClock:
        self._at += by
        return self


def ensure_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
