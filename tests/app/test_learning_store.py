"""`tummler learn` / `tummler evaluate` on the store's logged decisions, on SQLite and PostgreSQL.

The ground truth: in the example workspace's ``fresh-roast-reorder`` campaign (e-mail or SMS, one
lever), every contact can get either channel, and a sent SMS converts at 70 % while an e-mail
converts at 5 %. The first plan is made by planning's fresh prior (version 0), so its decisions
spread over both channels with known propensities; the conversions are written as events and
attributed. Learning must then store version 1 (parent 0) that prefers SMS, off-policy evaluation
must rank it above uniform, a worse version must be refused, and the next plan must use version 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy
import typer
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli_app import cli_app
from seeding import add_recent_clickers, record_sends
from tummler.app.contacts import set_stages
from tummler.app.learning import (
    PROMOTE_ACTION,
    CampaignPolicy,
    NothingToEvaluateError,
    evaluate_store,
    learn_from_store,
    promote,
    read_policy,
)
from tummler.app.planning import explain_decision, plan_campaign
from tummler.cli import learn as learn_cli
from tummler.core.clock import FrozenClock
from tummler.core.errors import InputError, PolicyError
from tummler.evaluate import Comparison
from tummler.store.database import connect, session_scope
from tummler.store.models import (
    AuditEntry,
    Campaign,
    Contact,
    ContactChange,
    Decision,
    Delivery,
    Event,
    PolicyVersion,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
LATER = NOW + 3 * DAY
REORDER = "fresh-roast-reorder"
OBJECTIVE = "repeat-purchase"
RATE = {"sms": 0.70, "email": 0.05}


def _learn_cli(workspace: Path) -> typer.Typer:
    """`tummler learn` and `tummler evaluate` on ``workspace``, for CliRunner."""
    return cli_app(workspace, learn_cli.learn, learn_cli.evaluate)


def _plan(engine: Engine, workspace: Path, at: datetime, seed: int) -> Any:
    return plan_campaign(
        engine, workspace=workspace, campaign_key=REORDER, clock=FrozenClock(at), seed=seed
    )


def _respond(engine: Engine, seed: int) -> dict[str, int]:
    """A conversion event after each sent decision, with the channel's true rate."""
    rng = np.random.default_rng(seed)
    sends: dict[str, int] = {"sms": 0, "email": 0}
    with session_scope(engine) as session:
        decisions = session.scalars(
            select(Decision).where(Decision.channel.is_not(None)).order_by(Decision.id)
        ).all()
        for d in decisions:
            assert d.channel is not None
            assert d.send_at is not None
            sends[d.channel] += 1
            if rng.random() < RATE[d.channel]:
                session.add(
                    Event(
                        contact_id=d.contact_id,
                        channel=d.channel,
                        type="converted",
                        value=20.0,
                        at=d.send_at + timedelta(hours=2),
                        source="test",
                        provider_event_id=f"conv-{d.id}",
                    )
                )
    return sends


def _rewards(engine: Engine) -> list[float]:
    """1 for every non-holdout decision of the first plan with a conversion, else 0."""
    with Session(engine) as session:
        decisions = session.scalars(
            select(Decision.id).where(Decision.holdout.is_(False), Decision.lever == 0)
        ).all()
        converted = set(
            session.scalars(select(Event.decision_id).where(Event.type == "converted")).all()
        )
    return [1.0 if d in converted else 0.0 for d in decisions]


def _withdraw_deliveries(engine: Engine) -> None:
    """Remove the outbox's records, so that planning the campaign again replaces every decision
    (a plan keeps the decisions that have a delivery): the tests compare whole plans."""
    with session_scope(engine) as session:
        session.execute(delete(Delivery))


def _version(engine: Engine, version: int) -> PolicyVersion:
    with Session(engine) as session:
        row = session.scalars(
            select(PolicyVersion).where(
                PolicyVersion.name == OBJECTIVE, PolicyVersion.version == version
            )
        ).one()
        session.expunge(row)
        return row


