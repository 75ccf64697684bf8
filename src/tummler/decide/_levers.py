"""The lever rules that planning and sending share: quiet hours and the critical overrides.

One rule, two questions. The planner asks, for a whole grid of send slots at once, "which local
minutes of the day are quiet?" (:func:`quiet_minutes`, :func:`quiet_slots`); the outbox asks, for one
delivery at send time, "when does the quiet time that contains this local moment end?"
(:func:`quiet_until`). Both read a window ``[start, end)`` of local clock times that wraps midnight
when ``end`` is before ``start`` (``22:00``–``07:00``); a window whose start equals its end is empty.

A ``critical`` message may override the rules its strategy lists (:class:`Override`), never consent:
:func:`active_overrides` is what a message gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tummler.core.vocabulary import Override

__all__ = [
    "MINUTES_PER_DAY",
    "Override",
    "QuietWindow",
    "active_overrides",
    "quiet_minutes",
    "quiet_slots",
    "quiet_until",
]

MINUTES_PER_DAY = 24 * 60


class QuietWindow(Protocol):
    """Anything with a ``start`` and an ``end`` local time, e.g. a strategy channel's
    ``quiet_hours``."""

    @property
    def start(self) -> time: ...

    @property
    def end(self) -> time: ...


def _minute(clock: time) -> int:
    return clock.hour * 60 + clock.minute


def quiet_minutes(minute_of_day: ArrayLike, start: time, end: time) -> NDArray[np.bool_]:
    """Whether each local minute of the day (``0`` to ``1439``) falls in the quiet hours.

    >>> quiet_minutes([21 * 60, 23 * 60, 6 * 60, 7 * 60], time(22), time(7)).tolist()
    [False, True, True, False]
    >>> quiet_minutes([0, 720], time(9), time(9)).tolist()
    [False, False]
    """
    minutes = np.asarray(minute_of_day)
    first, last = _minute(start), _minute(end)
    if first <= last:
        return np.asarray((minutes >= first) & (minutes < last), dtype=bool)
    return np.asarray((minutes >= first) | (minutes < last), dtype=bool)


def quiet_slots(
    windows: Sequence[QuietWindow | None],
    minute_of_day: ArrayLike,
    *,
    overridden: bool = False,
) -> NDArray[np.bool_]:
    """The planner's ``(channels, slots)`` mask: ``True`` where a channel's quiet hours hold a slot.

    Parameters
    ----------
    windows
        Each channel's quiet hours, or ``None`` for a channel without any.
    minute_of_day
        Each slot's local minute of the day.
    overridden
        The message overrides quiet hours (:attr:`Override.QUIET_HOURS`): no slot is quiet.

    >>> from types import SimpleNamespace as Q
    >>> quiet_slots([Q(start=time(22), end=time(7)), None], [60, 600]).tolist()
    [[True, False], [False, False]]
    """
    minutes = np.asarray(minute_of_day)
    mask = np.zeros((len(windows), minutes.shape[0]), dtype=bool)
    if overridden:
        return mask
    for row, window in enumerate(windows):
        if window is not None:
            mask[row] = quiet_minutes(minutes, window.start, window.end)
    return mask


def quiet_until(local: datetime, start: time, end: time) -> datetime | None:
    """When the quiet hours that contain ``local`` end, in ``local``'s time zone (``None``
    when ``local`` is outside them).

    The end is the next ``end`` o'clock on the local wall clock, today or tomorrow.

    >>> quiet_until(datetime(2026, 3, 2, 23, 30), time(22), time(7))
    datetime.datetime(2026, 3, 3, 7, 0)
    >>> quiet_until(datetime(2026, 3, 2, 12, 0), time(22), time(7)) is None
    True
    """
    minute = local.hour * 60 + local.minute
    if not bool(quiet_minutes(minute, start, end)):
        return None
    ending = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if ending <= local:
        ending = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=local.tzinfo)
    return ending


def active_overrides(critical: bool, allowed: Iterable[Override | str]) -> frozenset[Override]:
    """What a message may override: the strategy's ``allowed`` list for a critical message,
    nothing otherwise.

    >>> sorted(active_overrides(True, ["fatigue", Override.QUIET_HOURS]))
    [<Override.FATIGUE: 'fatigue'>, <Override.QUIET_HOURS: 'quiet_hours'>]
    >>> active_overrides(False, ["fatigue"])
    frozenset()
    """
    return frozenset(Override(o) for o in allowed) if critical else frozenset()
