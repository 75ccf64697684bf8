"""The exploration budget of a plan (``explore_share``): known answers on identical contacts."""

from __future__ import annotations

import numpy as np
import pytest

from tummler.core.errors import PolicyError
from tummler.decide import (
    POLICIES,
    ActionSet,
    Eligibility,
    EpsilonGreedy,
    Policy,
    SelectionRules,
    build_action_set,
    compute_eligibility,
    plan,
)

N = 6_000
ALWAYS = SelectionRules(threshold=-1e6)


def _setting() -> tuple[ActionSet, Eligibility, np.ndarray, Policy]:
    """Identical contacts and a Thompson policy that has seen a little data: uncertain, with a
    clear posterior-mean favourite."""
    actions = build_action_set(["email", "sms", "mastodon"], [10], 1)
    everyone = compute_eligibility(actions, has_identity=np.ones((N, 3)), consent=np.ones((N, 3)))
    ones = np.ones((N, 1), np.float32)
    policy = POLICIES["logistic_thompson"](
        n_context_features=1, n_action_features=actions.n_features, n_channels=3
    )
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 3, 40)
    policy.update(ones[:40], actions, idx, (rng.random(40) < 0.2 + 0.15 * idx) * 1.0)
    return actions, everyone, ones, policy


def test_no_exploration_decides_every_contact_on_the_posterior_mean() -> None:
    actions, everyone, ones, policy = _setting()
    greedy = int(np.argmax(policy.scores(ones[:1], actions)[0]))
    p = plan(ones, actions, policy, everyone, ALWAYS, rng=4, draws=16, explore_share=0.0)
    assert (p.action[:, 0] == greedy).all()
    np.testing.assert_allclose(p.propensity[:, 0], 1.0)


@pytest.mark.parametrize("share", [0.25, 0.6])
def test_a_share_mixes_the_thompson_draw_with_the_greedy_choice(share: float) -> None:
    actions, everyone, ones, policy = _setting()
    greedy = int(np.argmax(policy.scores(ones[:1], actions)[0]))
    thompson = policy.action_distribution(
        ones[:1], actions, threshold=-1e6, draws=40_000, rng=np.random.default_rng(9)
    )[0, :3]
    assert thompson.min() > 0.02  # a genuinely uncertain choice
    assert thompson.max() < 0.95
    mixture = share * thompson + (1 - share) * np.eye(3)[greedy]
    p = plan(ones, actions, policy, everyone, ALWAYS, rng=5, draws=64, explore_share=share)
    chosen = p.action[:, 0]
    frequency = np.bincount(chosen, minlength=3) / N
    np.testing.assert_allclose(frequency, mixture, atol=4 * np.sqrt(0.25 / N) + 0.005)
    # each logged propensity is the mixture's probability of the action taken (Monte Carlo)
    np.testing.assert_allclose(p.propensity[:, 0], mixture[chosen], atol=5 * np.sqrt(0.25 / 64))
    assert abs(p.propensity[:, 0].mean() - (mixture**2).sum()) < 0.02


def test_an_epsilon_policy_explores_at_most_the_share() -> None:
    actions, everyone, ones, _ = _setting()
    policy = EpsilonGreedy(
        n_context_features=1, n_action_features=actions.n_features, n_channels=3, epsilon=0.3
    )
    wide = plan(ones, actions, policy, everyone, ALWAYS, rng=6, explore_share=1.0)
    narrow = plan(ones, actions, policy, everyone, ALWAYS, rng=6, explore_share=0.1)
    assert abs(wide.explored.mean() - 0.3) < 4 * np.sqrt(0.21 / N)
    assert abs(narrow.explored.mean() - 0.1) < 4 * np.sqrt(0.09 / N)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    actions, everyone, ones, policy = _setting()
    with pytest.raises(PolicyError, match="explore_share must be between 0 and 1"):
        plan(ones, actions, policy, everyone, ALWAYS, rng=1, explore_share=share)