def _add_child(engine: Engine, parent: PolicyVersion, parameters: dict[str, Any]) -> None:
    """Store ``parameters`` as the next, unpromoted version after ``parent``."""
    with session_scope(engine) as session:
        session.add(
            PolicyVersion(
                name=parent.name,
                version=parent.version + 1,
                kind=parent.kind,
                parameters=parameters,
                parent_id=parent.id,
                promoted=False,
                created_at=LATER,
            )
        )


@pytest.fixture
def learned(engine: Engine, workspace: Path) -> Engine:
    """The store after one plan by the prior, the responses, and ``learn``."""
    add_recent_clickers(engine, 160, now=NOW)
    first = _plan(engine, workspace, NOW, seed=5)
    record_sends(engine, REORDER, at=NOW)
    sends = _respond(engine, seed=11)
    assert min(sends.values()) >= 20, sends  # the prior explored both channels
    rows = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    assert [r.objective for r in rows] == [OBJECTIVE]
    row = rows[0]
    assert row.parent == f"{OBJECTIVE}@0"
    assert row.stored == f"{OBJECTIVE}@1"
    assert row.decisions == sum(sends.values())
    assert row.mean_reward is not None
    assert 0.05 < row.mean_reward < 0.7
    assert _version(engine, 0).id == first.policy_version_id
    return engine


def test_learn_stores_version_1_with_parent_0_that_prefers_the_better_channel(
    learned: Engine, workspace: Path
) -> None:
    v0, v1 = _version(learned, 0), _version(learned, 1)
    assert v1.parent_id == v0.id
    assert not v1.promoted
    assert v0.promoted
    assert v1.parameters["format"] == "tummler.policy/2"
    assert v1.parameters["learned_from"]["parent"] == f"{OBJECTIVE}@0"
    old, new = read_policy(v0.parameters), read_policy(v1.parameters)
    assert isinstance(old, CampaignPolicy)
    assert isinstance(new, CampaignPolicy)
    assert new.featurizer == old.featurizer  # the plans' own features, unchanged
    assert new.policy.version == old.policy.version + 1
    # the same contacts, decided by each version: version 1 sends SMS to almost everyone
    evaluation = evaluate_store(
        learned,
        workspace=workspace,
        candidates=[f"{OBJECTIVE}@1", f"{OBJECTIVE}@0", "uniform", "logged"],
        n_bootstrap=100,
        clock=FrozenClock(LATER),
    )
    values = {r.policy: r["dr"].value for r in evaluation.results}
    assert values[f"{OBJECTIVE}@1"] > 0.5  # the truth for all-SMS is 0.70
    assert values[f"{OBJECTIVE}@1"] > values["uniform"] + 0.15
    assert values[f"{OBJECTIVE}@1"] > values[f"{OBJECTIVE}@0"]
    ips = {r.policy: r["ips"] for r in evaluation.results}
    assert ips["logged"].value == pytest.approx(float(np.mean(_rewards(learned))))
    assert ips["logged"].effective_sample_size > ips[f"{OBJECTIVE}@1"].effective_sample_size > 0
    low = evaluation.results[0]["dr"].ci_low
    assert low is not None
    assert low < values[f"{OBJECTIVE}@1"]


