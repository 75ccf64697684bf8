"""Attribution of events to the decisions they follow, and rewards read back, on both backends."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select

from seeding import SEND_OUTCOMES, record_sends
from tummler.app.attribution import (
    SendState,
    attribute_events,
    load_rewards,
    objective_windows,
    read_send_states,
    reward_specs,
)
from tummler.core.errors import ConfigError
from tummler.core.randomness import make_rng
from tummler.core.vocabulary import EventType
from tummler.learn.rewards import RewardSpec, decision_rewards
from tummler.store.database import session_scope
from tummler.store.models import Campaign, Contact, Decision, Event
from tummler.strategy import EXAMPLES_DIR, read_strategy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: Checks that do not depend on the backend run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
DAY = timedelta(days=1)
WINDOWS = {"sales": 7 * DAY, "engage": 2 * DAY}
_ids = itertools.count(1)


class Store:
    """Builds hand-made contacts, campaigns, decisions and events in a real store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.contacts: dict[str, int] = {}
        self.campaigns: dict[str, int] = {}

    def contact(self, external_id: str) -> int:
        with session_scope(self.engine) as session:
            row = Contact(external_id=external_id, created_at=T0, updated_at=T0)
            session.add(row)
            session.flush()
            self.contacts[external_id] = row.id
        return self.contacts[external_id]

    def campaign(self, key: str, objective: str) -> int:
        with session_scope(self.engine) as session:
            row = Campaign(key=key, objective=objective, created_at=T0, updated_at=T0)
            session.add(row)
            session.flush()
            self.campaigns[key] = row.id
        return self.campaigns[key]

    def decision(
        self,
        contact: str,
        campaign: str,
        *,
        decided_at: datetime,
        channel: str | None = "email",
        send_at: datetime | None = None,
        holdout: bool = False,
        lever: int = 0,
        action: int = 1,
        propensity: float = 0.5,
    ) -> int:
        with session_scope(self.engine) as session:
            row = Decision(
                campaign_id=self.campaigns[campaign],
                contact_id=self.contacts[contact],
                lever=lever,
                channel=channel,
                send_at=send_at,
                action=action,
                propensity=propensity,
                holdout=holdout,
                reasons={},
                decided_at=decided_at,
            )
            session.add(row)
            session.flush()
            return row.id

    def event(
        self,
        contact: str,
        at: datetime,
        type_: str = "clicked",
        channel: str | None = "email",
        value: float | None = None,
    ) -> int:
        with session_scope(self.engine) as session:
            row = Event(
                contact_id=self.contacts[contact],
                type=type_,
                channel=channel,
                value=value,
                at=at,
                source="test",
                provider_event_id=f"e{next(_ids)}",
            )
            session.add(row)
            session.flush()
            return row.id

    def attributed(self) -> dict[int, int | None]:
        with session_scope(self.engine) as session:
            return dict(session.execute(select(Event.id, Event.decision_id)).tuples().all())


@pytest.fixture
def store(engine: Engine) -> Store:
    built = Store(engine)
    built.contact("c1")
    built.contact("c2")
    built.campaign("spring", "sales")
    built.campaign("summer", "sales")
    built.campaign("ping", "engage")
    return built


def test_an_event_inside_the_window_after_the_send_is_attributed(store: Store) -> None:
    decision = store.decision("c1", "spring", decided_at=T0 - DAY, send_at=T0)
    inside = store.event("c1", T0 + DAY)
    at_start = store.event("c1", T0)
    at_end = store.event("c1", T0 + 7 * DAY)
    before_send = store.event("c1", T0 - timedelta(hours=1))
    late = store.event("c1", T0 + 8 * DAY)
    report = attribute_events(store.engine, windows=WINDOWS)
    assert store.attributed() == {
        inside: decision,
        at_start: decision,
        at_end: None,  # the window is half-open
        before_send: None,  # after the decision was made, but before the message went out
        late: None,
    }
    assert (report.considered, report.attributed, report.changed, report.unattributed) == (
        5,
        2,
        2,
        3,
    )


def test_the_latest_decision_wins(store: Store) -> None:
    first = store.decision("c1", "spring", decided_at=T0, send_at=T0)
    second = store.decision("c1", "summer", decided_at=T0 + 2 * DAY, send_at=T0 + 2 * DAY)
    between = store.event("c1", T0 + DAY)
    after_both = store.event("c1", T0 + 3 * DAY)
    attribute_events(store.engine, windows=WINDOWS)
    assert store.attributed() == {between: first, after_both: second}


