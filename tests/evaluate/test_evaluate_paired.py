"""The paired difference of two policies' values: exact point values, a paired interval that holds
the truth, and a refusal of two policies weighed on different logs."""

from __future__ import annotations

import numpy as np
import pytest

from tummler.core.errors import PolicyError
from tummler.evaluate import ESTIMATORS, LoggedData, evaluate_policy, paired_difference

MEANS = np.array([0.30, 0.20, 0.10])  # each action's true reward rate, the same in every context


def _log(n: int, seed: int) -> tuple[LoggedData, np.ndarray]:
    """Uniform logging over three actions with 0/1 rewards at ``MEANS``; the model is the truth."""
    rng = np.random.default_rng(seed)
    action = rng.integers(0, 3, size=n)
    reward = (rng.random(n) < MEANS[action]).astype(float)
    return LoggedData(reward, action, np.full(n, 1 / 3)), np.tile(MEANS, (n, 1))


def _split(n: int, shares: list[float]) -> np.ndarray:
    return np.tile(np.array(shares), (n, 1))


def test_the_difference_is_the_difference_of_the_estimates() -> None:
    data, model = _log(400, seed=1)
    first, second = _split(400, [0.8, 0.2, 0.0]), _split(400, [0.0, 0.5, 0.5])
    differences = paired_difference(
        data.rounds(first, estimated_rewards=model),
        data.rounds(second, estimated_rewards=model),
        n_bootstrap=50,
    )
    assert [d.name for d in differences] == list(ESTIMATORS)
    for d in differences:
        one, other = (
            evaluate_policy(
                data.reward, data.action, data.propensity, dist, estimated_rewards=model,
                n_bootstrap=0,
            )[d.name].value
            for dist in (first, second)
        )  # fmt: skip
        assert d.value == pytest.approx(one - other, abs=1e-12)
        assert d.ci_low is not None
        assert d.ci_high is not None
        assert d.ci_low - 1e-12 <= d.value <= d.ci_high + 1e-12
    assert differences[ESTIMATORS.index("dm")].value == pytest.approx(0.28 - 0.15)


def test_a_policy_against_itself_differs_by_exactly_nothing() -> None:
    data, model = _log(300, seed=2)
    rounds = data.rounds(_split(300, [0.5, 0.25, 0.25]), estimated_rewards=model)
    for d in paired_difference(rounds, rounds, n_bootstrap=20):
        assert (d.value, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0)


def test_without_a_reward_model_only_the_weighted_estimators() -> None:
    data, _ = _log(100, seed=3)
    first, second = data.rounds(_split(100, [1, 0, 0])), data.rounds(_split(100, [0, 1, 0]))
    names = [d.name for d in paired_difference(first, second, n_bootstrap=0)]
    assert names == ["ips", "snips"]


def test_the_paired_interval_holds_the_true_difference() -> None:
    """Seeded repetitions with a known truth: the 90% interval of IPS and DR holds it in about 90%
    of them, and is narrower than either policy's own interval (the pairing removes shared noise)."""
    truth = (0.9 * 0.30 + 0.1 * 0.20) - 0.30  # 90% the best action against always the best
    first, second = _split(600, [0.9, 0.1, 0.0]), _split(600, [1.0, 0.0, 0.0])
    held = {"ips": 0, "dr": 0}
    narrower = 0
    repetitions = 120
    for seed in range(repetitions):
        data, model = _log(600, seed=100 + seed)
        a = data.rounds(first, estimated_rewards=model)
        b = data.rounds(second, estimated_rewards=model)
        found = {
            d.name: d
            for d in paired_difference(a, b, ["ips", "dr"], n_bootstrap=200, alpha=0.1, rng=seed)
        }
        for name, d in found.items():
            assert d.ci_low is not None
            assert d.ci_high is not None
            held[name] += d.ci_low <= truth <= d.ci_high
        alone = evaluate_policy(
            data.reward, data.action, data.propensity, first, n_bootstrap=200, alpha=0.1, rng=seed
        )["ips"]
        ips = found["ips"]
        assert alone.ci_low is not None
        assert alone.ci_high is not None
        assert ips.ci_low is not None
        assert ips.ci_high is not None
        narrower += (ips.ci_high - ips.ci_low) < (alone.ci_high - alone.ci_low)
    for name, count in held.items():
        assert 0.82 <= count / repetitions <= 0.97, (name, count)
    assert narrower == repetitions


def test_two_policies_on_different_logs_are_refused() -> None:
    data, _ = _log(100, seed=4)
    other, _ = _log(100, seed=5)
    dist = _split(100, [1, 0, 0])
    with pytest.raises(PolicyError, match="different logged rounds"):
        paired_difference(data.rounds(dist), other.rounds(dist), n_bootstrap=0)
