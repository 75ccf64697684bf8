"""Off-policy estimators against known answers, invariants and a table of bad inputs."""

from __future__ import annotations

import json
import math
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tummler.core.errors import PolicyError
from tummler.evaluate import (
    ESTIMATORS,
    LoggedData,
    dm,
    dr,
    effective_sample_size,
    estimate,
    evaluate_policy,
    ips,
    snips,
    switch_dr,
)
from tummler.evaluate._checks import check_rounds
from tummler.evaluate._estimators import estimate_all

# A tiny example worked by hand (see the comments for each figure).
REWARD = np.array([1.0, 0.0, 1.0, 0.0])
ACTION = np.array([0, 1, 1, 0])
PROPENSITY = np.array([0.5, 0.5, 0.25, 0.8])
ACTION_DIST = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8], [0.6, 0.4]])
ESTIMATED = np.array([[0.5, 0.1], [0.2, 0.4], [0.3, 0.6], [0.1, 0.9]])
# weights w = [1/0.5, 0.5/0.5, 0.8/0.25, 0.6/0.8] = [2, 1, 3.2, 0.75]; Σw = 6.95, Σw² = 15.8025
# w·r = [2, 0, 3.2, 0] (sum 5.2); policy value under the model q_pi = [0.5, 0.3, 0.54, 0.42]
# residuals r - q[a] = [0.5, -0.4, 0.4, -0.1]; w·residual = [1, -0.4, 1.28, -0.075]
HAND = {
    "ips": 5.2 / 4,
    "snips": 5.2 / 6.95,
    "dm": (0.5 + 0.3 + 0.54 + 0.42) / 4,
    "dr": (1.5 - 0.1 + 1.82 + 0.345) / 4,
}
ESS = 6.95**2 / 15.8025


def test_ips_by_hand() -> None:
    estimate = ips(REWARD, ACTION, PROPENSITY, ACTION_DIST, n_bootstrap=0)
    assert estimate.value == pytest.approx(HAND["ips"])
    assert estimate.effective_sample_size == pytest.approx(ESS)
    assert (estimate.name, estimate.n, estimate.ci_low, estimate.ci_high) == ("ips", 4, None, None)


def test_snips_by_hand() -> None:
    estimate = snips(REWARD, ACTION, PROPENSITY, ACTION_DIST, n_bootstrap=0)
    assert estimate.value == pytest.approx(HAND["snips"])
    assert estimate.effective_sample_size == pytest.approx(ESS)


def test_dm_by_hand() -> None:
    estimate = dm(REWARD, ACTION, PROPENSITY, ACTION_DIST, ESTIMATED, n_bootstrap=0)
    assert estimate.value == pytest.approx(HAND["dm"])
    assert estimate.effective_sample_size == 4.0


def test_dr_by_hand() -> None:
    estimate = dr(REWARD, ACTION, PROPENSITY, ACTION_DIST, ESTIMATED, n_bootstrap=0)
    assert estimate.value == pytest.approx(HAND["dr"])
    assert estimate.effective_sample_size == pytest.approx(ESS)


def test_switch_dr_by_hand() -> None:
    # tau = 2 drops round 2 (w = 3.2) to the model: terms [1.5, -0.1, 0.54, 0.345]
    estimate = switch_dr(REWARD, ACTION, PROPENSITY, ACTION_DIST, ESTIMATED, tau=2, n_bootstrap=0)
    assert estimate.value == pytest.approx((1.5 - 0.1 + 0.54 + 0.345) / 4)
    assert estimate.effective_sample_size == pytest.approx(3.75**2 / 5.5625)