def test_an_earlier_decision_keeps_an_event_the_later_ones_window_missed(store: Store) -> None:
    sales = store.decision("c1", "spring", decided_at=T0, send_at=T0)
    store.decision("c1", "ping", decided_at=T0 + DAY, send_at=T0 + DAY)  # engage: a 2-day window
    event = store.event("c1", T0 + 4 * DAY)
    attribute_events(store.engine, windows=WINDOWS)
    assert store.attributed() == {event: sales}


def test_the_decision_on_the_events_channel_wins_over_a_later_one(store: Store) -> None:
    email = store.decision("c1", "spring", decided_at=T0, send_at=T0, channel="email")
    sms = store.decision("c1", "summer", decided_at=T0 + DAY, send_at=T0 + DAY, channel="sms")
    click = store.event("c1", T0 + 2 * DAY, channel="email")
    purchase = store.event("c1", T0 + 2 * DAY, "converted", channel=None, value=30.0)
    attribute_events(store.engine, windows=WINDOWS)
    assert store.attributed() == {click: email, purchase: sms}


@pytest.mark.parametrize(
    ("channel", "holdout", "send_at"),
    [("email", True, None), ("email", True, T0 + DAY), (None, False, None)],
    ids=["holdout", "holdout with a planned send time", "no send"],
)
def test_holdout_and_no_send_count_from_the_decision_time(
    store: Store, channel: str | None, holdout: bool, send_at: datetime | None
) -> None:
    decision = store.decision(
        "c1", "spring", decided_at=T0, channel=channel, holdout=holdout, send_at=send_at
    )
    soon = store.event("c1", T0 + timedelta(hours=2), "converted", channel=None, value=5.0)
    before = store.event("c1", T0 - timedelta(minutes=1), "converted", channel=None)
    attribute_events(store.engine, windows=WINDOWS)
    assert store.attributed() == {soon: decision, before: None}


def test_another_contacts_event_is_not_attributed(store: Store) -> None:
    store.decision("c1", "spring", decided_at=T0, send_at=T0)
    theirs = store.event("c2", T0 + DAY)
    attribute_events(store.engine, windows=WINDOWS)
    assert store.attributed() == {theirs: None}


def test_a_campaign_without_a_window_is_an_error_unless_there_is_a_default(store: Store) -> None:
    store.campaign("mystery", "retention")
    decision = store.decision("c1", "mystery", decided_at=T0, send_at=T0)
    event = store.event("c1", T0 + DAY)
    with pytest.raises(ConfigError, match=r"objective 'retention' \(campaign 'mystery'\)"):
        attribute_events(store.engine, windows=WINDOWS)
    assert store.attributed() == {event: None}
    attribute_events(store.engine, windows=WINDOWS, default_window=3 * DAY)
    assert store.attributed() == {event: decision}


@SQLITE_ONLY
@pytest.mark.parametrize("window", [timedelta(0), -DAY])
def test_a_window_must_be_positive(store: Store, window: timedelta) -> None:
    with pytest.raises(ConfigError, match="'sales' must be positive"):
        attribute_events(store.engine, windows={**WINDOWS, "sales": window})


def test_attribution_is_incremental_and_can_start_over(store: Store) -> None:
    decision = store.decision("c1", "spring", decided_at=T0, send_at=T0)
    event = store.event("c1", T0 + 3 * DAY)
    assert attribute_events(store.engine, windows=WINDOWS).changed == 1
    again = attribute_events(store.engine, windows=WINDOWS)
    assert (again.considered, again.changed) == (0, 0)
    assert store.attributed() == {event: decision}
    narrower = {**WINDOWS, "sales": DAY}
    assert attribute_events(store.engine, windows=narrower).considered == 0
    redo = attribute_events(store.engine, windows=narrower, reattribute=True)
    assert (redo.considered, redo.changed, redo.unattributed) == (1, 1, 1)
    assert store.attributed() == {event: None}


@SQLITE_ONLY
def test_since_limits_the_events_looked_at(store: Store) -> None:
    decision = store.decision("c1", "spring", decided_at=T0, send_at=T0)
    old = store.event("c1", T0 + DAY)
    new = store.event("c1", T0 + 2 * DAY)
    attribute_events(store.engine, windows=WINDOWS, since=T0 + 2 * DAY)
    assert store.attributed() == {old: None, new: decision}


