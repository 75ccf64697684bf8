"""The contract every registered policy follows, run on each of them without naming them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tummler.core.errors import PolicyError
from tummler.decide import (
    POLICIES,
    ActionSet,
    Policy,
    SelectionRules,
    build_action_set,
    compute_eligibility,
    plan,
    policy_from_dict,
)

D_X = 5
N = 60


def _actions() -> ActionSet:
    return build_action_set(
        ["email", "sms", "mastodon"],
        [9, 13, 33, 60],
        {"email": ["A", "B"], "sms": ["A"], "mastodon": ["A", "B"]},
        message_attributes={"emotional": 1.0},
    )


def _contexts(seed: int = 0, n: int = N) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, D_X)).astype(np.float32)
    x[:, 0] = 1.0
    return x


def _policy(kind: str) -> Policy:
    actions = _actions()
    return POLICIES[kind](
        n_context_features=D_X, n_action_features=actions.n_features, n_channels=actions.n_channels
    )


def _informative_data(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logged data where SMS always pays off and nothing else does."""
    actions = _actions()
    rng = np.random.default_rng(seed)
    x = _contexts(seed, 300)
    idx = rng.choice(np.flatnonzero(actions.available), size=300)
    rewards = (actions.channel[idx] == 1).astype(float)
    return x, idx, rewards


KINDS = sorted(POLICIES)


def test_every_policy_is_registered() -> None:
    assert set(KINDS) >= {
        "uniform_random",
        "epsilon_greedy",
        "logistic_thompson",
        "linear_thompson",
        "send_every_eligible_channel",
        "best_channel_per_segment",
    }


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def trained(kind: str) -> Policy:
    x, idx, rewards = _informative_data()
    return _policy(kind).update(x, _actions(), idx, rewards)


def test_scores_have_one_finite_float_per_context_and_action(trained: Policy) -> None:
    scores = trained.scores(_contexts(), _actions())
    assert scores.shape == (N, _actions().k)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_factor_scores_add_up_to_the_dense_scores(trained: Policy) -> None:
    factors = trained.factor_scores(_contexts(), _actions())
    np.testing.assert_allclose(factors.expected_dense(), trained.scores(_contexts(), _actions()))


def test_weight_matrix_reproduces_the_linear_scores(trained: Policy) -> None:
    weights = trained.weight_matrix(_actions())
    if weights is None:
        pytest.skip(f"{trained.kind} is not linear in the context")
    factors = trained.factor_scores(_contexts(), _actions())
    np.testing.assert_allclose(_contexts() @ weights, factors.linear_dense(), rtol=1e-4, atol=1e-5)


def test_action_distribution_sums_to_one_and_respects_the_mask(trained: Policy) -> None:
    actions = _actions()
    mask = np.random.default_rng(3).random((N, actions.k)) < 0.5
    mask[:5] = False  # nothing eligible: all mass on no-send
    dist = trained.action_distribution(
        _contexts(), actions, mask, draws=32, rng=np.random.default_rng(0)
    )
    assert dist.shape == (N, actions.k + 1)
    assert (dist >= 0).all()
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    blocked = np.concatenate([~(mask & actions.available[None, :]), np.zeros((N, 1), bool)], 1)
    assert (dist[blocked] == 0).all()
    np.testing.assert_allclose(dist[:5, -1], 1.0)


def test_a_high_threshold_means_no_send(trained: Policy) -> None:
    dist = trained.action_distribution(
        _contexts(), _actions(), threshold=10.0, draws=8, rng=np.random.default_rng(0)
    )
    eps = trained.epsilon
    m = _actions().available.sum()
    np.testing.assert_allclose(dist[:, -1], (1 - eps) + eps / (m + 1))


def test_same_seed_same_distribution(trained: Policy) -> None:
    def run() -> np.ndarray:
        return trained.action_distribution(
            _contexts(), _actions(), draws=16, rng=np.random.default_rng(42)
        )

    np.testing.assert_array_equal(run(), run())


def test_update_returns_self_and_bumps_the_version(kind: str) -> None:
    policy = _policy(kind)
    x, idx, rewards = _informative_data()
    assert policy.update(x, _actions(), idx, rewards) is policy
    assert policy.version == 1


def test_update_on_informative_data_changes_the_scores(kind: str) -> None:
    policy = _policy(kind)
    if not policy.learns:
        pytest.skip(f"{kind} does not learn")
    before = policy.scores(_contexts(), _actions())
    x, idx, rewards = _informative_data()
    after = policy.update(x, _actions(), idx, rewards).scores(_contexts(), _actions())
    assert not np.allclose(before, after)
    channel = _actions().channel
    # SMS paid off: it now scores above the other channels on average.
    assert after[:, channel == 1].mean() > after[:, channel != 1].mean()


def test_no_send_rows_teach_nothing(kind: str) -> None:
    policy = _policy(kind)
    before = policy.scores(_contexts(), _actions())
    x = _contexts(5, 10)
    policy.update(x, _actions(), np.full(10, -1), np.ones(10))
    np.testing.assert_array_equal(before, policy.scores(_contexts(), _actions()))


def test_to_dict_from_dict_round_trip_through_json(trained: Policy) -> None:
    stored = json.loads(json.dumps(trained.to_dict()))
    assert stored["kind"] == trained.kind
    assert stored["version"] == trained.version
    restored = policy_from_dict(stored)
    assert type(restored) is type(trained)
    assert restored.version == trained.version
    np.testing.assert_array_equal(
        restored.scores(_contexts(), _actions()), trained.scores(_contexts(), _actions())
    )
    dist = [
        p.action_distribution(_contexts(), _actions(), draws=8, rng=np.random.default_rng(9))
        for p in (trained, restored)
    ]
    np.testing.assert_array_equal(dist[0], dist[1])


