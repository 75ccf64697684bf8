"""The exploration a campaign may spend: ``lever_policy.exploration`` and a campaign's own."""

from __future__ import annotations

import pytest

from tummler.core.errors import StrategyError
from tummler.strategy import Exploration, load_campaign, load_strategy

STRATEGY = """\
version: 1
brand:
  name: Acme Tools
  pillars:
    - id: quality
      promise: Tools built to last.
objectives:
  - id: repeat
    kpi: {event: converted}
    attribution_window: 14d
    target: {relative_lift: 0.1}
    horizon: 90d
channels:
  - id: email
    kind: email
    public: false
lever_policy:
  exploration: {share: 0.8, decay: 0.5, floor: 0.1}
"""

CAMPAIGN = """\
id: spring
objective: repeat
variants:
  email:
    - subject: Spring
      body: Our tools are built to last.
"""


def test_the_share_decays_per_learned_version_down_to_the_floor() -> None:
    policy = load_strategy(STRATEGY).lever_policy
    assert policy.exploration == Exploration(share=0.8, decay=0.5, floor=0.1)
    assert [policy.exploration.share_at(v) for v in range(5)] == [0.8, 0.4, 0.2, 0.1, 0.1]
    # the default leaves every policy as it is: full exploration, no decay
    assert Exploration().share_at(7) == 1.0


def test_a_campaign_may_spend_less_than_the_strategy() -> None:
    policy = load_strategy(STRATEGY).lever_policy
    own = load_campaign(CAMPAIGN + "exploration: {share: 0.2}\n")
    assert own.effective_exploration(policy) == Exploration(share=0.2)
    assert load_campaign(CAMPAIGN).effective_exploration(policy) == policy.exploration


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("  exploration: {share: 1.5}", r"exploration\.share.*less than or equal to 1"),
        ("  exploration: {decay: 0}", r"exploration\.decay.*greater than 0"),
        ("  exploration: {share: 0.2, floor: 0.5}", r"floor \(0\.5\) must not exceed.*share"),
        ("  exploration: {budget: 0.2}", r"unknown field 'lever_policy\.exploration\.budget'"),
    ],
)
def test_bad_settings_name_the_field(line: str, message: str) -> None:
    text = STRATEGY.replace("  exploration: {share: 0.8, decay: 0.5, floor: 0.1}", line)
    with pytest.raises(StrategyError, match=message):
        load_strategy(text, "strategy.yaml")
