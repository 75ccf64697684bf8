"""Baseline policies, and the public surface of tummler.evaluate."""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import pytest

import tummler.evaluate
from tummler.core.errors import PolicyError
from tummler.evaluate import (
    BASELINES,
    baseline_action_dist,
    context_free_policy,
    dr,
    ips,
    snips,
)


class Logs(TypedDict):
    """A logged bandit data set, as the estimators take it."""

    reward: np.ndarray
    action: np.ndarray
    propensity: np.ndarray


def logs(seed: int = 0, n: int = 5000, k: int = 4) -> Logs:
    rng = np.random.default_rng(seed)
    logging = rng.dirichlet(np.ones(k) * 2, size=n)
    action = (logging.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
    click_rate = np.array([0.1, 0.3, 0.2, 0.05])[:k]
    reward = (rng.uniform(size=n) < click_rate[action]).astype(float)
    return {"reward": reward, "action": action, "propensity": logging[np.arange(n), action]}


def test_every_baseline_is_a_distribution() -> None:
    data = logs()
    for name in BASELINES:
        dist = baseline_action_dist(name, n_actions=4, **data)
        assert dist.shape == (5000, 4)
        assert np.allclose(dist.sum(axis=1), 1.0)
        assert (dist >= 0).all()


def test_logged_baseline_is_valued_at_the_on_policy_mean() -> None:
    data = logs()
    dist = baseline_action_dist("logged", n_actions=4, **data)
    mean = data["reward"].mean()
    assert ips(action_dist=dist, n_bootstrap=0, **data).value == pytest.approx(mean)
    assert snips(action_dist=dist, n_bootstrap=0, **data).value == pytest.approx(mean)
    assert baseline_action_dist("logged", n_actions=1, **(data | {"action": 0 * data["action"]}))[
        0
    ].tolist() == [1.0]


def test_uniform_and_best_single_values() -> None:
    data = logs()
    uniform = baseline_action_dist("uniform", n_actions=4, **data)
    assert np.all(uniform == 0.25)
    best = baseline_action_dist("best-single", n_actions=4, **data)
    assert (best[:, 1] == 1.0).all()  # action 1 has the highest click rate, 0.3
    model = np.tile([0.1, 0.3, 0.2, 0.05], (5000, 1))
    assert dr(action_dist=best, estimated_rewards=model, n_bootstrap=0, **data).value == (
        pytest.approx(0.3, abs=0.03)
    )
    assert ips(action_dist=uniform, n_bootstrap=0, **data).value == pytest.approx(0.1625, abs=0.02)


def test_bad_baselines() -> None:
    data = logs(n=10)
    with pytest.raises(
        PolicyError, match=r"unknown baseline 'oracle'; choose among uniform, logged, best-single"
    ):
        baseline_action_dist("oracle", n_actions=4, **data)
    with pytest.raises(PolicyError, match=r"n_actions = 0 must be a positive integer"):
        baseline_action_dist("uniform", n_actions=0, **data)
    with pytest.raises(PolicyError, match=r"action\[\d\] = \d is outside 0..1"):
        baseline_action_dist("uniform", n_actions=2, **(data | {"action": np.full(10, 3)}))


def test_the_public_names_are_all_exported() -> None:
    for name in tummler.evaluate.__all__:
        assert hasattr(tummler.evaluate, name), name
    public = {
        name
        for name, value in vars(tummler.evaluate).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("tummler.evaluate")
    }
    assert public <= set(tummler.evaluate.__all__)


def test_context_free_policy_recovers_a_drifting_policys_average() -> None:
    # The policy shows action 0 with probability 0.9 in the first half, 0.1 in the second: on
    # average 0.5 each. The plain mean of logged propensities says about 0.82 for action 0.
    rng = np.random.default_rng(3)
    n = 40_000
    p0 = np.where(np.arange(n) < n // 2, 0.9, 0.1)
    action = (rng.uniform(size=n) >= p0).astype(int)
    propensity = np.where(action == 0, p0, 1 - p0)
    assert propensity[action == 0].mean() > 0.8
    average = context_free_policy(action, propensity, n_actions=3)
    assert average == pytest.approx([0.5, 0.5, 0.0], abs=0.02)


def test_context_free_policy_per_position() -> None:
    action = np.array([0, 1, 1, 2])
    propensity = np.array([0.5, 0.5, 0.2, 0.8])
    position = np.array([0, 0, 1, 1])
    table = context_free_policy(action, propensity, n_actions=3, position=position, n_positions=3)
    assert table.shape == (3, 3)
    assert table[:, 0].tolist() == [0.5, 0.5, 0.0]
    assert table[:, 1] == pytest.approx([0.0, 0.2, 0.8])
    assert table[:, 2].tolist() == [0.0, 0.0, 0.0]  # a position never logged
    with pytest.raises(PolicyError, match=r"position must lie in 0..0, the positions of the slate"):
        context_free_policy(action, propensity, n_actions=3, position=position, n_positions=1)
    with pytest.raises(PolicyError, match=r"propensity\[0\] = 0.0 is outside"):
        context_free_policy(action, 0 * propensity, n_actions=3)


def test_masked_baselines_spread_over_eligible_actions_only() -> None:
    eligible = np.array([[True, False, True, True], [False, False, False, True]])
    reward, action, propensity = [1.0, 0.0], [0, 3], [0.4, 0.9]

    def dist(name: str) -> np.ndarray:
        return baseline_action_dist(
            name,
            reward=reward,
            action=action,
            propensity=propensity,
            n_actions=4,
            eligible=eligible,
        )

    uniform = dist("uniform")
    np.testing.assert_allclose(uniform, np.array([[1 / 3, 0, 1 / 3, 1 / 3], [0, 0, 0, 1]]))
    logged = dist("logged")
    # the logged action keeps its propensity, the rest goes to the other eligible actions in the
    # logging policy's shares (action 2 was never logged: none); a round with no other eligible
    # action puts everything on the logged one
    np.testing.assert_allclose(logged, np.array([[0.4, 0, 0, 0.6], [0, 0, 0, 1]]))
    # every importance weight is 1, so IPS is the observed mean
    assert ips(reward, action, propensity, logged).value == 0.5


@pytest.mark.parametrize(
    ("name", "eligible", "message"),
    [
        ("uniform", [[False, False]], "needs an eligible action"),
        ("best-single", [[True, True]], "no form restricted"),
        ("logged", [[True, True, True]], r"eligible must be \(n, k\)"),
    ],
)
def test_masked_baselines_bad_input(name: str, eligible: list[list[bool]], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        baseline_action_dist(
            name, reward=[0.0], action=[0], propensity=[0.5], n_actions=2, eligible=eligible
        )
