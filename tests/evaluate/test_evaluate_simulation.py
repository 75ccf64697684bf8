"""Estimators and the reward model on seeded simulations whose true policy value is known exactly.

The world has a finite set of context types drawn uniformly, so the value of any policy is an exact
finite sum: ``V(π) = mean over types of Σ_a π(a | type) · μ(type, a)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tummler.core.errors import PolicyError
from tummler.evaluate import dm, dr, evaluate_policy, fit_reward_model, ips, snips


@dataclass(frozen=True)
class World:
    mean_reward: np.ndarray  # (m, k) click probability of each action in each context type
    logging: np.ndarray  # (m, k) logging policy
    target: np.ndarray  # (m, k) evaluation policy
    features: np.ndarray  # (m, d) features of each context type

    @property
    def true_value(self) -> float:
        return float((self.target * self.mean_reward).sum(axis=1).mean())

    def log(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        kind = rng.integers(0, self.mean_reward.shape[0], n)
        cumulative = self.logging[kind].cumsum(axis=1)
        action = (cumulative > rng.uniform(size=(n, 1))).argmax(axis=1)
        reward = (rng.uniform(size=n) < self.mean_reward[kind, action]).astype(float)
        return {
            "kind": kind,
            "context": self.features[kind],
            "action": action,
            "reward": reward,
            "propensity": self.logging[kind, action],
            "action_dist": self.target[kind],
        }


def make_world(seed: int = 11, m: int = 6, k: int = 4) -> World:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(m, 2))
    slopes = rng.normal(size=(2, k))
    mean_reward = 1 / (1 + np.exp(-(features @ slopes - 0.5)))
    logging = rng.dirichlet(np.full(k, 3.0), size=m)  # every action has support
    target = np.full((m, k), 0.1 / k)
    target[np.arange(m), mean_reward.argmax(axis=1)] += 0.9  # mostly greedy: far from logging
    return World(mean_reward=mean_reward, logging=logging, target=target, features=features)


WORLD = make_world()


def test_the_target_policy_differs_from_the_logging_one() -> None:
    logging_value = float((WORLD.logging * WORLD.mean_reward).sum(axis=1).mean())
    assert WORLD.true_value - logging_value > 0.05


def test_ips_and_dr_are_unbiased_and_dm_with_a_wrong_model_is_not() -> None:
    rng = np.random.default_rng(2024)
    wrong_model = np.clip(WORLD.mean_reward + 0.15, 0, 1)  # a biased reward model
    estimates: dict[str, list[float]] = {"ips": [], "dr": [], "dm": []}
    for _ in range(300):
        logs = WORLD.log(400, rng)
        model = wrong_model[logs["kind"]]
        args = (logs["reward"], logs["action"], logs["propensity"], logs["action_dist"])
        estimates["ips"].append(ips(*args, n_bootstrap=0).value)
        estimates["dr"].append(dr(*args, model, n_bootstrap=0).value)
        estimates["dm"].append(dm(*args, model, n_bootstrap=0).value)
    truth = WORLD.true_value
    for name in ("ips", "dr"):
        values = np.array(estimates[name])
        standard_error = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - truth) < 4 * standard_error, name
    dm_values = np.array(estimates["dm"])
    assert dm_values.mean() - truth > 0.1  # the model's bias goes straight into DM
    # DR keeps IPS's unbiasedness with less variance when the model carries information.
    assert np.std(estimates["dr"]) < np.std(estimates["ips"])


def test_snips_is_consistent() -> None:
    logs = WORLD.log(200_000, np.random.default_rng(9))
    args = (logs["reward"], logs["action"], logs["propensity"], logs["action_dist"])
    assert snips(*args, n_bootstrap=0).value == pytest.approx(WORLD.true_value, abs=0.01)


def test_bootstrap_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(77)
    truth = WORLD.true_value
    model = WORLD.mean_reward * 0.8
    covered = {"ips": 0, "dr": 0}
    repetitions = 200
    for _ in range(repetitions):
        logs = WORLD.log(500, rng)
        result = evaluate_policy(
            logs["reward"],
            logs["action"],
            logs["propensity"],
            logs["action_dist"],
            estimated_rewards=model[logs["kind"]],
            n_bootstrap=200,
            rng=rng,
        )
        for name in covered:
            low, high = result[name].ci_low, result[name].ci_high
            assert low is not None
            assert high is not None
            covered[name] += low <= truth <= high
    for name, count in covered.items():
        assert 0.9 <= count / repetitions <= 0.99, (name, count)


def test_the_reward_model_learns_the_click_probabilities() -> None:
    logs = WORLD.log(20_000, np.random.default_rng(4))
    predicted = fit_reward_model(
        logs["context"], logs["action"], logs["reward"], n_actions=4, rng=0
    )
    assert predicted.shape == (20_000, 4)
    assert ((predicted > 0) & (predicted < 1)).all()  # binary rewards: logistic by default
    truth = WORLD.mean_reward[logs["kind"]]
    # With 6 context types and 2 features the linear-logistic model cannot be exact, but close.
    assert np.sqrt(np.mean((predicted - truth) ** 2)) < 0.08
    value = dr(
        logs["reward"],
        logs["action"],
        logs["propensity"],
        logs["action_dist"],
        predicted,
        n_bootstrap=0,
    ).value
    assert value == pytest.approx(WORLD.true_value, abs=0.02)


def test_ridge_recovers_a_linear_reward_exactly() -> None:
    rng = np.random.default_rng(8)
    n, k = 3000, 3
    context = rng.normal(size=(n, 3))
    coefficients = rng.normal(size=(3, k))
    action = rng.integers(0, k, n)
    truth = context @ coefficients + np.array([1.0, -1.0, 0.5])
    reward = truth[np.arange(n), action] + rng.normal(scale=0.1, size=n)
    predicted = fit_reward_model(context, action, reward, n_actions=k, kind="ridge", l2=0.1, rng=1)
    assert np.abs(predicted - truth).max() < 0.05


def test_cross_fitting_keeps_a_rounds_own_reward_out_of_its_prediction() -> None:
    rng = np.random.default_rng(6)
    n = 300
    context = rng.normal(size=(n, 2))
    action = rng.integers(0, 3, n)
    reward = rng.normal(size=n)
    changed = reward.copy()
    changed[17] += 100.0
    before = fit_reward_model(context, action, reward, n_actions=3, kind="ridge", rng=5)
    after = fit_reward_model(context, action, changed, n_actions=3, kind="ridge", rng=5)
    assert np.allclose(before[17], after[17])
    assert not np.allclose(before, after)
    in_sample = fit_reward_model(context, action, changed, n_actions=3, kind="ridge", n_folds=1)
    assert not np.allclose(before[17], in_sample[17])


def test_the_reward_model_uses_positions() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    position = rng.integers(0, 3, n)
    action = rng.integers(0, 2, n)
    reward = np.array([0.0, 1.0, 2.0])[position] + 0.5 * action + rng.normal(scale=0.05, size=n)
    predicted = fit_reward_model(
        np.zeros((n, 0)), action, reward, n_actions=2, position=position, kind="ridge"
    )
    expected = np.array([0.0, 1.0, 2.0])[position][:, None] + np.array([0.0, 0.5])
    assert np.abs(predicted - expected).max() < 0.05


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"context": np.zeros((5, 2))}, r"action has shape \(10,\) but context has 5 rows"),
        ({"reward": np.full(10, np.nan)}, r"reward has a NaN"),
        ({"context": np.full((10, 2), "x")}, r"context must be a numeric \(n, d\) array"),
        ({"n_actions": 1}, r"action\[\d\] = 1 is outside 0..0"),
        ({"kind": "forest"}, r"kind = 'forest': choose 'auto', 'ridge' or 'logistic'"),
        ({"kind": "logistic", "reward": np.linspace(0, 2, 10)}, r"needs rewards in \{0, 1\}"),
        ({"n_folds": 11}, r"n_folds = 11 must be an integer between 1 and 10"),
        ({"l2": -1.0}, r"l2 = -1.0 must be a finite number >= 0"),
        ({"position": np.full(10, -1)}, r"position must be \(n,\) 0-based integer positions"),
    ],
)
def test_reward_model_bad_inputs(change: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "context": np.zeros((10, 2)),
        "action": np.array([0, 1] * 5),
        "reward": np.array([0.0, 1.0] * 5),
        "n_actions": 2,
    }
    arguments.update(change)
    with pytest.raises(PolicyError, match=message):
        fit_reward_model(
            arguments.pop("context"),  # type: ignore[arg-type]
            arguments.pop("action"),  # type: ignore[arg-type]
            arguments.pop("reward"),  # type: ignore[arg-type]
            **arguments,  # type: ignore[arg-type]
        )


def test_ridge_matches_the_dense_normal_equations() -> None:
    # The block elimination must give exactly the textbook ridge solution on the full design
    # [1, z, action one-hot, z ⊗ action one-hot], with the intercept unpenalized.
    rng = np.random.default_rng(12)
    n, d, k, l2 = 200, 2, 3, 3.0
    x = rng.normal(size=(n, d))
    action = rng.integers(0, k, n)
    reward = rng.normal(size=n) + action
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    onehot = np.eye(k)[action]
    design = np.hstack(
        [np.ones((n, 1)), z, onehot, (z[:, :, None] * onehot[:, None, :]).reshape(n, -1)]
    )
    penalty = l2 * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    theta = np.linalg.solve(design.T @ design + penalty, design.T @ reward)
    intercept, beta = theta[0], theta[1 : 1 + d]
    gamma = theta[1 + d : 1 + d + k]
    slopes = theta[1 + d + k :].reshape(d, k)  # feature j, action a at j * k + a
    expected = intercept + (z @ beta)[:, None] + gamma[None, :] + z @ slopes
    predicted = fit_reward_model(x, action, reward, n_actions=k, kind="ridge", l2=l2, n_folds=1)
    assert np.allclose(predicted, expected, atol=1e-9)


def test_logistic_matches_a_generic_optimizer_on_the_dense_design() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(13)
    n, d, k, l2 = 400, 2, 3, 2.0
    x = rng.normal(size=(n, d))
    action = rng.integers(0, k, n)
    reward = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x[:, 0] * (action - 1) - 0.5)))).astype(float)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    onehot = np.eye(k)[action]
    design = np.hstack(
        [np.ones((n, 1)), z, onehot, (z[:, :, None] * onehot[:, None, :]).reshape(n, -1)]
    )
    mask = np.ones(design.shape[1])
    mask[0] = 0.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ theta
        value = np.sum(np.logaddexp(0.0, eta) - reward * eta) + 0.5 * l2 * np.sum(mask * theta**2)
        gradient = design.T @ (1 / (1 + np.exp(-eta)) - reward) + l2 * mask * theta
        return float(value), gradient

    theta = optimize.minimize(
        objective, np.zeros(design.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-10}
    ).x
    intercept, beta = theta[0], theta[1 : 1 + d]
    gamma = theta[1 + d : 1 + d + k]
    slopes = theta[1 + d + k :].reshape(d, k)
    eta = intercept + (z @ beta)[:, None] + gamma[None, :] + z @ slopes
    expected = 1 / (1 + np.exp(-eta))
    predicted = fit_reward_model(x, action, reward, n_actions=k, l2=l2, n_folds=1)
    assert np.allclose(predicted, expected, atol=1e-6)
