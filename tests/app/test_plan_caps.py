"""Channel spend caps: from the campaign and strategy files to the plan, its summary and `explain`.

A cap is met by pricing the channel (a Lagrange multiplier), so its sends go to the contacts for whom
the channel is worth most over their next-best option, not to the first in a sorted list. The policy
here is the example's logistic Thompson sampling with a posterior so tight (precision 1e12) that its
draws are its point estimate: the stored expected values are then the values it decided with.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select

from seeding import add_reachable
from tummler.app.planning import PlanReport, explain_decision, plan_campaign
from tummler.core.clock import FrozenClock
from tummler.store.database import session_scope
from tummler.store.models import (
    Campaign,
    Contact,
    Decision,
    PolicyVersion,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
REORDER = "fresh-roast-reorder"
SMS_COST = 0.05  # the example strategy's cost_per_send for SMS
#: Contacts ``s0..`` have a phone only; ``b0..`` have a phone and an e-mail address.
SMS_ONLY, BOTH = 40, 20


def _seed(engine: Engine) -> dict[str, int]:
    ids: dict[str, int] = {}
    with session_scope(engine) as session:
        for key, channels in [(f"s{i}", ("sms",)) for i in range(SMS_ONLY)] + [
            (f"b{i}", ("sms", "email")) for i in range(BOTH)
        ]:
            number = int(key[1:])
            phone = f"+4915{number:07d}{int(key[0] == 'b')}"
            ids[key] = add_reachable(
                session,
                key,
                {c: phone if c == "sms" else f"{key}@example.org" for c in channels},
                now=NOW,
                attributes={"first_name": key.upper(), "lifetime_value": float(number % 7)},
                since=300 * DAY,
                clicked_ago=(1 + number % 30) * DAY,
            )
    return ids


def _plan(engine: Engine, workspace: Path, **options: Any) -> PlanReport:
    return plan_campaign(
        engine,
        workspace=workspace,
        campaign_key=REORDER,
        clock=FrozenClock(NOW),
        seed=options.pop("seed", 5),
        **options,
    )


def _sure_policy(engine: Engine, prior_id: int | None) -> None:
    """A promoted version of the prior with seeded weights and a posterior too tight to matter."""
    with session_scope(engine) as session:
        prior = session.get(PolicyVersion, prior_id)
        assert prior is not None
        parameters = json.loads(json.dumps(prior.parameters))
        state = parameters["policy"]["state"]
        rng = np.random.default_rng(3)
        state["m"] = rng.normal(0.0, 0.4, len(state["m"])).tolist()
        state["q"] = [1e12] * len(state["q"])
        parameters["policy"]["version"] = 1
        session.add(
            PolicyVersion(
                name=prior.name,
                version=1,
                kind=prior.kind,
                parameters=parameters,
                parent_id=prior.id,
                promoted=True,
                created_at=NOW,
            )
        )


def _cap_campaign(workspace: Path, amount: float) -> None:
    path = workspace / "campaigns" / f"{REORDER}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + f"spend_caps:\n  sms: {amount}\n", encoding="utf-8")


def _rows(engine: Engine) -> dict[int, list[Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Decision.contact_id,
                Decision.channel,
                Decision.expected_value,
                Decision.holdout,
                Decision.reasons,
            )
            .join(Campaign, Campaign.id == Decision.campaign_id)
            .where(Campaign.key == REORDER)
        ).all()
    out: dict[int, list[Any]] = {}
    for row in rows:
        out.setdefault(row.contact_id, []).append(row)
    return out


def _sms(rows: dict[int, list[Any]]) -> set[int]:
    return {k for k, levers in rows.items() if any(r.channel == "sms" for r in levers)}


def test_a_capped_channel_spends_at_most_its_cap_on_the_contacts_it_is_worth_most_for(
    engine: Engine, workspace: Path
) -> None:
    ids = _seed(engine)
    _sure_policy(engine, _plan(engine, workspace).policy_version_id)
    free = _plan(engine, workspace)
    free_rows = _rows(engine)
    free_sms = _sms(free_rows)
    assert free.budgets == ()
    assert free.spend_per_channel["sms"] == pytest.approx(len(free_sms) * SMS_COST)
    assert len(free_sms) > 20, "the test needs a cap that binds"

    allowed = 12
    _cap_campaign(workspace, allowed * SMS_COST)
    capped = _plan(engine, workspace)
    rows = _rows(engine)
    sms = _sms(rows)
    # the cap: never more than it allows; it binds, so exactly that many
    assert len(sms) == capped.sends_per_channel["sms"] == allowed
    assert capped.spend_per_channel["sms"] <= allowed * SMS_COST + 1e-9
    (budget,) = capped.budgets
    assert budget.channel == "sms"
    assert budget.sends_allowed == allowed
    assert budget.sends == allowed
    assert budget.spend == pytest.approx(allowed * SMS_COST)
    assert budget.limit == pytest.approx(allowed * SMS_COST)
    assert budget.committed == 0
    assert budget.shadow_price > 0
    # pricing only takes SMS away: the capped plan's SMS contacts are some of the free plan's
    assert sms <= free_sms
    lost = free_sms - sms
    assert budget.dropped + budget.moved == len(lost)
    # phone-only contacts have no other option: their gain from SMS is its value, and every one
    # who kept SMS is worth at least the shadow price, every one who lost it at most that
    sms_only = {ids[f"s{i}"] for i in range(SMS_ONLY)}
    value = {k: max(r.expected_value for r in free_rows[k]) for k in free_sms}
    kept = [value[k] for k in sms & sms_only]
    dropped = [value[k] for k in lost & sms_only]
    assert kept
    assert dropped
    assert min(kept) >= budget.shadow_price - 1e-4 >= max(dropped) - 2e-4
    # the same number of phone-only winners, chosen by value, could not be worth more
    best = sorted((value[k] for k in free_sms & sms_only), reverse=True)[: len(kept)]
    assert sum(kept) == pytest.approx(sum(best), abs=1e-4)
    # the decisions say which contacts lost SMS to the cap, and what they got instead
    for k in lost:
        (row,) = rows[k]
        assert row.reasons["spend_cap"] == {"sms": pytest.approx(budget.shadow_price)}
        assert (row.channel is None) == (k in sms_only)
    assert all("spend_cap" not in r.reasons for k in sms for r in rows[k])
    key = next(f"s{i}" for i in range(SMS_ONLY) if ids[f"s{i}"] in lost)
    why = explain_decision(engine, contact=key, campaign_key=REORDER)
    assert why.spend_cap == {"sms": pytest.approx(budget.shadow_price)}
    assert "sms would have been chosen, but its spend cap" in why.summary
    assert "no send instead" in why.summary
    moved = [k for k in lost if k not in sms_only]
    if moved:
        other = next(k for k, v in ids.items() if v == moved[0])
        why = explain_decision(engine, contact=other, campaign_key=REORDER)
        assert "email instead" in why.summary
    data = capped.to_dict()
    assert data["budgets"][0]["sends"] == allowed
    json.dumps(data)


def test_a_shared_cap_counts_what_other_campaigns_committed_in_its_window(
    engine: Engine, workspace: Path
) -> None:
    """The strategy's SMS cap of 1.00 per 30 days (20 sends), with 8 SMS of another campaign in
    the window and 5 before it: 12 sends are left for this plan."""
    ids = _seed(engine)
    strategy = workspace / "strategy.yaml"
    text = strategy.read_text(encoding="utf-8").replace(
        "    # spend_cap: {amount: 500.0, window: 30d}", "    spend_cap: {amount: 1.0, window: 30d}"
    )
    strategy.write_text(text, encoding="utf-8")
    with session_scope(engine) as session:
        other = Campaign(
            key="flash-sale", objective="repeat-purchase", created_at=NOW, updated_at=NOW
        )
        session.add(other)
        session.flush()
        for k, days in enumerate([1] * 8 + [45] * 5):
            session.add(
                Decision(
                    campaign_id=other.id,
                    contact_id=ids[f"b{k % BOTH}"],
                    lever=k // BOTH,
                    channel="sms",
                    send_at=NOW - days * DAY,
                    action=0,
                    propensity=1.0,
                    decided_at=NOW - days * DAY,
                )
            )
    report = _plan(engine, workspace)
    (budget,) = report.budgets
    assert budget.committed == pytest.approx(8 * SMS_COST)
    assert budget.limit == pytest.approx(1.0 - 8 * SMS_COST)
    assert budget.sends_allowed == 12
    assert report.sends_per_channel["sms"] <= 12
    assert report.spend_per_channel["sms"] <= 1.0 - 8 * SMS_COST + 1e-9


def test_a_campaign_cap_leaves_out_what_its_kept_decisions_spent(
    engine: Engine, workspace: Path
) -> None:
    """Re-planning keeps decisions that already have a delivery: what they spent is spent."""
    from tummler.store.models import Delivery

    _seed(engine)
    _cap_campaign(workspace, 10 * SMS_COST)
    first = _plan(engine, workspace)
    assert first.sends_per_channel["sms"] <= 10
    with session_scope(engine) as session:
        sent = session.scalars(select(Decision).where(Decision.channel == "sms").limit(3)).all()
        for decision in sent:
            session.add(
                Delivery(
                    decision_id=decision.id,
                    idempotency_key=f"kept-{decision.id}",
                    channel="sms",
                    status="sent",
                    scheduled_at=NOW,
                    sent_at=NOW,
                    updated_at=NOW,
                )
            )
        kept = len(sent)
    second = _plan(engine, workspace, seed=6)
    (budget,) = second.budgets
    assert budget.committed == pytest.approx(kept * SMS_COST)
    assert budget.sends_allowed == 10 - kept
    assert second.sends_per_channel["sms"] <= 10 - kept


def test_contacts_who_may_get_only_some_variants_compete_for_a_capped_channel_on_equal_terms(
    engine: Engine, workspace: Path
) -> None:
    """A second SMS variant without the name: phone-only contacts without a first name may get
    SMS ``b`` only. They are planned with everyone else, in one pass, so a binding SMS cap goes to
    the contacts SMS is worth most for, whichever variants they may get.

    (Until the variant mask was part of the engine's eligibility, such contacts were planned in a
    second round, within what the cap had left after everyone else.)"""
    path = workspace / "campaigns" / f"{REORDER}.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "holdout_share: 0.1\n",
        "    - id: b\n      body: \"This week's fresh roast is ready. Order today, fresh at your "
        'door in days."\nholdout_share: 0.1\n',
    )
    path.write_text(text, encoding="utf-8")
    ids = _seed(engine)
    nameless = {ids[f"s{i}"] for i in range(10)}
    with session_scope(engine) as session:
        for contact in session.scalars(select(Contact).where(Contact.id.in_(nameless))):
            contact.attributes = {"lifetime_value": 1.0}
    _sure_policy(engine, _plan(engine, workspace).policy_version_id)
    free = _plan(engine, workspace)
    assert free.variant_gaps == {"sms/a needs first_name": 10}
    free_rows = _rows(engine)
    free_sms = _sms(free_rows)
    assert nameless & free_sms, "without a cap, the nameless contacts get SMS b"
    # A cap that binds even without the nameless contacts' SMS: planned after the others, as they
    # once were, they would get none; on equal terms, those SMS is worth most for keep it.
    allowed = free.sends_per_channel["sms"] - len(nameless & free_sms) - 3
    _cap_campaign(workspace, allowed * SMS_COST)
    capped = _plan(engine, workspace)
    assert capped.sends_per_channel["sms"] == allowed
    assert capped.spend_per_channel["sms"] <= allowed * SMS_COST + 1e-9
    assert not any("planned after" in note for note in capped.notes)
    rows = _rows(engine)
    sms = _sms(rows)
    for k in nameless:
        (row,) = rows[k]
        assert row.reasons["variants_unavailable"] == {"sms/a": "first_name"}
    # equal terms: a phone-only contact's gain from SMS is its value, named or not; everyone who
    # kept SMS is worth at least the shadow price, everyone who lost it at most that
    (budget,) = capped.budgets
    sms_only = {ids[f"s{i}"] for i in range(SMS_ONLY)}
    value = {k: max(r.expected_value for r in free_rows[k]) for k in free_sms}
    kept = [value[k] for k in sms & sms_only]
    dropped = [value[k] for k in (free_sms - sms) & sms_only]
    assert kept
    assert dropped
    assert min(kept) >= budget.shadow_price - 1e-4 >= max(dropped) - 2e-4
    assert nameless & sms, "nameless contacts worth SMS more than named ones keep it"