def test_slates_take_the_logged_position() -> None:
    # Position 1 holds the hand example; position 0 holds a different policy that must be ignored.
    other = np.tile([[0.0, 1.0]], (4, 1))
    dist = np.stack([other, ACTION_DIST], axis=2)
    model = np.stack([np.zeros_like(ESTIMATED), ESTIMATED], axis=2)
    position = np.ones(4, dtype=int)
    assert ips(
        REWARD, ACTION, PROPENSITY, dist, position=position, n_bootstrap=0
    ).value == pytest.approx(HAND["ips"])
    assert dr(
        REWARD, ACTION, PROPENSITY, dist, model, position=position, n_bootstrap=0
    ).value == pytest.approx(HAND["dr"])
    # (n, k) predictions at the logged position are accepted with a slate policy.
    assert dr(
        REWARD, ACTION, PROPENSITY, dist, ESTIMATED, position=position, n_bootstrap=0
    ).value == pytest.approx(HAND["dr"])


def test_effective_sample_size_known_values() -> None:
    assert effective_sample_size(np.ones(10)) == 10.0
    assert effective_sample_size([0.0, 0.0]) == 0.0
    assert effective_sample_size([1.0, 3.0]) == pytest.approx(16 / 10)


@st.composite
def on_policy_logs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 6))
    raw = draw(
        hnp.arrays(np.float64, (n, k), elements=st.floats(0.01, 10.0, allow_subnormal=False))
    )
    dist = raw / raw.sum(axis=1, keepdims=True)
    action = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    reward = draw(hnp.arrays(np.float64, n, elements=st.floats(-5.0, 5.0, allow_subnormal=False)))
    return reward, action, dist[np.arange(n), action], dist


@settings(max_examples=60, deadline=None)
@given(on_policy_logs())
def test_on_policy_ips_and_snips_are_the_sample_mean(
    logs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    reward, action, propensity, dist = logs
    mean = float(reward.mean())
    assert ips(reward, action, propensity, dist, n_bootstrap=0).value == pytest.approx(mean)
    assert snips(reward, action, propensity, dist, n_bootstrap=0).value == pytest.approx(mean)
    assert ips(reward, action, propensity, dist, n_bootstrap=0).effective_sample_size == (
        pytest.approx(len(reward))
    )


def _other_policy_and_model(action: np.ndarray, random: Any) -> tuple[np.ndarray, np.ndarray]:
    """A random evaluation policy over the logged actions and a random reward model for it."""
    n, k = len(action), int(action.max()) + 1
    generator = np.random.default_rng(random.randint(0, 2**32))
    return generator.dirichlet(np.ones(k), size=n), generator.uniform(-1, 1, size=(n, k))


@settings(max_examples=60, deadline=None)
@given(on_policy_logs(), st.randoms(use_true_random=False))
def test_switch_dr_spans_dm_to_dr(
    logs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], random: Any
) -> None:
    reward, action, propensity, _ = logs
    n = len(reward)
    dist, model = _other_policy_and_model(action, random)
    args = (reward, action, propensity, dist, model)
    as_dr = switch_dr(*args, tau=math.inf, n_bootstrap=0)
    as_dm = switch_dr(*args, tau=0.0, n_bootstrap=0)
    assert as_dr.value == dr(*args, n_bootstrap=0).value
    assert as_dm.value == dm(*args, n_bootstrap=0).value
    # SNIPS stays inside the range of the rewards whatever the weights.
    if (dist[np.arange(n), action] > 0).any():
        value = snips(reward, action, propensity, dist, n_bootstrap=0).value
        assert reward.min() - 1e-9 <= value <= reward.max() + 1e-9