BAD: list[tuple[str, Callable[[Policy], Any], str]] = [
    ("wrong columns", lambda p: p.scores(np.ones((3, D_X + 1)), _actions()), "x must have shape"),
    ("1-D contexts", lambda p: p.scores(np.ones(D_X), _actions()), "x must have shape"),
    ("NaN context", lambda p: p.scores(np.full((2, D_X), np.nan), _actions()), "NaN"),
    (
        "other action set",
        lambda p: p.scores(_contexts(), build_action_set(["email"], [9], 1)),
        "actions has",
    ),
    (
        "mask shape",
        lambda p: p.action_distribution(
            _contexts(), _actions(), np.ones((N, 3), bool), rng=np.random.default_rng(0)
        ),
        "mask must be",
    ),
    (
        "cost shape",
        lambda p: p.action_distribution(
            _contexts(), _actions(), cost=[1.0], rng=np.random.default_rng(0)
        ),
        "cost must be",
    ),
    (
        "action out of range",
        lambda p: p.update(_contexts(), _actions(), np.full(N, 999), np.zeros(N)),
        "action_idx",
    ),
    (
        "float actions",
        lambda p: p.update(_contexts(), _actions(), np.zeros(N), np.zeros(N)),
        "action_idx",
    ),
    (
        "rewards length",
        lambda p: p.update(_contexts(), _actions(), np.zeros(N, int), np.zeros(3)),
        "rewards",
    ),
    (
        "zero propensity",
        lambda p: p.update(_contexts(), _actions(), np.zeros(N, int), np.zeros(N), np.zeros(N)),
        "propensities",
    ),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_policy_error_naming_the_argument(
    kind: str, case: str, call: Callable[[Policy], Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        call(_policy(kind))


def test_stochastic_policies_need_a_generator(kind: str) -> None:
    policy = _policy(kind)
    if not policy.stochastic:
        pytest.skip("deterministic")
    with pytest.raises(PolicyError, match="rng is required"):
        policy.action_distribution(_contexts(), _actions())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 1}, "kind"),
        ({"kind": "nope"}, "unknown policy kind 'nope'"),
        ({"kind": "logistic_thompson", "params": {}}, "malformed"),
        (
            {
                "kind": "logistic_thompson",
                "params": {"n_context_features": 2, "n_action_features": 2, "n_channels": 1},
                "state": {"m": [0.0], "q": [1.0]},
            },
            "shape",
        ),
    ],
)
def test_bad_stored_policies_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy_from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_context_features": 0}, "n_context_features"),
        ({"n_channels": -1}, "n_channels"),
    ],
)
def test_bad_shapes_at_construction(kind: str, kwargs: dict[str, int], message: str) -> None:
    shape = {"n_context_features": 3, "n_action_features": 4, "n_channels": 2, **kwargs}
    with pytest.raises(PolicyError, match=message):
        POLICIES[kind](**shape)


def test_stochastic_policies_draw_independently_per_contact(trained: Policy) -> None:
    actions = _actions()
    twins = np.repeat(_contexts()[:1], N, axis=0)  # N contacts with identical features
    drawn = trained.factor_scores(twins, actions, np.random.default_rng(0)).linear_dense()
    point = trained.factor_scores(twins, actions).linear_dense()
    if not trained.stochastic:
        assert trained.noise_size(actions) == 0
        np.testing.assert_array_equal(drawn, point)
        return
    assert trained.noise_size(actions) > 0
    # every twin has its own draw: no two rows alike, and they scatter around the point estimate
    assert np.unique(drawn, axis=0).shape[0] == N
    assert np.unique(drawn.argmax(axis=1)).size > 1
    np.testing.assert_allclose(drawn.mean(axis=0), point[0], atol=4 * drawn.std(axis=0).max())


def test_plans_honour_a_per_contact_variant_mask(trained: Policy) -> None:
    """A variant withheld from a contact (its template needs a field the contact lacks) is never
    that contact's lever, whatever the policy, and each lever's propensity is the policy's
    probability of it among the actions the contact may get."""
    actions = _actions()
    x = _contexts(4)
    rng = np.random.default_rng(4)
    variant_ok = rng.random((N, actions.n_channels, actions.n_variants)) < 0.6
    variant_ok[:10, 0] = False  # no e-mail variant: no e-mail
    eligibility = compute_eligibility(
        actions,
        has_identity=np.ones((N, 3), bool),
        consent=rng.random((N, 3)) < 0.9,
        variant_ok=variant_ok,
    )
    result = plan(x, actions, trained, eligibility, SelectionRules(), rng=0, draws=64)
    rows, levers = np.nonzero(result.action >= 0)
    chosen = result.action[rows, levers]
    assert variant_ok[rows, actions.channel[chosen], actions.variant[chosen]].all()
    assert not (actions.channel[result.action[:10, 0]] == 0).any()
    dist = trained.action_distribution(
        x, actions, eligibility.mask(actions), draws=256, rng=np.random.default_rng(1)
    )
    first = np.where(result.action[:, 0] >= 0, result.action[:, 0], actions.k)
    expected = dist[np.arange(N), first]
    if trained.stochastic:  # Monte Carlo on both sides: 64 and 256 draws
        assert np.abs(result.propensity[:, 0] - np.maximum(expected, 1 / 128)).max() < 0.3
    else:
        np.testing.assert_allclose(result.propensity[:, 0], expected, rtol=1e-6)
