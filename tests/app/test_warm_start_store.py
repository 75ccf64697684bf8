"""Warm start from the store's legacy sends, on SQLite and PostgreSQL.

The ground truth: before the first plan, the brand sent the example workspace's customers a weekly
e-mail and a weekly SMS for eight weeks, imported as ``delivered`` events without a decision; a
seeded 40 % of the SMS and 5 % of the e-mails were followed by a conversion (the objective's KPI)
within its 14-day window. The first learning run must fit planning's prior on those sends before
learning from the prior's own decisions: the policy then predicts SMS above e-mail, the pooled rate
is the history's (a known count), the row's notes and the version say so, contacts who revoked
consent or were forgotten are not learned from, and without history nothing changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from seeding import add_recent_clickers, record_sends
from tummler.app.contacts import contacts_as_of
from tummler.app.learning import CampaignPolicy, learn_from_store, read_policy
from tummler.app.learning.warm_start import WarmStart, warm_start
from tummler.app.planning import load_campaign, plan_campaign, planned_contexts
from tummler.app.privacy import forget_person
from tummler.core.clock import FrozenClock
from tummler.learn.warm_start import informed_intercepts
from tummler.store.database import session_scope
from tummler.store.models import ConsentEvent, Contact, Decision, Event, PolicyVersion

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
LATER = NOW + 3 * DAY
REORDER = "fresh-roast-reorder"
OBJECTIVE = "repeat-purchase"
RATE = {"sms": 0.40, "email": 0.05}
WEEKS = 8
N = 120


def _history(engine: Engine, seed: int = 3) -> dict[str, int]:
    """The legacy blasts: per week, one delivered e-mail and SMS to every customer, and a
    conversion two hours after a seeded share of them. Returns the sends and conversions."""
    rng = np.random.default_rng(seed)
    counts = {"sends": 0, "converted": 0}
    with session_scope(engine) as session:
        ids = session.scalars(select(Contact.id).order_by(Contact.id)).all()
        for week in range(WEEKS):
            for channel, hour in (("email", 9), ("sms", 9)):
                at = NOW - (WEEKS - week) * 7 * DAY + timedelta(hours=hour)
                for contact_id in ids:
                    counts["sends"] += 1
                    session.add(_event(contact_id, channel, "delivered", at, f"d{week}"))
                    if rng.random() < RATE[channel]:
                        counts["converted"] += 1
                        later = at + timedelta(hours=2)
                        session.add(_event(contact_id, channel, "converted", later, f"c{week}"))
    return counts


def _event(contact_id: int, channel: str, kind: str, at: datetime, tag: str) -> Event:
    return Event(
        contact_id=contact_id,
        channel=channel,
        type=kind,
        at=at,
        source="legacy",
        provider_event_id=f"{tag}-{channel}-{contact_id}",
    )


def _plan(engine: Engine, workspace: Path) -> Any:
    return plan_campaign(
        engine, workspace=workspace, campaign_key=REORDER, clock=FrozenClock(NOW), seed=5
    )


def _warm(engine: Engine, workspace: Path) -> tuple[CampaignPolicy, CampaignPolicy, Any, Any]:
    """Planning's prior, the prior warm-started on the history, the warm start's record, and
    the contexts and actions the plan saw (to read the policy's predictions on)."""
    _plan(engine, workspace)
    with Session(engine) as session:
        row = session.scalars(select(PolicyVersion).where(PolicyVersion.version == 0)).one()
        parameters = row.parameters
    prior, again = read_policy(parameters), read_policy(parameters)
    assert isinstance(prior, CampaignPolicy)
    assert isinstance(again, CampaignPolicy)
    strategy, campaign = load_campaign(workspace, REORDER, FrozenClock(NOW))
    with engine.connect() as connection:
        ids = connection.scalars(select(Contact.id)).all()
        seen = planned_contexts(
            connection,
            strategy,
            campaign,
            contacts=contacts_as_of(connection, ids, NOW),
            campaign_id=None,
            at=NOW,
        )
    started, done = warm_start(
        engine,
        again,
        strategy=strategy,
        campaign=campaign,
        actions=seen.actions,
        message=seen.message,
        objective=OBJECTIVE,
        before=NOW,
    )
    return prior, started, done, seen


def _channel_rates(policy: CampaignPolicy, seen: Any) -> dict[str, float]:
    """The policy's mean predicted KPI rate per channel over the plan's contacts and slots."""
    assert policy.featurizer is not None
    x = policy.featurizer.transform(seen.data, seen.message)
    weights = policy.policy.weight_matrix(seen.actions)
    assert weights is not None
    scores = x @ weights  # (n, k) log-odds
    p = 1.0 / (1.0 + np.exp(-scores))
    actions = seen.actions
    return {
        name: float(p[:, actions.channel == c].mean())
        for c, name in enumerate(actions.channel_names)
    }


def test_warm_start_orders_the_channels_as_the_history_does(
    engine: Engine, workspace: Path
) -> None:
    add_recent_clickers(engine, N, now=NOW)
    counts = _history(engine)
    prior, started, done, seen = _warm(engine, workspace)
    assert isinstance(done, WarmStart)
    assert done.sends == counts["sends"] == 2 * WEEKS * N
    assert done.rate == pytest.approx(counts["converted"] / counts["sends"])  # the known answer
    assert done.first.date() == (NOW - WEEKS * 7 * DAY).date()
    before, after = _channel_rates(prior, seen), _channel_rates(started, seen)
    assert before["sms"] == pytest.approx(before["email"])  # the prior: even odds on both
    assert after["sms"] > 3 * after["email"]
    assert after["sms"] == pytest.approx(RATE["sms"], abs=0.05)
    assert after["email"] == pytest.approx(RATE["email"], abs=0.02)
    assert started.policy.version == prior.policy.version + 1
    assert "warm start: 1,920 legacy sends from" in done.note()
    assert "pooled conversion rate" in done.note()


def test_the_informed_prior_starts_each_channel_at_the_pooled_rate() -> None:
    m = informed_intercepts(np.zeros(12), n_action_features=4, n_channels=2, rate=0.12)
    assert m[:2] == pytest.approx([np.log(0.12 / 0.88)] * 2)
    assert not m[2:].any()
    # a history that never converted still leaves every channel a chance
    assert informed_intercepts(np.zeros(4), n_action_features=4, n_channels=2, rate=0.0)[
        0
    ] == pytest.approx(np.log(0.005 / 0.995))


def test_learn_records_the_warm_start_in_notes_and_version(engine: Engine, workspace: Path) -> None:
    add_recent_clickers(engine, N, now=NOW)
    counts = _history(engine)
    _plan(engine, workspace)
    record_sends(engine, REORDER, at=NOW)
    rows = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    note = f"warm start: {counts['sends']:,} legacy sends from"
    assert any(n.startswith(note) for n in rows[0].notes), rows[0].notes
    with Session(engine) as session:
        v1 = session.scalars(select(PolicyVersion).where(PolicyVersion.version == 1)).one()
        record = v1.parameters["learned_from"]["warm_start"]
    assert record["legacy_sends"] == counts["sends"]
    assert record["pooled_rate"] == pytest.approx(counts["converted"] / counts["sends"])


def test_without_history_learning_is_unchanged(engine: Engine, workspace: Path) -> None:
    add_recent_clickers(engine, N, now=NOW)
    prior, started, done, _ = _warm(engine, workspace)
    assert done is None
    assert np.array_equal(started.policy.m, prior.policy.m)  # type: ignore[attr-defined]
    record_sends(engine, REORDER, at=NOW)
    rows = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    assert not any("warm start" in n for n in rows[0].notes)
    with Session(engine) as session:
        v1 = session.scalars(select(PolicyVersion).where(PolicyVersion.version == 1)).one()
        assert "warm_start" not in v1.parameters["learned_from"]


def test_revoked_and_forgotten_contacts_are_not_learned_from(
    engine: Engine, workspace: Path
) -> None:
    add_recent_clickers(engine, N, now=NOW)
    counts = _history(engine)
    with session_scope(engine) as session:
        first, second = session.scalars(select(Contact.id).order_by(Contact.id).limit(2)).all()
        session.add(
            ConsentEvent(
                contact_id=first,
                channel="sms",
                status="revoked",
                source="unsubscribe",
                at=NOW - 2 * DAY,
                recorded_at=NOW - 2 * DAY,
            )
        )
    forget_person(engine, person="c1", actor="test", clock=FrozenClock(NOW - DAY))
    with Session(engine) as session:  # forgetting keeps the events, without the person
        assert session.scalar(select(Contact.forgotten_at).where(Contact.id == second))
        kept = session.scalars(select(Event.id).where(Event.contact_id == second)).all()
        assert len(kept) >= 2 * WEEKS
    _, _, done, _ = _warm(engine, workspace)
    assert isinstance(done, WarmStart)
    assert done.sends == counts["sends"] - 2 * (2 * WEEKS)


def test_sends_by_a_policy_are_not_legacy(engine: Engine, workspace: Path) -> None:
    """Only sends from before the prior count: the prior's own deliveries are its decisions."""
    add_recent_clickers(engine, N, now=NOW)
    _plan(engine, workspace)
    record_sends(engine, REORDER, at=NOW)
    with session_scope(engine) as session:
        for d in session.scalars(select(Decision).where(Decision.channel.is_not(None))).all():
            assert d.send_at is not None
            session.add(_event(d.contact_id, str(d.channel), "delivered", d.send_at, "new"))
    rows = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    assert not any("warm start" in n for n in rows[0].notes)
