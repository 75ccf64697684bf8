"""Send slots in each contact's own time zone.

A slot is a day of the planning horizon and a time of day in the contact's zone. Its UTC time is
found per zone and per day with :mod:`zoneinfo` (:func:`local_slots_to_utc`), so a daylight-saving
change inside the horizon moves the UTC time of the later slots, never their local time: a local
time that does not exist that day (clocks spring forward over it) is no slot that day, and one that
happens twice (clocks fall back) is sent at its first occurrence (``fold=0``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from tummler.app.planning.setup import _Setup
from tummler.decide import Eligibility, Reason


def local_slots_to_utc(
    zone: tzinfo, reference: datetime, slot_minutes: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The UTC time of local send slots in one time zone, day by day, daylight saving included.

    Parameters
    ----------
    zone
        The contact's time zone (a :class:`zoneinfo.ZoneInfo`).
    reference
        A naive wall time (a Monday 00:00) that slots count from, read as UTC for the result.
    slot_minutes
        ``(n_slots,)`` each slot's local wall time, in minutes after ``reference``.

    Returns
    -------
    numpy.ndarray
        ``(n_slots,)`` each slot's UTC time in minutes after ``reference`` (as UTC); ``nan`` for a
        wall time that does not exist in ``zone`` (skipped when clocks spring forward). A wall time
        that exists twice (clocks fall back) maps to its first occurrence (``fold=0``).

    Examples
    --------
    Berlin leaves summer time on Sunday 2026-10-25: 09:00 is 07:00 UTC on Saturday, 08:00 UTC on
    Sunday.

    >>> from zoneinfo import ZoneInfo
    >>> monday = datetime(2026, 10, 19)
    >>> saturday, sunday = 5 * 1440 + 9 * 60, 6 * 1440 + 9 * 60
    >>> (local_slots_to_utc(ZoneInfo("Europe/Berlin"), monday, [saturday, sunday]) % 1440) / 60
    array([7., 8.])
    """
    minutes = np.asarray(slot_minutes, dtype=np.int64).reshape(-1)
    out = np.full(minutes.shape, np.nan)
    epoch = reference.replace(tzinfo=UTC)
    for i, value in enumerate(minutes.tolist()):
        local = reference + timedelta(minutes=value)
        utc = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) != local:
            continue  # in the gap of a spring-forward change: no such wall time that day
        out[i] = (utc - epoch).total_seconds() / 60
    return out


class _ZoneSlots:
    """Per time zone seen in the audience, the UTC time of every slot of the action set.

    Computed once per zone (a few hundred slots), so the per-contact cost is one table lookup. An
    unknown zone is planned as UTC (and named in the plan's notes).
    """

    def __init__(self, setup: _Setup) -> None:
        self._reference = setup.reference
        self._slot_minutes = setup.slot_minutes
        self._index: dict[str, int] = {}
        self._tables: list[npt.NDArray[np.float64]] = []
        self._stacked: npt.NDArray[np.float64] | None = None

    def index(self, zone: str | None) -> int:
        name = zone or "UTC"
        found = self._index.get(name)
        if found is None:
            try:
                info: tzinfo = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                info = UTC
            found = self._index[name] = len(self._tables)
            self._tables.append(local_slots_to_utc(info, self._reference, self._slot_minutes))
            self._stacked = None
        return found

    @property
    def table(self) -> npt.NDArray[np.float64]:
        """``(n_zones, n_slots)`` UTC minutes after the reference, ``nan`` where no such time."""
        if self._stacked is None:
            self._stacked = (
                np.stack(self._tables)
                if self._tables
                else np.zeros((0, self._slot_minutes.size), np.float64)
            )
        return self._stacked


def _utc_offset_minutes(zone: str | None, at: datetime, cache: dict[str, float | None]) -> float:
    name = zone or "UTC"
    if name not in cache:
        try:
            offset = at.astimezone(ZoneInfo(name)).utcoffset()
            cache[name] = offset.total_seconds() / 60 if offset is not None else 0.0
        except (ZoneInfoNotFoundError, ValueError):
            cache[name] = None
    value = cache[name]
    return 0.0 if value is None else value


def _with_slots(
    eligibility: Eligibility, setup: _Setup, utc: npt.NDArray[np.float64]
) -> Eligibility:
    """Add the slot rules, to the minute: each channel's own send times, its quiet hours, and the
    planning horizon (in UTC, per contact: ``utc`` is ``(n, n_slots)`` minutes after the reference,
    ``nan`` for a local time that does not exist that day, which is never inside)."""
    start = (setup.start.replace(tzinfo=None) - setup.reference).total_seconds() / 60
    end = (setup.end.replace(tzinfo=None) - setup.reference).total_seconds() / 60
    inside = (utc >= start) & (utc < end)
    own = setup.channel_slot[None, :, :] & inside[:, None, :]  # (n, n_ch, n_sl)
    loud = own & ~setup.quiet_slot[None, :, :]
    reasons = eligibility.reasons.copy()
    quieted = (own & setup.quiet_slot[None, :, :]).any(axis=2)
    reasons |= np.where(quieted, Reason.QUIET_HOURS.value, 0).astype(np.uint8)
    reasons |= np.where(~own.any(axis=2), Reason.OUTSIDE_WINDOW.value, 0).astype(np.uint8)
    return Eligibility(
        channel_ok=eligibility.channel_ok, slot_ok=eligibility.slot_ok & loud, reasons=reasons
    )
