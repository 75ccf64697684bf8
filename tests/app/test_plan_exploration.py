"""Planning applies the strategy's exploration budget, and ``explain`` says so."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from test_planning import NOW, REORDER, _decisions, _plan, _seed
from tummler.app.planning import explain_decision
from tummler.store.database import session_scope
from tummler.store.models import PolicyVersion


def _spend(workspace: Path, setting: str) -> None:
    """Give the example strategy's lever policy an ``exploration`` setting."""
    path = workspace / "strategy.yaml"
    text = path.read_text(encoding="utf-8")
    default = "  exploration: {share: 1.0, decay: 1.0, floor: 0.0}\n"
    assert default in text
    path.write_text(text.replace(default, f"  exploration: {setting}\n"), encoding="utf-8")


def _propensities(engine: Engine) -> list[float]:
    return [r.propensity for r in _decisions(engine) if not r.holdout and r.channel is not None]


def test_no_exploration_makes_every_treated_decision_certain(
    engine: Engine, workspace: Path
) -> None:
    _seed(engine)
    _plan(engine, workspace)
    explored = _propensities(engine)
    # the fresh prior's Thompson draws spread contacts over the channels: uncertain decisions
    assert min(explored) < 0.9
    _spend(workspace, "{share: 0.0}")
    _plan(engine, workspace)
    greedy = _propensities(engine)
    assert greedy
    assert all(p == 1.0 for p in greedy)
    sent = next(r for r in _decisions(engine) if not r.holdout and r.channel is not None)
    assert sent.reasons["explore_share"] == 0.0


def test_explain_says_how_much_the_plan_could_explore(engine: Engine, workspace: Path) -> None:
    ids = _seed(engine)
    # the prior is version 0: the share is not decayed yet
    _spend(workspace, "{share: 0.3, decay: 0.5}")
    _plan(engine, workspace)
    contact = next(r for r in _decisions(engine) if not r.holdout and r.channel is not None)
    external = next(key for key, row in ids.items() if row == contact.contact_id)
    shown = explain_decision(engine, contact=external, campaign_key=REORDER)
    assert shown.explore_share == 0.3
    assert "exploration let 30% of this plan's decisions explore" in shown.summary


def test_the_share_decays_with_the_promoted_versions_number(
    engine: Engine, workspace: Path
) -> None:
    _seed(engine)
    _spend(workspace, "{share: 0.8, decay: 0.5, floor: 0.01}")
    first = _plan(engine, workspace)
    with session_scope(engine) as session:
        prior = session.get(PolicyVersion, first.policy_version_id)
        assert prior is not None
        parameters = json.loads(json.dumps(prior.parameters))
        parameters["policy"]["version"] = 5  # its learning updates: not what the decay counts
        session.add(
            PolicyVersion(
                name=prior.name,
                version=2,
                kind=prior.kind,
                parameters=parameters,
                parent_id=prior.id,
                promoted=True,
                created_at=NOW,
            )
        )
    _plan(engine, workspace)
    shares = {r.reasons["explore_share"] for r in _decisions(engine) if not r.holdout}
    assert shares == {0.2}  # 0.8 × 0.5², the second learned version
