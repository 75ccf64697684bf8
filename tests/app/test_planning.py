"""The planning service and `tummler plan` / `tummler explain`, on SQLite and PostgreSQL.

The workspace is the example one (`tummler init`): campaign ``fresh-roast-reorder`` (e-mail and SMS,
customers and advocates engaged in the last 60 days) and ``first-order-welcome`` (e-mail and
Mastodon, subscribers and prospects with e-mail consent). Contacts are seeded with the ORM so that
every rule has known victims: who lacks an identity, whose consent was revoked, who is tired.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from cli_app import cli_app
from seeding import add_reachable
from tummler.app.consent import consent_names, latest_granted
from tummler.app.planning import (
    explain_decision,
    load_campaign,
    plan_campaign,
    planned_contexts,
)
from tummler.app.strategy import sync_campaigns
from tummler.cli import plan as plan_cli
from tummler.core.clock import FrozenClock
from tummler.core.errors import NotFoundError, StrategyError
from tummler.store.database import connect, session_scope
from tummler.store.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Decision,
    Delivery,
    PolicyVersion,
    Variant,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday, 06:00 UTC
DAY = timedelta(days=1)
REORDER = "fresh-roast-reorder"
WELCOME = "first-order-welcome"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
#: The example strategy's send times and quiet hours, per channel.
SLOTS = {
    "email": {time(9, 0), time(12, 30), time(18, 0)},
    "sms": {time(10, 0), time(17, 0)},
    "mastodon": {time(11, 0), time(16, 0)},
}
QUIET = {"email": (time(21, 0), time(8, 0)), "sms": (time(20, 0), time(9, 0))}


def _seed(engine: Engine, n: int = 120) -> dict[str, int]:
    """``n`` customers and advocates, all with e-mail consent and a recent click; every other one
    has a phone with SMS consent. Then the known victims of each rule:

    - ``c3`` revoked its SMS consent after granting it, ``c5`` revoked e-mail;
    - ``c7`` already got three sends from another campaign this week (fatigue cap 3);
    - ``sub0..sub9`` are subscribers (``first-order-welcome``), ``sub0`` has a Mastodon handle.
    """
    ids: dict[str, int] = {}
    with session_scope(engine) as session:

        def add(
            key: str,
            stage: str,
            zone: str,
            channels: dict[str, str],
            clicked_ago: timedelta | None = None,
        ) -> int:
            ids[key] = add_reachable(
                session,
                key,
                channels,
                now=NOW,
                stage=stage,
                zone=zone,
                attributes={"first_name": key.title(), "city": "Berlin", "lifetime_value": 10.0},
                without_consent=("mastodon",),
                clicked_ago=clicked_ago,
            )
            return ids[key]

        for i in range(n):
            channels = {"email": f"c{i}@example.org"}
            if i % 2:
                channels["sms"] = f"+49151{i:07d}"
            add(
                f"c{i}",
                ("customer", "advocate")[i % 2 == 0 and i % 4 == 0],
                ZONES[i % 4],
                channels,
                clicked_ago=(1 + i % 20) * DAY,
            )
        for key, channel in (("c3", "sms"), ("c5", "email")):
            session.add(
                ConsentEvent(
                    contact_id=ids[key],
                    channel=channel,
                    status="revoked",
                    source="unsubscribe link",
                    at=NOW - 2 * DAY,
                    recorded_at=NOW - 2 * DAY,
                )
            )
        other = Campaign(
            key="last-week",
            objective="repeat-purchase",
            created_at=NOW - 7 * DAY,
            updated_at=NOW - 7 * DAY,
        )
        session.add(other)
        session.flush()
        for k in range(3):
            session.add(
                Decision(
                    campaign_id=other.id,
                    contact_id=ids["c7"],
                    lever=k,
                    channel="email",
                    send_at=NOW - (k + 1) * DAY,
                    action=0,
                    propensity=1.0,
                    decided_at=NOW - 7 * DAY,
                )
            )
        for i in range(10):
            channels = {"email": f"sub{i}@example.org"}
            if i == 0:
                channels["mastodon"] = "@sub0@example.social"
            add(f"sub{i}", "subscriber", "Europe/Berlin", channels)
    return ids


def _plan(engine: Engine, workspace: Path, campaign: str = REORDER, **options: Any) -> Any:
    return plan_campaign(
        engine,
        workspace=workspace,
        campaign_key=campaign,
        clock=FrozenClock(NOW),
        seed=options.pop("seed", 7),
        **options,
    )


def _decisions(engine: Engine, campaign: str = REORDER) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(
                    Decision.contact_id,
                    Decision.lever,
                    Decision.channel,
                    Decision.send_at,
                    Decision.variant_id,
                    Decision.action,
                    Decision.propensity,
                    Decision.holdout,
                    Decision.reasons,
                    Variant.channel.label("variant_channel"),
                )
                .join(Campaign, Campaign.id == Decision.campaign_id)
                .outerjoin(Variant, Variant.id == Decision.variant_id)
                .where(Campaign.key == campaign)
                .order_by(Decision.contact_id, Decision.lever)
            )
        )


def _variants(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(Variant.id, Variant.key)))


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


def test_plan_writes_one_decision_per_contact_that_respects_every_rule(
    engine: Engine, workspace: Path
) -> None:
    ids = _seed(engine)
    report = _plan(engine, workspace)
    by_id = {v: k for k, v in ids.items()}
    rows = [r for r in _decisions(engine) if by_id[r.contact_id].startswith("c")]
    contacts = {r.contact_id for r in rows}
    assert len(contacts) == report.audience == 120  # subscribers are not in this audience
    assert len(rows) == report.decisions == 120  # lever budget 1: one row per contact
    assert all(0 < r.propensity <= 1 for r in rows)
    zones = {ids[f"c{i}"]: ZONES[i % 4] for i in range(120)}
    for r in rows:
        key = by_id[r.contact_id]
        if r.channel is None:
            assert r.send_at is None
            assert r.variant_id is None
            continue
        assert r.variant_channel == r.channel
        # never a lever without identity or consent
        number = int(key[1:])
        assert not (r.channel == "sms" and (number % 2 == 0 or key == "c3"))
        assert not (r.channel == "email" and key == "c5")
        # inside the horizon, at one of the channel's own times, never in its quiet hours
        assert NOW <= r.send_at < NOW + DAY
        local = r.send_at.astimezone(ZoneInfo(zones[r.contact_id])).time()
        assert local in SLOTS[r.channel]
        start, end = QUIET[r.channel]
        assert end <= local < start  # quiet hours wrap past midnight
    fatigued = [r for r in rows if r.contact_id == ids["c7"]]
    assert [r.channel for r in fatigued] == [None]
    assert "fatigue_cap" in fatigued[0].reasons["removed"]["email"]
    revoked = next(r for r in rows if r.contact_id == ids["c3"])
    assert "no_consent" in revoked.reasons["removed"]["sms"]
    assert report.removed["sms"]["no_identity"] == 60


def test_holdout_is_logged_as_no_send_with_its_share_as_propensity(
    engine: Engine, workspace: Path
) -> None:
    _seed(engine, n=400)
    report = _plan(engine, workspace)
    rows = _decisions(engine)
    held = [r for r in rows if r.holdout]
    assert len(held) == report.holdout
    assert abs(report.holdout / report.audience - 0.1) <= 0.02  # stratified: within a few contacts
    assert all(r.channel is None and r.propensity == pytest.approx(0.1) for r in held)
    assert report.no_sends >= report.holdout
    assert sum(report.sends_per_channel.values()) == sum(report.sends_per_slot.values())


def test_dry_run_writes_nothing(engine: Engine, workspace: Path) -> None:
    _seed(engine)
    before = {m: _count(engine, m) for m in (Decision, Campaign, PolicyVersion, Variant)}
    report = _plan(engine, workspace, dry_run=True)
    assert report.dry_run
    assert report.decisions == 120
    assert report.policy_version_id is None
    assert {m: _count(engine, m) for m in before} == before


def test_replanning_replaces_without_duplicates_and_keeps_delivered(
    engine: Engine, workspace: Path
) -> None:
    ids = _seed(engine)
    first = _plan(engine, workspace)
    with session_scope(engine) as session:
        decision = session.scalar(
            select(Decision).where(Decision.contact_id == ids["c1"], Decision.channel.is_not(None))
        )
        assert decision is not None, "c1 has e-mail and SMS: some lever is pulled for it"
        kept_id = decision.id
        session.add(
            Delivery(
                decision_id=decision.id,
                idempotency_key="c1-reorder",
                channel=decision.channel or "",
                status="sent",
                scheduled_at=NOW,
                sent_at=NOW,
                updated_at=NOW,
            )
        )
    second = _plan(engine, workspace, seed=8)
    assert second.kept == 1
    assert second.replaced == first.decisions - 1
    assert second.audience == first.audience - 1
    assert _count(engine, Decision) == first.decisions + 3  # + the other campaign's three
    with engine.connect() as connection:
        assert connection.scalar(select(Decision.id).where(Decision.id == kept_id)) == kept_id
    # the fresh prior was recorded once, promoted, and reused
    assert first.policy_version_id == second.policy_version_id
    assert _count(engine, PolicyVersion) == 1


def test_same_seed_same_decisions(engine: Engine, workspace: Path) -> None:
    _seed(engine)

    def snapshot() -> list[tuple[Any, ...]]:
        return [
            (r.contact_id, r.lever, r.channel, r.send_at, r.action, r.propensity, r.holdout)
            for r in _decisions(engine)
        ]

    _plan(engine, workspace, seed=11)
    first = snapshot()
    _plan(engine, workspace, seed=11)
    assert snapshot() == first
    _plan(engine, workspace, seed=12)
    assert snapshot() != first


def test_explain_names_the_rule_that_removed_a_lever(engine: Engine, workspace: Path) -> None:
    _seed(engine)
    _plan(engine, workspace, campaign=WELCOME)
    lacking = explain_decision(engine, contact="sub1", campaign_key=WELCOME)
    assert lacking.removed["mastodon"] == ["no_identity"]
    assert "mastodon removed — no identity" in lacking.summary
    if not lacking.holdout and lacking.levers:
        assert lacking.summary.startswith("email at ")
        assert lacking.levers[0].local_time in {"Mon 09:00", "Mon 12:30", "Mon 18:00"}
    _plan(engine, workspace)
    tired = explain_decision(engine, contact="c7", campaign_key=REORDER)
    assert "fatigue cap reached" in tired.summary
    assert tired.levers == ()


@pytest.mark.parametrize(
    ("contact", "campaign", "message"),
    [
        ("c1", "no-such-campaign", "no campaign 'no-such-campaign' in the store"),
        ("nobody", REORDER, "no contact with external id 'nobody'"),
        ("sub1", REORDER, "has no decision in campaign 'fresh-roast-reorder'"),
    ],
)
def test_explain_refuses_what_is_not_there(
    engine: Engine, workspace: Path, contact: str, campaign: str, message: str
) -> None:
    _seed(engine, n=8)
    _plan(engine, workspace)
    with pytest.raises(NotFoundError, match=message):
        explain_decision(engine, contact=contact, campaign_key=campaign)


def test_explain_says_who_is_outside_the_audience_and_which_conditions_they_fail(
    engine: Engine, workspace: Path
) -> None:
    # fresh-roast-reorder's audience: stage in ["customer", "advocate"] and engaged_within("60d").
    # A new plan cannot help these people, so the message must not advise one.
    _seed(engine, n=8)
    with session_scope(engine) as session:
        add_reachable(
            session, "quiet", {"email": "quiet@example.org"}, now=NOW, clicked_ago=90 * DAY
        )
    _plan(engine, workspace)
    cases = {
        "sub1": ('stage in ["customer", "advocate"] (stage is "subscriber")', "never engaged"),
        "quiet": ('engaged_within("60d") (last engaged 2025-12-02 06:00 UTC)',),
    }
    for contact, failed in cases.items():
        with pytest.raises(NotFoundError) as caught:
            explain_decision(engine, contact=contact, campaign_key=REORDER, workspace=workspace)
        message = str(caught.value)
        assert f"contact {contact!r} is outside the audience 'active-customers'" in message
        for condition in failed:
            assert condition in message
        assert "tummler plan" not in message
    # "quiet" is a customer: the message lists only the condition it fails
    assert "stage in" not in str(caught.value).split("they fail ")[1]


@pytest.mark.parametrize("campaign", [REORDER, "everyone"])
def test_explain_advises_a_new_plan_for_who_joined_the_audience_since(
    engine: Engine, workspace: Path, campaign: str
) -> None:
    # "everyone": the same campaign without an audience, so everyone in the store is in it
    reorder = (workspace / "campaigns" / f"{REORDER}.yaml").read_text(encoding="utf-8")
    everyone = reorder.replace(f"id: {REORDER}", "id: everyone").replace(
        "audience: active-customers\n", ""
    )
    (workspace / "campaigns" / "everyone.yaml").write_text(everyone, encoding="utf-8")
    _seed(engine, n=8)
    _plan(engine, workspace, campaign=campaign)
    with session_scope(engine) as session:
        add_reachable(session, "late", {"email": "late@example.org"}, now=NOW, clicked_ago=DAY)
    with pytest.raises(NotFoundError, match=f"run `tummler plan {campaign}` again"):
        explain_decision(engine, contact="late", campaign_key=campaign, workspace=workspace)


def test_explain_says_a_synced_campaign_is_not_planned_yet(engine: Engine, workspace: Path) -> None:
    _seed(engine, n=8)
    sync_campaigns(engine, workspace, clock=FrozenClock(NOW))
    with pytest.raises(
        NotFoundError, match=f"has not been planned yet; run `tummler plan {REORDER}`"
    ):
        explain_decision(engine, contact="c1", campaign_key=REORDER, workspace=workspace)


def test_unknown_campaign_lists_the_known_ones(engine: Engine, workspace: Path) -> None:
    with pytest.raises(NotFoundError, match="known: first-order-welcome, fresh-roast-reorder"):
        _plan(engine, workspace, campaign="spring")


# ---------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_workspace(workspace: Path) -> Path:
    engine = connect(f"sqlite:///{workspace / 'tummler.db'}")
    _seed(engine, n=24)
    engine.dispose()
    return workspace


def _app(workspace: Path) -> typer.Typer:
    """The two commands as ``tummler`` registers them, under a root that opens this workspace."""
    return cli_app(workspace, plan_cli.plan, plan_cli.explain)


def test_cli_plan_and_explain(cli_workspace: Path) -> None:
    runner = CliRunner()
    app = _app(cli_workspace)
    as_of = ["--as-of", NOW.strftime("%Y-%m-%dT%H:%M:%S")]
    dry = runner.invoke(app, ["plan", REORDER, "--dry-run", "--seed", "3", *as_of])
    assert dry.exit_code == 0, dry.output
    words = " ".join(dry.output.split())  # the console wraps at the terminal's width
    assert "dry run, nothing written" in words
    assert "Sends per local send time" in words
    done = runner.invoke(app, ["plan", REORDER, "--seed", "3", "--json", *as_of])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["decisions"] == 24
    assert report["dry_run"] is False
    assert report["seed"] == 3
    shown = runner.invoke(app, ["explain", "c3", REORDER])
    assert shown.exit_code == 0, shown.output
    assert "sms removed — no consent" in " ".join(shown.output.split())
    data = json.loads(runner.invoke(app, ["explain", "c3", REORDER, "--json"]).output)
    assert data["contact"] == "c3"
    assert "no_consent" in data["removed"]["sms"]
    outside = runner.invoke(app, ["explain", "sub1", REORDER])
    assert outside.exit_code == 1
    words = " ".join(str(outside.exception).split())
    assert "outside the audience 'active-customers'" in words
    assert 'stage is "subscriber"' in words


def test_the_latest_promoted_version_decides_and_explains_with_its_weights(
    engine: Engine, workspace: Path
) -> None:
    ids = _seed(engine)
    first = _plan(engine, workspace)
    with session_scope(engine) as session:
        prior = session.get(PolicyVersion, first.policy_version_id)
        assert prior is not None
        assert prior.promoted
        assert prior.name == "repeat-purchase"
        parameters = json.loads(json.dumps(prior.parameters))
        weights = len(parameters["policy"]["state"]["m"])
        # a policy that has "learned" something: every weight pulls a little, in a fixed pattern
        parameters["policy"]["state"]["m"] = [((i % 7) - 3) / 10 for i in range(weights)]
        parameters["policy"]["version"] = 1
        learned = PolicyVersion(
            name="repeat-purchase",
            version=1,
            kind=prior.kind,
            parameters=parameters,
            parent_id=prior.id,
            promoted=True,
            created_at=NOW,
        )
        session.add(learned)
        session.flush()
        learned_id = learned.id
    second = _plan(engine, workspace)
    assert second.policy_version_id == learned_id
    assert second.policy == "logistic_thompson@1"
    rows = _decisions(engine)
    assert {r.reasons["policy"] for r in rows} == {"logistic_thompson@1"}
    sent = next(r for r in rows if r.channel is not None and r.reasons["contributions"])
    key = next(k for k, v in ids.items() if v == sent.contact_id)
    why = explain_decision(engine, contact=key, campaign_key=REORDER)
    assert why.contributions
    assert why.runner_up
    name, value = why.contributions[0]
    assert f"{name} ({value:+.3g})" in why.summary


def test_a_critical_message_overrides_what_the_strategy_lets_it_and_keeps_its_window(
    engine: Engine, workspace: Path
) -> None:
    """The example strategy lets ``critical`` override the lever budget and the fatigue cap, never
    consent, and not the per-channel frequency cap."""
    text = (workspace / "campaigns" / f"{REORDER}.yaml").read_text(encoding="utf-8")
    text = text.replace(f"id: {REORDER}", "id: recall").replace(
        "urgency: normal", "urgency: critical"
    )
    window = "window:\n  start: 2026-03-03T06:00:00Z\n  end: 2026-03-04T06:00:00Z\n"
    (workspace / "campaigns" / "recall.yaml").write_text(text + window, encoding="utf-8")
    ids = _seed(engine)
    report = _plan(engine, workspace, campaign="recall")
    rows = _decisions(engine, "recall")
    assert report.horizon_start == NOW + DAY
    assert all(NOW + DAY <= r.send_at < NOW + 2 * DAY for r in rows if r.channel is not None)
    assert max(r.lever for r in rows) <= 1  # two channels: at most two levers
    assert not any("fatigue_cap" in rules for r in rows for rules in r.reasons["removed"].values())
    tired = [r for r in rows if r.contact_id == ids["c7"]]
    assert tired[0].reasons["removed"]["email"] == ["frequency_cap"]
    assert all(r.channel != "email" for r in tired)
    revoked = [r for r in rows if r.contact_id == ids["c5"]]
    assert all(r.channel != "email" for r in revoked)


# -------------------------------------------------------------------- templates and consent rules


def _drop_attribute(engine: Engine, key: str, name: str) -> None:
    with session_scope(engine) as session:
        contact = session.scalar(select(Contact).where(Contact.external_id == key))
        assert contact is not None
        contact.attributes = {k: v for k, v in (contact.attributes or {}).items() if k != name}


def _edit_campaign(workspace: Path, old: str, new: str, campaign: str = REORDER) -> Path:
    path = workspace / "campaigns" / f"{campaign}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


#: Contacts with e-mail only (even numbers): e-mail is their one channel.
_NAMELESS = ("c2", "c6", "c10", "c14", "c18", "c22")


def test_a_variant_that_needs_a_missing_field_is_not_that_contacts_to_get(
    engine: Engine, workspace: Path
) -> None:
    """E-mail variant ``b`` says "Hi there" instead of the name: contacts without a first name may
    get ``b``, never ``a``, and the decision says why; everyone else plans as before."""
    _edit_campaign(
        workspace,
        "Hi {{ first_name }}, this week's roast",
        "Hi there, this week's roast",
    )
    ids = _seed(engine)
    for key in _NAMELESS:
        _drop_attribute(engine, key, "first_name")
    report = _plan(engine, workspace)
    assert report.audience == 120
    assert report.variant_gaps == {"email/a needs first_name": len(_NAMELESS)}
    assert any("email/a needs first_name" in note for note in report.notes)
    rows = _decisions(engine)
    variant_of = {v.id: v.key for v in _variants(engine)}
    nameless = {ids[k] for k in _NAMELESS}
    for r in rows:
        if r.contact_id in nameless:
            assert r.reasons["variants_unavailable"] == {"email/a": "first_name"}
            if r.channel is not None:
                assert variant_of[r.variant_id] == "b"
        else:
            assert "variants_unavailable" not in r.reasons
    sent = [r for r in rows if r.contact_id in nameless and r.channel is not None]
    assert sent, "the nameless contacts still get e-mail (variant b)"
    assert all(0 < r.propensity <= 1 for r in rows if not r.holdout)
    named = [r for r in rows if r.contact_id not in nameless and r.channel == "email"]
    assert {variant_of[r.variant_id] for r in named} == {"a", "b"}
    key = next(k for k in _NAMELESS if ids[k] in {r.contact_id for r in sent})
    why = explain_decision(engine, contact=key, campaign_key=REORDER)
    assert why.variants_unavailable == {"email/a": "first_name"}
    assert "variant email/a needs first_name" in why.summary


def test_learning_sees_the_variants_each_contact_could_get(engine: Engine, workspace: Path) -> None:
    """The contexts rebuilt for learning and evaluation carry the same per-contact variant mask."""
    _edit_campaign(
        workspace, "Hi {{ first_name }}, this week's roast", "Hi there, this week's roast"
    )
    ids = _seed(engine, n=8)
    _drop_attribute(engine, "c2", "first_name")
    strategy, campaign = load_campaign(workspace, REORDER, FrozenClock(NOW))
    with engine.connect() as connection:
        contacts = connection.execute(
            select(
                Contact.id,
                Contact.external_id,
                Contact.locale,
                Contact.time_zone,
                Contact.stage,
                Contact.attributes,
            ).order_by(Contact.id)
        ).all()
        seen = planned_contexts(
            connection, strategy, campaign, contacts=contacts, campaign_id=None, at=NOW
        )
    actions = seen.actions
    email = actions.channel_names.index("email")
    names = actions.variant_names[email]
    of = {
        name: [
            k
            for k in range(actions.k)
            if actions.channel[k] == email and names[actions.variant[k]] == name
        ]
        for name in ("a", "b")
    }
    nameless, named = list(seen.ids).index(ids["c2"]), list(seen.ids).index(ids["c0"])
    assert not seen.mask[nameless, of["a"]].any()
    assert seen.mask[nameless, of["b"]].any()
    assert seen.mask[named, of["a"]].any()


def test_a_channel_no_variant_of_which_renders_is_removed_for_that_contact(
    engine: Engine, workspace: Path
) -> None:
    """Every variant of the example reorder campaign greets by name: a contact without one cannot
    get e-mail or SMS, and only that contact."""
    ids = _seed(engine)
    _drop_attribute(engine, "c2", "first_name")
    before = _plan(engine, workspace, dry_run=True)
    report = _plan(engine, workspace)
    assert report.audience == before.audience == 120
    rows = {r.contact_id: r for r in _decisions(engine)}
    c2 = rows[ids["c2"]]
    assert c2.channel is None
    assert "template_field" in c2.reasons["removed"]["email"]
    assert c2.reasons["variants_unavailable"] == {"email/a": "first_name", "email/b": "first_name"}
    others = [r for k, r in rows.items() if k != ids["c2"] and r.channel is not None]
    assert others
    why = explain_decision(engine, contact="c2", campaign_key=REORDER)
    assert "email" in why.unavailable
    assert "no variant renders for this contact" in why.summary


@pytest.mark.parametrize(
    ("old", "new", "line", "reason"),
    [
        (
            "Our new coffee was roasted this week.",
            "Our new coffee {{ first_name | shout }} was roasted.",
            # the body's block starts on line 21; its third line is line 23
            23,
            "No filter named 'shout'",
        ),
        (
            'subject: "{{ first_name }}, this week',
            'subject: "{% if first_name %}{{ first_name }}, this week',
            19,
            "Unexpected end of template",
        ),
    ],
)
def test_a_template_that_cannot_render_for_anyone_stops_the_plan_with_file_and_line(
    engine: Engine, workspace: Path, old: str, new: str, line: int, reason: str
) -> None:
    path = _edit_campaign(workspace, old, new)
    _seed(engine, n=8)
    with pytest.raises(StrategyError, match=reason) as caught:
        _plan(engine, workspace)
    assert f"{path}:{line}: campaign 'fresh-roast-reorder': variant email/a." in str(caught.value)
    assert "cannot be rendered for anyone" in str(caught.value)
    assert _count(engine, Decision) == 3  # the other campaign's only


def test_a_missing_field_of_a_contact_who_cannot_get_the_variant_is_fine(
    engine: Engine, workspace: Path
) -> None:
    """``c7`` reached the fatigue cap: no variant can reach it, so its gap is no error; a template
    that says the field is optional renders for everyone."""
    ids = _seed(engine)
    _drop_attribute(engine, "c7", "first_name")
    report = _plan(engine, workspace)
    assert report.audience == 120
    rows = [r for r in _decisions(engine) if r.contact_id == ids["c7"]]
    assert [r.channel for r in rows] == [None]
    path = workspace / "campaigns" / f"{REORDER}.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "{{ first_name }}", "{{ first_name | default('friend') }}"
    )
    path.write_text(text, encoding="utf-8")
    _drop_attribute(engine, "c2", "first_name")
    assert _plan(engine, workspace).audience == 120


def _rename_email_channel(workspace: Path) -> None:
    """The e-mail channel becomes ``mail`` (kind ``email``): consent may be recorded under either
    name."""
    strategy = workspace / "strategy.yaml"
    text = strategy.read_text(encoding="utf-8").replace("- id: email\n", "- id: mail\n")
    strategy.write_text(text, encoding="utf-8")
    campaign = workspace / "campaigns" / f"{REORDER}.yaml"
    text = campaign.read_text(encoding="utf-8")
    text = text.replace("channels: [email, sms]", "channels: [mail, sms]")
    text = text.replace("\n  email:\n", "\n  mail:\n")
    campaign.write_text(text, encoding="utf-8")
    (workspace / "campaigns" / f"{WELCOME}.yaml").unlink()  # it names `email`; not needed here


@pytest.mark.parametrize(
    ("events", "planned"),
    [
        # (channel name, status, days before now), in any order: the latest decides
        ((("email", "granted", 100), ("mail", "revoked", 2)), False),
        ((("mail", "revoked", 100), ("email", "granted", 2)), True),
        ((("mail", "granted", 100), ("email", "revoked", 2)), False),
        ((("email", "revoked", 2),), False),
        ((), False),
    ],
)
def test_consent_is_the_latest_event_across_the_channel_id_and_its_kind(
    engine: Engine, workspace: Path, events: tuple[tuple[str, str, int], ...], planned: bool
) -> None:
    """The outbox's rule: a grant on the kind (``email``) and a later revocation on the channel id
    (``mail``) is a revocation, so the contact is never planned on ``mail`` and then skipped."""
    _rename_email_channel(workspace)
    ids = _seed(engine, n=8)
    # c0 has e-mail only (no phone): its consent history on e-mail is the test's
    with session_scope(engine) as session:
        for old in session.scalars(
            select(ConsentEvent).where(ConsentEvent.contact_id == ids["c0"])
        ):
            session.delete(old)
        for channel, status, days in events:
            session.add(
                ConsentEvent(
                    contact_id=ids["c0"],
                    channel=channel,
                    status=status,
                    source="test",
                    at=NOW - days * DAY,
                    recorded_at=NOW - days * DAY,
                )
            )
    _plan(engine, workspace, seed=1)
    rows = [r for r in _decisions(engine) if r.contact_id == ids["c0"]]
    assert len(rows) == 1
    removed = rows[0].reasons["removed"].get("mail", [])
    assert ("no_consent" not in removed) is planned
    if not planned:
        assert rows[0].channel is None


def test_latest_granted_follows_the_order_of_events() -> None:
    events = [
        (1, "email", "granted"),
        (1, "mail", "revoked"),
        (2, "mail", "revoked"),
        (2, "email", "granted"),
        (3, "sms", "granted"),
        (9, "email", "granted"),  # not one of ours
    ]
    names = [consent_names("mail", "email"), consent_names("sms", "sms")]
    granted = latest_granted(events, names, {1: 0, 2: 1, 3: 2}, 3)
    assert granted.tolist() == [[False, False], [True, False], [False, True]]
