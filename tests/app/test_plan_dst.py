"""Send slots across a daylight-saving change: local hours stay local, UTC times move.

A slot is a wall time in the contact's own time zone. When the planning horizon spans a change (Berlin
on 2026-03-29 and 2026-10-25, New York on 2026-03-08 and 2026-11-01, Sydney on 2026-04-05 and
2026-10-04), the UTC time of the same local hour differs before and after it; a wall time the clocks
skip is no slot that day, and one they repeat is sent at its first occurrence.
"""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from seeding import add_reachable
from tummler.app.planning import local_slots_to_utc, plan_campaign
from tummler.app.workspace import init_workspace
from tummler.core.clock import FrozenClock
from tummler.store.database import connect, session_scope
from tummler.store.models import Campaign, Contact, Decision

REORDER = "fresh-roast-reorder"
#: Daylight-saving changes of 2026 (UTC instants), by zone.
CHANGES = {
    "Europe/Berlin": (datetime(2026, 3, 29, 1, 0), datetime(2026, 10, 25, 1, 0)),
    "America/New_York": (datetime(2026, 3, 8, 7, 0), datetime(2026, 11, 1, 6, 0)),
    "Australia/Sydney": (datetime(2026, 4, 4, 16, 0), datetime(2026, 10, 3, 16, 0)),
}
ZONES = (*CHANGES, "Asia/Kolkata", "UTC")
#: E-mail sends at 01:30 and 02:30 (inside the hours the clocks skip or repeat), 09:00 and 22:30;
#: 22:00-23:00 is quiet, so 22:30 must never be used.
EMAIL_SLOTS = (time(1, 30), time(2, 30), time(9, 0), time(22, 30))
QUIET = (time(22, 0), time(23, 0))


