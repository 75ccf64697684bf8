"""Spike alarms: the stated false-alarm rate is a bound, and a real spike is found."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from tummler.core.errors import TummlerError
from tummler.listen import detect_spikes, fit_hourly_baseline

WEEKDAY = np.array([1.2, 1.1, 1.0, 1.0, 1.1, 0.8, 0.8])
HOUR = 0.4 + 1.2 * np.exp(-(((np.arange(24) - 14) / 4.0) ** 2))
START = np.datetime64("2026-10-05T00", "h")  # a Monday


def _world(
    rng: np.random.Generator, weeks: int, level: float, k: float
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Hourly counts: negative binomial around level × weekday × hour (k = inf: Poisson)."""
    hours = START + np.arange(weeks * 7 * 24)
    stamps = hours.astype(np.int64)
    mu = level * WEEKDAY[(stamps // 24 + 3) % 7] * HOUR[stamps % 24]
    rate = mu if np.isinf(k) else rng.gamma(k, mu / k)
    return hours, rng.poisson(rate), mu


@pytest.mark.parametrize(("level", "k"), [(5.0, 2.0), (5.0, 5.0), (30.0, 10.0), (1.0, np.inf)])
def test_false_alarms_stay_within_the_stated_rate(level: float, k: float) -> None:
    history = 4 * 7 * 24
    alarms = watched = 0
    for seed in range(30):
        hours, counts, _ = _world(np.random.default_rng(seed), 8, level, k)
        baseline = fit_hourly_baseline(hours[:history], counts[:history])
        found = detect_spikes(baseline, hours[history:], counts[history:])
        alarms += len(found)
        watched += hours.size - history
    per_30_days = alarms / (watched / 720)
    assert per_30_days <= 1.0  # the default stated rate: one false alarm in 30 days


def test_an_injected_spike_is_found_at_its_hour() -> None:
    caught = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        hours, counts, mu = _world(rng, 5, 5.0, 5.0)
        history = 4 * 7 * 24
        at = history + 24 * int(rng.integers(7)) + 15  # some afternoon of the watched week
        counts[at] += int(4 * mu[at])  # five times the usual mentions in that hour
        baseline = fit_hourly_baseline(hours[:history], counts[:history])
        found = detect_spikes(baseline, hours[history:], counts[history:])
        caught += any(spike.hour == hours[at] for spike in found)
    assert caught >= 18


def test_the_weekly_and_daily_rhythm_is_recovered() -> None:
    hours, counts, _ = _world(np.random.default_rng(7), 8, 30.0, 10.0)
    baseline = fit_hourly_baseline(hours, counts)
    np.testing.assert_allclose(baseline.weekday, WEEKDAY / WEEKDAY.mean(), rtol=0.06)
    np.testing.assert_allclose(baseline.hour, HOUR / HOUR.mean(), rtol=0.12)
    assert baseline.dispersion == pytest.approx(10.0, rel=0.3)


@pytest.mark.parametrize(
    ("hours", "counts", "message"),
    [
        (START + np.arange(24 * 10), np.zeros(24 * 10), "needs 28 days of hourly counts"),
        (START + np.arange(24 * 28), -np.ones(24 * 28), "finite and >= 0"),
        (START + np.arange(24 * 28), np.zeros(5), "must be 1-D and alike"),
    ],
)
def test_bad_histories_are_refused(
    hours: npt.NDArray[np.datetime64], counts: npt.NDArray[np.float64], message: str
) -> None:
    with pytest.raises(TummlerError, match=message):
        fit_hourly_baseline(hours, counts)


def test_the_rate_must_be_a_rate() -> None:
    hours = START + np.arange(24 * 28)
    baseline = fit_hourly_baseline(hours, np.full(hours.size, 3))
    with pytest.raises(TummlerError, match="must be in"):
        detect_spikes(baseline, hours[:2], [1, 1], false_alarms_per_30_days=0)
