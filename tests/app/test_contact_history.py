"""A contact's history: stage movements and attribute changes, as they happened, on both backends.

The ground truth is written down: contacts imported, re-imported and moved at known times; every
reading "as of T" must give the state the test put there at T, the import must write history only
when something changed, and a store made before the history existed upgrades with one row per
contact.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, insert, select, text
from typer.testing import CliRunner

from cli_app import rooted_cli_app
from tummler.app.contacts import (
    StageUpdate,
    contacts_as_of,
    set_stages,
    stages_as_of,
)
from tummler.app.ingest import import_file
from tummler.app.reporting import store_report
from tummler.app.workspace import init_workspace, open_store
from tummler.cli import report as report_cli
from tummler.cli.workspace import db_app
from tummler.core.clock import FrozenClock
from tummler.core.errors import ConfigError, InputError, NotFoundError
from tummler.core.vocabulary import Stage
from tummler.store.database import connect, current_revision, head_revision, upgrade
from tummler.store.models import Campaign, Contact, ContactChange, Decision
from tummler.store.throwaway import ThrowawayPostgres
from tummler.web import render_store_html

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# the tables under the models, for rows written straight in (no history, or an older schema)
CONTACTS, CAMPAIGNS, DECISIONS = (cast(Table, m.__table__) for m in (Contact, Campaign, Decision))


def _contacts(engine: Engine, n: int, *, prefix: str = "c", stage: str = "prospect") -> list[int]:
    """``n`` contacts made directly (no history rows), ids in order."""
    with engine.begin() as connection:
        connection.execute(
            insert(CONTACTS),
            [
                {
                    "external_id": f"{prefix}{i}",
                    "attributes": {"city": "Oslo", "rank": i},
                    "time_zone": "UTC",
                    "stage": stage,
                    "created_at": T0,
                    "updated_at": T0,
                }
                for i in range(n)
            ],
        )
        return [
            int(i)
            for i in connection.scalars(
                select(Contact.id)
                .where(Contact.external_id.like(f"{prefix}%"))
                .order_by(Contact.id)
            )
        ]


def _history(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [
            dict(row._mapping)
            for row in connection.execute(select(ContactChange).order_by(ContactChange.id))
        ]


def _current(engine: Engine) -> dict[int, tuple[str, datetime]]:
    with engine.connect() as connection:
        return {
            int(row.id): (row.stage, row.updated_at)
            for row in connection.execute(select(Contact.id, Contact.stage, Contact.updated_at))
        }


# --- set_stages ----------------------------------------------------------------------------------


def test_set_stages_writes_only_the_contacts_that_move(engine: Engine) -> None:
    a, b, c = _contacts(engine, 3)
    update = set_stages(
        engine,
        {a: "customer", b: Stage.PROSPECT, c: Stage.LAPSED},
        at=T0 + DAY,
        source="simulation",
    )
    assert update == StageUpdate(requested=3, changed=2, unchanged=1)
    assert _current(engine) == {
        a: ("customer", T0 + DAY),
        b: ("prospect", T0),
        c: ("lapsed", T0 + DAY),
    }
    rows = _history(engine)
    assert [
        (r["contact_id"], r["stage_before"], r["stage"], r["changed_at"], r["source"]) for r in rows
    ] == [
        (a, "prospect", "customer", T0 + DAY, "simulation"),
        (c, "prospect", "lapsed", T0 + DAY, "simulation"),
    ]
    # the attributes are copied as they are, a whole document
    assert [r["attributes"] for r in rows] == [
        {"city": "Oslo", "rank": 0},
        {"city": "Oslo", "rank": 2},
    ]
    again = set_stages(engine, {a: "customer", c: "lapsed"}, at=T0 + 2 * DAY, source="simulation")
    assert again == StageUpdate(2, 0, 2)
    assert len(_history(engine)) == 2


def test_set_stages_takes_external_ids(engine: Engine) -> None:
    a, b = _contacts(engine, 2)
    update = set_stages(engine, {"c1": "advocate"}, at=T0 + HOUR, source="crm-sync")
    assert update.changed == 1
    assert _current(engine)[b][0] == "advocate"
    assert _current(engine)[a][0] == "prospect"


def test_set_stages_takes_a_simulations_numpy_arrays(engine: Engine) -> None:
    ids = _contacts(engine, 3)
    codes = np.array([2, 0, 4])
    stages = np.array([s.value for s in Stage])[codes]
    update = set_stages(engine, dict(zip(np.array(ids), stages, strict=True)), at=T0, source="s")
    assert update == StageUpdate(3, 2, 1)
    assert [_current(engine)[cid][0] for cid in ids] == ["customer", "prospect", "lapsed"]


def test_set_stages_of_nobody_does_nothing(engine: Engine) -> None:
    assert set_stages(engine, {}, at=T0, source="simulation") == StageUpdate(0, 0, 0)


@pytest.mark.parametrize(
    ("changes", "options", "error", "message"),
    [
        (
            {0: "friend"},
            {},
            InputError,
            r"field 'changes': contact \d+: 'friend' is not a stage; use one of",
        ),
        ({1.5: "customer"}, {}, InputError, r"give a contact id \(int\) or an external id"),
        ({0: "customer"}, {"at": datetime(2026, 3, 2)}, InputError, r"has no time zone"),
        ({0: "customer"}, {"source": "  "}, InputError, r"field 'source'.*non-empty"),
        ({10**9: "customer"}, {}, NotFoundError, r"contact id\(s\) 1000000000 are not in"),
        ({"nobody": "customer"}, {}, NotFoundError, r"external id\(s\).*'nobody'.*import those"),
        ({0: "customer"}, {"at": T0 - DAY}, InputError, r"field 'at'.*before a change already"),
    ],
)
def test_bad_stage_moves_are_refused_and_write_nothing(
    engine: Engine, changes: dict[Any, str], options: dict[str, Any], error: type, message: str
) -> None:
    [first] = _contacts(engine, 1)
    set_stages(engine, {first: "subscriber"}, at=T0, source="simulation")
    before = (_history(engine), _current(engine))
    keyed = {first if key == 0 else key: stage for key, stage in changes.items()}
    with pytest.raises(error, match=message):
        set_stages(engine, keyed, **{"at": T0 + DAY, "source": "simulation", **options})
    assert (_history(engine), _current(engine)) == before


def test_twenty_thousand_contacts_move_in_one_call(engine: Engine) -> None:
    ids = _contacts(engine, 20_000)
    stages = list(Stage)
    changes = {cid: stages[i % len(stages)] for i, cid in enumerate(ids)}
    update = set_stages(engine, changes, at=T0 + DAY, source="simulation")
    assert update == StageUpdate(20_000, 16_000, 4_000)  # one in five already a prospect
    with engine.connect() as connection:
        now = stages_as_of(connection, ids, T0 + DAY)
        then = stages_as_of(connection, ids, T0)
    assert now == {cid: str(stage) for cid, stage in changes.items()}
    assert set(then.values()) == {"prospect"}


# --- as of a time ----------------------------------------------------------------------------------


def test_contacts_as_of_follow_the_history(engine: Engine) -> None:
    a, b = _contacts(engine, 2)
    # a: no history before T0 + DAY; moves twice; b: never moves, no history at all
    set_stages(engine, {a: "subscriber"}, at=T0 + DAY, source="s")
    set_stages(engine, {a: "customer"}, at=T0 + 3 * DAY, source="s")
    with engine.connect() as connection:

        def stage_of(at: datetime) -> dict[int, str]:
            return stages_as_of(connection, [a, b], at)

        assert stage_of(T0) == {a: "prospect", b: "prospect"}  # before any row: stage_before
        assert stage_of(T0 + DAY) == {a: "subscriber", b: "prospect"}  # at the change: after it
        assert stage_of(T0 + 2 * DAY) == {a: "subscriber", b: "prospect"}
        assert stage_of(T0 + 3 * DAY - HOUR) == {a: "subscriber", b: "prospect"}
        assert stage_of(T0 + 9 * DAY) == {a: "customer", b: "prospect"}
        rows = contacts_as_of(connection, [b, a, 10**9], T0 + 2 * DAY)
    assert [(r.id, r.external_id, r.stage, r.attributes) for r in rows] == [
        (a, "c0", "subscriber", {"city": "Oslo", "rank": 0}),
        (b, "c1", "prospect", {"city": "Oslo", "rank": 1}),
    ]


def _write_contacts(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_writes_history_once_per_change(engine: Engine, tmp_path: Path) -> None:
    first = _write_contacts(
        tmp_path / "crm.csv",
        [
            {"external_id": "x1", "stage": "prospect", "time_zone": "UTC", "tier": "gold"},
            {"external_id": "x2", "stage": "customer", "time_zone": "UTC", "tier": "silver"},
            {"external_id": "x3", "stage": "customer", "time_zone": "UTC", "tier": "bronze"},
        ],
    )
    import_file(engine, "contacts", first, clock=FrozenClock(T0))
    rows = _history(engine)
    assert [(r["stage_before"], r["stage"], r["attributes"], r["source"]) for r in rows] == [
        (None, "prospect", {"tier": "gold"}, "import:crm.csv"),
        (None, "customer", {"tier": "silver"}, "import:crm.csv"),
        (None, "customer", {"tier": "bronze"}, "import:crm.csv"),
    ]
    import_file(engine, "contacts", first, clock=FrozenClock(T0 + DAY))
    assert _history(engine) == rows  # the same file again: nothing changed, nothing written

    second = _write_contacts(
        tmp_path / "crm-2.csv",
        [
            {"external_id": "x1", "stage": "subscriber", "time_zone": "UTC", "tier": "gold"},
            {"external_id": "x2", "stage": "customer", "time_zone": "UTC", "tier": "platinum"},
            {
                "external_id": "x3",
                "stage": "customer",
                "time_zone": "Europe/Oslo",
                "tier": "bronze",
            },
        ],
    )
    report = import_file(engine, "contacts", second, clock=FrozenClock(T0 + 2 * DAY))
    assert report.updated == 3
    later = _history(engine)[len(rows) :]
    # x3 changed its time zone only: that is not history
    assert [
        (r["stage_before"], r["stage"], r["attributes"], r["changed_at"], r["source"])
        for r in later
    ] == [
        ("prospect", "subscriber", {"tier": "gold"}, T0 + 2 * DAY, "import:crm-2.csv"),
        ("customer", "customer", {"tier": "platinum"}, T0 + 2 * DAY, "import:crm-2.csv"),
    ]
    with engine.connect() as connection:
        ids = list(connection.scalars(select(Contact.id).order_by(Contact.id)))
        then = contacts_as_of(connection, ids, T0 + DAY)
        now = contacts_as_of(connection, ids, T0 + 2 * DAY)
    assert [(r.stage, r.attributes["tier"]) for r in then] == [
        ("prospect", "gold"),
        ("customer", "silver"),
        ("customer", "bronze"),
    ]
    assert [(r.stage, r.attributes["tier"]) for r in now] == [
        ("subscriber", "gold"),
        ("customer", "platinum"),
        ("customer", "bronze"),
    ]


_examples = itertools.count()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rounds=st.lists(
        st.lists(st.sampled_from([s.value for s in Stage]), min_size=4, max_size=4),
        min_size=1,
        max_size=5,
    ),
    gaps=st.lists(st.integers(min_value=0, max_value=3), min_size=5, max_size=5),
)
def test_the_stage_as_of_any_time_is_the_one_set_last_before_it(
    engine: Engine, rounds: list[list[str]], gaps: list[int]
) -> None:
    """A reference model: the stage each contact was given last at or before T (or its first)."""
    ids = _contacts(engine, 4, prefix=f"h{next(_examples)}-")
    times, at = [], T0
    for gap in gaps[: len(rounds)]:
        at = at + gap * HOUR  # a gap of zero: two rounds at the same time, the later wins
        times.append(at)
    for stages, when in zip(rounds, times, strict=True):
        set_stages(engine, dict(zip(ids, stages, strict=True)), at=when, source="simulation")
    probes = sorted({T0 - HOUR, *times, *(t + HOUR / 2 for t in times), at + DAY})
    with engine.connect() as connection:
        for probe in probes:
            expected = {}
            for position, cid in enumerate(ids):
                stage = "prospect"
                for stages, when in zip(rounds, times, strict=True):
                    if when <= probe:
                        stage = stages[position]
                expected[cid] = stage
            assert stages_as_of(connection, ids, probe) == expected, probe
    assert {cid: stage for cid, (stage, _) in _current(engine).items() if cid in ids} == (expected)


# --- upgrading a store made before the history ----------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, never migrated database on each backend."""
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'old.db'}")
    else:
        server: ThrowawayPostgres = request.getfixturevalue("postgres_server")
        name = f"tummler_blank_{os.getpid()}_{next(_examples)}"
        admin = connect(server.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        engine = connect(server.url(name))
    yield engine
    engine.dispose()


def test_a_store_made_with_0001_upgrades_with_one_history_row_per_contact(
    blank_engine: Engine,
) -> None:
    upgrade(blank_engine, "0001")
    assert current_revision(blank_engine) == "0001"
    with blank_engine.begin() as connection:  # the contacts table is the same in 0001
        connection.execute(
            insert(CONTACTS),
            [
                {
                    "external_id": f"old-{i}",
                    "attributes": {"tier": "gold"},
                    "time_zone": "UTC",
                    "stage": stage,
                    "created_at": T0 - DAY,
                    "updated_at": changed,
                }
                for i, (stage, changed) in enumerate([("customer", T0), ("lapsed", T0 + DAY)])
            ],
        )
    upgrade(blank_engine)
    assert current_revision(blank_engine) == head_revision()
    rows = _history(blank_engine)
    assert [
        (r["stage_before"], r["stage"], r["attributes"], r["changed_at"], r["source"]) for r in rows
    ] == [
        (None, "customer", {"tier": "gold"}, T0, "migration:0002"),
        (None, "lapsed", {"tier": "gold"}, T0 + DAY, "migration:0002"),
    ]
    first, second = (r["contact_id"] for r in rows)
    # the store works as usual afterwards: moves are recorded after the backfilled state
    set_stages(blank_engine, {first: "advocate"}, at=T0 + 2 * DAY, source="simulation")
    with blank_engine.connect() as connection:
        assert stages_as_of(connection, [first, second], T0 + DAY) == {
            first: "customer",
            second: "lapsed",
        }
        assert stages_as_of(connection, [first], T0 + 2 * DAY) == {first: "advocate"}


# --- the report's movements between stages ---------------------------------------------------------


def _campaign_with_audience(engine: Engine, tmp_path: Path) -> list[int]:
    """Six contacts imported at T0 (their first history rows), decided for at T0 + 1 h."""
    path = _write_contacts(
        tmp_path / "audience.csv",
        [
            {"external_id": f"a{i}", "stage": stage, "time_zone": "UTC"}
            for i, stage in enumerate(
                ["prospect", "prospect", "subscriber", "subscriber", "customer", "customer"]
            )
        ],
    )
    import_file(engine, "contacts", path, clock=FrozenClock(T0))
    with engine.begin() as connection:
        ids = list(connection.scalars(select(Contact.id).order_by(Contact.id)))
        campaign_id = connection.execute(
            insert(CAMPAIGNS).returning(CAMPAIGNS.c.id),
            {
                "key": "spring",
                "objective": "sales",
                "holdout_share": 0.5,
                "definition": {},
                "created_at": T0,
                "updated_at": T0,
            },
        ).scalar_one()
        connection.execute(
            insert(DECISIONS),
            [
                {
                    "campaign_id": campaign_id,
                    "contact_id": cid,
                    "lever": 0,
                    "channel": None if i % 2 else "email",
                    "action": 0,
                    "propensity": 0.5,
                    "holdout": bool(i % 2),
                    "reasons": {},
                    "decided_at": T0 + HOUR + i * timedelta(minutes=1),
                }
                for i, cid in enumerate(ids)
            ],
        )
    return ids


def test_the_report_counts_movements_between_stages_over_the_campaign(
    engine: Engine, tmp_path: Path
) -> None:
    ids = _campaign_with_audience(engine, tmp_path)
    # after the first decision: one prospect subscribes, a subscriber buys, a customer lapses,
    # then the new subscriber buys too (two moves, one net movement) — all known by T0 + 3 days
    set_stages(
        engine,
        {ids[0]: "subscriber", ids[2]: "customer", ids[4]: "lapsed"},
        at=T0 + DAY,
        source="simulation",
    )
    set_stages(engine, {ids[0]: "customer"}, at=T0 + 2 * DAY, source="simulation")

    early = store_report(engine, as_of=T0 + 12 * HOUR).campaigns[0]
    assert early.stage_movement is not None
    assert (early.stage_movement.moved_up, early.stage_movement.moved_down) == (0, 0)
    assert early.stages == {"customer": 2, "prospect": 2, "subscriber": 2}

    report = store_report(engine, as_of=T0 + 3 * DAY)
    spring = report.campaigns[0]
    movement = spring.stage_movement
    assert movement is not None
    assert spring.stages == {"customer": 3, "lapsed": 1, "prospect": 1, "subscriber": 1}
    order = [str(stage) for stage in movement.stages]
    counts = {
        (order[i], order[j]): n
        for i, row in enumerate(movement.counts)
        for j, n in enumerate(row)
        if n
    }
    assert counts == {
        ("prospect", "customer"): 1,
        ("prospect", "prospect"): 1,
        ("subscriber", "customer"): 1,
        ("subscriber", "subscriber"): 1,
        ("customer", "lapsed"): 1,
        ("customer", "customer"): 1,
    }
    assert (movement.moved_up, movement.moved_down, movement.stayed) == (2, 1, 3)
    assert movement.net_movement == pytest.approx(1 / 6)
    # the even contacts were sent to, the odd ones held out: only the treated moved
    groups = spring.stage_movement_by_group
    assert (groups["treated"].moved_up, groups["treated"].moved_down) == (2, 1)
    assert groups["treated"].net_movement == pytest.approx(1 / 3)
    assert (groups["holdout"].stayed, groups["holdout"].net_movement) == (3, 0.0)
    document = report.to_dict()["campaigns"][0]["stage_movement"]
    assert document["stages"] == ["lapsed", "prospect", "subscriber", "customer", "advocate"]
    assert document["counts"][1] == [0, 1, 0, 1, 0]  # the prospects
    assert document["shares"][0] == [None] * 5  # nobody was lapsed before: no shares
    json.dumps(document)


def test_the_movement_matrix_is_in_the_html_page_and_the_terminal(tmp_path: Path) -> None:
    directory = tmp_path / "ws"
    engine = open_store(init_workspace(directory))
    try:
        ids = _campaign_with_audience(engine, tmp_path)
        set_stages(engine, {ids[0]: "advocate", ids[4]: "lapsed"}, at=T0 + DAY, source="api")
        page = render_store_html(store_report(engine, as_of=T0 + 2 * DAY))
    finally:
        engine.dispose()
    table = re.search(r'<table id="stage-movement-spring">(.*?)</table>', page)
    assert table is not None
    rows = {
        name: [int(n) for n in re.findall(r"<td[^>]*>(\d+)</td>", cells)]
        for name, cells in re.findall(r"<tr><th>(\w+)</th>(.*?)</tr>", table.group(1))
    }
    # rows: stages before (only those someone was in); columns: lapsed ... advocate
    assert rows == {
        "prospect": [0, 1, 0, 0, 1],
        "subscriber": [0, 0, 2, 0, 0],
        "customer": [1, 0, 0, 1, 0],
    }
    assert "1 moved closer, 1 fell back" in " ".join(page.split())
    assert "net movement by group: treated +0.0%, holdout +0.0%" in page

    result = CliRunner().invoke(
        rooted_cli_app(report_cli.report),
        ["-w", str(directory), "report", "--as-of", "2026-03-03T12:00:00Z"],
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "movements between stages" in said
    assert "1 moved closer, 1 fell back, 4 stayed: net +0.0% (treated +0.0%, holdout +0.0%)" in said


def test_an_import_behind_the_history_keeps_it_in_time_order(
    engine: Engine, tmp_path: Path
) -> None:
    path = _write_contacts(
        tmp_path / "crm.csv", [{"external_id": "x1", "stage": "prospect", "time_zone": "UTC"}]
    )
    import_file(engine, "contacts", path, clock=FrozenClock(T0))
    [contact] = _current(engine)
    set_stages(engine, {contact: "customer"}, at=T0 + 5 * DAY, source="simulation")
    # the same file again, by a clock behind the simulation: the stage goes back to prospect
    import_file(engine, "contacts", path, clock=FrozenClock(T0 + DAY))
    last = _history(engine)[-1]
    assert (last["stage_before"], last["stage"], last["changed_at"]) == (
        "customer",
        "prospect",
        T0 + 5 * DAY,
    )
    with engine.connect() as connection:
        assert stages_as_of(connection, [contact], T0 + 9 * DAY) == {contact: "prospect"}
    assert _current(engine)[contact][0] == "prospect"


def test_tummler_db_upgrade_brings_a_0001_workspace_to_head(tmp_path: Path) -> None:
    settings = init_workspace(tmp_path / "ws")
    for leftover in settings.default_sqlite_path.parent.glob(
        f"{settings.default_sqlite_path.name}*"
    ):
        leftover.unlink()
    engine = connect(settings.resolved_database_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(
                insert(CONTACTS),
                {
                    "external_id": "old",
                    "attributes": {"tier": "gold"},
                    "time_zone": "UTC",
                    "stage": "advocate",
                    "created_at": T0,
                    "updated_at": T0,
                },
            )
    finally:
        engine.dispose()
    with pytest.raises(ConfigError, match="run `tummler db upgrade`"):
        open_store(settings)
    result = CliRunner().invoke(
        rooted_cli_app(db=db_app), ["-w", str(tmp_path / "ws"), "db", "upgrade"]
    )
    assert result.exit_code == 0, result.output
    assert "schema up to date" in result.output
    engine = open_store(settings)
    try:
        assert [(r["stage"], r["attributes"]) for r in _history(engine)] == [
            ("advocate", {"tier": "gold"})
        ]
    finally:
        engine.dispose()
