"""Planning: invariants (property-based), propensities, holdout, channel budgets, learning, explanations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.core.errors import PolicyError
from tummler.decide import (
    POLICIES,
    ActionSet,
    Eligibility,
    EligibilityRules,
    EpsilonGreedy,
    LinearThompson,
    LogisticThompson,
    Plan,
    Policy,
    Reason,
    SelectionRules,
    UniformRandom,
    build_action_set,
    compute_eligibility,
    draw_holdout,
    explain,
    fit_channel_prices,
    plan,
    select_levers,
)
from tummler.decide._chunks import NOISE_BLOCK
from tummler.decide._part_major import _best_per_channel_t, _PartDraw
from tummler.decide._plan import _uniform_actions
from tummler.decide._propensities import _monte_carlo, _monte_carlo_gaussian
from tummler.decide._selection import best_per_channel, slot_penalty

CHANNELS = ["email", "sms", "mastodon", "linkedin"]
D_X = 6


@dataclass
class Scenario:
    actions: ActionSet
    x: np.ndarray
    eligibility: Eligibility
    consent: np.ndarray
    sends: np.ndarray
    quiet: bool


def scenario(seed: int, n: int = 120, *, quiet: tuple[int, int] | None = (21, 8)) -> Scenario:
    rng = np.random.default_rng(seed)
    actions = build_action_set(
        CHANNELS,
        np.arange(0, 48, 3),
        {"email": ["A", "B", "C"], "sms": ["A"], "mastodon": ["A", "B"], "linkedin": ["A"]},
        message_attributes={"emotional": 1.0, "urgency": 0.5},
    )
    x = rng.standard_normal((n, D_X)).astype(np.float32)
    x[:, 0] = 1.0
    consent = rng.random((n, 4)) < 0.7
    sends = rng.integers(0, 4, n)
    eligibility = compute_eligibility(
        actions,
        has_identity=rng.random((n, 4)) < 0.9,
        consent=consent,
        stage=rng.integers(0, 5, n),
        utc_offset_hours=rng.integers(-10, 11, n),
        sends_in_window=sends,
        channel_sends=rng.integers(0, 3, (n, 4)),
        rules=EligibilityRules(
            quiet_hours=quiet,
            window=(0.0, 40.0),
            fatigue_cap=3,
            frequency_caps=np.array([2, 1, -1, -1]),
            stage_allowed=np.array(
                [[True] * 5, [False, True, True, True, False]] + [[True] * 5] * 2
            ),
        ),
    )
    return Scenario(actions, x, eligibility, consent, sends, quiet is not None)


def trained_policy(kind: str, s: Scenario, seed: int = 0) -> Policy:
    policy = POLICIES[kind](
        n_context_features=D_X, n_action_features=s.actions.n_features, n_channels=4
    )
    rng = np.random.default_rng(seed)
    idx = rng.choice(np.flatnonzero(s.actions.available), size=s.x.shape[0])
    rewards = (rng.random(s.x.shape[0]) < 0.3 + 0.4 * (s.actions.channel[idx] == 2)).astype(float)
    return policy.update(s.x, s.actions, idx, rewards)


def assert_valid(p: Plan, s: Scenario, rules: SelectionRules) -> None:
    mask = s.eligibility.mask(s.actions)
    rows, levers = np.nonzero(p.action >= 0)
    # never an ineligible lever: revoked consent, quiet hours, fatigue cap, ...
    assert mask[rows, p.action[rows, levers]].all()
    assert s.consent[rows, s.actions.channel[p.action[rows, levers]]].all()
    assert (p.n_levers[s.sends >= 3] == 0).all()
    hours = s.actions.slot_hours[s.actions.slot[p.action[rows, levers]]] % 24
    assert not (s.quiet and ((hours >= 21) | (hours < 8)).any())
    # never more levers than the budget unless critical; at most one per channel
    limit = 4 if rules.critical else rules.lever_budget
    assert (p.n_levers <= limit).all()
    channels = np.where(
        p.action >= 0, s.actions.channel[np.maximum(p.action, 0)], -1 - np.arange(p.action.shape[1])
    )
    assert all(len(set(row)) == len(row) for row in channels.tolist())
    # propensities in (0, 1] wherever a decision is logged
    present = ~np.isnan(p.propensity)
    assert present[:, 0].all()
    assert ((p.propensity[present] > 0) & (p.propensity[present] <= 1)).all()
    assert (present == ((p.action >= 0) | (np.arange(p.action.shape[1]) == 0))).all()
    assert (p.action[p.holdout] == -1).all()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(sorted(POLICIES)),
    budget=st.integers(1, 3),
    critical=st.booleans(),
    threshold=st.sampled_from([-1.0, 0.0, 0.3, 0.6]),
    holdout=st.sampled_from([0.0, 0.2]),
    chunk=st.sampled_from([7, 50, 1000]),
)
def test_plans_obey_every_rule(
    seed: int,
    kind: str,
    budget: int,
    critical: bool,
    threshold: float,
    holdout: float,
    chunk: int,
) -> None:
    s = scenario(seed)
    policy = trained_policy(kind, s, seed)
    rules = SelectionRules(
        cost=np.array([0.0, 0.05, 0.0, 0.01]),
        threshold=threshold,
        lever_budget=budget,
        critical=critical,
    )
    strata = np.arange(s.x.shape[0]) % 3
    run: dict[str, Any] = {
        "rng": seed,
        "strata": strata,
        "holdout_share": holdout,
        "draws": 8,
        "chunk_size": chunk,
    }
    p = plan(s.x, s.actions, policy, s.eligibility, rules, **run)
    assert_valid(p, s, rules)
    again = plan(s.x, s.actions, policy, s.eligibility, rules, **run)
    np.testing.assert_array_equal(p.action, again.action)
    np.testing.assert_array_equal(p.propensity, again.propensity)
    np.testing.assert_array_equal(p.holdout, again.holdout)


@pytest.mark.parametrize("kind", ["epsilon_greedy", "uniform_random", "best_channel_per_segment"])
def test_exact_propensities_match_the_policy_distribution(kind: str) -> None:
    s = scenario(3, n=300)
    policy = trained_policy(kind, s)
    rules = SelectionRules(cost=np.array([0.0, 0.05, 0.0, 0.0]), threshold=0.2)
    p = plan(s.x, s.actions, policy, s.eligibility, rules, rng=1)
    dist = policy.action_distribution(
        s.x, s.actions, s.eligibility.mask(s.actions), cost=rules.cost, threshold=0.2
    )
    chosen = np.where(p.action[:, 0] >= 0, p.action[:, 0], s.actions.k)
    np.testing.assert_allclose(p.propensity[:, 0], dist[np.arange(300), chosen], rtol=1e-6)


@pytest.mark.parametrize("kind", ["logistic_thompson", "linear_thompson"])
def test_monte_carlo_propensities_estimate_the_thompson_distribution(kind: str) -> None:
    s = scenario(4, n=200, quiet=None)
    policy = trained_policy(kind, s)
    rules = SelectionRules(threshold=-1.0)
    p = plan(s.x, s.actions, policy, s.eligibility, rules, rng=2, draws=200, chunk_size=200)
    dist = policy.action_distribution(
        s.x,
        s.actions,
        s.eligibility.mask(s.actions),
        threshold=-1.0,
        draws=400,
        rng=np.random.default_rng(5),
    )
    chosen = np.where(p.action[:, 0] >= 0, p.action[:, 0], s.actions.k)
    expected = dist[np.arange(200), chosen]
    # MC error of a share from 200 draws is at most ~0.035 (sd), so 0.15 is far out in the tail.
    assert np.abs(p.propensity[:, 0] - np.maximum(expected, 1 / 400)).max() < 0.15
    assert p.draws == 200
    assert (p.propensity[:, 0] >= 1 / 400).all()


def test_no_send_when_nothing_clears_the_relevance_threshold() -> None:
    s = scenario(5)
    policy = trained_policy("epsilon_greedy", s)
    policy = EpsilonGreedy.from_dict(
        {**policy.to_dict(), "params": {**policy.to_dict()["params"], "epsilon": 0.0}}
    )
    p = plan(s.x, s.actions, policy, s.eligibility, SelectionRules(threshold=5.0), rng=0)
    assert (p.action == -1).all()
    np.testing.assert_array_equal(p.propensity[:, 0], 1.0)
    np.testing.assert_array_equal(p.expected_value[:, 0], 0.0)


def test_critical_messages_use_every_eligible_channel() -> None:
    s = scenario(6)
    policy = trained_policy("send_every_eligible_channel", s)
    rules = SelectionRules(critical=True, threshold=0.5)
    p = plan(s.x, s.actions, policy, s.eligibility, rules, rng=0)
    eligible_channels = (
        (s.eligibility.mask(s.actions).reshape(-1, 4, s.actions.k // 4)).any(axis=2).sum(axis=1)
    )
    np.testing.assert_array_equal(p.n_levers, eligible_channels)
    budgeted = plan(
        s.x, s.actions, policy, s.eligibility, SelectionRules(lever_budget=2, threshold=0.5), rng=0
    )
    np.testing.assert_array_equal(budgeted.n_levers, np.minimum(eligible_channels, 2))


def test_holdout_is_stratified_and_near_its_share() -> None:
    rng = np.random.default_rng(0)
    strata = rng.integers(0, 7, 20_000)
    held = draw_holdout(strata, 20_000, 0.1, rng)
    for stratum in range(7):
        members = strata == stratum
        assert abs(held[members].sum() - 0.1 * members.sum()) <= 1
    shares = [draw_holdout(None, 25, 0.1, np.random.default_rng(i)).mean() for i in range(2000)]
    assert abs(np.mean(shares) - 0.1) < 0.005  # exactly share in expectation, despite rounding


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=6),
    share=st.floats(0.0, 0.9),
    seed=st.integers(0, 1000),
)
def test_holdout_share_is_within_one_contact_per_stratum(
    sizes: list[int], share: float, seed: int
) -> None:
    strata = np.repeat(np.arange(len(sizes)), sizes)
    held = draw_holdout(strata, strata.size, share, np.random.default_rng(seed))
    for stratum, size in enumerate(sizes):
        assert abs(held[strata == stratum].sum() - share * size) < 1


def test_holdout_is_drawn_before_scoring() -> None:
    s = scenario(7)
    a = plan(
        s.x,
        s.actions,
        trained_policy("uniform_random", s),
        s.eligibility,
        SelectionRules(),
        rng=3,
        holdout_share=0.3,
    )
    b = plan(
        s.x,
        s.actions,
        trained_policy("logistic_thompson", s),
        s.eligibility,
        SelectionRules(),
        rng=3,
        holdout_share=0.3,
    )
    np.testing.assert_array_equal(a.holdout, b.holdout)
    np.testing.assert_allclose(a.propensity[a.holdout, 0], 0.3)


def test_lagrangian_prices_beat_truncating_a_sorted_list() -> None:
    # 50 contacts for whom SMS is barely better than email, 50 for whom only SMS works; 50 SMS.
    net = np.array([[0.85, 0.9]] * 50 + [[0.1, 0.8]] * 50)
    caps = np.array([np.inf, 50])
    prices = fit_channel_prices(net, caps, threshold=0.0, max_levers=1)
    levers = select_levers(net - prices, threshold=0.0, max_levers=1)[:, 0]
    assert (levers == 1).sum() <= 50
    lagrangian = net[np.arange(100), levers].sum()
    # naive: the unconstrained choice, SMS kept for the 50 largest SMS values, the rest falls back
    naive = np.where(np.argsort(-net[:, 1], kind="stable").argsort() < 50, 1, 0)
    truncated = net[np.arange(100), naive].sum()
    assert lagrangian == pytest.approx(0.8 * 50 + 0.85 * 50)
    assert truncated == pytest.approx(0.9 * 50 + 0.1 * 50)
    assert lagrangian > truncated


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cap=st.integers(0, 80),
    budget=st.integers(1, 3),
)
def test_channel_caps_are_never_exceeded(seed: int, cap: int, budget: int) -> None:
    rng = np.random.default_rng(seed)
    net = rng.normal(0.3, 0.3, (200, 4))
    net[rng.random((200, 4)) < 0.2] = -np.inf
    caps = np.array([np.inf, cap, np.inf, cap // 2])
    prices = fit_channel_prices(net, caps, threshold=0.1, max_levers=budget)
    levers = select_levers(net - prices, threshold=0.1, max_levers=budget)
    sends = np.bincount(levers[levers >= 0], minlength=4)
    assert sends[1] <= cap
    assert sends[3] <= cap // 2
    assert (prices >= 0).all()
    assert prices[0] == 0
    assert prices[2] == 0


def test_plan_meets_channel_caps() -> None:
    s = scenario(8, n=400, quiet=None)
    policy = trained_policy("logistic_thompson", s)
    free = plan(s.x, s.actions, policy, s.eligibility, SelectionRules(), rng=1)
    assert free.sends_per_channel(s.actions)[2] > 40
    capped_rules = SelectionRules(channel_caps=np.array([np.inf, np.inf, 20, np.inf]))
    capped = plan(s.x, s.actions, policy, s.eligibility, capped_rules, rng=1, draws=16)
    assert capped.sends_per_channel(s.actions)[2] <= 20
    assert capped.channel_price[2] > 0
    assert_valid(capped, s, capped_rules)


def _bandit(kind: str, rounds: int = 25, per_round: int = 200) -> float:
    """Three channels, one slot, one variant; true click rates 5 %, 15 %, 35 %."""
    actions = build_action_set(["email", "sms", "mastodon"], [10], 1)
    truth = np.array([0.05, 0.15, 0.35])
    policy = POLICIES[kind](
        n_context_features=1, n_action_features=actions.n_features, n_channels=3
    )
    rng = np.random.default_rng(11)
    ones = np.ones((per_round, 1), np.float32)
    everyone = compute_eligibility(
        actions, has_identity=np.ones((per_round, 3)), consent=np.ones((per_round, 3))
    )
    best_share = []
    for _ in range(rounds):
        p = plan(ones, actions, policy, everyone, SelectionRules(threshold=-1.0), rng=rng, draws=16)
        chosen = p.action[:, 0]
        rewards = (rng.random(per_round) < truth[actions.channel[chosen]]).astype(float)
        policy.update(ones, actions, chosen, rewards, p.propensity[:, 0])
        best_share.append((actions.channel[chosen] == 2).mean())
    return float(np.mean(best_share[-5:]))


def test_thompson_sampling_learns_the_best_channel(thompson: str) -> None:
    assert _bandit(thompson) > 0.8


def test_uniform_random_does_not() -> None:
    assert _bandit("uniform_random", rounds=3) < 0.5


def test_explanations_name_the_rules_and_the_contributions() -> None:
    s = scenario(9, quiet=(21, 8))
    policy = trained_policy("epsilon_greedy", s)
    rules = SelectionRules(threshold=-5.0)
    p = plan(s.x, s.actions, policy, s.eligibility, rules, rng=0)
    row = int(np.flatnonzero((p.action[:, 0] >= 0) & ~p.explored & ~s.consent[:, 1])[0])
    why = explain(
        row,
        s.x,
        s.actions,
        policy,
        p,
        s.eligibility,
        top=D_X,
        feature_names=[f"f{i}" for i in range(D_X)],
    )
    assert "no_consent" in why.removed["sms"]
    assert "quiet_hours" in why.removed["email"]
    assert why.chosen[0] == s.actions.name(int(p.action[row, 0]))
    assert why.runner_up is not None
    assert why.runner_up != why.chosen[0]
    weights = policy.weight_matrix(s.actions)
    assert weights is not None
    runner = next(a for a in range(s.actions.k) if s.actions.name(a) == why.runner_up)
    gap = s.x[row] @ (weights[:, p.action[row, 0]] - weights[:, runner])
    assert sum(c for _, c in why.contributions) == pytest.approx(float(gap), rel=1e-4, abs=1e-5)
    assert why.policy == "epsilon_greedy@1"
    assert why.propensity == (p.propensity[row, 0],)


def test_explaining_a_no_send_and_bad_rows() -> None:
    s = scenario(10)
    policy = trained_policy("uniform_random", s)
    p = plan(s.x, s.actions, policy, s.eligibility, SelectionRules(), rng=0, holdout_share=0.5)
    row = int(np.flatnonzero(p.holdout)[0])
    why = explain(row, s.x[row], s.actions, policy, p, s.eligibility)
    assert why.chosen == ("no-send",)
    assert why.holdout
    assert why.contributions == ()
    with pytest.raises(PolicyError, match="row must lie"):
        explain(10_000, s.x, s.actions, policy, p, s.eligibility)


BAD_PLANS = [
    (
        "x rows",
        lambda s, pol: plan(s.x[:5], s.actions, pol, s.eligibility, SelectionRules(), rng=0),
        "eligibility is for",
    ),
    (
        "x columns",
        lambda s, pol: plan(s.x[:, :3], s.actions, pol, s.eligibility, SelectionRules(), rng=0),
        "columns",
    ),
    (
        "draws",
        lambda s, pol: plan(s.x, s.actions, pol, s.eligibility, SelectionRules(), rng=0, draws=0),
        "draws",
    ),
    (
        "holdout",
        lambda s, pol: plan(
            s.x, s.actions, pol, s.eligibility, SelectionRules(), rng=0, holdout_share=1.0
        ),
        "holdout_share",
    ),
    (
        "strata",
        lambda s, pol: plan(
            s.x,
            s.actions,
            pol,
            s.eligibility,
            SelectionRules(),
            rng=0,
            strata=np.zeros(3, int),
            holdout_share=0.1,
        ),
        "strata",
    ),
    (
        "cost",
        lambda s, pol: plan(
            s.x, s.actions, pol, s.eligibility, SelectionRules(cost=np.zeros(2)), rng=0
        ),
        "rules.cost",
    ),
    (
        "caps",
        lambda s, pol: plan(
            s.x, s.actions, pol, s.eligibility, SelectionRules(channel_caps=np.ones(2)), rng=0
        ),
        "rules.channel_caps",
    ),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD_PLANS, ids=[b[0] for b in BAD_PLANS])
def test_bad_plan_arguments(
    case: str, call: Callable[[Scenario, Policy], object], message: str
) -> None:
    s = scenario(0, n=20)
    with pytest.raises(PolicyError, match=message):
        call(s, UniformRandom(D_X, s.actions.n_features, 4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lever_budget": 0}, "lever_budget"),
        ({"threshold": float("nan")}, "threshold"),
        ({"channel_caps": np.array([-1.0])}, "channel_caps"),
    ],
)
def test_bad_selection_rules(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        SelectionRules(**kwargs)  # type: ignore[arg-type]  # wrong on purpose


def test_reason_bits_are_one_byte() -> None:
    assert max(Reason) < 256


def test_uniform_exploration_is_uniform_over_eligible_actions_and_no_send() -> None:
    actions = build_action_set(["email", "sms"], [9, 12, 15], {"email": ["A", "B"], "sms": ["A"]})
    n = 7_000
    ok = np.zeros((n, 2, 3), bool)
    ok[:, 0, [0, 2]] = True  # email at 09h and 15h, two variants each: 4 actions
    ok[:, 1, 1] = True  # sms at 12h: 1 action
    eligibility = Eligibility(
        channel_ok=np.ones((n, 2), bool), slot_ok=ok, reasons=np.zeros((n, 2), np.uint8)
    )
    policy = UniformRandom(1, actions.n_features, 2)
    p = plan(np.ones((n, 1)), actions, policy, eligibility, SelectionRules(), rng=4)
    chosen = p.action[:, 0]
    assert eligibility.mask(actions)[chosen >= 0, chosen[chosen >= 0]].all()
    counts = np.bincount(np.where(chosen >= 0, chosen, actions.k), minlength=actions.k + 1)
    outcomes = counts[counts > 0]
    assert outcomes.size == 6  # 5 actions and no send
    assert np.abs(outcomes - n / 6).max() < 5 * np.sqrt(n / 6)
    np.testing.assert_allclose(p.propensity[:, 0], 1 / 6)


# ---- per-contact Thompson draws ------------------------------------------------------------------


def _three_channels(n: int) -> tuple[ActionSet, Eligibility]:
    actions = build_action_set(["email", "sms", "mastodon"], [10], 1)
    everyone = compute_eligibility(actions, has_identity=np.ones((n, 3)), consent=np.ones((n, 3)))
    return actions, everyone


def _fresh(kind: str, d_x: int, actions: ActionSet) -> Policy:
    return POLICIES[kind](
        n_context_features=d_x, n_action_features=actions.n_features, n_channels=3
    )


@pytest.fixture(params=["logistic_thompson", "linear_thompson", "linear_thompson_diagonal"])
def thompson(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Thompson policies, linear TS also with its diagonal approximation forced on."""
    kind = str(request.param)
    if kind.endswith("_diagonal"):
        monkeypatch.setattr(LinearThompson, "exact_limit", 0)
        kind = kind.removesuffix("_diagonal")
    return kind