def test_dr_with_a_perfect_model_ignores_the_weights() -> None:
    generator = np.random.default_rng(3)
    n, k = 500, 5
    truth = generator.uniform(size=(n, k))
    action = generator.integers(0, k, n)
    reward = truth[np.arange(n), action]  # deterministic rewards: the model is exact
    dist = generator.dirichlet(np.ones(k), size=n)
    results = []
    for propensity in (np.full(n, 1 / k), generator.uniform(0.01, 1.0, n)):
        results.append(dr(reward, action, propensity, dist, truth, n_bootstrap=200, rng=1))
    model_only = dm(reward, action, propensity, dist, truth, n_bootstrap=200, rng=1)
    assert model_only.ci_low is None  # predictions alone say nothing of the model's error
    for result in results:
        assert result.value == pytest.approx(model_only.value, abs=1e-12)
        assert result.ci_low == pytest.approx(results[0].ci_low, abs=1e-12)
        assert result.ci_high == pytest.approx(results[0].ci_high, abs=1e-12)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    generator = np.random.default_rng(0)
    n, k = 2000, 3
    action = generator.integers(0, k, n)
    reward = (generator.uniform(size=n) < 0.3).astype(float)
    dist = np.tile([0.2, 0.3, 0.5], (n, 1))
    first = ips(reward, action, np.full(n, 1 / 3), dist, n_bootstrap=300, rng=7)
    again = ips(reward, action, np.full(n, 1 / 3), dist, n_bootstrap=300, rng=7)
    other = ips(reward, action, np.full(n, 1 / 3), dist, n_bootstrap=300, rng=8)
    assert first == again
    assert first.ci_low != other.ci_low
    assert first.ci_low is not None
    assert first.ci_high is not None
    assert first.ci_low < first.value < first.ci_high
    # The percentile interval's width is close to the normal one, 2·1.96·sd/√n.
    terms = dist[np.arange(n), action] * 3 * reward
    normal_width = 2 * 1.96 * terms.std() / math.sqrt(n)
    assert first.ci_high - first.ci_low == pytest.approx(normal_width, rel=0.2)


def test_bootstrap_over_many_rounds_is_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force one resample per chunk: the answer must be a proper interval all the same.
    from tummler.evaluate import _bootstrap

    monkeypatch.setattr(_bootstrap, "CHUNK_ELEMENTS", 10)
    generator = np.random.default_rng(2)
    reward = generator.normal(size=400)
    result = ips(reward, np.zeros(400, int), np.ones(400), np.ones((400, 1)), n_bootstrap=50)
    assert result.ci_low is not None
    assert result.ci_high is not None
    assert result.ci_low < reward.mean() < result.ci_high


def test_evaluate_policy_serializes_every_estimator() -> None:
    result = evaluate_policy(
        REWARD,
        ACTION,
        PROPENSITY,
        ACTION_DIST,
        estimated_rewards=ESTIMATED,
        tau=2.0,
        n_bootstrap=100,
        policy="candidate-7",
    )
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["policy"] == "candidate-7"
    assert payload["n_rounds"] == 4
    assert payload["confidence"] == pytest.approx(0.95)
    assert list(payload["estimates"]) == list(ESTIMATORS)
    for name, value in HAND.items():
        entry = payload["estimates"][name]
        assert entry["estimate"] == pytest.approx(value)
        # four rounds are too few for an interval: none is given, and a warning says why
        assert (entry["ci_low"], entry["ci_high"], entry["interval"]) == (None, None, None)
        assert result[name].value == pytest.approx(value)
    assert payload["estimates"]["ips"]["effective_sample_size"] == pytest.approx(ESS)
    assert [w["code"] for w in payload["warnings"]] == ["too_few_rounds", "extreme_weights"]
    assert payload["guard"] == {
        "estimator": "switch_dr",
        "tau": 2.0,
        "switched_rounds": 1,
        "largest_weight": pytest.approx(3.2),  # weights above 2: 3.2 only
    }


def test_evaluate_policy_without_a_model_reports_ips_and_snips_only() -> None:
    result = evaluate_policy(REWARD, ACTION, PROPENSITY, ACTION_DIST, n_bootstrap=0)
    assert [e.name for e in result.estimates] == ["ips", "snips"]
    with pytest.raises(KeyError):
        result["dr"]


def test_evaluate_policy_fits_a_model_from_context() -> None:
    generator = np.random.default_rng(5)
    n, k = 600, 3
    context = generator.normal(size=(n, 2))
    action = generator.integers(0, k, n)
    reward = (generator.uniform(size=n) < 0.4).astype(float)
    dist = np.full((n, k), 1 / k)
    result = evaluate_policy(
        reward, action, np.full(n, 1 / k), dist, context=context, n_bootstrap=0
    )
    assert [e.name for e in result.estimates] == list(ESTIMATORS)
    # On-policy: every estimator lands near the sample mean.
    for each in result.estimates:
        assert each.value == pytest.approx(reward.mean(), abs=0.05)