def test_promotion_refuses_a_worse_version_and_plan_uses_the_promoted_one(
    learned: Engine, workspace: Path
) -> None:
    v1 = _version(learned, 1)
    with Session(learned) as session:
        sent = session.scalars(select(Decision.channel).where(Decision.channel.is_not(None))).all()
    first_share = sent.count("sms") / len(sent)
    # a worse version: version 1's weights turned around prefer e-mail
    worse = json.loads(json.dumps(v1.parameters))
    worse["policy"]["state"]["m"] = [-m for m in worse["policy"]["state"]["m"]]
    _add_child(learned, v1, worse)
    clock = FrozenClock(LATER)
    options: dict[str, Any] = {"workspace": workspace, "clock": clock, "n_bootstrap": 100}
    report = promote(learned, f"{OBJECTIVE}@1", **options)
    assert report.previous == f"{OBJECTIVE}@0"
    assert report.candidate_ci_low is not None
    assert report.previous_estimate is not None
    assert report.candidate_ci_low >= report.previous_estimate
    with pytest.raises(PolicyError, match=rf"refusing to promote {OBJECTIVE}@2: its dr lower"):
        promote(learned, f"{OBJECTIVE}@2", **options)
    forced = promote(learned, f"{OBJECTIVE}@2", force=True, actor="test", **options)
    assert forced.forced
    promote(learned, f"{OBJECTIVE}@1", **options)  # and back
    with Session(learned) as session:
        actions = session.scalars(
            select(AuditEntry.subject).where(AuditEntry.action == PROMOTE_ACTION)
        ).all()
        assert actions == [f"policy:{OBJECTIVE}@{v}" for v in (1, 2, 1)]
    # the next plan is made by version 1, and sends SMS
    _withdraw_deliveries(learned)
    second = _plan(learned, workspace, LATER, seed=6)
    assert second.policy_version_id == v1.id
    with Session(learned) as session:
        rows = session.execute(
            select(Decision.channel, Decision.policy_version_id).where(Decision.holdout.is_(False))
        ).all()
    assert {r.policy_version_id for r in rows} == {v1.id}
    channels = [r.channel for r in rows]
    # the prior sent SMS to about a fifth (it has fewer SMS levers); version 1 to most
    assert channels.count("sms") > 0.5 * len(channels)
    assert channels.count("sms") / len(channels) > first_share + 0.25