def test_a_fresh_prior_spreads_contacts_evenly_over_the_channels(thompson: str) -> None:
    # One chunk of 30,000: with one posterior draw per chunk, every contact got the same channel.
    n = 30_000
    actions, everyone = _three_channels(n)
    x = np.random.default_rng(0).standard_normal((n, 3)).astype(np.float32)
    x[:, 0] = 1.0
    policy = _fresh(thompson, 3, actions)
    always = SelectionRules(threshold=-1e6)  # a prior draw of a linear score can be far below 0
    p = plan(x, actions, policy, everyone, always, rng=1, draws=4)
    share = p.sends_per_channel(actions) / n
    # The channels are symmetric under the prior: 1/3 each; sd of a share is 0.003.
    np.testing.assert_allclose(share, 1 / 3, atol=0.02)


def test_identical_contacts_in_one_chunk_decide_independently(thompson: str) -> None:
    n = 4_000
    actions, everyone = _three_channels(n)
    ones = np.ones((n, 1), np.float32)
    policy = _fresh(thompson, 1, actions)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 3, 30)  # a little data: the posterior is neither flat nor certain
    policy.update(ones[:30], actions, idx, (rng.random(30) < 0.3 + 0.1 * idx) * 1.0)
    rules = SelectionRules(threshold=-1e6)
    p = plan(ones, actions, policy, everyone, rules, rng=5, draws=64)
    dist = policy.action_distribution(
        ones[:1], actions, threshold=-1e6, draws=20_000, rng=np.random.default_rng(9)
    )[0, :3]
    assert dist.min() > 0.02  # a genuinely uncertain choice
    assert dist.max() < 0.9
    chosen = p.action[:, 0]
    # Consecutive pairs of identical contacts differ as often as two independent draws would.
    differ = (chosen[0::2] != chosen[1::2]).mean()
    expected = 1 - (dist**2).sum()
    assert abs(differ - expected) < 4 * np.sqrt(expected * (1 - expected) / (n // 2)) + 0.01
    # And the channels' shares over all of them are the policy's probabilities.
    share = np.bincount(chosen, minlength=3) / n
    np.testing.assert_allclose(share, dist, atol=4 * np.sqrt(0.25 / n) + 0.01)
    # The propensities say the same: each contact's MC estimate of its chosen action.
    np.testing.assert_allclose(p.propensity[:, 0], dist[chosen], atol=5 * np.sqrt(0.25 / 64))
    assert abs(p.propensity[:, 0].mean() - (dist**2).sum()) < 0.02


def test_monte_carlo_propensities_match_the_frequency_over_seeds(thompson: str) -> None:
    """A contact's logged propensity is the probability that the policy takes that action for it:
    over many plans with different seeds, the frequency of each action matches its propensity."""
    n = 10
    variants = {"email": ["A", "B"], "sms": ["A"], "mastodon": ["A"]}
    actions = build_action_set(["email", "sms", "mastodon"], [10, 40], variants)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    x[:, 0] = 1.0
    everyone = compute_eligibility(actions, has_identity=np.ones((n, 3)), consent=np.ones((n, 3)))
    policy = _fresh(thompson, 3, actions)
    logged = rng.standard_normal((100, 3)).astype(np.float32)
    logged[:, 0] = 1.0
    idx = rng.choice(np.flatnonzero(actions.available), 100)
    click = 0.2 + 0.2 * (actions.channel[idx] == 1) + 0.1 * (logged[:, 1] > 0)
    policy.update(logged, actions, idx, (rng.random(100) < click) * 1.0)
    rules = SelectionRules(threshold=0.25, cost=np.array([0.0, 0.05, 0.0]))
    runs = 300
    counts: dict[tuple[int, int], int] = {}
    reported: dict[tuple[int, int], list[float]] = {}
    for seed in range(runs):
        p = plan(x, actions, policy, everyone, rules, rng=seed, draws=64)
        for row, (a, prop) in enumerate(zip(p.action[:, 0], p.propensity[:, 0], strict=True)):
            counts[row, int(a)] = counts.get((row, int(a)), 0) + 1
            reported.setdefault((row, int(a)), []).append(float(prop))
    checked = 0
    for key, count in counts.items():
        if count < 30:
            continue
        freq = count / runs
        # binomial error of the frequency plus the MC error of the (averaged) estimates
        tolerance = 4 * np.sqrt(freq * (1 - freq) / runs) + 0.02
        assert abs(np.mean(reported[key]) - freq) < tolerance, key
        checked += 1
    assert checked >= 2 * n


def test_monte_carlo_propensities_sum_to_one_over_every_outcome(thompson: str) -> None:
    s = scenario(13, n=300, quiet=None)
    policy = trained_policy(thompson, s)
    rules = SelectionRules(threshold=0.45, cost=np.array([0.0, 0.05, 0.0, 0.0]))
    cost = rules.channel_cost(4)
    prices = np.array([0.0, 0.0, 0.02, 0.0])  # a priced channel, as channel caps make one
    sampler = policy._sampler(s.x, s.actions)
    noise = [
        np.random.default_rng(r).standard_normal((300, policy.noise_size(s.actions)), np.float32)
        for r in range(32)
    ]
    outcomes = [*np.flatnonzero(s.actions.available), -1]
    total = np.zeros(300)
    for a in outcomes:
        total += _monte_carlo(
            sampler,
            noise.__getitem__,
            s.actions,
            s.eligibility,
            np.full((300, 1), a),
            cost=cost,
            prices=prices,
            rules=rules,
            max_levers=1,
            draws=32,
        )[:, 0]
    # Every replicate picks exactly one outcome per contact (ineligible actions are never picked).
    np.testing.assert_allclose(total, 1.0)


@pytest.mark.parametrize("kind", ["logistic_thompson", "linear_thompson", "epsilon_greedy"])
def test_the_plan_does_not_depend_on_the_chunk_size(kind: str) -> None:
    n = 5_000  # more than one noise block
    s = scenario(14, n=n)
    policy = trained_policy(kind, s)
    rules = SelectionRules(
        threshold=0.3, lever_budget=2, channel_caps=np.array([np.inf, 300, np.inf, np.inf])
    )
    plans = [
        plan(s.x, s.actions, policy, s.eligibility, rules, rng=7, draws=8, chunk_size=size)
        for size in (NOISE_BLOCK, 777, 10_000)
    ]
    for other in plans[1:]:
        np.testing.assert_array_equal(plans[0].action, other.action)
        np.testing.assert_array_equal(plans[0].propensity, other.propensity)
        np.testing.assert_array_equal(plans[0].channel_price, other.channel_price)


def test_per_contact_scores_have_the_posterior_mean_and_variance(thompson: str) -> None:
    """Known answer: a contact's linear score of action ``a`` is Gaussian with mean ``xᵀ M φ_a`` and
    variance ``(x ⊗ φ_a)ᵀ Σ (x ⊗ φ_a)`` (``Σ`` diagonal for logistic TS and the approximation)."""
    s = scenario(15, n=200)
    policy = trained_policy(thompson, s)
    x0 = s.x[:1]
    n = 40_000
    scores = policy.factor_scores(np.repeat(x0, n, axis=0), s.actions, np.random.default_rng(0))
    linear = scores.linear_dense()[:, s.actions.available]
    phi = s.actions.features[s.actions.available].astype(np.float64)
    z = (x0.astype(np.float64)[0][None, :, None] * phi[:, None, :]).reshape(phi.shape[0], -1)
    mean: np.ndarray
    cov: np.ndarray
    if isinstance(policy, LogisticThompson):
        mean, cov = policy.m, np.diag(1 / policy.q)
    else:
        assert isinstance(policy, LinearThompson)
        mean, cov = np.linalg.solve(policy.A, policy.b), np.linalg.inv(policy.A)
        if policy.n_weights > policy.exact_limit:  # the diagonal precision approximation
            cov = np.diag(1 / np.diag(policy.A))
    sd = np.sqrt(np.einsum("ai,ij,aj->a", z, cov, z))
    np.testing.assert_allclose(linear.mean(axis=0), z @ mean, atol=5 * sd.max() / np.sqrt(n))
    np.testing.assert_allclose(linear.std(axis=0), sd, rtol=0.03)
    # And the draws of different actions are jointly those of one weight draw: differences too.
    diff = linear[:, 0] - linear[:, -1]
    sd_diff = np.sqrt((z[0] - z[-1]) @ cov @ (z[0] - z[-1]))
    assert abs(diff.std() / sd_diff - 1) < 0.03


# ---- the fused, part-major planning path -------------------------------------------------------


def _noise(policy: Policy, actions: ActionSet, m: int, seed: int) -> np.ndarray:
    size = policy.noise_size(actions)
    return np.random.default_rng(seed).standard_normal((size, m)).astype(np.float32)


ACTION_SETS = {
    "four channels": lambda: scenario(0, n=1).actions,
    "padded variants, two slots": lambda: build_action_set(
        ["email", "sms", "mastodon"],
        [10, 40],
        {"email": ["A", "B"], "sms": ["A"], "mastodon": ["A"]},
    ),
    "one slot": lambda: build_action_set(["email", "sms"], [9], 2, message_attributes={"x": 1.0}),
}


@settings(max_examples=20, deadline=None)
@given(
    which=st.sampled_from(sorted(ACTION_SETS)),
    kind=st.sampled_from(["logistic_thompson", "linear_thompson"]),
    seed=st.integers(0, 1000),
)
def test_the_fused_draw_is_the_samplers_draw(which: str, kind: str, seed: int) -> None:
    """The planner's part-major draw and the policy's sampler give the same scores from the same
    normals, draw after draw (the fused path reuses its buffers)."""
    actions = ACTION_SETS[which]()
    rng = np.random.default_rng(seed)
    m = 50
    x = rng.standard_normal((m, D_X)).astype(np.float32)
    policy = POLICIES[kind](D_X, actions.n_features, actions.n_channels)
    if isinstance(policy, LinearThompson):
        # the diagonal draw, the one the fused path takes; this instance shadows the class's limit
        policy.exact_limit = 0  # type: ignore[misc]
    idx = rng.choice(np.flatnonzero(actions.available), 80)
    policy.update(rng.standard_normal((80, D_X)).astype(np.float32), actions, idx, rng.random(80))
    gaussian = policy._gaussian(x, actions)
    assert gaussian is not None
    draw = _PartDraw(gaussian, slice(0, m))
    sampler = policy._sampler(x, actions)
    for r in range(3):
        z = _noise(policy, actions, m, seed + r)
        fused = draw.draw(z)
        scores = sampler(np.ascontiguousarray(z.T))
        dense = np.concatenate([scores.channel, scores.slot, scores.variant.reshape(m, -1)], 1)
        np.testing.assert_allclose(fused, dense.T, rtol=1e-5, atol=1e-5)


def test_only_diagonal_draws_take_the_fused_path(monkeypatch: pytest.MonkeyPatch) -> None:
    actions = build_action_set(["email", "sms"], [9], 1)
    x = np.ones((3, 1), np.float32)
    exact = LinearThompson(1, actions.n_features, 2)
    assert exact.n_weights <= exact.exact_limit
    assert exact._gaussian(x, actions) is None  # a full covariance: only the sampler draws it
    monkeypatch.setattr(LinearThompson, "exact_limit", 0)
    assert exact._gaussian(x, actions) is not None
    assert UniformRandom(1, actions.n_features, 2)._gaussian(x, actions) is None
    point = EpsilonGreedy(1, actions.n_features, 2)._gaussian(x, actions)
    assert point is not None
    assert point.own_sd is None


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1000),
    budget=st.integers(1, 3),
    threshold=st.sampled_from([-1.0, 0.3, 0.5]),
    priced=st.booleans(),
)
def test_fused_monte_carlo_counts_what_the_generic_one_counts(
    seed: int, budget: int, threshold: float, priced: bool
) -> None:
    s = scenario(seed, n=150)
    policy = trained_policy("logistic_thompson", s, seed)
    rules = SelectionRules(
        cost=np.array([0.0, 0.05, 0.0, 0.01]), threshold=threshold, lever_budget=budget
    )
    prices = np.array([0.0, 0.03, 0.0, 0.0]) if priced else np.zeros(4)
    gaussian = policy._gaussian(s.x, s.actions)
    assert gaussian is not None
    noise = [_noise(policy, s.actions, 150, seed * 31 + r) for r in range(12)]
    chosen = np.random.default_rng(seed).integers(-1, s.actions.k, (150, budget))
    common: dict[str, Any] = {
        "cost": rules.channel_cost(4),
        "prices": prices,
        "rules": rules,
        "max_levers": budget,
        "draws": 12,
    }
    fused = _monte_carlo_gaussian(
        gaussian, slice(0, 150), noise.__getitem__, s.actions, s.eligibility, chosen, **common
    )
    sampler = policy._sampler(s.x, s.actions)
    generic = _monte_carlo(
        sampler,
        lambda r: np.ascontiguousarray(noise[r].T),
        s.actions,
        s.eligibility,
        chosen,
        **common,
    )
    # Same draws, same tests: the shares agree but for float32 rounding on an exact near-tie.
    assert np.mean(fused != generic) < 0.01
    np.testing.assert_allclose(fused, generic, atol=2 / 12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), quiet=st.booleans(), identity=st.booleans())
