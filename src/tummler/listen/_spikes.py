"""Spike alarms on hourly mention counts, with a stated false-alarm rate.

Mentions come in daily and weekly rhythms: a Monday-morning peak is not news. The baseline is
multiplicative, ``expected = level × weekday[d] × hour[h]``, fitted to the history by alternating
means (Poisson maximum likelihood for a log-linear model with two factors), and its spread a
negative binomial whose dispersion is estimated from the history by moments, because mention
counts vary more than Poisson counts do; the spread also counts the baseline's own estimation
error. An hour is an alarm when its count is so high that, under the baseline, an hour like it
would happen by chance at most ``false_alarms_per_30_days`` times in 30 days, with a
:data:`MARGIN` for what the estimates still miss (``α = MARGIN × rate / 720`` per hour). The rate is
a bound when the history is like the hours being watched: at least :data:`MIN_HISTORY_DAYS` of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from tummler.core.errors import TummlerError

__all__ = ["MIN_HISTORY_DAYS", "HourlyBaseline", "Spike", "detect_spikes", "fit_hourly_baseline"]

#: Days of history the baseline needs: each weekday four times (with two weeks, false alarms
#: came twice as often as stated in simulations, the factors being too uncertain).
MIN_HISTORY_DAYS = 28
HOURS_PER_30_DAYS = 720
#: Alarms are raised at this fraction of the stated per-hour rate: the baseline is an estimate,
#: and in seeded simulations (4 weeks of history, strong overdispersion k = 2) the plain rule
#: raised 1.5 times the stated rate. With the margin the rate is a bound: 0.2-0.85 of it measured.
MARGIN = 0.5

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HourlyBaseline:
    """What an ordinary hour looks like: ``level × weekday[d] × hour[h]``, negative binomial.

    Attributes
    ----------
    level
        Mean mentions per hour.
    weekday, hour
        Factors, Monday = 0, each with mean 1.
    dispersion
        The negative binomial's ``k``: variance ``μ + μ² / k`` (``inf``: Poisson).
    weekday_error, hour_error
        The relative variance of each fitted factor: the baseline is itself an estimate, and an
        hour is judged against ``μ`` whose own error widens the spread to
        ``μ + μ² (1/k + error)``. Without it a two-week history raises three times as many
        false alarms as stated.
    """

    level: float
    weekday: FloatArray
    hour: FloatArray
    dispersion: float
    weekday_error: FloatArray
    hour_error: FloatArray

    def expected(self, hours: npt.NDArray[np.datetime64]) -> FloatArray:
        """Expected mentions in each of ``hours`` (``datetime64`` hours, UTC)."""
        day, hour = _calendar(hours)
        return np.asarray(self.level * self.weekday[day] * self.hour[hour], dtype=np.float64)

    def tail_probability(self, hours: npt.NDArray[np.datetime64], counts: FloatArray) -> FloatArray:
        """``P(X ≥ count)`` for each hour under the baseline."""
        mu = np.maximum(self.expected(hours), 1e-9)
        observed = np.asarray(counts, dtype=np.float64)
        day, hour = _calendar(hours)
        k = 1.0 / (1.0 / self.dispersion + self.weekday_error[day] + self.hour_error[hour])
        return np.asarray(stats.nbinom.sf(observed - 1, k, k / (k + mu)), dtype=np.float64)


@dataclass(frozen=True)
class Spike:
    """An hour with far more mentions than the baseline expects."""

    hour: np.datetime64
    observed: int
    expected: float
    p_value: float


def _calendar(
    hours: npt.NDArray[np.datetime64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    stamps = np.asarray(hours, dtype="datetime64[h]").astype(np.int64)
    days = stamps // 24
    # 1970-01-01 was a Thursday: weekday 3 with Monday = 0
    return (days + 3) % 7, stamps % 24


def fit_hourly_baseline(
    hours: npt.NDArray[np.datetime64], counts: npt.ArrayLike, *, iterations: int = 50
) -> HourlyBaseline:
    """Fit the weekday × hour baseline to a history of hourly counts.

    Parameters
    ----------
    hours
        The history's hours as ``datetime64`` (UTC), every hour of at least
        :data:`MIN_HISTORY_DAYS` days; an hour without mentions must be there with count 0.
    counts
        Mentions in each hour.
    """
    y = np.asarray(counts, dtype=np.float64)
    stamps = np.asarray(hours, dtype="datetime64[h]")
    if y.shape != stamps.shape or y.ndim != 1:
        raise TummlerError(f"hours and counts must be 1-D and alike, got {stamps.shape}, {y.shape}")
    if (y < 0).any() or not np.isfinite(y).all():
        raise TummlerError("counts must be finite and >= 0")
    if np.unique(stamps).size < MIN_HISTORY_DAYS * 24:
        raise TummlerError(
            f"the baseline needs {MIN_HISTORY_DAYS} days of hourly counts, got "
            f"{np.unique(stamps).size / 24:.1f}; hours without mentions count as 0"
        )
    day, hour = _calendar(stamps)
    level = max(float(y.mean()), 1e-9)
    weekday, hourly = np.ones(7), np.ones(24)
    for _ in range(iterations):  # alternating means: the Poisson MLE of the two-factor model
        weekday = _factor(y, level * hourly[hour], day, 7)
        hourly = _factor(y, level * weekday[day], hour, 24)
    mu = level * weekday[day] * hourly[hour]
    dispersion = _dispersion(y, mu)
    return HourlyBaseline(
        level,
        weekday,
        hourly,
        dispersion,
        weekday_error=_factor_error(y, day, 7, dispersion),
        hour_error=_factor_error(y, hour, 24, dispersion),
    )


def _dispersion(y: FloatArray, mu: FloatArray) -> float:
    """The negative binomial's ``k`` by maximum likelihood given the fitted means (inf: Poisson)."""
    from scipy.optimize import minimize_scalar

    if float(((y - mu) ** 2 - y).sum()) <= 0:  # no more spread than Poisson
        return float(np.inf)

    def loss(log_k: float) -> float:
        k = np.exp(log_k)
        return -float(stats.nbinom.logpmf(y, k, k / (k + mu)).sum())

    found = minimize_scalar(loss, bounds=(np.log(1e-2), np.log(1e6)), method="bounded")
    return float(np.exp(found.x))


