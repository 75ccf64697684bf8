"""The linear policies' noise variance, estimated from the data: known answers.

A Bayesian ridge posterior is ``N(A⁻¹b, A⁻¹)`` with ``A = λI + Σzzᵀ/σ²``: with one-hot action
features and a constant context, action ``a``'s score has posterior variance
``1 / (λ + n_a/σ²) ≈ σ²/n_a``. A reward in dollars has a variance in the hundreds; a fixed
``σ² = 0.25`` made that posterior about 30 times too narrow, and Thompson sampling all but stopped
exploring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tummler.core.errors import PolicyError
from tummler.decide import ActionSet, EpsilonGreedy, LinearThompson, policy_from_dict
from tummler.learn.fitting import generic_action_set

ARMS = ("men", "women", "none")


def _actions() -> ActionSet:
    return generic_action_set(ARMS, np.eye(3), tuple(f"action={a}" for a in ARMS))


def _dollar_rounds(
    n: int, seed: int, sd: float = 14.6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniformly logged arms with mean spends 1.4 / 1.1 / 0.65 dollars and noise of sd ``sd``."""
    rng = np.random.default_rng(seed)
    action = rng.integers(0, 3, n)
    reward = np.array([1.4, 1.1, 0.65])[action] + rng.normal(0.0, sd, n)
    return np.ones((n, 1), np.float32), action, reward


def _draw_sd(policy: LinearThompson, actions: ActionSet, draws: int = 40_000) -> np.ndarray:
    """The spread of each arm's Thompson-sampled score over ``draws`` contacts."""
    x = np.ones((draws, 1), np.float32)
    scores = policy.factor_scores(x, actions, np.random.default_rng(3)).linear_dense()
    return np.asarray(scores.std(axis=0))


def test_the_posterior_width_of_a_dollar_reward_is_its_noise_over_root_n() -> None:
    actions = _actions()
    x, action, reward = _dollar_rounds(3000, seed=1)
    policy = LinearThompson(1, actions.n_features, 3).update(x, actions, action, reward)
    assert policy.noise_estimate == pytest.approx(14.6**2, rel=0.08)
    counts = np.bincount(action, minlength=3)
    expected = 14.6 / np.sqrt(counts)  # the posterior sd of a mean of n_a noisy dollars
    np.testing.assert_allclose(_draw_sd(policy, actions), expected, rtol=0.1)
    # The fixed variance of a click reward gives a posterior ~30 times too sure of itself.
    fixed = LinearThompson(1, actions.n_features, 3, noise_variance=0.25)
    fixed.update(x, actions, action, reward)
    assert (_draw_sd(fixed, actions) < expected / 20).all()


def test_a_click_reward_gets_a_bernoulli_variance() -> None:
    actions = _actions()
    rng = np.random.default_rng(2)
    action = rng.integers(0, 3, 6000)
    rate = np.array([0.05, 0.10, 0.20])[action]
    reward = (rng.random(6000) < rate).astype(np.float64)
    policy = EpsilonGreedy(1, actions.n_features, 3).update(
        np.ones((6000, 1), np.float32), actions, action, reward
    )
    # The residual variance of the per-arm means, and (up to sampling) the Bernoulli variance.
    means = np.bincount(action, reward) / np.bincount(action)
    residual = float(np.sum((reward - means[action]) ** 2) / (6000 - 3))
    assert policy.noise_estimate == pytest.approx(residual, rel=0.01)
    assert policy.noise_estimate == pytest.approx(float(np.mean(rate * (1 - rate))), rel=0.15)


def test_the_prior_is_the_estimate_before_the_data_outweigh_it() -> None:
    actions = _actions()
    policy = LinearThompson(1, actions.n_features, 3)
    assert policy.noise_estimate == LinearThompson.NOISE_PRIOR_VARIANCE
    # Three rounds, one per arm, fit almost exactly: the prior's ten rounds outweigh them.
    policy.update(np.ones((3, 1), np.float32), actions, np.arange(3), np.array([0.6, 0.1, 0.3]))
    assert policy.noise_estimate == pytest.approx(LinearThompson.NOISE_PRIOR_VARIANCE, rel=0.2)


def test_chunks_and_a_stored_copy_give_the_same_posterior() -> None:
    actions = _actions()
    x, action, reward = _dollar_rounds(2000, seed=4)
    whole = LinearThompson(1, actions.n_features, 3).update(x, actions, action, reward)
    chunked = LinearThompson(1, actions.n_features, 3)
    for part in np.array_split(np.arange(2000), 3):
        chunked.update(x[part], actions, action[part], reward[part])
    assert chunked.noise_estimate == pytest.approx(whole.noise_estimate, rel=1e-9)
    np.testing.assert_allclose(chunked.A, whole.A, rtol=1e-9)
    np.testing.assert_allclose(chunked.b, whole.b, rtol=1e-9)
    stored = policy_from_dict(whole.to_dict())
    assert isinstance(stored, LinearThompson)
    assert stored.to_dict()["params"]["noise_variance"] is None
    assert stored.noise_estimate == whole.noise_estimate
    np.testing.assert_array_equal(stored.A, whole.A)
    np.testing.assert_array_equal(stored.b, whole.b)


def test_a_policy_stored_before_the_estimate_still_loads_with_its_fixed_variance() -> None:
    actions = _actions()
    x, action, reward = _dollar_rounds(600, seed=5)
    phi = np.eye(3)[action]
    a_matrix = np.eye(3) + phi.T @ phi / 0.25
    b_vector = phi.T @ reward / 0.25
    old: dict[str, Any] = {
        "kind": "linear_thompson",
        "version": 1,
        "params": {
            "n_context_features": 1,
            "n_action_features": 3,
            "n_channels": 3,
            "prior_precision": 1.0,
            "noise_variance": 0.25,
        },
        "state": {"A": a_matrix.tolist(), "b": b_vector.tolist()},
    }
    policy = policy_from_dict(old)
    assert isinstance(policy, LinearThompson)
    np.testing.assert_array_equal(policy.A, a_matrix)
    np.testing.assert_allclose(policy._mean(), np.linalg.solve(a_matrix, b_vector))
    policy.update(x, actions, action, reward)  # more data: still the fixed variance
    assert policy.noise_estimate == 0.25
    np.testing.assert_allclose(policy.A, np.eye(3) + 2 * phi.T @ phi / 0.25)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_a_fixed_noise_variance_must_be_positive(bad: float) -> None:
    with pytest.raises(PolicyError, match="noise_variance must be positive, or None"):
        LinearThompson(1, 3, 3, noise_variance=bad)