def test_fused_best_per_channel_is_best_per_channel(seed: int, quiet: bool, identity: bool) -> None:
    s = scenario(seed, n=200, quiet=(21, 8) if quiet else None)
    kind = "epsilon_greedy" if identity else "logistic_thompson"
    policy = trained_policy(kind, s, seed)
    cost = np.array([0.0, 0.05, 0.0, 0.01], np.float32)
    gaussian = policy._gaussian(s.x, s.actions)
    assert gaussian is not None
    penalty = slot_penalty(s.eligibility)
    net_t, best_t = _best_per_channel_t(
        gaussian.mean, gaussian.link, penalty, s.eligibility, s.actions, cost
    )
    net, best = best_per_channel(
        policy._sampler(s.x, s.actions)(None), s.eligibility, s.actions, cost
    )
    np.testing.assert_array_equal(np.isfinite(net_t), np.isfinite(net))
    finite = np.isfinite(net)
    np.testing.assert_allclose(net_t[finite], net[finite], rtol=1e-5, atol=1e-6)
    assert np.mean(best_t[finite] != best[finite]) < 0.01  # but for float32 near-ties


def test_one_contacts_features_do_not_move_anyone_elses_decision() -> None:
    """Per-contact draws: changing contact 3's features changes nothing for the others."""
    s = scenario(16, n=600, quiet=None)
    policy = trained_policy("logistic_thompson", s)
    rules = SelectionRules(threshold=0.2)
    a = plan(s.x, s.actions, policy, s.eligibility, rules, rng=3, draws=8, holdout_share=0.2)
    x = s.x.copy()
    x[3] = -x[3]
    b = plan(x, s.actions, policy, s.eligibility, rules, rng=3, draws=8, holdout_share=0.2)
    others = np.arange(600) != 3
    np.testing.assert_array_equal(a.action[others], b.action[others])
    np.testing.assert_array_equal(a.propensity[others], b.propensity[others])