def test_a_seeded_random_history_matches_a_brute_force_reading_of_the_rules(
    engine: Engine,
) -> None:
    rng = make_rng(20260302)
    store = Store(engine)
    people = [f"p{i}" for i in range(12)]
    for person in people:
        store.contact(person)
    objectives = {"sales": 5 * DAY, "engage": DAY}
    keys = [f"k{i}" for i in range(6)]
    for i, key in enumerate(keys):
        store.campaign(key, "sales" if i % 2 else "engage")
    spans: dict[str, list[tuple[datetime, datetime, int, str | None]]] = {p: [] for p in people}
    for key in keys:
        for person in people:
            if rng.random() < 0.5:
                continue
            decided = T0 + timedelta(hours=int(rng.integers(0, 24 * 10)))
            holdout = bool(rng.random() < 0.2)
            channel = [None, "email", "sms"][int(rng.integers(0, 3))]
            send_at = decided + timedelta(hours=int(rng.integers(0, 6)))
            decision = store.decision(
                person, key, decided_at=decided, channel=channel, send_at=send_at, holdout=holdout
            )
            start = decided if holdout or channel is None else send_at
            window = objectives["sales" if keys.index(key) % 2 else "engage"]
            spans[person].append((start, start + window, decision, channel))
    expected: dict[int, int | None] = {}
    for _ in range(150):
        person = people[int(rng.integers(0, len(people)))]
        at = T0 + timedelta(minutes=int(rng.integers(-60 * 24, 60 * 24 * 16)))
        channel = [None, "email", "sms"][int(rng.integers(0, 3))]
        event = store.event(person, at, channel=channel)
        claims = [s for s in spans[person] if s[0] <= at < s[1]]
        same = [s for s in claims if channel is not None and s[3] == channel]
        best = max(same or claims, key=lambda s: (s[0], s[2]), default=None)
        expected[event] = None if best is None else best[2]
    report = attribute_events(engine, windows=objectives)
    assert store.attributed() == expected
    assert report.attributed == sum(v is not None for v in expected.values()) > 20


def test_rewards_per_decision_follow_each_objectives_kpi_and_penalties(store: Store) -> None:
    specs = {
        "sales": RewardSpec(EventType.CONVERTED, "value", unsubscribe_penalty=10.0),
        "engage": RewardSpec(EventType.CLICKED, "rate", complaint_penalty=3.0),
    }
    buyer = store.decision("c1", "spring", decided_at=T0, send_at=T0, action=2, propensity=0.25)
    holdout = store.decision("c2", "spring", decided_at=T0, holdout=True, action=0)
    clicker = store.decision("c2", "ping", decided_at=T0 + 8 * DAY, send_at=T0 + 8 * DAY)
    store.event("c1", T0 + DAY, "converted", channel=None, value=40.0)
    store.event("c1", T0 + DAY, "opened")  # opens are not a reward
    store.event("c1", T0 + 2 * DAY, "unsubscribed")
    store.event("c2", T0 + DAY, "converted", channel=None, value=15.0)  # the holdout bought too
    store.event("c2", T0 + 8 * DAY + timedelta(hours=1), "clicked")
    store.event("c2", T0 + 8 * DAY + timedelta(hours=2), "clicked")
    store.event("c2", T0 + 8 * DAY + timedelta(hours=3), "complained")
    attribute_events(store.engine, windows=WINDOWS)
    record_sends(store.engine, "spring", at=T0)
    record_sends(store.engine, "ping", at=T0 + 8 * DAY)
    rewards = load_rewards(store.engine, specs=specs)
    assert rewards.decision_id.tolist() == [buyer, holdout, clicker]
    assert rewards.reward.tolist() == [40.0 - 10.0, 15.0, 1.0 - 3.0]
    assert rewards.send_state.tolist() == ["sent", "nothing_to_send", "sent"]
    assert rewards.happened.tolist() == [True, True, True]
    assert rewards.holdout.tolist() == [False, True, False]
    assert rewards.objective.tolist() == ["sales", "sales", "engage"]
    assert rewards.action.tolist() == [2, 0, 1]
    assert rewards.propensity.tolist() == [0.25, 0.5, 0.5]
    only = load_rewards(store.engine, specs=specs, campaign="ping")
    assert (only.decision_id.tolist(), only.reward.tolist()) == ([clicker], [-2.0])
    with pytest.raises(ConfigError, match="no reward spec for objective"):
        load_rewards(store.engine, specs={"sales": specs["sales"]})
    fallback = load_rewards(store.engine, specs={"sales": specs["sales"]}, default=specs["engage"])
    assert fallback.reward.tolist() == [30.0, 15.0, -2.0]
    assert len(fallback) == 3