def _factor_error(
    y: FloatArray, group: npt.NDArray[np.int64], size: int, dispersion: float
) -> FloatArray:
    """Relative variance of each group's mean count: ``(1/μ + 1/k) / n`` over its ``n`` hours."""
    n = np.bincount(group, minlength=size).astype(np.float64)
    mean = np.bincount(group, weights=y, minlength=size) / np.maximum(n, 1.0)
    error = (1.0 / np.maximum(mean, 1e-3) + 1.0 / dispersion) / np.maximum(n, 1.0)
    return np.asarray(error, dtype=np.float64)


def _factor(y: FloatArray, base: FloatArray, group: npt.NDArray[np.int64], size: int) -> FloatArray:
    """Each group's observed over expected counts, normalized to mean 1."""
    observed = np.bincount(group, weights=y, minlength=size)
    expected = np.bincount(group, weights=base, minlength=size)
    factor = np.where(expected > 0, observed / np.maximum(expected, 1e-12), 1.0)
    factor = np.maximum(factor, 1e-3)  # an hour that never had a mention still can
    return np.asarray(factor / factor.mean(), dtype=np.float64)


def detect_spikes(
    baseline: HourlyBaseline,
    hours: npt.NDArray[np.datetime64],
    counts: npt.ArrayLike,
    *,
    false_alarms_per_30_days: float = 1.0,
) -> list[Spike]:
    """The hours whose counts the baseline would see by chance less than the stated rate.

    Examples
    --------
    >>> hours = np.arange("2026-10-19T00", "2026-11-16T00", dtype="datetime64[h]")
    >>> baseline = fit_hourly_baseline(hours, np.full(hours.size, 10))
    >>> watched = np.arange("2026-11-16T00", "2026-11-16T03", dtype="datetime64[h]")
    >>> [(str(s.hour), s.observed) for s in detect_spikes(baseline, watched, [11, 40, 9])]
    [('2026-11-16T01', 40)]
    """
    if not 0 < false_alarms_per_30_days < HOURS_PER_30_DAYS:
        raise TummlerError(
            f"false_alarms_per_30_days = {false_alarms_per_30_days!r} must be in (0, 720)"
        )
    observed = np.asarray(counts, dtype=np.float64)
    stamps = np.asarray(hours, dtype="datetime64[h]")
    p = baseline.tail_probability(stamps, observed)
    alpha = MARGIN * false_alarms_per_30_days / HOURS_PER_30_DAYS
    expected = baseline.expected(stamps)
    return [
        Spike(stamps[i], int(observed[i]), float(expected[i]), float(p[i]))
        for i in np.flatnonzero(p < alpha)
    ]