def test_held_out_and_ineligible_contacts_get_no_send_with_their_propensity() -> None:
    s = scenario(17, n=400)
    for kind in ("logistic_thompson", "epsilon_greedy"):
        policy = trained_policy(kind, s)
        p = plan(s.x, s.actions, policy, s.eligibility, SelectionRules(), rng=1, holdout_share=0.25)
        nothing = ~s.eligibility.channel_ok.any(axis=1) & ~p.holdout
        assert nothing.any()
        assert (p.action[nothing] == -1).all()
        np.testing.assert_array_equal(p.propensity[nothing, 0], 1.0)
        np.testing.assert_array_equal(p.expected_value[nothing, 0], 0.0)
        np.testing.assert_allclose(p.propensity[p.holdout, 0], 0.25)


def _holdout_by_sorting(
    strata: np.ndarray | None, n: int, share: float, rng: np.random.Generator
) -> np.ndarray:
    """The definition: order by stratum, randomly within; hold out each stratum's first share."""
    groups = np.zeros(n, np.int64) if strata is None else strata
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    target = share * sizes
    count = np.floor(target).astype(np.int64)
    count += rng.random(sizes.size) < (target - count)
    order = np.argsort(inverse + rng.random(n), kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - starts[inverse[order]]
    chosen: np.ndarray = rank < count[inverse]
    return chosen


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    k=st.integers(1, 6),
    scale=st.sampled_from([1, 7, -3, 10**9]),
    share=st.floats(0.0, 0.95),
    seed=st.integers(0, 10_000),
    whole=st.booleans(),
)
def test_the_holdout_is_the_sorted_definition(
    n: int, k: int, scale: int, share: float, seed: int, whole: bool
) -> None:
    strata = None if whole else np.random.default_rng(seed).integers(0, k, n) * scale
    held = draw_holdout(strata, n, share, np.random.default_rng(seed))
    expected = _holdout_by_sorting(strata, n, share, np.random.default_rng(seed))
    np.testing.assert_array_equal(held, expected)


