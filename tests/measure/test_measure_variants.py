"""Variant tests: Bayesian probability to be best and expected loss, and the always-valid mSPRT
under continuous peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from tummler.core.errors import InputError
from tummler.measure import (
    StopRecommendation,
    msprt,
    probability_to_be_best,
    sequential_test_means,
    sequential_test_rates,
)

# ------------------------------------------------------------------------ probability to be best


def _exact_b_beats_a(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """P(θ_B > θ_A) for Beta(a_a, b_a) and Beta(a_b, b_b) with integer a_b (Evan Miller's sum)."""
    total = 0.0
    for i in range(a_b):
        total += math.exp(
            special.betaln(a_a + i, b_a + b_b)
            - math.log(b_b + i)
            - special.betaln(1 + i, b_b)
            - special.betaln(a_a, b_a)
        )
    return total


@pytest.mark.parametrize(
    ("successes", "trials"),
    [((3, 7), (20, 20)), ((30, 45), (1000, 1000)), ((120, 131), (2400, 2300)), ((0, 2), (5, 9))],
)
def test_two_variants_match_the_closed_form(
    successes: tuple[int, int], trials: tuple[int, int]
) -> None:
    result = probability_to_be_best(successes, trials)
    exact = _exact_b_beats_a(
        1 + successes[0],
        1 + trials[0] - successes[0],
        1 + successes[1],
        1 + trials[1] - successes[1],
    )
    assert result.probability_best[1] == pytest.approx(exact, abs=1e-6)
    assert result.probability_best[0] == pytest.approx(1 - exact, abs=1e-6)


def test_expected_loss_of_two_uniform_posteriors_is_one_sixth() -> None:
    # No data: θ_A, θ_B ~ U(0, 1); E[max] = 2/3, so the loss of either is 2/3 - 1/2 = 1/6.
    result = probability_to_be_best([0, 0], [0, 0])
    assert result.expected_loss == pytest.approx((1 / 6, 1 / 6), abs=1e-6)
    assert result.probability_best == pytest.approx((0.5, 0.5), abs=1e-6)


def test_quadrature_and_monte_carlo_agree() -> None:
    successes, trials = [40, 52, 47, 30], [1000, 1000, 1000, 800]
    quadrature = probability_to_be_best(successes, trials)
    monte_carlo = probability_to_be_best(successes, trials, method="monte_carlo", rng=3)
    assert monte_carlo.probability_best == pytest.approx(quadrature.probability_best, abs=0.01)
    assert monte_carlo.expected_loss == pytest.approx(quadrature.expected_loss, abs=2e-4)
    assert monte_carlo == probability_to_be_best(successes, trials, method="monte_carlo", rng=3)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=2, max_size=5),
    st.floats(0.1, 5.0),
)
def test_probabilities_to_be_best_sum_to_one(pairs: list[tuple[int, int]], prior: float) -> None:
    successes = [min(a, b) for a, b in pairs]
    trials = [max(a, b) for a, b in pairs]
    result = probability_to_be_best(successes, trials, prior_alpha=prior, prior_beta=prior)
    assert sum(result.probability_best) == pytest.approx(1.0, abs=1e-5)
    assert all(-1e-9 <= p <= 1 + 1e-9 for p in result.probability_best)
    assert all(loss >= 0 for loss in result.expected_loss)
    # Expected loss is E[max] minus the posterior mean: the highest mean gives up the least (which
    # need not be the variant most likely to be best when posteriors are skewed).
    highest = int(np.argmax(result.posterior_mean))
    assert result.expected_loss[highest] == pytest.approx(min(result.expected_loss), abs=1e-12)


def test_picks_the_truly_better_variant_in_seeded_tests() -> None:
    rng = np.random.default_rng(17)
    truth = np.array([0.050, 0.060, 0.070])
    n = 6000
    picks = []
    for _ in range(200):
        successes = rng.binomial(n, truth)
        result = probability_to_be_best(successes, [n] * 3, labels=["calm", "bold", "witty"])
        picks.append(result.best)
    assert picks.count("witty") / len(picks) >= 0.9


# ------------------------------------------------------------------------------------- mSPRT


def test_msprt_written_out_for_one_look() -> None:
    # θ̂ = 0.02, V = 1e-4, τ = 0.02: Λ = sqrt(V/(V+τ²)) · exp(τ²θ̂²/(2V(V+τ²))).
    v, tau2, theta = 1e-4, 4e-4, 0.02
    lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * theta**2 / (2 * v * (v + tau2)))
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(20) + math.log((v + tau2) / v)))
    test = msprt([theta], [v], mixture_sd=0.02)
    assert test.likelihood_ratio[0] == pytest.approx(lam)
    assert test.p_value[0] == pytest.approx(min(1.0, 1 / lam))
    assert (test.ci_low[0], test.ci_high[0]) == pytest.approx((theta - half, theta + half))
    # p <= alpha exactly when the confidence sequence excludes zero.
    assert (test.p_value[0] <= 0.05) == (test.ci_low[0] > 0)


