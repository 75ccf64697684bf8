"""The lever rules that planning and sending share: one quiet-hours rule, one override vocabulary.

The planner asks "which minutes of the day are quiet?" over a grid; the outbox asks "when does the
quiet time around this moment end?". The properties below say the two answers agree.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tummler.decide import (
    MINUTES_PER_DAY,
    Override,
    active_overrides,
    quiet_minutes,
    quiet_slots,
    quiet_until,
)
from tummler.strategy import Override as StrategyOverride
from tummler.strategy import QuietHours

clock_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
minutes_of_day = st.integers(0, MINUTES_PER_DAY - 1)
DAY = date(2026, 3, 2)


def _at(minute: int) -> datetime:
    return datetime.combine(DAY, time(minute // 60, minute % 60))


@given(start=clock_times, end=clock_times, minute=minutes_of_day)
def test_a_minute_is_quiet_exactly_when_the_outbox_would_wait(
    start: time, end: time, minute: int
) -> None:
    planner = bool(quiet_minutes([minute], start, end)[0])
    outbox = quiet_until(_at(minute), start, end)
    assert planner == (outbox is not None)


@given(start=clock_times, end=clock_times, minute=minutes_of_day)
def test_the_quiet_time_ends_at_the_first_minute_the_planner_calls_open(
    start: time, end: time, minute: int
) -> None:
    ending = quiet_until(_at(minute), start, end)
    if ending is None:
        return
    grid = np.arange(minute, minute + 2 * MINUTES_PER_DAY) % MINUTES_PER_DAY
    quiet = quiet_minutes(grid, start, end)
    first_open = int(np.argmin(quiet))
    assert not quiet[first_open]
    assert ending == _at(minute) + timedelta(minutes=first_open)
    assert ending.time() == end


@pytest.mark.parametrize(
    ("start", "end", "minute", "quiet"),
    [
        (time(22), time(7), 22 * 60, True),  # the start is quiet
        (time(22), time(7), 7 * 60, False),  # the end is not
        (time(22), time(7), 0, True),  # midnight inside a window that wraps it
        (time(9), time(17), 12 * 60, True),
        (time(9), time(17), 17 * 60, False),
        (time(9), time(9), 9 * 60, False),  # an empty window
    ],
)
def test_quiet_minutes_table(start: time, end: time, minute: int, quiet: bool) -> None:
    assert bool(quiet_minutes([minute], start, end)[0]) is quiet


def test_the_quiet_time_around_midnight_ends_the_next_morning() -> None:
    assert quiet_until(datetime(2026, 3, 2, 23, 30), time(22), time(7)) == datetime(
        2026, 3, 3, 7, 0
    )
    assert quiet_until(datetime(2026, 3, 3, 1, 0), time(22), time(7)) == datetime(2026, 3, 3, 7)


def test_the_planners_grid_per_channel_and_the_override() -> None:
    windows = [QuietHours(start=time(22), end=time(7)), None]
    minutes = np.array([60, 600, 23 * 60])
    assert quiet_slots(windows, minutes).tolist() == [[True, False, True], [False] * 3]
    assert not quiet_slots(windows, minutes, overridden=True).any()


def test_one_override_vocabulary_for_the_strategy_the_planner_and_the_outbox() -> None:
    assert StrategyOverride is Override
    assert active_overrides(True, ["quiet_hours"]) == {Override.QUIET_HOURS}
    assert active_overrides(False, list(Override)) == frozenset()
    with pytest.raises(ValueError, match="consent"):
        active_overrides(True, ["consent"])