# ---- per-contact variant masks -------------------------------------------------------------------


def _variant_mask(s: Scenario, seed: int, off: float = 0.4) -> np.ndarray:
    """``(n, 4, 3)`` each contact's variants, each available one withheld with probability
    ``off``; a few contacts lose every variant of a channel (e-mail's or Mastodon's)."""
    rng = np.random.default_rng(seed)
    n = s.x.shape[0]
    ok = rng.random((n, 4, s.actions.n_variants)) >= off
    ok[rng.random(n) < 0.1, 0] = False
    ok[rng.random(n) < 0.1, 2] = False
    return ok


def _masked(s: Scenario, ok: np.ndarray | None) -> Scenario:
    return replace(s, eligibility=replace(s.eligibility, variant_ok=ok))


def _same_plan(a: Plan, b: Plan, rows: np.ndarray | slice = slice(None)) -> None:
    np.testing.assert_array_equal(a.action[rows], b.action[rows])
    np.testing.assert_array_equal(a.propensity[rows], b.propensity[rows])
    np.testing.assert_array_equal(a.expected_value[rows], b.expected_value[rows])
    np.testing.assert_array_equal(a.explored[rows], b.explored[rows])
    np.testing.assert_array_equal(a.holdout, b.holdout)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(sorted(POLICIES)),
    budget=st.integers(1, 3),
    critical=st.booleans(),
    threshold=st.sampled_from([-1.0, 0.0, 0.3]),
    capped=st.booleans(),
    chunk=st.sampled_from([7, 50, 1000]),
)
def test_a_masked_variant_is_never_chosen(
    seed: int, kind: str, budget: int, critical: bool, threshold: float, capped: bool, chunk: int
) -> None:
    """On every policy and path (fused and general draws, exploration, caps), a lever's variant is
    one the contact may get, and its propensity is in (0, 1]."""
    s = scenario(seed)
    ok = _variant_mask(s, seed)
    masked = _masked(s, ok)
    policy = trained_policy(kind, s, seed)
    rules = SelectionRules(
        cost=np.array([0.0, 0.05, 0.0, 0.01]),
        threshold=threshold,
        lever_budget=budget,
        critical=critical,
        channel_caps=np.array([20.0, np.inf, 15.0, np.inf]) if capped else None,
    )
    p = plan(s.x, s.actions, policy, masked.eligibility, rules, rng=seed, draws=8, chunk_size=chunk)
    assert_valid(p, masked, rules)  # the dense mask includes the variant mask
    rows, levers = np.nonzero(p.action >= 0)
    a = p.action[rows, levers]
    assert ok[rows, s.actions.channel[a], s.actions.variant[a]].all()
    if capped:
        # exploration's sends count against a cap but are not capped (see the module docstring)
        explored = np.zeros(4, np.int64)
        first = p.action[p.explored, 0]
        np.add.at(explored, s.actions.channel[first[first >= 0]], 1)
        sends = p.sends_per_channel(s.actions)
        assert sends[0] <= max(20, explored[0])
        assert sends[2] <= max(15, explored[2])


