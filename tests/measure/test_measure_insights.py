"""Send-time and channel insights: weighted by logged propensities they recover the response to
choosing a cell; without randomization they say they are not causal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.core.errors import InputError
from tummler.measure import HOURS_IN_WEEK, channel_response, response_by_cell, send_time_response

HOURS = np.arange(HOURS_IN_WEEK)


def _true_curves() -> np.ndarray:
    """Response of two segments to a send at each hour of week: shape (2, 168)."""
    hour_of_day = HOURS % 24
    daily = 0.03 * np.exp(-0.5 * ((hour_of_day - 10) / 3.0) ** 2)  # a morning peak
    weekend = np.where(HOURS >= 120, -0.01, 0.0)
    return np.stack([0.02 + daily + weekend, 0.10 + 0.5 * daily + weekend])


def _logged_sends(
    rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A logging policy that explores every hour but favours office hours for its best segment."""
    segment = rng.integers(0, 2, n)
    office = ((HOURS % 24 >= 8) & (HOURS % 24 <= 17) & (HOURS < 120)).astype(float)
    weights = np.stack([np.ones(HOURS_IN_WEEK), 1.0 + 6.0 * office])
    probabilities = weights / weights.sum(axis=1, keepdims=True)
    hour = np.empty(n, dtype=np.int64)
    for s in (0, 1):
        chosen = segment == s
        hour[chosen] = rng.choice(HOURS_IN_WEEK, int(chosen.sum()), p=probabilities[s])
    propensity = probabilities[segment, hour]
    response = rng.random(n) < _true_curves()[segment, hour]
    return hour, response.astype(float), propensity, segment


def test_weighted_estimate_recovers_the_weekly_curve_that_naive_rates_miss() -> None:
    rng = np.random.default_rng(168)
    hour, response, propensity, _ = _logged_sends(rng, 400_000)
    truth = _true_curves().mean(axis=0)  # everyone at each hour: segments are half and half
    result = send_time_response(hour, response, propensity)
    assert result.causal
    assert result.cells == tuple(range(HOURS_IN_WEEK))
    estimate = np.array(result.estimate)
    low, high = np.array(result.ci_low), np.array(result.ci_high)
    assert 0.90 <= np.mean((low <= truth) & (truth <= high)) <= 1.0
    assert np.abs(estimate - truth).mean() < 0.006
    assert result.best() in {h for h in HOURS if 6 <= h % 24 <= 14 and h < 120}  # a weekday morning
    # The plain per-hour rates mistake "who got office hours" for "what office hours do".
    observational = send_time_response(hour, response, None)
    assert not observational.causal
    naive = np.array(observational.estimate)
    assert np.abs(naive - truth).mean() > 2 * np.abs(estimate - truth).mean()


def test_hajek_and_ips_agree_on_a_uniform_random_policy() -> None:
    rng = np.random.default_rng(3)
    n = 30_000
    channel = rng.choice(["email", "sms", "mastodon"], n)
    rates = {"email": 0.05, "sms": 0.08, "mastodon": 0.02}
    response = (rng.random(n) < np.vectorize(rates.get)(channel)).astype(float)
    result = channel_response(channel, response, np.full(n, 1 / 3))
    assert result.cells == ("email", "mastodon", "sms")
    for i, cell in enumerate(result.cells):
        assert result.estimate[i] == pytest.approx(rates[str(cell)], abs=4 * result.std_error[i])
        assert result.ips[i] == pytest.approx(result.estimate[i], abs=4 * result.std_error[i])
    assert result.best() == "sms"
    # Uniform weights: each cell is worth exactly its number of decisions.
    assert result.effective_n == pytest.approx(result.n)


def test_hajek_estimate_written_out() -> None:
    # email: (1/0.5 · 1 + 1/0.5 · 0) / (2 + 2) = 0.5;  sms: (2 · 0 + 4 · 1) / (2 + 4) = 2/3
    result = response_by_cell(["email", "sms", "email", "sms"], [1, 0, 0, 1], [0.5, 0.5, 0.5, 0.25])
    assert result.estimate == pytest.approx((0.5, 2 / 3))
    # IPS divides by all four decisions: email 2/4, sms 4/4.
    assert result.ips == pytest.approx((0.5, 1.0))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0, 100), st.floats(0.01, 1.0)),
        min_size=1,
        max_size=40,
    )
)
def test_each_cell_estimate_lies_among_its_responses(rows: list[tuple[int, float, float]]) -> None:
    cell, response, propensity = (np.array(column) for column in zip(*rows, strict=True))
    result = response_by_cell(cell, response, propensity, cells=range(4))
    used = propensity < 1.0 if result.causal else np.ones(len(rows), dtype=bool)
    for c in range(4):
        values = response[used & (cell == c)]
        if values.size:
            assert values.min() - 1e-9 <= result.estimate[c] <= values.max() + 1e-9
        else:
            assert np.isnan(result.estimate[c])
    assert sum(result.n) + result.n_excluded == len(rows)


@pytest.mark.parametrize("propensity", [None, np.ones(6)])
def test_observational_data_are_flagged_not_causal(propensity: np.ndarray | None) -> None:
    result = channel_response(
        ["email", "sms", "email", "sms", "email", "sms"], [1, 0, 0, 1, 1, 1], propensity
    )
    assert result.causal is False
    assert result.message.startswith("not causal: ")
    assert "not what choosing it would do" in result.message
    assert result.estimate == pytest.approx((2 / 3, 2 / 3))
    assert all(np.isnan(result.ips))


def test_unexplored_decisions_are_left_out_and_said_so() -> None:
    result = response_by_cell([0, 1, 0, 1, 1], [1, 0, 0, 1, 1], [0.5, 0.5, 0.5, 1.0, 1.0])
    assert result.causal
    assert result.n_excluded == 2
    assert result.n == (2, 1)
    assert "2 decisions that were not randomized" in result.message


def test_hours_nobody_was_sent_at_are_reported_empty() -> None:
    result = send_time_response([0, 0, 5], [1, 0, 1], [0.5, 0.5, 0.5])
    assert len(result.estimate) == HOURS_IN_WEEK
    assert np.isnan(result.estimate[1])
    assert result.n[5] == 1
    assert "no randomized decision chose" in result.message


@pytest.mark.parametrize(
    ("call", "field", "fragment"),
    [
        (lambda: send_time_response([0, 200], [1, 0], [0.5, 0.5]), "hour_of_week", "0..167"),
        (lambda: send_time_response([0.5, 2], [1, 0], [0.5, 0.5]), "hour_of_week", "whole hours"),
        (lambda: response_by_cell([0, 1], [1, 0], [0.5, 0.0]), "propensity", "(0, 1]"),
        (lambda: response_by_cell([0, 1], [1, 0], [0.5, 1.5]), "propensity", "(0, 1]"),
        (lambda: response_by_cell([0, 1], [1, 0], [0.5]), "propensity", "one per decision"),
        (lambda: response_by_cell([0, 1], [1], [0.5, 0.5]), "response", "one per decision"),
        (lambda: response_by_cell([], [], []), "cell", "is empty"),
        (lambda: response_by_cell([0, 3], [1, 0], None, cells=[0, 1]), "cell", "cell[1] = 3"),
        (lambda: response_by_cell([0, 1], [1, np.nan], None), "response", "NaN"),
        (lambda: channel_response([["email"]], [1], None), "channel", "1-dimensional"),
    ],
)
def test_bad_inputs_name_the_argument(call: object, field: str, fragment: str) -> None:
    assert callable(call)
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.field == field
    assert fragment in str(caught.value)
