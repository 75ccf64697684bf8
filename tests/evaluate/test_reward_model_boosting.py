"""The gradient-boosted reward model and the greedy policy built on it: seeded known answers.

The world: a constant action 0 worth 0.5, and an action 1 worth 1 where ``x₀·x₁ > 0`` and 0
elsewhere, an interaction no linear model of ``x`` can express. The trees must find it; the linear
model must not (so the test can tell them apart).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tummler.core.errors import PolicyError
from tummler.evaluate import dr, fit_reward_model, fit_reward_predictor


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: the trees' threads oversubscribe a shared test machine ten-fold.

    scikit-learn is imported first, so that its OpenMP runtime is loaded when the limit is set.
    """
    import sklearn.ensemble  # noqa: F401

    with threadpool_limits(limits=1):
        yield


def _world(n: int, seed: int, binary: bool = False) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 3))
    truth = np.column_stack([np.full(n, 0.5), (x[:, 0] * x[:, 1] > 0).astype(float)])
    if binary:
        truth = 0.1 + 0.2 * truth  # click rates 0.2 and 0.1 / 0.3
    action = rng.integers(0, 2, n)
    mean = truth[np.arange(n), action]
    reward = (rng.random(n) < mean).astype(float) if binary else mean + rng.normal(0, 0.3, n)
    return x, action, reward, truth


def test_the_trees_find_an_interaction_the_linear_model_cannot() -> None:
    x, action, reward, truth = _world(4000, seed=1)
    boosted = fit_reward_model(x, action, reward, n_actions=2, kind="boosting", rng=0)
    linear = fit_reward_model(x, action, reward, n_actions=2, kind="ridge", rng=0)
    rmse = {
        "boosted": float(np.sqrt(np.mean((boosted - truth) ** 2))),
        "linear": float(np.sqrt(np.mean((linear - truth) ** 2))),
    }
    assert rmse["boosted"] < 0.15 < 0.3 < rmse["linear"], rmse
    # DR with the trees on a uniform log: the value of "always action 1" is 0.5.
    always = np.tile([0.0, 1.0], (4000, 1))
    value = dr(reward, action, np.full(4000, 0.5), always, boosted, n_bootstrap=0).value
    assert value == pytest.approx(truth[:, 1].mean(), abs=0.03)


def test_a_binary_reward_gets_probabilities_and_the_same_seed_the_same_model() -> None:
    x, action, reward, truth = _world(4000, seed=2, binary=True)
    first = fit_reward_model(x, action, reward, n_actions=2, kind="boosting", rng=3)
    assert ((first > 0) & (first < 1)).all()
    assert float(np.sqrt(np.mean((first - truth) ** 2))) < 0.06
    np.testing.assert_array_equal(
        first, fit_reward_model(x, action, reward, n_actions=2, kind="boosting", rng=3)
    )
    assert not np.array_equal(
        first, fit_reward_model(x, action, reward, n_actions=2, kind="boosting", rng=4)
    )


def test_cross_fitted_trees_never_see_the_round_they_predict() -> None:
    x, action, reward, _ = _world(1500, seed=3)
    changed = reward.copy()
    changed[11] += 50.0
    before = fit_reward_model(x, action, reward, n_actions=2, kind="boosting", rng=5)
    after = fit_reward_model(x, action, changed, n_actions=2, kind="boosting", rng=5)
    np.testing.assert_array_equal(before[11], after[11])
    assert not np.allclose(before, after)


def test_a_rare_action_is_predicted_by_the_pooled_model() -> None:
    x, action, reward, _ = _world(3000, seed=4)
    action = action.copy()
    action[:60] = 2  # sixty rounds of a third action worth 2
    reward = reward.copy()
    reward[:60] = 2.0 + np.random.default_rng(0).normal(0, 0.3, 60)
    predicted = fit_reward_predictor(x, action, reward, n_actions=3, kind="boosting").predict(x)
    assert predicted[:, 2].mean() == pytest.approx(2.0, abs=0.5)
    assert predicted[:, 0].mean() == pytest.approx(0.5, abs=0.1)


def test_the_greedy_policy_on_the_trees_acts_on_the_interaction() -> None:
    x, action, reward, _ = _world(4000, seed=5)
    held_x, _, _, held_truth = _world(4000, seed=6)
    value = {}
    for kind in ("boosting", "ridge"):
        model = fit_reward_predictor(x, action, reward, n_actions=2, kind=kind, rng=0)
        dist = model.action_dist(held_x)
        value[kind] = float(np.sum(dist * held_truth, axis=1).mean())
    best = float(held_truth.max(axis=1).mean())  # 0.75
    assert value["boosting"] > best - 0.03
    assert value["ridge"] < best - 0.1
    model = fit_reward_predictor(x, action, reward, n_actions=2, kind="boosting", rng=0)
    # epsilon mixes a uniform share in; a cost on action 1 above its worth turns it off.
    mixed = model.action_dist(held_x, epsilon=0.2)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0)
    assert set(np.unique(mixed)) == {0.1, 0.9}
    assert (model.action_dist(held_x, cost=[0.0, 2.0])[:, 0] == 1.0).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.predict(np.zeros((2, 2))), r"context has 2 columns; .* fitted on 3"),
        (lambda m: m.action_dist(np.zeros((2, 3)), epsilon=1.5), r"epsilon = 1.5 must lie"),
        (lambda m: m.action_dist(np.zeros((2, 3)), cost=[1.0]), r"cost must be 2 finite"),
    ],
)
def test_predictor_bad_inputs(call: object, message: str) -> None:
    x, action, reward, _ = _world(300, seed=7)
    model = fit_reward_predictor(x, action, reward, n_actions=2, kind="ridge")
    with pytest.raises(PolicyError, match=message):
        call(model)  # type: ignore[operator]