@pytest.mark.parametrize(
    "kind",
    ["epsilon_greedy", "uniform_random", "best_channel_per_segment", "send_every_eligible_channel"],
)
def test_exact_propensities_under_a_variant_mask_are_the_policy_distribution(kind: str) -> None:
    """The planner's exact propensity is the policy's distribution over the masked actions, which
    sums to 1 over each contact's allowed actions and *no send* and is 0 on every other action."""
    s = scenario(21, n=300)
    masked = _masked(s, _variant_mask(s, 21))
    policy = trained_policy(kind, s)
    rules = SelectionRules(cost=np.array([0.0, 0.05, 0.0, 0.0]), threshold=0.2)
    p = plan(s.x, s.actions, policy, masked.eligibility, rules, rng=1)
    mask = masked.eligibility.mask(s.actions)
    dist = policy.action_distribution(s.x, s.actions, mask, cost=rules.cost, threshold=0.2)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    assert (dist[:, :-1][~mask] == 0).all()
    chosen = np.where(p.action[:, 0] >= 0, p.action[:, 0], s.actions.k)
    np.testing.assert_allclose(p.propensity[:, 0], dist[np.arange(300), chosen], rtol=1e-6)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("resolved", [True, False])
def test_monte_carlo_shares_under_a_variant_mask_sum_to_one_over_the_allowed_actions(
    thompson: str, fused: bool, resolved: bool
) -> None:
    """Every replicate picks exactly one outcome per contact, never a masked variant: the shares
    of all outcomes sum to 1 and a masked action's share is 0 — on the general and fused paths,
    also when the mask was not folded into the channels first (as ``plan`` does)."""
    s = scenario(22, n=200, quiet=None)
    masked = _masked(s, _variant_mask(s, 22)).eligibility
    if resolved:
        masked = masked.resolve(s.actions)
    policy = trained_policy(thompson, s)
    gaussian = policy._gaussian(s.x, s.actions)
    if fused and gaussian is None:
        pytest.skip(f"{thompson} draws with a full covariance: no fused path")
    # a threshold every channel clears: a channel left with no variant must be out by itself
    rules = SelectionRules(threshold=-1.0, cost=np.array([0.0, 0.05, 0.0, 0.0]))
    common: dict[str, Any] = {
        "cost": rules.channel_cost(4),
        "prices": np.array([0.0, 0.0, 0.02, 0.0]),
        "rules": rules,
        "max_levers": 1,
        "draws": 16,
    }
    noise = [_noise(policy, s.actions, 200, r) for r in range(16)]
    mask = masked.mask(s.actions)
    total = np.zeros(200)
    for a in [*np.flatnonzero(s.actions.available), -1]:
        chosen = np.full((200, 1), a)
        if fused:
            assert gaussian is not None
            share = _monte_carlo_gaussian(
                gaussian, slice(0, 200), noise.__getitem__, s.actions, masked, chosen, **common
            )[:, 0]
        else:
            share = _monte_carlo(
                policy._sampler(s.x, s.actions),
                lambda r: np.ascontiguousarray(noise[r].T),
                s.actions,
                masked,
                chosen,
                **common,
            )[:, 0]
        if a >= 0:
            assert (share[~mask[:, a]] == 0).all()
        total += share
    np.testing.assert_allclose(total, 1.0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), identity=st.booleans())