def test_bad_store_requests(engine: Engine, workspace: Path) -> None:
    clock = FrozenClock(LATER)
    assert learn_from_store(engine, workspace=workspace, clock=clock) == []
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({}, InputError, r"decisions of 0 objectives \(\); choose one with --objective"),
        ({"objective": OBJECTIVE}, InputError, "no logged decisions of objective"),
        ({"campaign": "nope"}, Exception, "no campaign 'nope' in the store; plan it first"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            evaluate_store(engine, workspace=workspace, clock=clock, **kwargs)
    with pytest.raises(InputError, match="promoting needs the evidence"):
        _promote_without_evidence(engine)


def _promote_without_evidence(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(
            PolicyVersion(
                name=OBJECTIVE, version=0, kind="uniform_random", parameters={}, created_at=NOW
            )
        )
    promote(engine, f"{OBJECTIVE}@0")


def test_cli_learn_and_evaluate_on_the_store(workspace: Path) -> None:
    engine = connect(f"sqlite:///{workspace / 'tummler.db'}")
    add_recent_clickers(engine, 120, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    record_sends(engine, REORDER, at=NOW)
    _respond(engine, seed=11)
    engine.dispose()
    app = _learn_cli(workspace)
    runner = CliRunner()
    shown = runner.invoke(app, ["learn"])
    assert shown.exit_code == 0, shown.output
    words = " ".join(shown.output.split())
    assert "learned from the store's decisions" in words  # the table (narrow: cells wrap)
    assert "repeat-" in words
    result = runner.invoke(app, ["evaluate", "--json", "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["log"] == f"store:{OBJECTIVE}"
    # each Thompson version as deployed, then greedy; the price of exploration of each
    assert [p["policy"] for p in document["policies"]] == [
        f"{OBJECTIVE}@1",
        f"{OBJECTIVE}@1 (greedy)",
        f"{OBJECTIVE}@0",
        f"{OBJECTIVE}@0 (greedy)",
        "uniform",
        "logged",
    ]
    prices = {p["policy"]: p for p in document["exploration"]}
    assert set(prices) == {f"{OBJECTIVE}@1", f"{OBJECTIVE}@0"}
    values = {p["policy"]: p["estimates"]["dr"]["estimate"] for p in document["policies"]}
    assert prices[f"{OBJECTIVE}@1"]["estimates"]["dr"]["estimate"] == pytest.approx(
        values[f"{OBJECTIVE}@1"] - values[f"{OBJECTIVE}@1 (greedy)"]
    )
    table = runner.invoke(app, ["evaluate", "--promote", "--bootstrap", "50"])
    assert table.exit_code == 0, table.output
    assert f"promoted {OBJECTIVE}@1" in " ".join(table.output.split())
    refused = runner.invoke(app, ["learn", "--log", str(workspace / "missing.csv")])
    assert refused.exit_code != 0


def _weights(parameters: dict[str, Any]) -> dict[str, Any]:
    """A stored policy's learned state, without its version number."""
    return {k: v for k, v in parameters["policy"].items() if k != "version"}


def test_learning_reads_each_contact_as_it_was_when_decided(
    learned: Engine, workspace: Path
) -> None:
    """A stage that moved after the decision (say, the message made people lapse) is not a
    feature the decision was made on: learning again after the move must learn the same."""
    clock = FrozenClock(LATER)
    baseline = _weights(_version(learned, 1).parameters)
    with Session(learned) as session:
        ids = session.scalars(select(Contact.id)).all()
    moved = set_stages(learned, dict.fromkeys(ids, "lapsed"), at=NOW + DAY, source="test")
    assert moved.changed == len(ids)
    [row] = learn_from_store(learned, workspace=workspace, clock=clock)
    assert (row.parent, row.stored) == (f"{OBJECTIVE}@0", f"{OBJECTIVE}@2")
    assert _weights(_version(learned, 2).parameters) == baseline
    # Without the history the same store teaches from today's stage: this test can tell.
    with session_scope(learned) as session:
        session.execute(delete(ContactChange))
    [row] = learn_from_store(learned, workspace=workspace, clock=clock)
    assert row.stored == f"{OBJECTIVE}@3"
    assert _weights(_version(learned, 3).parameters) != baseline


def test_a_channel_followed_by_unsubscribes_is_priced_and_sent_less(
    engine: Engine, workspace: Path
) -> None:
    """Both channels convert at 30 %, but 60 % of the SMS that do not convert are followed by an
    unsubscribe. The clipped conversion reward cannot tell the channels apart; the harm learned
    with the policy must price SMS, the plan must say so, and send fewer SMS than the same
    posterior without it."""
    add_recent_clickers(engine, 600, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    record_sends(engine, REORDER, at=NOW)
    rng = np.random.default_rng(3)
    sends, unsubscribes = {"sms": 0, "email": 0}, {"sms": 0, "email": 0}
    with session_scope(engine) as session:
        for d in session.scalars(
            select(Decision).where(Decision.channel.is_not(None)).order_by(Decision.id)
        ).all():
            assert d.channel is not None
            assert d.send_at is not None
            sends[d.channel] += 1
            if rng.random() < 0.3:
                kind = "converted"
            elif d.channel == "sms" and rng.random() < 0.6:
                kind = "unsubscribed"
                unsubscribes["sms"] += 1
            else:
                continue
            session.add(
                Event(
                    contact_id=d.contact_id,
                    channel=d.channel,
                    type=kind,
                    value=20.0 if kind == "converted" else None,
                    at=d.send_at + timedelta(hours=1),
                    source="test",
                    provider_event_id=f"{kind}-{d.id}",
                )
            )
    assert min(sends.values()) >= 20, sends
    assert unsubscribes["sms"] >= 10, unsubscribes
    [row] = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    v1 = _version(engine, 1)
    learned = read_policy(v1.parameters)
    assert isinstance(learned, CampaignPolicy)
    harm = learned.channel_harm
    # each unsubscribe without a conversion costs the strategy's penalty (1) the clip dropped
    assert dict(harm.sends) == {c: float(n) for c, n in sends.items()}
    assert dict(harm.lost) == {"sms": float(unsubscribes["sms"]), "email": 0.0}
    pooled = unsubscribes["sms"] / (sends["sms"] + sends["email"])
    expected_sms = (unsubscribes["sms"] + 200 * pooled) / (sends["sms"] + 200)
    assert harm.per_send(["sms", "email"]) == pytest.approx(
        [expected_sms, 200 * pooled / (sends["email"] + 200)]
    )
    assert "harm per send from unsubscribes and complaints: email" in " ".join(row.notes)
    assert f"sms {expected_sms:.4g}" in " ".join(row.notes)
    # the same posterior without the harm, as version 2; each plans the same contacts
    unpriced = json.loads(json.dumps(v1.parameters))
    del unpriced["channel_harm"]
    _add_child(engine, v1, unpriced)
    _withdraw_deliveries(engine)

    def sms_share(version: int) -> tuple[float, Any]:
        with session_scope(engine) as session:
            for row in session.scalars(select(PolicyVersion)):
                row.promoted = row.version == version
        report = _plan(engine, workspace, LATER, seed=6)
        with Session(engine) as session:
            sent = session.scalars(
                select(Decision.channel).where(Decision.channel.is_not(None))
            ).all()
        return sent.count("sms") / len(sent), report

    without, plain = sms_share(2)
    priced, report = sms_share(1)
    assert priced < 0.7 * without, (priced, without, harm)
    assert not any("harm per send" in note for note in plain.notes)
    [note] = [note for note in report.notes if "harm per send" in note]
    assert f"sms {expected_sms:.4g}" in note
    with Session(engine) as session:
        contact = session.scalar(
            select(Contact.external_id)
            .join(Decision, Decision.contact_id == Contact.id)
            .where(Decision.channel == "email")
            .limit(1)
        )
    explanation = explain_decision(engine, contact=str(contact), campaign_key=REORDER)
    assert explanation.harm["email"] == pytest.approx(harm.per_send(["email"])[0], rel=1e-4)
    assert "unsubscribes and complaints showed on its channel" in explanation.summary


# --- decisions whose message never went out ----------------------------------------------------

#: What the outbox did with each send, in turn: two sent, one handed over then bounced (its
#: bounce is an outcome), and the rest never went out.
OUTCOMES = ("sent", "sent", "bounced", "skipped", "failed", "dead", "unknown", "pending", None)
HANDED_OVER = ("sent", "bounced")


def _sends(engine: Engine) -> list[Any]:
    """The first plan's sends (not held out, with a channel), by decision id."""
    with Session(engine) as session:
        return list(
            session.execute(
                select(Decision.id, Decision.channel, Decision.lever)
                .where(Decision.holdout.is_(False), Decision.channel.is_not(None))
                .order_by(Decision.id)
            ).all()
        )


def test_learning_leaves_out_sends_whose_message_never_went_out(
    engine: Engine, workspace: Path
) -> None:
    """Every send gets its conversion events, sent or not; only the sends the outbox handed over
    may teach the policy, each with its own outcome, and the notes count the rest."""
    add_recent_clickers(engine, 160, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    sends = _sends(engine)
    outcome = {int(s.id): OUTCOMES[i % len(OUTCOMES)] for i, s in enumerate(sends)}
    record_sends(engine, REORDER, at=NOW, outcomes=outcome)
    _respond(engine, seed=11)
    with Session(engine) as session:  # written as conv-<decision id>
        written = session.scalars(
            select(Event.provider_event_id).where(Event.type == "converted")
        ).all()
    converted = {int(name.removeprefix("conv-")) for name in written}
    went_out = [s for s in sends if outcome[int(s.id)] in HANDED_OVER]
    waiting = sum(outcome[int(s.id)] in ("unknown", "pending", None) for s in sends)
    ended = sum(outcome[int(s.id)] in ("skipped", "failed", "dead") for s in sends)
    assert waiting + ended + len(went_out) == len(sends)
    assert min(waiting, ended) > 0

    [row] = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))

    assert row.stored == f"{OBJECTIVE}@1"
    assert row.decisions == len(went_out)
    assert row.mean_reward == pytest.approx(
        sum(int(s.id) in converted for s in went_out) / len(went_out)
    )
    assert (
        f"left out {waiting + ended} decisions whose message never went out ({waiting} still "
        f"waiting to be sent, {ended} skipped, failed or dead at send time): an action never "
        "executed has no reward"
    ) in row.notes
    # the training rows, per channel: the harm per send counts exactly the sends learned from
    learned = read_policy(_version(engine, 1).parameters)
    assert isinstance(learned, CampaignPolicy)
    per_channel = {c: float(sum(s.channel == c for s in went_out)) for c in ("email", "sms")}
    assert dict(learned.channel_harm.sends) == per_channel

    # off-policy evaluation logs the same sends, and every *no send* decision (a real result)
    with Session(engine) as session:
        no_send = session.scalars(
            select(Decision.id).where(Decision.holdout.is_(False), Decision.channel.is_(None))
        ).all()
    evaluation = evaluate_store(
        engine,
        workspace=workspace,
        candidates=["logged"],
        n_bootstrap=0,
        clock=FrozenClock(LATER),
    )
    assert evaluation.n_rounds == len(went_out) + len(no_send)
    assert evaluation.results[0]["ips"].value == pytest.approx(
        sum(int(s.id) in converted for s in went_out) / evaluation.n_rounds
    )
    assert any("left out" in note for note in evaluation.notes)


def test_a_plan_whose_messages_have_not_gone_out_teaches_nothing(
    engine: Engine, workspace: Path
) -> None:
    """Planned, with conversions already attributed, but never sent: nothing to learn from, and
    nothing to evaluate on — not a policy whose every send earned 0."""
    add_recent_clickers(engine, 40, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    _respond(engine, seed=11)
    planned = len(_sends(engine))
    [row] = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    assert (row.decisions, row.mean_reward, row.stored) == (0, None, None)
    assert row.notes == (
        f"left out {planned} decisions whose message never went out ({planned} still waiting "
        "to be sent): an action never executed has no reward",
    )
    with pytest.raises(
        NothingToEvaluateError, match=r"with a message that went out.*send it \(tummler send\)"
    ):
        evaluate_store(engine, workspace=workspace, clock=FrozenClock(LATER))


def test_learning_reads_what_went_out_once_for_every_objective(
    engine: Engine, workspace: Path
) -> None:
    """Two objectives in the store: what the outbox did with each decision is read once for the
    run, not once per objective."""
    add_recent_clickers(engine, 40, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    record_sends(engine, REORDER, at=NOW)
    with session_scope(engine) as session:
        session.add(
            Campaign(key="welcome", objective="first-order", created_at=NOW, updated_at=NOW)
        )
    statements: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement.lower())

    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        rows = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)
    assert [(row.objective, row.stored) for row in rows] == [
        ("first-order", None),
        (OBJECTIVE, f"{OBJECTIVE}@1"),
    ]
    assert sum("count(deliveries.id)" in statement for statement in statements) == 1


def test_sends_that_went_out_but_cannot_be_rebuilt_are_an_error_not_nothing(
    engine: Engine, workspace: Path
) -> None:
    """A campaign file broken after its sends went out: there is something to evaluate, and the
    answer names what stops it (not "nothing to evaluate yet", which would exit 0)."""
    add_recent_clickers(engine, 40, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    record_sends(engine, REORDER, at=NOW)
    (workspace / "campaigns" / f"{REORDER}.yaml").write_text("id: [unclosed\n")
    with pytest.raises(InputError, match=rf"went out, but their contexts.*{REORDER}") as raised:
        evaluate_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    assert not isinstance(raised.value, NothingToEvaluateError)


def test_cli_evaluate_before_anything_went_out_says_so_and_succeeds(workspace: Path) -> None:
    """A daily `learn && evaluate --promote` before the first send is not a failure."""
    engine = connect(f"sqlite:///{workspace / 'tummler.db'}")
    add_recent_clickers(engine, 40, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    engine.dispose()
    app = _learn_cli(workspace)
    shown = CliRunner().invoke(app, ["evaluate", "--promote"])
    assert shown.exit_code == 0, shown.output
    words = " ".join(shown.output.split())
    assert "nothing to evaluate yet" in words
    assert "the promoted version stays as it is" in words
    document = CliRunner().invoke(app, ["evaluate", "--json"])
    assert document.exit_code == 0, document.output
    assert json.loads(document.output)["evaluated"] is False
    with Session(connect(f"sqlite:///{workspace / 'tummler.db'}")) as session:
        assert session.scalars(
            select(PolicyVersion.version).where(PolicyVersion.promoted)
        ).all() == [0]


# --- promotion on figures equal up to rounding --------------------------------------------------


@pytest.fixture
def all_zero(engine: Engine, workspace: Path) -> Engine:
    """Every send went out and nobody has responded yet: every reward is 0, and version 1 is
    learned from them. Every policy's value is 0; the estimates are noise around it."""
    add_recent_clickers(engine, 160, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    record_sends(engine, REORDER, at=NOW)
    [row] = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    assert (row.stored, row.mean_reward) == (f"{OBJECTIVE}@1", 0.0)
    return engine


def _promoted(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(PolicyVersion.version).where(PolicyVersion.promoted.is_(True))
            ).all()
        )


def test_a_tie_within_rounding_keeps_the_promoted_version(
    all_zero: Engine, workspace: Path
) -> None:
    options: dict[str, Any] = {"workspace": workspace, "clock": FrozenClock(LATER)}
    report = promote(all_zero, f"{OBJECTIVE}@1", **options)
    assert report.candidate_ci_low is not None
    assert report.previous_estimate is not None
    # the case: both figures are 0 up to a reward model's noise, in whichever order
    assert abs(report.candidate_ci_low) < 1e-9
    assert abs(report.previous_estimate) < 1e-9
    assert report.comparison is Comparison.TIE
    assert (report.promoted, report.audit_entry_id, report.forced) == (None, None, False)
    assert report.message.startswith(
        f"kept {OBJECTIVE}@0: {OBJECTIVE}@1 is not better (its dr lower bound"
    )
    assert "is a tie, the same within 1e-09" in report.message
    assert _promoted(all_zero) == [0]
    with Session(all_zero) as session:
        assert session.scalars(select(AuditEntry)).all() == []
    forced = promote(all_zero, f"{OBJECTIVE}@1", force=True, **options)
    assert (forced.promoted, forced.forced, forced.comparison) == (
        f"{OBJECTIVE}@1",
        True,
        Comparison.TIE,
    )
    assert _promoted(all_zero) == [1]


def test_cli_evaluate_promote_on_a_tie_says_so_and_succeeds(workspace: Path) -> None:
    engine = connect(f"sqlite:///{workspace / 'tummler.db'}")
    add_recent_clickers(engine, 160, now=NOW)
    _plan(engine, workspace, NOW, seed=5)
    record_sends(engine, REORDER, at=NOW)
    [row] = learn_from_store(engine, workspace=workspace, clock=FrozenClock(LATER))
    engine.dispose()
    assert row.stored == f"{OBJECTIVE}@1"
    app = _learn_cli(workspace)
    shown = CliRunner().invoke(app, ["evaluate", "--promote", "--bootstrap", "50"])
    assert shown.exit_code == 0, shown.output
    words = " ".join(shown.output.split())
    assert f"kept {OBJECTIVE}@0: {OBJECTIVE}@1 is not better" in words
    assert "is a tie" in words
    document = CliRunner().invoke(app, ["evaluate", "--promote", "--json", "--bootstrap", "50"])
    assert document.exit_code == 0, document.output
    promotion = json.loads(document.output)["promotion"]
    assert (promotion["promoted"], promotion["comparison"]) == (None, "tie")
