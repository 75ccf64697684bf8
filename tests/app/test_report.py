"""`tummler report`: the service on a store seeded with a known effect, --json, --log, and --html
opened in headless Chromium (it renders, its plots are there, it asks the network for nothing)."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from browser import assert_self_contained, dump_dom
from cli_app import rooted_cli_app
from seeding import add_reachable, record_sends, workspace_store
from tummler.app.attribution import SendState
from tummler.app.ingest import experiment_to_log
from tummler.app.planning import plan_campaign
from tummler.app.reporting import (
    ObjectiveSpec,
    log_report,
    parse_as_of,
    store_report,
)
from tummler.app.reporting.records import send_progress
from tummler.app.workspace import init_workspace, open_store
from tummler.cli import report as report_cli
from tummler.core.clock import FrozenClock
from tummler.core.errors import InputError, NotFoundError
from tummler.measure import Verdict
from tummler.store.database import session_scope
from tummler.store.models import (
    Campaign,
    Contact,
    Decision,
    Event,
    Message,
    PolicyVersion,
    Variant,
)
from tummler.web import render_store_html, write_html

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
AS_OF = datetime(2026, 4, 1, tzinfo=UTC)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: The truth the store is seeded with: conversion rate of treated and held-out people.
SPRING = {"treated": 0.15, "holdout": 0.05, "n": 2400, "holdout_share": 0.25}
QUIET = {"treated": 0.10, "holdout": 0.10, "n": 1200, "holdout_share": 0.5}
SPECS = {
    "sales": ObjectiveSpec("sales", "converted", "rate", relative_lift=0.5),
    "retention": ObjectiveSpec("retention", "converted", "rate", relative_lift=0.2),
}
COSTS = {"email": 0.05, "sms": 0.20}

runner = CliRunner()


def _cli() -> typer.Typer:
    """The command as the lead registers it, on the real root callback (``--workspace``)."""
    return rooted_cli_app(report_cli.report)


def seed(engine: Engine, seed: int = 7) -> None:
    """Two campaigns: ``spring`` raises conversion from 5 % to 15 %; ``quiet`` changes nothing.

    ``spring`` sends by e-mail or SMS (each with propensity 1/2) at a random hour of the week,
    with variants A and B (same true rate), from policy v1 in the first half and v2 after. The
    outbox sent every message at its ``send_at``.
    """
    rng = np.random.default_rng(seed)
    with session_scope(engine) as session:
        v1 = PolicyVersion(name="spring", version=1, kind="thompson", created_at=T0)
        v2 = PolicyVersion(
            name="spring", version=2, kind="thompson", created_at=T0 + timedelta(days=3)
        )
        session.add_all([v1, v2])
        session.flush()
        for key, objective, truth in (("spring", "sales", SPRING), ("quiet", "retention", QUIET)):
            campaign = Campaign(
                key=key,
                objective=objective,
                holdout_share=truth["holdout_share"],
                created_at=T0,
                updated_at=T0,
            )
            session.add(campaign)
            session.flush()
            message = Message(campaign_id=campaign.id, key="main", attributes={})
            session.add(message)
            session.flush()
            variants = [
                Variant(message_id=message.id, channel="email", key=k, body=f"body {k}")
                for k in ("A", "B")
            ]
            contacts = [
                Contact(external_id=f"{key}-{i}", created_at=T0, updated_at=T0, stage="subscriber")
                for i in range(int(truth["n"]))
            ]
            session.add_all([*variants, *contacts])
            session.flush()
            decisions = []
            for i, contact in enumerate(contacts):
                holdout = bool(rng.random() < truth["holdout_share"])
                decided = T0 + timedelta(days=int(i * 7 / len(contacts)), minutes=i % 600)
                # Sends go out in one of three daily slots, today or tomorrow.
                slot = int(rng.choice([9, 13, 18])) + 24 * int(rng.integers(0, 2))
                send_at = decided.replace(hour=0, minute=0) + timedelta(hours=slot)
                policy = v1 if i < len(contacts) // 2 else v2
                decisions.append(
                    Decision(
                        campaign_id=campaign.id,
                        contact_id=contact.id,
                        channel=None if holdout else str(rng.choice(["email", "sms"])),
                        send_at=None if holdout else send_at,
                        variant_id=None if holdout else variants[int(rng.integers(0, 2))].id,
                        action=0 if holdout else 1,
                        propensity=0.5,
                        policy_version_id=policy.id if key == "spring" else None,
                        holdout=holdout,
                        reasons={},
                        decided_at=decided,
                    )
                )
            session.add_all(decisions)
            session.flush()
            events: list[tuple[Decision, str, float | None, datetime]] = []
            for decision in decisions:
                rate = truth["holdout"] if decision.holdout else truth["treated"]
                at = decision.decided_at + timedelta(hours=50)
                if rng.random() < rate:
                    events.append((decision, "converted", 20.0, at))
                if not decision.holdout and rng.random() < 0.3:
                    events.append((decision, "clicked", None, at))
            session.add_all(
                Event(
                    contact_id=d.contact_id,
                    decision_id=d.id,
                    channel=d.channel,
                    type=kind,
                    value=value,
                    at=at,
                    source="test",
                    provider_event_id=f"{d.id}-{kind}",
                )
                for d, kind, value, at in events
            )
    for key in ("spring", "quiet"):  # every send went out, at its send time
        record_sends(engine, key, at=T0)


# ------------------------------------------------------------------------------- store report


def test_store_report_recovers_the_seeded_effect(engine: Engine) -> None:
    seed(engine)
    report = store_report(
        engine, as_of=AS_OF, specs=SPECS, channel_costs=COSTS, rng=np.random.default_rng(1)
    )
    by_key = {c.key: c for c in report.campaigns}
    assert sorted(by_key) == ["quiet", "spring"]

    spring = by_key["spring"]
    assert spring.lift is not None
    truth = SPRING["treated"] - SPRING["holdout"]
    assert spring.lift.difference_interval.contains(truth)
    assert spring.lift.verdict is Verdict.EFFECT
    assert spring.lift.message.startswith("campaign spring raised the share who converted by")
    assert spring.n_treated + spring.n_holdout == SPRING["n"] == spring.n_decisions
    # Variants A and B have the same true rate: neither is a sure winner.
    assert spring.variants is not None
    assert spring.variants.labels == ("A", "B")
    assert sum(spring.variants.probability_best) == pytest.approx(1.0)
    assert max(spring.variants.probability_best) < 0.99
    assert spring.sequential is not None
    # Randomized channel and send time, with propensities: causal, and the rates are near 15 %.
    assert spring.channels is not None
    assert spring.channels.causal
    assert set(spring.channels.cells) == {"email", "sms"}
    for low, high in zip(spring.channels.ci_low, spring.channels.ci_high, strict=True):
        assert low < SPRING["treated"] < high
    assert spring.send_time is not None
    assert spring.send_time.causal
    assert spring.roi is not None
    assert spring.roi.incremental_value > 0
    assert spring.breadth is not None
    assert spring.breadth.audience == SPRING["n"]
    assert spring.stages == {"subscriber": SPRING["n"]}
    assert spring.goal is not None

    quiet = by_key["quiet"]
    assert quiet.lift is not None
    assert quiet.lift.difference_interval.contains(0.0)
    assert quiet.lift.verdict in (Verdict.NO_EFFECT, Verdict.UNDERPOWERED)
    assert quiet.sequential is not None
    assert quiet.lift.message.split(" ")[0] in ("no", "too")

    assert [(p.policy, p.version) for p in report.learning_curve] == [("spring", 1), ("spring", 2)]
    assert {o.id for o in report.objectives} == {"sales", "retention"}
    sales = next(o for o in report.objectives if o.id == "sales")
    assert sales.campaigns == ("spring",)
    assert sales.goal is not None


@SQLITE_ONLY
def test_store_report_as_of_and_one_campaign(engine: Engine) -> None:
    seed(engine)
    early = store_report(engine, as_of=T0 + timedelta(days=1), campaign="spring", specs=SPECS)
    assert [c.key for c in early.campaigns] == ["spring"]
    assert 0 < early.campaigns[0].n_decisions < SPRING["n"]
    # Events happen 50 hours after the decision: none has happened yet one day in.
    assert early.campaigns[0].lift is not None
    assert early.campaigns[0].lift.treated_mean == 0.0
    with pytest.raises(NotFoundError, match=r"no campaign 'winter'.*known: quiet, spring"):
        store_report(engine, as_of=AS_OF, campaign="winter")


@SQLITE_ONLY
def test_a_campaign_without_decisions_reports_nothing_to_measure(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Campaign(key="new", objective="sales", created_at=T0, updated_at=T0))
    report = store_report(engine, as_of=AS_OF, specs=SPECS)
    (campaign,) = report.campaigns
    assert (campaign.n_decisions, campaign.lift, campaign.breadth) == (0, None, None)
    assert (campaign.variants, campaign.channels, campaign.goal) == (None, None, None)
    assert report.objectives[0].goal is None
    page = render_store_html(report)
    assert "No holdout to compare with yet" in page
    assert "No campaign has both treated and held-out people yet" in page


@SQLITE_ONLY
def test_store_report_of_an_empty_store_and_bad_arguments(engine: Engine) -> None:
    report = store_report(engine, as_of=AS_OF)
    assert report.campaigns == ()
    assert report.learning_curve == ()
    assert json.loads(json.dumps(report.to_dict()))["campaigns"] == []
    assert 'id="plot-lift"' not in render_store_html(report)
    with pytest.raises(InputError, match="alpha = 2"):
        store_report(engine, as_of=AS_OF, alpha=2)
    with pytest.raises(InputError, match="mixture_sd = 0"):
        store_report(engine, as_of=AS_OF, mixture_sd=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-31", datetime(2026, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        ("2026-03-31T12:00:00Z", datetime(2026, 3, 31, 12, tzinfo=UTC)),
        (None, T0),
    ],
)
def test_parse_as_of(text: str | None, expected: datetime) -> None:
    assert parse_as_of(text, now=T0) == expected


def test_parse_as_of_rejects_what_is_not_a_date() -> None:
    with pytest.raises(InputError, match="--as-of 'yesterday' is not a date"):
        parse_as_of("yesterday", now=T0)


# ------------------------------------------------------------ messages that have not gone out

#: ``autumn``: per person, whether held out, the channel, what the outbox did (``SEND_OUTCOMES``
#: of tests/seeding.py), and the events attributed to the decision (kind, value).
AUTUMN: dict[str, tuple[bool, str | None, str | None, list[tuple[str, float | None]]]] = {
    "h1": (True, None, None, [("converted", 10.0)]),
    "h2": (True, None, None, []),
    "h3": (True, None, None, []),
    "h4": (True, None, None, []),
    "s1": (False, "email", "sent", [("converted", 30.0)]),
    "s2": (False, "email", "sent", [("clicked", None)]),
    "s3": (False, "email", "sent", [("clicked", None), ("clicked", None)]),
    "s4": (False, "email", "sent", []),
    "b1": (False, "email", "bounced", []),
    "k1": (False, "email", "skipped", [("converted", 20.0)]),  # bought anyway
    "f1": (False, "email", "failed", []),
    "d1": (False, "email", "dead", []),
    "p1": (False, "email", "pending", [("converted", 50.0)]),
    "n1": (False, "email", None, []),
    "u1": (False, "email", "unknown", [("clicked", None)]),
    "z1": (False, None, None, [("converted", 5.0)]),  # the policy chose not to send
}
#: ``winter``: planned, and nothing has gone out yet.
WINTER: dict[str, tuple[bool, str | None, str | None, list[tuple[str, float | None]]]] = {
    "wh1": (True, None, None, [("converted", 10.0)]),
    "wh2": (True, None, None, [("converted", 10.0)]),
    "wh3": (True, None, None, []),
    "wh4": (True, None, None, []),
    **{f"w{i}": (False, "email", None, []) for i in range(5)},
    "w5": (False, "email", None, [("converted", 50.0)]),
}
SENDING_COSTS = {"email": 2.0}


def seed_sending(engine: Engine) -> None:
    """``autumn`` and ``winter`` (objective ``sales``), decided at T0 + 1 h, sent at T0 + 2 h
    when sent at all, their events at T0 + 5 h; one policy version decided them."""
    outcomes: dict[int, str | None] = {}
    with session_scope(engine) as session:
        version = PolicyVersion(name="sales", version=1, kind="thompson", created_at=T0)
        session.add(version)
        session.flush()
        for key, people in (("autumn", AUTUMN), ("winter", WINTER)):
            campaign = Campaign(key=key, objective="sales", created_at=T0, updated_at=T0)
            session.add(campaign)
            session.flush()
            for name, (holdout, channel, outcome, events) in people.items():
                contact = Contact(external_id=name, created_at=T0, updated_at=T0)
                session.add(contact)
                session.flush()
                decision = Decision(
                    campaign_id=campaign.id,
                    contact_id=contact.id,
                    channel=channel,
                    send_at=None if channel is None else T0 + timedelta(hours=2),
                    action=0 if channel is None else 1,
                    propensity=0.5,
                    policy_version_id=version.id,
                    holdout=holdout,
                    reasons={},
                    decided_at=T0 + timedelta(hours=1),
                )
                session.add(decision)
                session.flush()
                outcomes[decision.id] = outcome
                session.add_all(
                    Event(
                        contact_id=contact.id,
                        decision_id=decision.id,
                        channel=channel,
                        type=kind,
                        value=value,
                        at=T0 + timedelta(hours=5),
                        source="test",
                        provider_event_id=f"{name}-{i}",
                    )
                    for i, (kind, value) in enumerate(events)
                )
    for key in ("autumn", "winter"):
        record_sends(engine, key, at=T0 + timedelta(hours=3), outcomes=outcomes)


def test_the_report_measures_what_went_out(engine: Engine) -> None:
    """Hand-computed from AUTUMN: lift and ROI compare every decision whose fate is settled
    (sent, bounced, ended unsent, *no send*) with the holdout; the sends still waiting (pending,
    in doubt, never enqueued) count nowhere; the cost, the reach, the depth, the channels and the
    learning curve count what went out."""
    seed_sending(engine)
    report = store_report(
        engine, as_of=AS_OF, specs=SPECS, channel_costs=SENDING_COSTS, rng=np.random.default_rng(1)
    )
    autumn = next(c for c in report.campaigns if c.key == "autumn")
    assert (autumn.n_decisions, autumn.n_treated, autumn.n_holdout) == (16, 12, 4)
    sending = autumn.sending
    assert (sending.planned, sending.sent, sending.waiting, sending.not_sent) == (11, 5, 3, 3)
    assert sending.share_sent == pytest.approx(5 / 11)
    assert sending.message == (
        "5 of 11 planned sends went out (45%); 3 still waiting to be sent, 3 skipped, failed or "
        "dead at send time; ROI, reach and depth count the sends that went out"
    )
    # intent to treat: s1-s4, b1, k1, f1, d1, z1 against h1-h4
    lift = autumn.lift
    assert lift is not None
    assert (lift.n_treated, lift.n_holdout) == (9, 4)
    assert lift.treated_mean == pytest.approx(3 / 9)  # s1, k1, z1
    assert lift.holdout_mean == pytest.approx(1 / 4)
    # the cost of 5 e-mails sent; the value 30 + 20 + 5 over 9 against 10 over 4
    roi = autumn.roi
    assert roi is not None
    assert roi.cost == pytest.approx(5 * 2.0)
    assert roi.n_treated == 9
    assert roi.incremental_value == pytest.approx(9 * (55 / 9 - 10 / 4))
    assert roi.roi == pytest.approx((32.5 - 10.0) / 10.0)
    # reached: s1-s4 and b1; engaged s1 (1), s2 (1), s3 (2)
    breadth = autumn.breadth
    assert breadth is not None
    assert (breadth.audience, breadth.reached, breadth.engaged) == (16, 5, 3)
    assert breadth.engagements == 4.0
    assert breadth.engagement_per_engaged == pytest.approx(4 / 3)
    assert breadth.share_engaged == pytest.approx(3 / 5)
    assert autumn.channels is not None
    assert autumn.channels.cells == ("email",)
    assert autumn.channels.n == (5,)
    assert autumn.channels.estimate[0] == pytest.approx(1 / 5)
    # the learning curve: the version's decisions that happened (the sends out, z1's no send)
    [point] = report.learning_curve
    assert (point.policy, point.n) == ("sales", 6 + 0)
    assert point.mean == pytest.approx(2 / 6)

    winter = next(c for c in report.campaigns if c.key == "winter")
    assert winter.sending.nothing_sent
    assert (winter.sending.planned, winter.sending.sent, winter.sending.waiting) == (6, 0, 6)
    assert winter.sending.message == (
        "nothing sent yet: all 6 planned sends are still waiting to be sent (run tummler send); "
        "lift and ROI wait until messages go out"
    )
    assert (winter.lift, winter.roi, winter.goal, winter.channels) == (None, None, None, None)
    assert winter.breadth is not None
    assert (winter.breadth.audience, winter.breadth.reached) == (10, 0)
    # the objective pools what can be measured: autumn's settled decisions, nothing of winter
    [sales] = report.objectives
    assert sales.lift is not None
    assert (sales.lift.n_treated, sales.lift.n_holdout) == (9, 4)
    assert sales.lift.treated_mean == pytest.approx(lift.treated_mean)
    page = render_store_html(report)
    assert "Sends: 5 of 11 planned sends went out (45%)" in page
    assert "Nothing was sent yet: no lift or return to report." in page
    assert "Nothing sent for winter: no lift until their messages go out." in page
    assert re.search(r"\bnan\b", page, re.IGNORECASE) is None


@SQLITE_ONLY
def test_the_report_as_of_a_time_sees_the_sends_made_by_then(engine: Engine) -> None:
    """Before T0 + 2 h nothing of autumn had gone out: as of then, it was all still to send."""
    seed_sending(engine)
    early = store_report(
        engine, as_of=T0 + timedelta(hours=1, minutes=30), channel_costs=SENDING_COSTS
    )
    autumn = next(c for c in early.campaigns if c.key == "autumn")
    assert (autumn.sending.planned, autumn.sending.sent, autumn.sending.waiting) == (11, 0, 11)
    assert autumn.sending.nothing_sent
    assert (autumn.lift, autumn.roi) == (None, None)
    later = store_report(engine, as_of=T0 + timedelta(hours=2, minutes=30))
    autumn = next(c for c in later.campaigns if c.key == "autumn")
    # sent at T0 + 2 h; skipped, failed and dead only at T0 + 3 h
    assert (autumn.sending.sent, autumn.sending.waiting, autumn.sending.not_sent) == (5, 6, 0)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], (0, 0, 0, 0, None, "no sends planned")),
        (["nothing_to_send"] * 3, (0, 0, 0, 0, None, "no sends planned")),
        (["sent", "sent"], (2, 2, 0, 0, 1.0, "all 2 planned sends went out")),
        (
            ["waiting", "nothing_to_send"],
            (1, 0, 1, 0, 0.0, "nothing sent yet: all 1 planned sends are still waiting"),
        ),
        (
            ["waiting", "not_sent", "not_sent"],
            (
                3,
                0,
                1,
                2,
                0.0,
                "nothing sent yet: of 3 planned sends, 1 still waiting to be sent, 2 skipped, "
                "failed or dead at send time; lift and ROI wait",
            ),
        ),
        (
            ["not_sent", "not_sent"],
            (2, 0, 0, 2, 0.0, "nothing was sent: all 2 planned sends were skipped, failed or dead"),
        ),
        (
            ["sent", "not_sent", "waiting", "waiting"],
            (4, 1, 2, 1, 0.25, "1 of 4 planned sends went out (25%); 2 still waiting to be sent"),
        ),
    ],
)
def test_send_progress_in_words(states: list[str], expected: tuple[Any, ...]) -> None:
    progress = send_progress([SendState(s) for s in states])
    planned, sent, waiting, not_sent, share, message = expected
    assert (progress.planned, progress.sent, progress.waiting, progress.not_sent) == (
        planned,
        sent,
        waiting,
        not_sent,
    )
    assert progress.share_sent == share
    assert progress.message.startswith(message)
    assert progress.nothing_sent == (planned > 0 and sent == 0)


# -------------------------------------------------------------------------------------- CLI


@pytest.fixture
def populated_workspace(workspace: Path) -> None:
    """Puts :func:`seed`'s two campaigns in the workspace's store."""
    with workspace_store(workspace) as engine:
        seed(engine)


@pytest.mark.usefixtures("populated_workspace")
def test_cli_json_and_tables(workspace: Path, tmp_path: Path) -> None:
    app = _cli()
    args = ["-w", str(workspace), "report"]
    page = tmp_path / "out" / "report.html"
    result = runner.invoke(app, [*args, "--json", "--as-of", "2026-03-31", "--html", str(page)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kind"] == "store"
    assert data["as_of"] == "2026-03-31T23:59:59.999999+00:00"
    spring = next(c for c in data["campaigns"] if c["key"] == "spring")
    assert set(spring) >= {"lift", "variants", "sequential", "send_time", "channels", "goal"}
    assert spring["lift"]["verdict"] == "effect"
    assert spring["lift"]["difference_interval"]["low"] > 0
    assert spring["channels"]["causal"] is True
    assert len(data["learning_curve"]) == 2
    assert 'id="plot-lift"' in page.read_text(encoding="utf-8")

    result = runner.invoke(app, [*args, "spring"])
    assert result.exit_code == 0, result.output
    assert "holdout lift" in result.output
    assert "campaign spring" in result.output
    assert "causal" in result.output

    result = runner.invoke(app, [*args, "winter"])
    assert result.exit_code != 0
    assert "no campaign 'winter'" in str(result.exception)


def test_cli_on_a_plan_not_sent_yet_and_then_half_sent(tmp_path: Path) -> None:
    """A real plan of the example workspace: before anything goes out the report says so (no
    lift, no "ROI -100%", no "nan"); with half the messages out it states the share sent."""
    directory = tmp_path / "ws"
    settings = init_workspace(directory)
    engine = open_store(settings)
    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    try:
        with session_scope(engine) as session:
            for i in range(60):
                add_reachable(
                    session,
                    f"c{i}",
                    {"email": f"c{i}@example.org", "sms": f"+49151{i:07d}"},
                    now=now,
                    clicked_ago=timedelta(days=1 + i % 20),
                )
        plan_campaign(
            engine,
            workspace=directory,
            campaign_key="fresh-roast-reorder",
            clock=FrozenClock(now),
            seed=5,
        )
        with session_scope(engine) as session:
            decisions = session.execute(
                select(Decision.id, Decision.contact_id, Decision.holdout, Decision.channel)
            ).all()
            # the held-out people buy (attributed by the report itself, as they arrive)
            session.add_all(
                Event(
                    contact_id=d.contact_id,
                    type="converted",
                    value=20.0,
                    at=now + timedelta(days=1),
                    source="test",
                    provider_event_id=f"conv-{d.id}",
                )
                for d in decisions
                if d.holdout
            )
    finally:
        engine.dispose()
    sends = sorted(d.id for d in decisions if not d.holdout and d.channel is not None)
    assert len(sends) > 20
    assert any(d.holdout for d in decisions)
    args = ["-w", str(directory), "report", "--as-of", "2026-03-31"]

    before = runner.invoke(_cli(), args)
    assert before.exit_code == 0, before.output
    words = " ".join(before.output.split())
    assert "nothing sent yet" in words
    assert f"nothing sent yet: all {len(sends)} planned sends are still waiting" in words
    assert "ROI:" not in words
    assert "-100%" not in words
    assert re.search(r"\bnan\b", words, re.IGNORECASE) is None
    assert "nobody reached yet" in words
    document = json.loads(runner.invoke(_cli(), [*args, "--json"]).output)
    [campaign] = document["campaigns"]
    assert (campaign["lift"], campaign["roi"]) == (None, None)
    assert campaign["sending"]["planned"] == campaign["sending"]["waiting"] == len(sends)

    half = set(sends[: len(sends) // 2])
    engine = open_store(settings)
    try:
        record_sends(
            engine,
            "fresh-roast-reorder",
            at=now,
            outcomes=dict.fromkeys(half, "sent"),
            default="pending",
        )
    finally:
        engine.dispose()
    after = runner.invoke(_cli(), args)
    assert after.exit_code == 0, after.output
    words = " ".join(after.output.split())
    share = len(half) / len(sends)
    assert f"{len(half)} of {len(sends)} planned sends went out ({share:.0%})" in words
    assert f"none of the {len(half)} reached has engaged yet" in words
    assert re.search(r"\bnan\b", words, re.IGNORECASE) is None
    document = json.loads(runner.invoke(_cli(), [*args, "--json"]).output)
    [campaign] = document["campaigns"]
    assert campaign["sending"]["sent"] == len(half)
    assert campaign["sending"]["share_sent"] == pytest.approx(share)
    assert campaign["breadth"]["reached"] == len(half)
    assert campaign["breadth"]["engagement_per_engaged"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--log", "x.csv"], "--log needs --control ACTION"),
        (["--log", "x.csv", "--control", "a", "spring"], "leave out CAMPAIGN and --as-of"),
        (["--control", "a"], "--control goes with --log FILE"),
    ],
)
def test_cli_rejects_mixed_options(argv: list[str], message: str) -> None:
    result = runner.invoke(_cli(), ["report", *argv])
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)


# ------------------------------------------------------------------------------- logged bandit


def _write_log(
    path: Path, actions: list[str], rewards: list[float], propensity: list[float]
) -> Path:
    table = pa.table(
        {
            "action": actions,
            "reward": pa.array(rewards, pa.float64()),
            "propensity": pa.array(propensity, pa.float64()),
            "x": pa.array([float(i % 3) for i in range(len(actions))]),
        }
    )
    pa_csv.write_csv(table, path)
    return path


def test_log_report_weights_by_propensity(tmp_path: Path) -> None:
    # Arm "b" was shown with propensity 0.2 to half the people it reached and 0.8 to the other
    # half, whose rewards differ: the weighted mean leans to the rarely chosen rows.
    log = _write_log(
        tmp_path / "log.csv",
        ["a", "a", "b", "b"],
        [1.0, 0.0, 1.0, 0.0],
        [0.5, 0.5, 0.2, 0.8],
    )
    report = log_report(log, control="a")
    means = {a.action: a.mean for a in report.actions}
    assert means["a"] == pytest.approx(0.5)
    assert means["b"] == pytest.approx((1 / 0.2) / (1 / 0.2 + 1 / 0.8))
    (lift,) = report.lifts
    assert lift.action == "b"
    assert lift.difference == pytest.approx(means["b"] - 0.5)
    with pytest.raises(InputError, match="--control 'c' is not an action of the log; its actions"):
        log_report(log, control="c")
    with pytest.raises(InputError, match="alpha = 0"):
        log_report(log, control="a", alpha=0)


def test_log_report_finds_a_seeded_lift(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 6000
    action = rng.choice(["control", "mail"], size=n)
    reward = (rng.random(n) < np.where(action == "mail", 0.12, 0.08)).astype(float)
    log = _write_log(tmp_path / "log.csv", list(action), list(reward), [0.5] * n)
    report = log_report(log, control="control")
    (lift,) = report.lifts
    assert lift.interval.contains(0.04)
    assert lift.significant
    assert lift.relative_interval is not None
    assert lift.relative_interval.contains(0.5)
    assert lift.message.startswith("mail raised the reward by")


@settings(max_examples=40, deadline=None)
@given(
    rewards=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 100, allow_nan=False)),
        min_size=2,
        max_size=40,
    ),
    propensity=st.floats(0.05, 1.0),
)
def test_log_means_equal_arm_means_when_propensities_are_constant(
    rewards: list[tuple[str, float]], propensity: float
) -> None:
    """With one propensity for every row the weighted mean is the plain arm mean, whatever it is."""
    actions = [a for a, _ in rewards]
    if "a" not in actions:
        actions[0] = "a"
    with tempfile.TemporaryDirectory() as directory:
        log = _write_log(
            Path(directory) / "log.csv",
            actions,
            [r for _, r in rewards],
            [propensity] * len(rewards),
        )
        report = log_report(log, control="a")
    for mean in report.actions:
        values = [r for a, (_, r) in zip(actions, rewards, strict=True) if a == mean.action]
        assert mean.mean == pytest.approx(float(np.mean(values)), rel=1e-9, abs=1e-9)
        assert mean.n == len(values)
        assert mean.interval.low <= mean.mean <= mean.interval.high
    assert json.loads(json.dumps(report.to_dict()))["control"] == "a"


@pytest.fixture
def hillstrom_log(data_dir: Path, tmp_path: Path) -> Path:
    """The Hillstrom experiment as a logged bandit, with the visit as reward."""
    return experiment_to_log(
        data_dir / "hillstrom" / "hillstrom.csv",
        tmp_path / "hillstrom-visit.csv",
        action="segment",
        reward="visit",
        outcomes=("conversion", "spend"),
    )


def test_hillstrom_reproduces_the_published_visit_means(hillstrom_log: Path) -> None:
    result = runner.invoke(
        _cli(), ["report", "--log", str(hillstrom_log), "--control", "No E-Mail", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    means = {a["action"]: round(a["mean"], 4) for a in data["actions"]}
    assert means == {"Mens E-Mail": 0.1828, "Womens E-Mail": 0.1514, "No E-Mail": 0.1062}
    lifts = {item["action"]: item for item in data["lifts"]}
    assert set(lifts) == {"Mens E-Mail", "Womens E-Mail"}
    for lift in lifts.values():
        assert lift["control"] == "No E-Mail"
        assert lift["interval"]["low"] > 0
        assert lift["significant"] is True


# -------------------------------------------------------------------------------- HTML page


@SQLITE_ONLY
def test_html_report_renders_offline_in_chromium(
    engine: Engine,
    chromium: str,
    serve: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    seed(engine)
    report = store_report(engine, as_of=AS_OF, specs=SPECS, channel_costs=COSTS)
    base, requests = serve
    page = write_html(report, tmp_path / "site" / "report.html")
    text = page.read_text(encoding="utf-8")
    assert_self_contained(text)

    dom = dump_dom(chromium, f"{base}/report.html", tmp_path / "profile")
    assert requests == ["/report.html"]
    for plot in (
        "plot-lift",
        "plot-goals",
        "plot-learning",
        "plot-send-time-spring",
        "plot-channels-spring",
        "plot-channels-quiet",
    ):
        assert f'id="{plot}"' in dom, plot
    assert "campaign spring raised the share who converted" in dom
    assert dom.count("<svg") >= 6


def test_html_log_report_renders_offline_in_chromium(
    chromium: str, serve: tuple[str, list[str]], tmp_path: Path
) -> None:
    log = _write_log(tmp_path / "log.csv", ["a", "b"] * 50, [1.0, 0.0] * 50, [0.5] * 100)
    base, requests = serve
    result = runner.invoke(
        _cli(),
        [
            "report",
            "--log",
            str(log),
            "--control",
            "a",
            "--html",
            str(tmp_path / "site" / "x.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert_self_contained((tmp_path / "site" / "x.html").read_text(encoding="utf-8"))
    dom = dump_dom(chromium, f"{base}/x.html", tmp_path / "profile")
    assert requests == ["/x.html"]
    assert 'id="plot-means"' in dom
    assert 'id="plot-lift"' in dom