def _aa_rates(
    rng: np.random.Generator, looks: int, batch: int, p_a: float, p_b: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s_a = np.cumsum(rng.binomial(batch, p_a, looks))
    s_b = np.cumsum(rng.binomial(batch, p_b, looks))
    return s_a, s_b, np.arange(1, looks + 1) * batch


def test_msprt_false_positive_rate_under_continuous_peeking_is_at_most_alpha() -> None:
    rng = np.random.default_rng(2022)
    sims, looks, batch = 1000, 100, 200
    always_valid = naive = 0
    z = stats.norm.ppf(0.975)
    for _ in range(sims):
        s_a, s_b, n = _aa_rates(rng, looks, batch, 0.1, 0.1)
        test = sequential_test_rates(s_a, n, s_b, n, mixture_sd=0.01)
        always_valid += test.recommendation is StopRecommendation.STOP_WINNER
        assert test.p_value == tuple(sorted(test.p_value, reverse=True))
        # The fixed-horizon z-test, checked at every look, as a marketer would.
        p_a, p_b = s_a / n, s_b / n
        se = np.sqrt(p_a * (1 - p_a) / n + p_b * (1 - p_b) / n)
        naive += bool((np.abs(p_b - p_a) > z * se).any())
    assert always_valid / sims <= 0.05
    assert naive / sims > 0.15  # peeking at a fixed-horizon test inflates its 5 % far beyond


def test_msprt_confidence_sequence_holds_the_truth_at_every_look() -> None:
    rng = np.random.default_rng(8)
    sims, looks, batch = 600, 60, 250
    missed = 0
    for _ in range(sims):
        s_a, s_b, n = _aa_rates(rng, looks, batch, 0.08, 0.10)
        test = sequential_test_rates(s_a, n, s_b, n, mixture_sd=0.02)
        low, high = np.array(test.ci_low), np.array(test.ci_high)
        missed += bool(((low > 0.02) | (high < 0.02)).any())
    assert missed / sims <= 0.05


def test_msprt_detects_a_real_effect_and_names_the_winner() -> None:
    rng = np.random.default_rng(31)
    sims, wins = 200, 0
    for _ in range(sims):
        s_a, s_b, n = _aa_rates(rng, 100, 200, 0.10, 0.115)
        test = sequential_test_rates(
            s_a, n, s_b, n, mixture_sd=0.01, labels=("old subject", "new subject")
        )
        if test.recommendation is StopRecommendation.STOP_WINNER:
            assert test.winner == "new subject"
            assert test.reason.startswith("stop: new subject wins over old subject")
            wins += 1
    assert wins / sims >= 0.9


def test_msprt_on_means_keeps_its_level_for_skewed_values() -> None:
    rng = np.random.default_rng(4)
    sims, looks, batch = 400, 50, 100
    false_positives = 0
    for _ in range(sims):
        a = rng.exponential(20.0, (looks, batch))
        b = rng.exponential(20.0, (looks, batch))
        count = np.arange(1, looks + 1) * batch
        test = sequential_test_means(
            count,
            np.cumsum(a.sum(1)),
            np.cumsum((a * a).sum(1)),
            count,
            np.cumsum(b.sum(1)),
            np.cumsum((b * b).sum(1)),
            mixture_sd=2.0,
        )
        false_positives += test.recommendation is StopRecommendation.STOP_WINNER
    assert false_positives / sims <= 0.05


def test_stops_for_no_meaningful_difference_once_the_sequence_is_narrow() -> None:
    rng = np.random.default_rng(12)
    s_a, s_b, n = _aa_rates(rng, 50, 4000, 0.1, 0.1)
    test = sequential_test_rates(s_a, n, s_b, n, mixture_sd=0.01, min_effect=0.01)
    assert test.recommendation is StopRecommendation.STOP_NO_DIFFERENCE
    assert test.reason.startswith("stop: no meaningful difference")
    assert "±1.00 points" in test.reason


def test_overwhelming_evidence_gives_p_zero_without_overflow() -> None:
    n = np.arange(1, 11) * 100_000
    test = sequential_test_rates(n // 10, n, n // 5, n, mixture_sd=0.01)
    assert test.p_value[-1] == 0.0
    assert test.winner == "B"


def test_continues_while_undecided_and_skips_looks_that_are_too_small() -> None:
    n = np.array([50, 150, 300])
    test = sequential_test_rates([5, 15, 30], n, [6, 17, 33], n, mixture_sd=0.01)
    assert test.recommendation is StopRecommendation.CONTINUE
    assert test.reason.startswith("continue: ")
    assert math.isnan(test.difference[0])
    assert test.ci_low[0] == -math.inf
    assert test.p_value[0] == 1.0


@pytest.mark.parametrize(
    ("call", "field", "fragment"),
    [
        (lambda: probability_to_be_best([1], [2]), "successes", "two variants"),
        (lambda: probability_to_be_best([1, 2], [2, 3, 4]), "trials", "one count per variant"),
        (lambda: probability_to_be_best([3, 2], [2, 3]), "successes", "more than"),
        (lambda: probability_to_be_best([1, 2], [2, 3], labels=["a", "a"]), "labels", "distinct"),
        (lambda: probability_to_be_best([1, 2], [2, 3], prior_alpha=0), "prior_alpha", "> 0"),
        (
            lambda: probability_to_be_best([1, 2], [2, 3], method="monte_carlo"),
            "rng",
            "generator or a seed",
        ),
        (lambda: msprt([0.1], [0.01], mixture_sd=0), "mixture_sd", "> 0"),
        (lambda: msprt([0.1, 0.2], [0.01], mixture_sd=1), "variance", "one per look"),
        (lambda: msprt([0.1], [-1.0], mixture_sd=1), "variance", "negative"),
        (lambda: msprt([], [], mixture_sd=1), "difference", "non-empty"),
        (
            lambda: sequential_test_rates([5, 4], [10, 20], [1, 2], [10, 20], mixture_sd=0.01),
            "successes_a",
            "cumulative",
        ),
        (
            lambda: sequential_test_rates([5], [10, 20], [1, 2], [10, 20], mixture_sd=0.01),
            "trials_a",
            "looks",
        ),
        (
            lambda: sequential_test_rates([50], [10], [1], [10], mixture_sd=0.01),
            "successes_a",
            "more than",
        ),
    ],
)
def test_bad_inputs_name_the_argument(call: object, field: str, fragment: str) -> None:
    assert callable(call)
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.field == field
    assert fragment in str(caught.value)