def test_the_fused_best_per_channel_honours_the_variant_mask(seed: int, identity: bool) -> None:
    s = scenario(seed, n=200)
    ok = _variant_mask(s, seed)
    eligibility = _masked(s, ok).eligibility
    policy = trained_policy("epsilon_greedy" if identity else "logistic_thompson", s, seed)
    cost = np.array([0.0, 0.05, 0.0, 0.01], np.float32)
    gaussian = policy._gaussian(s.x, s.actions)
    assert gaussian is not None
    penalty = slot_penalty(eligibility)
    net_t, best_t = _best_per_channel_t(
        gaussian.mean, gaussian.link, penalty, eligibility, s.actions, cost
    )
    net, best = best_per_channel(
        policy._sampler(s.x, s.actions)(None), eligibility, s.actions, cost
    )
    np.testing.assert_array_equal(np.isfinite(net_t), np.isfinite(net))
    finite = np.isfinite(net)
    # a channel with no variant left is out, like one without consent
    assert not finite[~ok.any(axis=2)].any()
    rows, channels = np.nonzero(finite)
    for chosen in (best, best_t):
        a = chosen[rows, channels]
        assert ok[rows, channels, s.actions.variant[a]].all()
    np.testing.assert_allclose(net_t[finite], net[finite], rtol=1e-5, atol=1e-6)


