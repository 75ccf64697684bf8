"""The realism check: a two-proportion power calculation, checked by hand and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.core.errors import StrategyError
from tummler.core.randomness import make_rng
from tummler.strategy import (
    AudienceBaseline,
    Severity,
    assess_target,
    check_workspace,
    minimum_detectable_rate,
    read_campaign,
    read_strategy,
    sample_size_two_proportions,
)

Z_ALPHA = 1.959963984540054  # z_{0.975}: two-sided alpha = 0.05
Z_BETA = 0.8416212335729143  # z_{0.80}: 80 % power


def test_sample_size_matches_the_hand_computed_value() -> None:
    """p0 = 10 %, target +50 % → p1 = 15 %, holdout 20 % → k = 4 treated per holdout contact.

    Z   = 1.959964 + 0.841621 = 2.801585,  Z² = 7.848879
    var = p1 q1 / k + p0 q0 = 0.15 · 0.85 / 4 + 0.10 · 0.90 = 0.031875 + 0.09 = 0.121875
    n_holdout = Z² · var / (p1 − p0)² = 7.848879 · 0.121875 / 0.0025 = 382.63 → 383
    n_treated = k · 382.63 = 1530.53 → 1531
    """
    assert pytest.approx(7.848879, abs=1e-6) == (Z_ALPHA + Z_BETA) ** 2
    assert sample_size_two_proportions(0.10, 0.15, holdout_share=0.2) == (1531, 383)


def test_equal_allocation_reduces_to_the_textbook_formula() -> None:
    """Holdout 50 %: n per arm = Z² (p0 q0 + p1 q1) / δ² = 7.848879 · 0.2175 / 0.0025 = 682.85 → 683."""
    assert sample_size_two_proportions(0.10, 0.15, holdout_share=0.5) == (683, 683)


def test_minimum_detectable_rate_matches_the_hand_computed_value() -> None:
    """N = 10 000, holdout 10 % → n_t = 9000, n_c = 1000; p0 = 10 %. Solve for δ:

    a = 1 + Z²/n_t             = 1.000872
    b = Z² (1 − 2 p0) / n_t    = 7.848879 · 0.8 / 9000 = 0.00069768
    c = Z² p0 q0 (1/n_t + 1/n_c) = 7.848879 · 0.09 · 0.00111111 = 0.00078489
    δ = (b + √(b² + 4ac)) / 2a = (0.00069768 + 0.0560605) / 2.001744 = 0.028354
    """
    rate = minimum_detectable_rate(0.10, 10_000, holdout_share=0.1)
    assert rate == pytest.approx(0.10 + 0.028354, abs=2e-6)


@given(
    p0=st.floats(0.005, 0.9),
    size=st.integers(50, 10**7),
    holdout=st.floats(0.02, 0.5),
)
@settings(max_examples=200, deadline=None)
def test_the_detectable_rate_needs_exactly_the_audience_at_hand(
    p0: float, size: int, holdout: float
) -> None:
    """The two formulas invert each other: the sample for the detectable rate is the audience."""
    rate = minimum_detectable_rate(p0, size, holdout_share=holdout)
    if rate is None:
        return
    assert rate > p0
    treated, held_out = sample_size_two_proportions(p0, rate, holdout_share=holdout)
    assert treated == pytest.approx((1 - holdout) * size, rel=1e-6, abs=1.0)
    assert held_out == pytest.approx(holdout * size, rel=1e-6, abs=1.0)


def test_a_seeded_simulation_has_the_promised_power() -> None:
    """Ground truth: with the computed arms, a z-test rejects in about 80 % of simulated campaigns."""
    rng = make_rng(20260301)
    p0, p1 = 0.10, 0.15
    treated, held_out = sample_size_two_proportions(p0, p1, holdout_share=0.2)
    runs = 20_000
    x_t = rng.binomial(treated, p1, size=runs) / treated
    x_c = rng.binomial(held_out, p0, size=runs) / held_out
    se = np.sqrt(x_t * (1 - x_t) / treated + x_c * (1 - x_c) / held_out)
    power = float(np.mean(np.abs(x_t - x_c) / se > Z_ALPHA))
    assert power == pytest.approx(0.80, abs=0.015)
    # and under no effect, it rejects about 5 % of the time
    x_t0 = rng.binomial(treated, p0, size=runs) / treated
    se0 = np.sqrt(x_t0 * (1 - x_t0) / treated + x_c * (1 - x_c) / held_out)
    assert float(np.mean(np.abs(x_t0 - x_c) / se0 > Z_ALPHA)) == pytest.approx(0.05, abs=0.01)


@pytest.mark.parametrize(
    ("p0", "p1", "holdout", "message"),
    [
        (0.0, 0.1, 0.1, "p0 must be a rate strictly between 0 and 1"),
        (0.1, 1.0, 0.1, "p1 must be a rate"),
        (0.1, 0.1, 0.1, "a zero effect needs an infinite sample"),
        (0.1, 0.2, 0.0, "holdout_share must be a rate"),
        (0.1, 0.2, 1.0, "holdout_share must be a rate"),
        (math.nan, 0.2, 0.1, "p0 must be a rate"),
    ],
)
def test_sample_size_refuses_rates_it_cannot_use(
    p0: float, p1: float, holdout: float, message: str
) -> None:
    with pytest.raises(StrategyError, match=message):
        sample_size_two_proportions(p0, p1, holdout_share=holdout)


def test_assessment_flags_a_small_audience_and_an_unseen_target() -> None:
    baseline = AudienceBaseline(audience_size=1000, window_rates=(0.09, 0.11, 0.10))
    assessment = assess_target(baseline, relative_lift=0.5, holdout_share=0.2)
    assert assessment is not None
    assert assessment.baseline_rate == pytest.approx(0.10)
    assert assessment.target_rate == pytest.approx(0.15)
    assert (assessment.needed_treated, assessment.needed_holdout) == (1531, 383)
    assert assessment.too_small
    assert assessment.beyond_seen  # 15 % > the best window's 11 %
    assert assessment.realistic_rate == pytest.approx(
        minimum_detectable_rate(0.10, 1000, holdout_share=0.2)
    )


def test_assessment_accepts_a_target_the_audience_can_show() -> None:
    baseline = AudienceBaseline(audience_size=50_000, window_rates=(0.10, 0.16))
    assessment = assess_target(baseline, absolute_rate=0.15, holdout_share=0.1)
    assert assessment is not None
    assert not assessment.too_small
    assert not assessment.beyond_seen


def test_no_baseline_without_history_or_with_a_zero_rate() -> None:
    assert assess_target(AudienceBaseline(10, ()), relative_lift=0.1, holdout_share=0.1) is None
    assert assess_target(AudienceBaseline(10, (0.0,)), relative_lift=0.1, holdout_share=0.1) is None
    with pytest.raises(StrategyError, match="exactly one"):
        assess_target(AudienceBaseline(10, (0.1,)), holdout_share=0.1)
    with pytest.raises(StrategyError, match=r"window rate 1\.5"):
        AudienceBaseline(10, (1.5,))


STRATEGY = """\
brand:
  name: Acme
  pillars: [{id: quality, promise: Tools built to last.}]
