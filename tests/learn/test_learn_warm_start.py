"""Warm start: the batch posterior fit is the logistic policy's own update, solved faster."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tummler.core.errors import PolicyError
from tummler.decide import LogisticThompson, build_action_set
from tummler.learn.warm_start import fit_logistic_posterior


def _logs(seed: int, n: int = 3000) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Logs of an old policy that used only the first two of three channels, one variant."""
    generator = np.random.default_rng(seed)
    actions = build_action_set(["email", "sms", "mastodon"], [9, 13, 18], 2)
    x = np.column_stack([generator.normal(size=(n, 2)), np.ones(n)]).astype(np.float32)
    channel = generator.integers(0, 2, n)
    slot = generator.integers(0, 3, n)
    index = (channel * actions.n_slots + slot) * actions.n_variants  # variant 0
    true_w = generator.normal(0, 0.7, size=(x.shape[1], actions.n_features))
    logit = np.einsum("nd,da,na->n", x, true_w, actions.features[index]) - 1.0
    clicked = (generator.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return actions, x, index, clicked


def test_the_fit_is_the_policy_update() -> None:
    actions, x, index, clicked = _logs(0)
    policy = LogisticThompson(x.shape[1], actions.n_features, actions.n_channels)
    prior_m, prior_q = policy.m.copy(), policy.q.copy()
    posterior = fit_logistic_posterior(x, actions.features[index], clicked, prior_m, prior_q)
    policy.update(x, actions, index, clicked)
    # L-BFGS (the policy) and Newton (here) find the same mode and the same Laplace precision.
    assert posterior.mean == pytest.approx(policy.m, abs=2e-3)
    assert posterior.precision == pytest.approx(policy.q, rel=1e-3)
    assert posterior.iterations < 25


def test_weights_the_logs_never_touch_keep_their_prior() -> None:
    actions, x, index, clicked = _logs(1)
    generator = np.random.default_rng(9)
    n_weights = x.shape[1] * actions.n_features
    prior_m = generator.normal(size=n_weights)
    prior_q = generator.uniform(0.5, 2.0, size=n_weights)
    posterior = fit_logistic_posterior(x, actions.features[index], clicked, prior_m, prior_q)
    untouched = ~(actions.features[index] != 0).any(axis=0)  # mastodon, second variants
    assert untouched.sum() >= 3
    weights = np.zeros((x.shape[1], actions.n_features), bool)
    weights[:, untouched] = True
    assert np.array_equal(posterior.mean[weights.reshape(-1)], prior_m[weights.reshape(-1)])
    assert np.array_equal(posterior.precision[weights.reshape(-1)], prior_q[weights.reshape(-1)])
    assert (posterior.precision[~weights.reshape(-1)] > prior_q[~weights.reshape(-1)]).all()


def test_a_strong_prior_holds_and_a_weak_one_yields() -> None:
    x, phi = np.ones((400, 1)), np.ones((400, 1))
    clicked = np.r_[np.ones(100), np.zeros(300)]
    weak = fit_logistic_posterior(x, phi, clicked, np.zeros(1), np.full(1, 1e-6))
    strong = fit_logistic_posterior(x, phi, clicked, np.zeros(1), np.full(1, 1e6))
    assert weak.mean[0] == pytest.approx(np.log(1 / 3), abs=1e-4)
    assert abs(strong.mean[0]) < 1e-3


GOOD: dict[str, Any] = {
    "x": np.ones((3, 2)),
    "phi": np.ones((3, 1)),
    "y": np.array([1.0, 0.0, 1.0]),
    "mean": np.zeros(2),
    "precision": np.ones(2),
}
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("1-d x", {"x": np.ones(3)}, r"x and phi must be 2-dimensional"),
    ("short y", {"y": np.ones(2)}, r"x has 3 rounds but phi has 3 and y 2"),
    ("wrong prior", {"mean": np.zeros(3)}, r"mean and precision must have shape \(2,\)"),
    ("NaN context", {"x": np.array([[1.0, np.nan]] * 3)}, r"x has NaN or infinite values"),
    ("reward of 2", {"y": np.array([2.0, 0.0, 1.0])}, r"y must lie in \[0, 1\]"),
    ("zero precision", {"precision": np.zeros(2)}, r"precision must be positive"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_inputs_name_the_argument(case: str, change: dict[str, Any], message: str) -> None:
    arguments = {**GOOD, **change}
    with pytest.raises(PolicyError, match=message):
        fit_logistic_posterior(**arguments)