GOOD: dict[str, Any] = {
    "reward": REWARD,
    "action": ACTION,
    "propensity": PROPENSITY,
    "action_dist": ACTION_DIST,
    "estimated_rewards": ESTIMATED,
}

BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "propensity 0",
        {"propensity": [0.5, 0.0, 0.25, 0.8]},
        r"propensity\[1\] = 0.0 is outside \(0, 1\]",
    ),
    (
        "propensity above 1",
        {"propensity": [0.5, 1.5, 0.25, 0.8]},
        r"propensity\[1\] = 1.5 is outside",
    ),
    ("negative propensity", {"propensity": [-0.1, 0.5, 0.25, 0.8]}, r"propensity\[0\]"),
    (
        "NaN reward",
        {"reward": [1.0, math.nan, 1.0, 0.0]},
        r"reward has a NaN or infinite value at index 1",
    ),
    (
        "infinite propensity",
        {"propensity": [0.5, 0.5, math.inf, 0.8]},
        r"propensity has a NaN .* index 2",
    ),
    (
        "NaN in action_dist",
        {"action_dist": [[1.0, 0.0], [0.5, math.nan], [0.2, 0.8], [0.6, 0.4]]},
        r"action_dist has a NaN .* \(1, 1\)",
    ),
    ("short action", {"action": [0, 1, 1]}, r"action has 3 rounds but reward has 4"),
    ("short propensity", {"propensity": [0.5, 0.5]}, r"propensity has 2 rounds but reward has 4"),
    (
        "short action_dist",
        {"action_dist": ACTION_DIST[:3]},
        r"action_dist has 3 rounds but reward has 4",
    ),
    (
        "short estimated_rewards",
        {"estimated_rewards": ESTIMATED[:2]},
        r"estimated_rewards has 2 rounds",
    ),
    ("action out of range", {"action": [0, 1, 2, 0]}, r"action\[2\] = 2 is outside 0..1"),
    ("negative action", {"action": [0, -1, 1, 0]}, r"action\[1\] = -1 is outside"),
    ("fractional action", {"action": [0.0, 1.5, 1.0, 0.0]}, r"action must hold whole numbers"),
    ("text action", {"action": ["a", "b", "a", "b"]}, r"action must hold integer indices"),
    (
        "row not summing to 1",
        {"action_dist": [[1.0, 0.0], [0.5, 0.6], [0.2, 0.8], [0.6, 0.4]]},
        r"action_dist row 1 sums to 1.1, not 1",
    ),
    (
        "negative probability",
        {"action_dist": [[1.0, 0.0], [1.5, -0.5], [0.2, 0.8], [0.6, 0.4]]},
        r"negative probability at \(1, 1\)",
    ),
    (
        "1-d action_dist",
        {"action_dist": [0.5, 0.5, 0.5, 0.5]},
        r"action_dist must be a 2-dimensional or 3-dimensional array",
    ),
    (
        "2-d reward",
        {"reward": [[1.0], [0.0], [1.0], [0.0]]},
        r"reward must be a 1-dimensional array",
    ),
    ("text reward", {"reward": ["1", "0", "1", "0"]}, r"reward must hold numbers"),
    (
        "empty",
        {
            "reward": [],
            "action": [],
            "propensity": [],
            "action_dist": np.zeros((0, 2)),
            "estimated_rewards": np.zeros((0, 2)),
        },
        r"reward is empty",
    ),
    (
        "model for other actions",
        {"estimated_rewards": np.zeros((4, 3))},
        r"estimated_rewards has 3 actions but action_dist has 2",
    ),
    (
        "slate without position",
        {"action_dist": np.stack([ACTION_DIST, ACTION_DIST], axis=2)},
        r"pass position",
    ),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_name_the_argument(case: str, change: dict[str, Any], message: str) -> None:
    arguments = {**GOOD, **change}
    with pytest.raises(PolicyError, match=message):
        dr(
            arguments["reward"],
            arguments["action"],
            arguments["propensity"],
            arguments["action_dist"],
            arguments["estimated_rewards"],
            n_bootstrap=0,
        )


BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"n_bootstrap": -1}, r"n_bootstrap = -1: use 0 for no interval"),
    ({"n_bootstrap": 5}, r"at least 10 resamples"),
    ({"n_bootstrap": 100.0}, r"n_bootstrap must be an integer"),
    ({"alpha": 0.0}, r"alpha = 0.0 must lie in \(0, 1\)"),
    ({"alpha": 1.5}, r"alpha = 1.5"),
    ({"tau": -1.0}, r"tau = -1.0 must be a number >= 0"),
    ({"tau": math.nan}, r"tau = nan"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_name_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        switch_dr(REWARD, ACTION, PROPENSITY, ACTION_DIST, ESTIMATED, **options)


def test_position_out_of_range_and_missing_model() -> None:
    dist = np.stack([ACTION_DIST, ACTION_DIST], axis=2)
    with pytest.raises(PolicyError, match=r"position\[0\] = 2 is outside 0..1"):
        ips(REWARD, ACTION, PROPENSITY, dist, position=[2, 0, 0, 0], n_bootstrap=0)
    with pytest.raises(PolicyError, match=r"position has 3 rounds"):
        ips(REWARD, ACTION, PROPENSITY, dist, position=[0, 0, 0], n_bootstrap=0)
    with pytest.raises(PolicyError, match=r"SNIPS is undefined"):
        never_logged = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        snips(REWARD, ACTION, PROPENSITY, never_logged, n_bootstrap=0)
    rounds = check_rounds(REWARD, ACTION, PROPENSITY, ACTION_DIST)
    with pytest.raises(PolicyError, match=r"dr needs estimated_rewards, .*fit_reward_model"):
        estimate_all(rounds, ["dr"])
    with pytest.raises(PolicyError, match=r"unknown estimator 'magic'"):
        estimate_all(rounds, ["magic"])


def test_bootstrap_memory_stays_bounded_over_many_rounds() -> None:
    # 100 resamples of 300,000 rounds at once would take 120 MB of indices and twice that in
    # counts; chunks keep the whole estimate under 100 MB.
    n = 300_000
    generator = np.random.default_rng(0)
    reward = generator.uniform(size=n)
    action = generator.integers(0, 2, n)
    dist = np.full((n, 2), 0.5)
    tracemalloc.start()
    try:
        result = ips(reward, action, np.full(n, 0.5), dist, n_bootstrap=100, rng=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20
    assert result.ci_low is not None
    assert result.ci_low < result.value


# --- checked once: LoggedData, LoggedRounds, estimate -----------------------------------------


@settings(max_examples=60, deadline=None)
@given(on_policy_logs(), st.randoms(use_true_random=False))
def test_checked_once_path_gives_the_array_path_answers(
    logs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], random: Any
) -> None:
    reward, action, propensity, _ = logs
    n = len(reward)
    dist, model = _other_policy_and_model(action, random)
    rounds = LoggedData(reward, action, propensity).rounds(dist, estimated_rewards=model)
    by_arrays = {
        "ips": ips(reward, action, propensity, dist, n_bootstrap=0),
        "dm": dm(reward, action, propensity, dist, model, n_bootstrap=0),
        "dr": dr(reward, action, propensity, dist, model, n_bootstrap=0),
        "switch_dr": switch_dr(reward, action, propensity, dist, model, tau=1.5, n_bootstrap=0),
    }
    if (dist[np.arange(n), action] > 0).any():
        by_arrays["snips"] = snips(reward, action, propensity, dist, n_bootstrap=0)
    for name, expected in by_arrays.items():
        assert estimate(rounds, name, tau=1.5, n_bootstrap=0) == expected


def test_checked_once_path_matches_the_hand_example_and_its_bootstrap() -> None:
    logged = LoggedData(REWARD, ACTION, PROPENSITY)
    rounds = logged.rounds(ACTION_DIST, estimated_rewards=ESTIMATED)
    for name, value in HAND.items():
        assert estimate(rounds, name, n_bootstrap=0).value == pytest.approx(value)
    # The same resamples as the array path: identical intervals.
    assert estimate(rounds, "dr", n_bootstrap=200, rng=3) == dr(
        REWARD, ACTION, PROPENSITY, ACTION_DIST, ESTIMATED, n_bootstrap=200, rng=3
    )


def test_logged_data_keeps_arrays_of_the_right_dtype_without_a_copy() -> None:
    reward = np.array([1.0, 0.0, 1.0])
    action = np.array([0, 1, 1], dtype=np.int64)
    propensity = np.array([0.5, 0.5, 0.25])
    logged = LoggedData(reward, action, propensity)
    assert logged.reward is reward
    assert logged.action is action
    assert logged.propensity is propensity
    dist = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    rounds = logged.rounds(dist)
    assert rounds.action_dist is dist
    assert rounds.reward is reward
    # Other dtypes are converted once, at the door.
    converted = LoggedData([1, 0, 1], np.array([0, 1, 1], dtype=np.int32), [0.5, 0.5, 0.25])
    assert converted.reward.dtype == np.float64
    assert converted.action.dtype == np.int64
    assert (converted.n, converted.n_actions_seen) == (3, 2)


def test_one_log_evaluates_many_policies() -> None:
    generator = np.random.default_rng(5)
    n, k = 1000, 4
    action = generator.integers(0, k, n)
    reward = (generator.uniform(size=n) < 0.2).astype(float)
    logged = LoggedData(reward, action, np.full(n, 1 / k))
    for _ in range(3):
        dist = generator.dirichlet(np.ones(k), size=n)
        rounds = logged.rounds(dist)
        assert estimate(rounds, "ips", n_bootstrap=0) == ips(
            reward, action, np.full(n, 1 / k), dist, n_bootstrap=0
        )


def test_slates_through_logged_data() -> None:
    other = np.tile([[0.0, 1.0]], (4, 1))
    dist = np.stack([other, ACTION_DIST], axis=2)
    logged = LoggedData(REWARD, ACTION, PROPENSITY, position=np.ones(4, dtype=int))
    rounds = logged.rounds(dist, estimated_rewards=np.stack([ESTIMATED, ESTIMATED], axis=2))
    assert estimate(rounds, "dr", n_bootstrap=0).value == pytest.approx(HAND["dr"])
    with pytest.raises(PolicyError, match=r"position\[0\] = 1 is outside 0..0"):
        logged.rounds(ACTION_DIST[:, :, None])


@pytest.mark.parametrize(("case", "change", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_name_the_argument_when_checked_once(
    case: str, change: dict[str, Any], message: str
) -> None:
    arguments = {**GOOD, **change}
    with pytest.raises(PolicyError, match=message):
        logged = LoggedData(arguments["reward"], arguments["action"], arguments["propensity"])
        logged.rounds(arguments["action_dist"], estimated_rewards=arguments["estimated_rewards"])


def test_estimate_checks_its_options() -> None:
    rounds = LoggedData(REWARD, ACTION, PROPENSITY).rounds(ACTION_DIST)
    with pytest.raises(PolicyError, match=r"unknown estimator 'magic'"):
        estimate(rounds, "magic")
    with pytest.raises(PolicyError, match=r"dm needs estimated_rewards"):
        estimate(rounds, "dm", n_bootstrap=0)
    with pytest.raises(PolicyError, match=r"n_bootstrap = 5"):
        estimate(rounds, "ips", n_bootstrap=5)


def test_any_memory_layout_gives_the_same_estimate() -> None:
    logged = LoggedData(REWARD, ACTION, PROPENSITY)
    for dist, model in (
        (np.asfortranarray(ACTION_DIST), np.asfortranarray(ESTIMATED)),
        (np.hstack([ACTION_DIST, ESTIMATED])[:, :2], np.hstack([ACTION_DIST, ESTIMATED])[:, 2:]),
    ):
        assert not dist.flags.c_contiguous
        rounds = logged.rounds(dist, estimated_rewards=model)
        for name, value in HAND.items():
            assert estimate(rounds, name, n_bootstrap=0).value == pytest.approx(value)