def test_a_send_that_never_went_out_has_no_reward(store: Store) -> None:
    """Events follow every decision, sent or not; only those whose message went out (or that
    had nothing to send) get a reward, the rest NaN — not a reward of 0, nor their events'."""
    specs = {"sales": RewardSpec(EventType.CONVERTED, "rate")}
    people = [f"p{i}" for i in range(len(SEND_OUTCOMES) + 2)]
    for person in people:
        store.contact(person)
    ids = [
        store.decision(person, "summer", decided_at=T0, send_at=T0, channel=channel, holdout=held)
        for person, channel, held in zip(
            people,
            ["email"] * len(SEND_OUTCOMES) + [None, None],
            [False] * len(SEND_OUTCOMES) + [False, True],
            strict=True,
        )
    ]
    for person in people:
        store.event(person, T0 + DAY, "converted", channel=None, value=10.0)
    attribute_events(store.engine, windows=WINDOWS)
    outcomes = dict(zip(ids, SEND_OUTCOMES, strict=False))
    record_sends(store.engine, "summer", at=T0 + timedelta(hours=1), outcomes=outcomes)
    rewards = load_rewards(store.engine, specs=specs, campaign="summer")
    assert rewards.decision_id.tolist() == ids
    # sent, bounced, skipped, failed, dead, unknown, pending, never enqueued, no send, holdout
    assert rewards.send_state.tolist() == [
        "sent",
        "sent",
        "not_sent",
        "not_sent",
        "not_sent",
        "waiting",
        "waiting",
        "waiting",
        "nothing_to_send",
        "nothing_to_send",
    ]
    happened = [True, True, False, False, False, False, False, False, True, True]
    assert rewards.happened.tolist() == happened
    assert [1.0 if h else "nan" for h in happened] == [
        "nan" if np.isnan(r) else r for r in rewards.reward.tolist()
    ]


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (None, ["sent", "sent", "not_sent", "waiting", "waiting"]),
        # before anything was sent or ended: every send was still to go out
        (T0 + timedelta(minutes=30), ["waiting"] * 5),
        # sent at T0 + 1 h (at its send time), ended at T0 + 2 h
        (T0 + timedelta(hours=1, minutes=30), ["sent", "sent", "waiting", "waiting", "waiting"]),
        (T0 + timedelta(hours=2), ["sent", "sent", "not_sent", "waiting", "waiting"]),
    ],
)
def test_send_states_as_of_a_time(
    store: Store, as_of: datetime | None, expected: list[str]
) -> None:
    for person in ("a", "b", "d", "e", "f"):
        store.contact(person)
    ids = [
        store.decision(p, "summer", decided_at=T0, send_at=T0 + timedelta(hours=1))
        for p in ("a", "b", "d", "e", "f")
    ]
    record_sends(
        store.engine,
        "summer",
        at=T0 + timedelta(hours=2),
        outcomes=dict(zip(ids, ["sent", "bounced", "dead", "pending", None], strict=True)),
    )
    with session_scope(store.engine) as session:
        states = read_send_states(session, select(Decision.id), as_of=as_of)
    assert [states[i] for i in ids] == [SendState(e) for e in expected]


def test_windows_and_reward_specs_come_from_the_example_strategy() -> None:
    document, findings = read_strategy((EXAMPLES_DIR / "strategy.yaml").read_text(), "example")
    assert document is not None, findings
    strategy = document.strategy
    assert objective_windows(strategy) == {"repeat-purchase": 14 * DAY, "first-order": 7 * DAY}
    specs = reward_specs(strategy, unsubscribe_penalty=4.0)
    assert specs["first-order"] == RewardSpec(
        EventType.CONVERTED, "rate", unsubscribe_penalty=4.0, complaint_penalty=2.0
    )


def test_each_objective_s_penalties_come_from_the_strategy() -> None:
    text = (EXAMPLES_DIR / "strategy.yaml").read_text()
    stated = text.replace("unsubscribed: 1  ", "unsubscribed: 3  ").replace(
        "complained: 2  ", "complained: 10 "
    )
    assert stated != text
    document, findings = read_strategy(stated, "example")
    assert document is not None, findings
    specs = reward_specs(document.strategy)
    # repeat-purchase states its penalties; first-order states none and gets the defaults
    assert (
        specs["repeat-purchase"].unsubscribe_penalty,
        specs["repeat-purchase"].complaint_penalty,
    ) == (3.0, 10.0)
    assert (specs["first-order"].unsubscribe_penalty, specs["first-order"].complaint_penalty) == (
        1.0,
        2.0,
    )
    # an unsubscribe after an unconverted send costs what the strategy says
    reward = decision_rewards(
        2, [0, 1], ["unsubscribed", "complained"], None, specs["repeat-purchase"]
    )
    assert reward.tolist() == [-3.0, -10.0]
    overridden = reward_specs(document.strategy, complaint_penalty=0.5)["repeat-purchase"]
    assert (overridden.unsubscribe_penalty, overridden.complaint_penalty) == (3.0, 0.5)
