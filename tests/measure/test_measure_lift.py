"""Holdout lift: intervals against textbook answers and scipy, coverage over seeded simulations,
the verdicts, and the Hillstrom e-mail experiment's published arm means."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tummler.core.errors import InputError
from tummler.measure import (
    Verdict,
    holdout_lift,
    lift_from_counts,
    log_ratio_interval,
    newcombe_interval,
    required_holdout,
    welch_interval,
    wilson_interval,
)

# ------------------------------------------------------------------------------- known answers


def test_wilson_interval_matches_the_formula_written_out_and_scipy() -> None:
    # 81 of 263: p = 0.30798, z = 1.95996
    k, n, z = 81, 263, stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(k, n)
    assert float(low) == pytest.approx(centre - half, abs=1e-12)
    assert float(high) == pytest.approx(centre + half, abs=1e-12)
    reference = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert float(low) == pytest.approx(reference.low, abs=1e-12)
    assert float(high) == pytest.approx(reference.high, abs=1e-12)


@pytest.mark.parametrize(
    ("counts", "published"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10.
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0)),
    ],
)
def test_newcombe_interval_reproduces_the_published_table(
    counts: tuple[int, int, int, int], published: tuple[float, float]
) -> None:
    low, high = newcombe_interval(*counts)
    assert (round(float(low), 4), round(float(high), 4)) == published


def test_newcombe_interval_combines_the_two_wilson_intervals() -> None:
    # d = 0.8 - 0.6 = 0.2; lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), upper symmetrically.
    l1, u1 = wilson_interval(56, 70)
    l2, u2 = wilson_interval(48, 80)
    p1, p2 = 0.8, 0.6
    lower = 0.2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = 0.2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    low, high = newcombe_interval(56, 70, 48, 80)
    assert (float(low), float(high)) == pytest.approx((lower, upper), abs=1e-12)


def test_welch_interval_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 25), rng.normal(8, 3, 40)
    low, high = welch_interval(a.mean(), a.var(ddof=1), 25, b.mean(), b.var(ddof=1), 40)
    reference = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert float(low) == pytest.approx(reference.low, rel=1e-10)
    assert float(high) == pytest.approx(reference.high, rel=1e-10)


def test_log_ratio_interval_is_the_delta_method_written_out() -> None:
    # 0.2 vs 0.1 with n = 1000 each: Var(log ratio) = 0.16/(1000·0.04) + 0.09/(1000·0.01) = 0.013
    se = math.sqrt(0.16 / (1000 * 0.04) + 0.09 / (1000 * 0.01))
    z = stats.norm.ppf(0.975)
    low, high = log_ratio_interval(0.2, 0.16, 1000, 0.1, 0.09, 1000)
    assert float(low) == pytest.approx(2 * math.exp(-z * se), rel=1e-12)
    assert float(high) == pytest.approx(2 * math.exp(z * se), rel=1e-12)
    assert np.isnan(log_ratio_interval(0.2, 0.16, 1000, 0.0, 0.0, 1000)[0])


def test_required_holdout_is_the_textbook_sample_size() -> None:
    # Equal groups: n = 2 · p(1-p) · (z_.975 + z_.8)^2 / d^2 = 2 · 0.09 · 7.849 / 0.0001
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    holdout, per_group = required_holdout(
        var_treated=0.09, var_holdout=0.09, n_treated=1, min_effect=0.01
    )
    assert holdout is None
    assert per_group == math.ceil(2 * 0.09 * z * z / 0.0001)
    # A huge treated group: the holdout alone needs p(1-p)·z²/d².
    holdout, _ = required_holdout(
        var_treated=0.09, var_holdout=0.09, n_treated=10**12, min_effect=0.01
    )
    assert holdout == pytest.approx(0.09 * z * z / 0.0001, rel=1e-3)


def test_lift_of_a_rate_reads_out_difference_ratio_and_verdict() -> None:
    lift = lift_from_counts(300, 1000, 200, 1000, treatment="the e-mail", kpi="visits", rng=1)
    assert lift.kind == "rate"
    assert lift.difference == pytest.approx(0.1)
    assert lift.relative_lift == pytest.approx(0.5)
    low, high = newcombe_interval(300, 1000, 200, 1000)
    assert (lift.difference_interval.low, lift.difference_interval.high) == (
        float(low),
        float(high),
    )
    assert lift.verdict is Verdict.EFFECT
    assert lift.message.startswith("the e-mail raised visits by 10.00 points (95% CI ")
    assert lift.message.endswith("; the effect is real")
    # Two-proportion z-test with the pooled rate 0.25.
    z = 0.1 / math.sqrt(0.25 * 0.75 * (2 / 1000))
    assert lift.p_value == pytest.approx(2 * stats.norm.sf(z))
    assert lift.relative_interval_delta is not None
    assert lift.relative_interval_bootstrap is not None
    for interval in (lift.relative_interval_delta, lift.relative_interval_bootstrap):
        assert interval.low < 0.5 < interval.high
    # The two ratio intervals agree closely at this size.
    assert lift.relative_interval_bootstrap.low == pytest.approx(
        lift.relative_interval_delta.low, abs=0.03
    )


def test_lift_from_outcomes_equals_lift_from_counts() -> None:
    treated = np.r_[np.ones(300), np.zeros(700)]
    holdout = np.r_[np.ones(200), np.zeros(800)]
    from_values = holdout_lift(treated, holdout, rng=5)
    from_counts = lift_from_counts(300, 1000, 200, 1000, rng=5)
    assert from_values == from_counts


def test_lift_of_a_mean_uses_welch_and_says_per_person() -> None:
    rng = np.random.default_rng(11)
    treated, holdout = rng.exponential(12.0, 4000), rng.exponential(10.0, 1000)
    lift = holdout_lift(treated, holdout, treatment="the sale", kpi="spend", rng=2)
    assert lift.kind == "mean"
    reference = stats.ttest_ind(treated, holdout, equal_var=False)
    assert lift.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    ci = reference.confidence_interval(1 - lift.alpha)
    assert lift.difference_interval.low == pytest.approx(ci.low)
    assert lift.message.startswith("the sale raised spend per person by ")


def test_a_lowered_kpi_is_called_an_effect_with_the_word_lowered() -> None:
    lift = lift_from_counts(100, 2000, 200, 2000, treatment="the SMS", kpi="conversion")
    assert lift.verdict is Verdict.EFFECT
    assert "the SMS lowered conversion by 5.00 points" in lift.message


def test_no_effect_when_a_big_holdout_rules_out_what_matters() -> None:
    lift = lift_from_counts(
        10_020, 100_000, 10_000, 100_000, kpi="conversion", min_effect=0.01, n_bootstrap=0
    )
    assert lift.verdict is Verdict.NO_EFFECT
    assert lift.message.startswith("no detectable effect of the campaign on conversion")
    assert "the interval includes zero" in lift.message
    assert lift.required_holdout is None


def test_underpowered_when_the_holdout_is_small_and_says_how_many_are_needed() -> None:
    lift = lift_from_counts(1_100, 10_000, 9, 100, kpi="conversion", min_effect=0.01, n_bootstrap=0)
    assert lift.verdict is Verdict.UNDERPOWERED
    assert lift.message.startswith("too few people in the holdout to tell")
    assert lift.required_holdout is not None
    assert f"need about {lift.required_holdout:,} people in the holdout" in lift.message
    # With that many in the holdout, the planned power is reached: check by the formula.
    se = math.sqrt(0.099 * 0.901 * (1 / 10_000 + 1 / lift.required_holdout))
    assert 0.01 / se >= stats.norm.ppf(0.975) + stats.norm.ppf(0.8) - 1e-9


def test_nobody_responding_is_underpowered_not_a_crash() -> None:
    lift = holdout_lift(np.zeros(50), np.zeros(50), kpi="conversion")
    assert lift.verdict is Verdict.UNDERPOWERED
    assert lift.relative_lift is None
    assert lift.relative_interval_bootstrap is None


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 400),
    st.integers(0, 400),
    st.integers(1, 400),
    st.integers(0, 400),
    st.floats(0.01, 0.3),
)
def test_intervals_contain_their_estimates(
    n1: int, k1: int, n2: int, k2: int, alpha: float
) -> None:
    k1, k2 = min(k1, n1), min(k2, n2)
    lift = lift_from_counts(k1, n1, k2, n2, alpha=alpha, n_bootstrap=0)
    assert lift.difference_interval.contains(lift.difference)
    assert lift.treated_interval.contains(lift.treated_mean)
    assert lift.holdout_interval.contains(lift.holdout_mean)
    assert -1.0 <= lift.difference_interval.low <= lift.difference_interval.high <= 1.0
    if lift.relative_interval_delta is not None:
        assert lift.relative_lift is not None
        assert lift.relative_interval_delta.contains(lift.relative_lift)
    assert (lift.verdict is Verdict.EFFECT) == (not lift.difference_interval.contains(0.0))


# ------------------------------------------------------------------------------------ coverage

REPS = 4000


def _covered(low: np.ndarray, high: np.ndarray, truth: float) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))


def test_newcombe_interval_covers_95_percent_of_seeded_experiments() -> None:
    rng = np.random.default_rng(2024)
    p_t, n_t, p_h, n_h = 0.12, 3000, 0.10, 600
    k_t, k_h = rng.binomial(n_t, p_t, REPS), rng.binomial(n_h, p_h, REPS)
    low, high = newcombe_interval(k_t, n_t, k_h, n_h)
    assert 0.93 <= _covered(low, high, p_t - p_h) <= 0.97


def test_welch_interval_covers_95_percent_for_skewed_spend() -> None:
    rng = np.random.default_rng(7)
    n_t, n_h = 400, 120
    treated = rng.lognormal(1.0, 0.8, size=(REPS, n_t))
    holdout = rng.lognormal(0.9, 0.8, size=(REPS, n_h))
    truth = math.exp(1.0 + 0.32) - math.exp(0.9 + 0.32)
    low, high = welch_interval(
        treated.mean(1), treated.var(1, ddof=1), n_t, holdout.mean(1), holdout.var(1, ddof=1), n_h
    )
    assert 0.93 <= _covered(low, high, truth) <= 0.97


def test_log_ratio_interval_covers_95_percent_of_relative_lifts() -> None:
    rng = np.random.default_rng(99)
    p_t, n_t, p_h, n_h = 0.06, 8000, 0.05, 3000
    m_t, m_h = rng.binomial(n_t, p_t, REPS) / n_t, rng.binomial(n_h, p_h, REPS) / n_h
    low, high = log_ratio_interval(m_t, m_t * (1 - m_t), n_t, m_h, m_h * (1 - m_h), n_h)
    assert 0.93 <= _covered(low, high, p_t / p_h) <= 0.97


def test_bootstrap_interval_of_the_relative_lift_covers_95_percent() -> None:
    rng = np.random.default_rng(5)
    p_t, n_t, p_h, n_h = 0.06, 8000, 0.05, 3000
    reps = 1500
    k_t, k_h = rng.binomial(n_t, p_t, reps), rng.binomial(n_h, p_h, reps)
    hits = 0
    for i in range(reps):
        lift = lift_from_counts(int(k_t[i]), n_t, int(k_h[i]), n_h, n_bootstrap=1000, rng=i)
        assert lift.relative_interval_bootstrap is not None
        hits += lift.relative_interval_bootstrap.contains(p_t / p_h - 1)
    assert 0.93 <= hits / reps <= 0.97


# --------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "field", "fragment"),
    [
        (lambda: holdout_lift([[1, 0]], [1, 0]), "treated", "1-dimensional"),
        (lambda: holdout_lift([1, 0], []), "holdout", "is empty"),
        (lambda: holdout_lift([1, np.nan], [1, 0]), "treated", "NaN"),
        (lambda: holdout_lift(["a", "b"], [1, 0]), "treated", "must hold numbers"),
        (lambda: holdout_lift([1, 0], [2.5, 0], kind="rate"), "holdout", "0 or 1"),
        (lambda: holdout_lift([1, 0], [1, 0], kind="share"), "kind", "'rate' or 'mean'"),  # type: ignore[arg-type]
        (lambda: holdout_lift([2.0], [1.0, 3.0]), "treated", "at least 2"),
        (lambda: holdout_lift([1, 0], [1, 0], alpha=1.5), "alpha", "(0, 1)"),
        (lambda: holdout_lift([1, 0], [1, 0], min_effect=-1), "min_effect", "> 0"),
        (lambda: holdout_lift([1, 0], [1, 0], power=0.2), "power", "[0.5, 1)"),
        (lambda: holdout_lift([1, 0], [1, 0], n_bootstrap=5), "n_bootstrap", "at least 100"),
        (lambda: lift_from_counts(5, 4, 1, 10), "treated_successes", "more than"),
        (lambda: lift_from_counts(1, 4, 1, 0), "holdout_trials", "at least one person"),
        (lambda: lift_from_counts(-1, 4, 1, 10), "treated_successes", "negative"),
        (lambda: lift_from_counts(1.5, 4, 1, 10), "treated_successes", "whole numbers"),  # type: ignore[arg-type]
    ],
)
def test_bad_inputs_name_the_argument(call: object, field: str, fragment: str) -> None:
    assert callable(call)
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert f"field {field!r}" in str(caught.value)


# ---------------------------------------------------------------------------- real experiment


def test_hillstrom_reproduces_the_published_arm_means_and_lifts(data_dir: Path) -> None:
    path = data_dir / "hillstrom" / "hillstrom.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(path, usecols=["segment", "visit", "spend"])
    visits = {
        arm: frame.loc[frame["segment"] == arm, "visit"].to_numpy(dtype=np.float64)
        for arm in ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
    }
    published = {"Mens E-Mail": 0.1828, "Womens E-Mail": 0.1514, "No E-Mail": 0.1062}
    for arm, mean in published.items():
        assert round(float(visits[arm].mean()), 4) == mean
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        lift = holdout_lift(visits[arm], visits["No E-Mail"], treatment=arm, kpi="visits", rng=0)
        assert lift.kind == "rate"
        assert lift.difference == pytest.approx(published[arm] - 0.1062, abs=1e-4)
        assert lift.difference_interval.low > 0
        assert lift.verdict is Verdict.EFFECT
        assert lift.relative_interval_delta is not None
        assert lift.relative_interval_delta.low > 0
        assert lift.relative_interval_bootstrap is not None
        assert lift.relative_interval_bootstrap.low > 0
        assert lift.message.startswith(f"{arm} raised visits by ")