def test_an_all_true_variant_mask_changes_nothing() -> None:
    """``variant_ok=None`` and a mask that allows every variant give the same plan on every policy,
    and every masked code path, fed such a mask directly, computes what the unmasked one does."""
    s = scenario(23, n=300)
    everything = np.ones((300, 4, s.actions.n_variants), bool)
    rules = SelectionRules(threshold=0.3, lever_budget=2, cost=np.array([0.0, 0.05, 0.0, 0.0]))
    for kind in sorted(POLICIES):
        policy = trained_policy(kind, s)
        run: dict[str, Any] = {"rng": 4, "draws": 8, "holdout_share": 0.1}
        _same_plan(
            plan(s.x, s.actions, policy, s.eligibility, rules, **run),
            plan(s.x, s.actions, policy, _masked(s, everything).eligibility, rules, **run),
        )
    # The masked code paths themselves (plan drops a mask that removes nothing, so call them).
    plain, full = s.eligibility, _masked(s, everything).eligibility
    assert full.variant_ok is not None
    np.testing.assert_array_equal(plain.n_eligible(s.actions), full.n_eligible(s.actions))
    np.testing.assert_array_equal(plain.mask(s.actions), full.mask(s.actions))
    rows = np.arange(0, 300, 2)
    n_eligible = plain.n_eligible(s.actions)[rows]
    np.testing.assert_array_equal(
        _uniform_actions(plain, s.actions, rows, n_eligible, np.random.default_rng(0)),
        _uniform_actions(full, s.actions, rows, n_eligible, np.random.default_rng(0)),
    )
    policy = trained_policy("logistic_thompson", s)
    cost = rules.channel_cost(4)
    point = policy._sampler(s.x, s.actions)(None)
    for left, right in zip(
        best_per_channel(point, plain, s.actions, cost),
        best_per_channel(point, full, s.actions, cost),
        strict=True,
    ):
        np.testing.assert_array_equal(left, right)
    gaussian = policy._gaussian(s.x, s.actions)
    assert gaussian is not None
    for left, right in zip(
        _best_per_channel_t(
            gaussian.mean, gaussian.link, slot_penalty(plain), plain, s.actions, cost
        ),
        _best_per_channel_t(
            gaussian.mean, gaussian.link, slot_penalty(full), full, s.actions, cost
        ),
        strict=True,
    ):
        np.testing.assert_array_equal(left, right)
    noise = [_noise(policy, s.actions, 300, r) for r in range(6)]
    chosen = np.random.default_rng(1).integers(-1, s.actions.k, (300, 2))
    common: dict[str, Any] = {
        "cost": cost,
        "prices": np.array([0.0, 0.03, 0.0, 0.0]),
        "rules": rules,
        "max_levers": 2,
        "draws": 6,
    }
    generic = policy._sampler(s.x, s.actions)
    fused = [
        _monte_carlo_gaussian(
            gaussian, slice(0, 300), noise.__getitem__, s.actions, e, chosen, **common
        )
        for e in (plain, full)
    ]
    np.testing.assert_array_equal(fused[0], fused[1])
    general = [
        _monte_carlo(
            generic, lambda r: np.ascontiguousarray(noise[r].T), s.actions, e, chosen, **common
        )
        for e in (plain, full)
    ]
    np.testing.assert_array_equal(general[0], general[1])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(sorted(POLICIES)),
    contact=st.integers(0, 149),
    budget=st.integers(1, 2),
)
def test_a_contacts_variant_mask_moves_no_one_elses_decision(
    seed: int, kind: str, contact: int, budget: int
) -> None:
    """Withholding variants from one contact changes nothing for the others (no caps: a binding
    cap is shared, so it would rightly move them)."""
    s = scenario(seed, n=150)
    policy = trained_policy(kind, s, seed)
    rng = np.random.default_rng(seed)
    ok = np.ones((150, 4, s.actions.n_variants), bool)
    ok[contact] = rng.random((4, s.actions.n_variants)) < 0.5
    reachable = s.eligibility.channel_ok[contact] & s.eligibility.slot_ok[contact].any(axis=1)
    if (
        reachable.any()
        and not (ok[contact] & s.actions.variant_available).any(axis=1)[reachable].any()
    ):
        # keep the contact eligible: one that drops out draws no normals, which shifts the
        # Thompson draws of the contacts after it in its noise block (as losing consent does)
        ok[contact, np.flatnonzero(reachable)[0], 0] = True
    rules = SelectionRules(threshold=0.2, lever_budget=budget, cost=np.array([0, 0.05, 0, 0]))
    run: dict[str, Any] = {"rng": seed, "draws": 8, "holdout_share": 0.2, "chunk_size": 64}
    before = plan(s.x, s.actions, policy, s.eligibility, rules, **run)
    after = plan(s.x, s.actions, policy, _masked(s, ok).eligibility, rules, **run)
    others = np.arange(150) != contact
    _same_plan(before, after, others)
    levers = after.action[contact]
    a = levers[levers >= 0]
    assert ok[contact, s.actions.channel[a], s.actions.variant[a]].all()


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_withholding_every_variant_of_a_channel_is_withholding_the_channel(kind: str) -> None:
    s = scenario(24, n=200)
    rng = np.random.default_rng(24)
    ok = np.ones((200, 4, s.actions.n_variants), bool)
    gone = rng.random((200, 4)) < 0.3
    ok[gone] = False
    ok[:, 0, 1] &= rng.random(200) < 0.5  # a variant off too: the mask stays in use
    resolved = _masked(s, ok).eligibility.resolve(s.actions)
    np.testing.assert_array_equal(resolved.channel_ok, s.eligibility.channel_ok & ~gone)
    without = Eligibility(
        s.eligibility.channel_ok & ~gone, s.eligibility.slot_ok, s.eligibility.reasons, ok
    )
    policy = trained_policy(kind, s)
    rules = SelectionRules(threshold=0.1, lever_budget=2)
    run: dict[str, Any] = {"rng": 2, "draws": 8, "holdout_share": 0.1}
    _same_plan(
        plan(s.x, s.actions, policy, _masked(s, ok).eligibility, rules, **run),
        plan(s.x, s.actions, policy, without, rules, **run),
    )


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_one_mask_for_everyone_is_an_action_set_without_those_variants(kind: str) -> None:
    """Known answer: withholding the same variants from every contact plans exactly as an action
    set in which those variants do not exist (the features, hence the policy, unchanged)."""
    s = scenario(25, n=200)
    pattern = s.actions.variant_available.copy()
    pattern[0, 0] = pattern[2, 1] = False  # e-mail A and Mastodon B
    fewer = replace(s.actions, variant_available=pattern)
    ok = np.broadcast_to(pattern[None], (200, *pattern.shape)).copy()
    policy = trained_policy(kind, s)
    rules = SelectionRules(threshold=0.2, lever_budget=2, channel_caps=np.array([30, 5, 40, 9]))
    run: dict[str, Any] = {"rng": 6, "draws": 8, "holdout_share": 0.1}
    masked = plan(s.x, s.actions, policy, _masked(s, ok).eligibility, rules, **run)
    _same_plan(masked, plan(s.x, fewer, policy, s.eligibility, rules, **run))
    sent = masked.action[masked.action >= 0]
    assert not ((s.actions.channel[sent] == 0) & (s.actions.variant[sent] == 0)).any()


BAD_MASKS = [
    ("wrong variants", lambda s: np.ones((120, 4, 2), bool), r"variant_ok must have shape"),
    ("wrong contacts", lambda s: np.ones((119, 4, 3), bool), r"variant_ok must be a boolean"),
    ("not boolean", lambda s: np.ones((120, 4, 3), np.int8), r"variant_ok must be a boolean"),
]


@pytest.mark.parametrize(("case", "make", "message"), BAD_MASKS, ids=[b[0] for b in BAD_MASKS])
def test_bad_variant_masks(case: str, make: Callable[[Scenario], Any], message: str) -> None:
    s = scenario(0)
    policy = trained_policy("epsilon_greedy", s)
    with pytest.raises(PolicyError, match=message):
        eligibility = replace(s.eligibility, variant_ok=make(s))
        plan(s.x, s.actions, policy, eligibility, SelectionRules(), rng=0)