def _exists(local: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every UTC instant (on the quarter hour) whose wall time in ``zone`` is ``local``, found by
    trying every offset from -14 h to +14 h: independent of how the code under test does it."""
    found = []
    for quarter in range(-14 * 4, 14 * 4 + 1):
        at = (local - timedelta(minutes=15 * quarter)).replace(tzinfo=UTC)
        if at.astimezone(zone).replace(tzinfo=None) == local:
            found.append(at)
    return sorted(set(found))


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    change=st.integers(0, 1),
    shift=st.integers(-3, 3),
    minutes=st.lists(st.integers(0, 10 * 1440 - 1), min_size=1, max_size=30),
)
def test_every_local_slot_maps_to_the_first_utc_instant_with_that_wall_time(
    zone: str, change: int, shift: int, minutes: list[int]
) -> None:
    info = ZoneInfo(zone)
    when = CHANGES.get(zone, CHANGES["Europe/Berlin"])[change] + timedelta(days=shift)
    monday = datetime.combine((when - timedelta(days=when.weekday() + 1)).date(), time())
    utc = local_slots_to_utc(info, monday, minutes)
    for value, result in zip(minutes, utc.tolist(), strict=True):
        local = monday + timedelta(minutes=value)
        instants = _exists(local, info)
        if not instants:
            assert math.isnan(result), f"{local} does not exist in {zone}"
            continue
        at = monday.replace(tzinfo=UTC) + timedelta(minutes=result)
        assert at == instants[0], f"{local} in {zone}: the first occurrence"
        assert at.astimezone(info).replace(tzinfo=None) == local


@pytest.mark.parametrize(
    ("monday", "saturday", "sunday"),
    [
        # Berlin falls back on Sunday 2026-10-25: 09:00 is 07:00 UTC on Saturday, 08:00 on Sunday
        (datetime(2026, 10, 19), 7 * 60, 8 * 60),
    ],
)
def test_the_same_local_hour_moves_in_utc_across_the_change(
    monday: datetime, saturday: int, sunday: int
) -> None:
    utc = local_slots_to_utc(
        ZoneInfo("Europe/Berlin"), monday, [5 * 1440 + 9 * 60, 6 * 1440 + 9 * 60]
    )
    assert utc.tolist() == [5 * 1440 + saturday, 6 * 1440 + sunday]


def test_a_skipped_wall_time_is_no_slot_and_a_repeated_one_is_its_first_occurrence() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring, autumn = datetime(2026, 3, 23), datetime(2026, 10, 19)  # the Mondays before
    sunday_0230 = 6 * 1440 + 150
    assert math.isnan(local_slots_to_utc(berlin, spring, [sunday_0230])[0])
    (first,) = local_slots_to_utc(berlin, autumn, [sunday_0230])
    assert autumn.replace(tzinfo=UTC) + timedelta(minutes=first) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )  # 02:30 CEST, not 02:30 CET an hour later


# ----------------------------------------------------------------------------------- whole plans


def _workspace(root: Path, *, slots: tuple[time, ...], quiet: tuple[time, time] | None) -> Path:
    init_workspace(root)
    path = root / "strategy.yaml"
    text = path.read_text(encoding="utf-8")
    old = '    send_slots: ["09:00", "12:30", "18:00"]\n    quiet_hours: {start: "21:00", end: "08:00"}\n'
    assert old in text
    new = f"    send_slots: [{', '.join(repr(t.strftime('%H:%M')) for t in slots)}]\n"
    if quiet is not None:
        first, last = (t.strftime("%H:%M") for t in quiet)
        new += f'    quiet_hours: {{start: "{first}", end: "{last}"}}\n'
    path.write_text(text.replace(old, new), encoding="utf-8")
    return root


def _window(root: Path, start: datetime, end: datetime) -> None:
    path = root / "campaigns" / f"{REORDER}.yaml"
    text = path.read_text(encoding="utf-8")
    window = f"window:\n  start: {start.isoformat()}\n  end: {end.isoformat()}\n"
    path.write_text(text + window, encoding="utf-8")


def _seed(engine: Engine, zones: dict[str, str], now: datetime) -> None:
    """E-mail-only customers who clicked recently, in the given zones."""
    with session_scope(engine) as session:
        for key, zone in zones.items():
            add_reachable(
                session,
                key,
                {"email": f"{key}@x.org"},
                now=now,
                zone=zone,
                since=timedelta(days=100),
                consent_since=timedelta(days=50),
                clicked_ago=timedelta(days=2),
            )


def _decisions(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(Contact.time_zone, Decision.channel, Decision.send_at, Decision.reasons)
                .join(Contact, Contact.id == Decision.contact_id)
                .join(Campaign, Campaign.id == Decision.campaign_id)
                .where(Campaign.key == REORDER)
            )
        )


def _engine(template: Path, folder: Path) -> Engine:
    path = folder / "tummler.db"
    shutil.copyfile(template, path)
    return connect(f"sqlite:///{path}")


def _quiet(local: time) -> bool:
    return QUIET[0] <= local < QUIET[1]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone=st.sampled_from(tuple(CHANGES)),
    change=st.integers(0, 1),
    before=st.integers(1, 72),
    hours=st.integers(24, 7 * 24),
    seed=st.integers(0, 2**16),
)
def test_every_send_is_inside_the_window_at_its_local_hour_and_never_quiet(
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    zone: str,
    change: int,
    before: int,
    hours: int,
    seed: int,
) -> None:
    """Windows that cross a change: the UTC time of each send maps back to the local slot the
    decision names, inside the window and outside the quiet hours."""
    folder = tmp_path_factory.mktemp("dst")
    root = _workspace(folder / "ws", slots=EMAIL_SLOTS, quiet=QUIET)
    start = CHANGES[zone][change].replace(tzinfo=UTC) - timedelta(hours=before)
    end = start + timedelta(hours=hours)
    _window(root, start, end)
    engine = _engine(sqlite_template, folder)
    now = start - timedelta(hours=1)
    zones = {f"c{i}": (zone, "UTC", "Asia/Kolkata")[i % 3] for i in range(36)}
    _seed(engine, zones, now)
    try:
        report = plan_campaign(
            engine, workspace=root, campaign_key=REORDER, clock=FrozenClock(now), seed=seed
        )
        rows = _decisions(engine)
    finally:
        engine.dispose()
    assert report.audience == 36
    sent = [r for r in rows if r.channel is not None]
    assert sent
    for row in sent:
        at = row.send_at.replace(tzinfo=UTC) if row.send_at.tzinfo is None else row.send_at
        assert start <= at < end
        local = at.astimezone(ZoneInfo(row.time_zone))
        assert local.fold == 0, "a repeated wall time is sent at its first occurrence"
        assert local.time() in EMAIL_SLOTS
        assert not _quiet(local.time())
        assert local.strftime("%a %H:%M") == row.reasons["local"]


def test_a_slot_the_clocks_skip_is_not_planned_that_day(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Berlin's 2026-03-29 has no 02:30: a campaign that may only send then, that day, sends nothing
    and says the slot was outside the window."""
    root = _workspace(tmp_path / "ws", slots=(time(2, 30),), quiet=None)
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 2026-03-29 00:00 in Berlin
    _window(root, start, start + timedelta(hours=23))
    engine = _engine(sqlite_template, tmp_path)
    _seed(engine, {f"c{i}": "Europe/Berlin" for i in range(10)}, start)
    try:
        plan_campaign(
            engine, workspace=root, campaign_key=REORDER, clock=FrozenClock(start), seed=1
        )
        rows = _decisions(engine)
    finally:
        engine.dispose()
    assert len(rows) == 10
    assert all(r.channel is None for r in rows)
    assert all("outside_window" in r.reasons["removed"]["email"] for r in rows if r.reasons)


def test_a_slot_the_clocks_repeat_is_sent_at_its_first_occurrence(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Berlin's 2026-10-25 has 02:30 twice: 00:30 UTC (summer time) and 01:30 UTC."""
    root = _workspace(tmp_path / "ws", slots=(time(2, 30),), quiet=None)
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 2026-10-25 00:00 in Berlin
    _window(root, start, start + timedelta(hours=25))
    engine = _engine(sqlite_template, tmp_path)
    _seed(engine, {f"c{i}": "Europe/Berlin" for i in range(10)}, start)
    try:
        plan_campaign(
            engine, workspace=root, campaign_key=REORDER, clock=FrozenClock(start), seed=1
        )
        rows = _decisions(engine)
    finally:
        engine.dispose()
    sent = [r for r in rows if r.channel is not None]
    assert sent
    for row in sent:
        assert row.send_at.replace(tzinfo=UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
        assert row.reasons["local"] == "Sun 02:30"