objectives:
  - id: repeat
    kpi: {event: converted}
    attribution_window: 14d
    target: {relative_lift: 0.5}
    horizon: 42d
channels:
  - {id: email, kind: email, public: false}
"""
CAMPAIGN = """\
id: spring
objective: repeat
holdout_share: 0.2
variants:
  email: [{body: Tools built to last.}]
"""


def _realism(baseline: AudienceBaseline) -> list[tuple[str, Severity, int | None, str]]:
    strategy, _ = read_strategy(STRATEGY, "strategy.yaml")
    campaign, _ = read_campaign(CAMPAIGN, "spring.yaml")
    assert strategy is not None
    assert campaign is not None
    findings = check_workspace(strategy, [campaign], baselines={"spring": baseline})
    return [
        (f.code, f.severity, f.line, f.message) for f in findings if f.code.startswith("realism")
    ]


def test_the_check_warns_and_says_what_target_is_realistic() -> None:
    findings = _realism(AudienceBaseline(audience_size=1000, window_rates=(0.09, 0.11, 0.10)))
    codes = [(code, severity, line) for code, severity, line, _ in findings]
    assert codes == [
        ("realism-audience-too-small", Severity.WARNING, 2),
        ("realism-target-unseen", Severity.WARNING, 2),
    ]
    realistic = minimum_detectable_rate(0.10, 1000, holdout_share=0.2)
    assert realistic is not None
    too_small = findings[0][3]
    assert "needs 1,531 treated and 383 holdout contacts" in too_small
    assert "audience 'all contacts' has 1,000" in too_small
    assert f"A realistic target for this audience: a rate of {realistic:.2%}" in too_small
    assert f"(relative lift {realistic / 0.10 - 1:+.1%})" in too_small


def test_the_check_is_quiet_when_the_target_is_within_reach() -> None:
    assert _realism(AudienceBaseline(audience_size=100_000, window_rates=(0.10, 0.25, 0.10))) == []


def test_the_check_notes_a_missing_baseline_and_warns_on_an_empty_audience() -> None:
    [(code, severity, _, message)] = _realism(AudienceBaseline(500, (0.0, 0.0, 0.0)))
    assert (code, severity) == ("realism-no-baseline", Severity.INFO)
    assert "import events" in message
    [(code, severity, _, _)] = _realism(AudienceBaseline(0, ()))
    assert (code, severity) == ("realism-empty-audience", Severity.WARNING)
