"""An always-valid sequential test of two variants: the mixture SPRT (mSPRT).

A marketer looks at a running test every day. A fixed-horizon p-value checked at every look
declares a winner far more often than its level says when there is no difference; the mSPRT of
Johari, Koomen, Pekelis and Walsh ("Peeking at A/B tests", KDD 2017; "Always valid inference",
Operations Research 2022) gives a p-value and a confidence interval that stay valid however often,
and whenever, one looks.

At each look the difference of the two variants' means, ``θ̂ = mean_B - mean_A``, has variance
``V = var_A / n_A + var_B / n_B``. Mixing the normal likelihood ratio of ``θ`` against ``θ0`` over a
normal prior ``θ ~ N(θ0, τ²)`` gives

``Λ(θ0) = sqrt(V / (V + τ²)) · exp(τ² (θ̂ - θ0)² / (2 V (V + τ²)))``,

a martingale under ``θ = θ0``, so by Ville's inequality it ever reaches ``1/α`` with probability at
most ``α``. The always-valid p-value is the running minimum of ``1 / Λ(0)``; the confidence
sequence is the running intersection of ``{θ0 : Λ(θ0) < 1/α}``, which at each look is
``θ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/α) + log((V + τ²) / V)))``.

``τ`` (``mixture_sd``) is the size of difference one expects; the test is valid for every ``τ``
and most powerful for differences near it. Variances are estimated from the data at each look
(for rates from ``p(1-p)``), which makes validity approximate at the first looks; looks before both
arms have ``min_per_arm`` people are therefore not tested.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError
from tummler.measure._checks import as_counts, as_values, check_alpha, check_positive

__all__ = [
    "SequentialTest",
    "StopRecommendation",
    "msprt",
    "sequential_test_means",
    "sequential_test_rates",
]

FloatArray = npt.NDArray[np.float64]


class StopRecommendation(StrEnum):
    """What to do with a running variant test after the latest look."""

    STOP_WINNER = "stop: winner"
    STOP_NO_DIFFERENCE = "stop: no meaningful difference"
    CONTINUE = "continue"


@dataclass(frozen=True)
class SequentialTest:
    """The mSPRT after every look; every tuple has one entry per look.

    Attributes
    ----------
    labels
        The two variants' names, A then B; differences are B minus A.
    difference
        The estimated difference ``θ̂`` at each look (NaN before the first tested look).
    p_value
        The always-valid p-value of "no difference" at each look (non-increasing).
    ci_low, ci_high
        The confidence sequence of the difference at each look (narrowing; infinite before the
        first tested look).
    likelihood_ratio
        The mixture likelihood ratio ``Λ(0)`` at each look.
    recommendation, reason
        What to do after the last look, and why, in plain words.
    winner
        The better variant's label when ``recommendation`` is ``stop: winner``, else None.
    alpha, mixture_sd, min_effect
        The settings.
    """

    labels: tuple[str, str]
    difference: tuple[float, ...]
    p_value: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    likelihood_ratio: tuple[float, ...]
    recommendation: StopRecommendation
    reason: str
    winner: str | None
    alpha: float
    mixture_sd: float
    min_effect: float | None


def _sequence(
    estimate: FloatArray, variance: FloatArray, tau: float, alpha: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return (Λ(0), always-valid p-value, CS low, CS high) along the last axis of the inputs."""
    tested = np.isfinite(estimate) & np.isfinite(variance) & (variance > 0)
    v = np.where(tested, variance, 1.0)
    theta = np.where(tested, estimate, 0.0)
    tau2 = tau * tau
    log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * theta * theta / (2.0 * v * (v + tau2))
    log_lr = np.where(tested, log_lr, 0.0)
    p_value = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)), axis=-1)
    half = np.sqrt(v * (v + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + np.log((v + tau2) / v)))
    low = np.maximum.accumulate(np.where(tested, theta - half, -np.inf), axis=-1)
    high = np.minimum.accumulate(np.where(tested, theta + half, np.inf), axis=-1)
    with np.errstate(over="ignore"):  # overwhelming evidence: Λ is infinite, p is 0
        likelihood_ratio = np.exp(log_lr)
    return likelihood_ratio, p_value, low, high


def _format(value: float, rate: bool) -> str:
    return f"{100.0 * value:.2f} points" if rate else f"{value:.4g}"


def msprt(
    difference: npt.ArrayLike,
    variance: npt.ArrayLike,
    *,
    mixture_sd: float,
    alpha: float = 0.05,
    min_effect: float | None = None,
    labels: tuple[str, str] = ("A", "B"),
    rate: bool = False,
) -> SequentialTest:
    """Run the mSPRT on a difference estimated at successive looks, and recommend what to do.

    Parameters
    ----------
    difference
        ``mean_B - mean_A`` at each look, from all data up to that look; NaN for a look that is
        not to be tested.
    variance
        The variance of that estimate at each look (``var_A / n_A + var_B / n_B``); 0 or NaN
        for a look that is not to be tested.
    mixture_sd
        ``τ``, the size of difference one expects (0.01 for one point of a rate).
    alpha
        The level: the chance of ever declaring a winner when there is no difference.
    min_effect
        The smallest difference that matters; when the confidence sequence lies within
        ``±min_effect`` the test can stop with no meaningful difference. None never stops so.
    labels
        The names of variants A and B.
    rate
        Whether the difference is of rates (the reason then speaks of percentage points).

    Raises
    ------
    InputError
        Naming the argument: lengths that differ, no look, a negative variance, a setting out of
        range.

    Examples
    --------
    >>> test = msprt([0.02, 0.021, 0.02], [1e-4, 2e-5, 1e-5], mixture_sd=0.02)
    >>> test.recommendation, test.winner
    (<StopRecommendation.STOP_WINNER: 'stop: winner'>, 'B')
    """
    alpha = check_alpha(alpha)
    tau = check_positive("mixture_sd", mixture_sd)
    if min_effect is not None:
        check_positive("min_effect", min_effect)
    estimate = np.asarray(difference, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    if estimate.ndim != 1 or estimate.size == 0:
        raise InputError(
            f"must be a non-empty 1-dimensional array (one value per look), got shape "
            f"{estimate.shape}",
            field="difference",
        )
    if var.shape != estimate.shape:
        raise InputError(
            f"has shape {var.shape} but difference has {estimate.shape}; give one per look",
            field="variance",
        )
    if (var < 0).any():
        bad = int(np.flatnonzero(var < 0)[0])
        raise InputError(f"is negative at look {bad}; a variance is >= 0", field="variance")
    if len(labels) != 2 or labels[0] == labels[1]:
        raise InputError(f"needs two distinct names, got {labels!r}", field="labels")
    lr, p_value, low, high = _sequence(estimate, var, tau, alpha)
    tested = np.isfinite(estimate) & np.isfinite(var) & (var > 0)
    shown = np.where(tested, estimate, np.nan)
    last_p = float(p_value[-1])
    lo, hi = float(low[-1]), float(high[-1])
    winner: str | None = None
    if not tested.any():
        recommendation = StopRecommendation.CONTINUE
        reason = "continue: no look has enough data in both variants to test yet"
    elif last_p <= alpha:
        winner = labels[1] if lo > 0 else labels[0]
        loser = labels[0] if winner == labels[1] else labels[1]
        recommendation = StopRecommendation.STOP_WINNER
        reason = (
            f"stop: {winner} wins over {loser}; the always-valid p-value {last_p:.3g} is at most "
            f"{alpha:g} and the confidence sequence of {labels[1]} - {labels[0]}, "
            f"{_format(lo, rate)} to {_format(hi, rate)}, excludes zero"
        )
    elif min_effect is not None and -min_effect < lo and hi < min_effect:
        recommendation = StopRecommendation.STOP_NO_DIFFERENCE
        reason = (
            f"stop: no meaningful difference; the confidence sequence of {labels[1]} - "
            f"{labels[0]}, {_format(lo, rate)} to {_format(hi, rate)}, lies within "
            f"±{_format(min_effect, rate)}"
        )
    else:
        recommendation = StopRecommendation.CONTINUE
        reason = (
            f"continue: the always-valid p-value {last_p:.3g} is above {alpha:g}; the difference "
            f"{labels[1]} - {labels[0]} could still be anywhere from {_format(lo, rate)} to "
            f"{_format(hi, rate)}"
        )
    return SequentialTest(
        labels=(labels[0], labels[1]),
        difference=tuple(float(v) for v in shown),
        p_value=tuple(float(v) for v in p_value),
        ci_low=tuple(float(v) for v in low),
        ci_high=tuple(float(v) for v in high),
        likelihood_ratio=tuple(float(v) for v in lr),
        recommendation=recommendation,
        reason=reason,
        winner=winner,
        alpha=alpha,
        mixture_sd=tau,
        min_effect=min_effect,
    )


def _check_cumulative(name: str, counts: npt.NDArray[np.int64]) -> None:
    if (np.diff(counts) < 0).any():
        bad = int(np.flatnonzero(np.diff(counts) < 0)[0]) + 1
        raise InputError(
            f"falls at look {bad}; pass cumulative totals (everything up to each look)", field=name
        )


def _check_same_looks(arrays: Mapping[str, npt.NDArray[Any]], first: str) -> None:
    """Every cumulative series must have one value per look, as many as ``first`` has."""
    looks = arrays[first].shape[0]
    for name, array in arrays.items():
        if array.shape[0] != looks:
            raise InputError(
                f"has {array.shape[0]} looks but {first} has {looks}; give one per look",
                field=name,
            )


def _check_min_per_arm(min_per_arm: int, least: int) -> None:
    if isinstance(min_per_arm, bool) or not isinstance(min_per_arm, int) or min_per_arm < least:
        raise InputError(f"= {min_per_arm!r} must be an integer >= {least}", field="min_per_arm")


def sequential_test_rates(
    successes_a: npt.ArrayLike,
    trials_a: npt.ArrayLike,
    successes_b: npt.ArrayLike,
    trials_b: npt.ArrayLike,
    *,
    mixture_sd: float,
    alpha: float = 0.05,
    min_effect: float | None = None,
    labels: tuple[str, str] = ("A", "B"),
    min_per_arm: int = 100,
) -> SequentialTest:
    """Run the mSPRT on two variants' response rates, from cumulative counts at each look.

    Parameters
    ----------
    successes_a, trials_a, successes_b, trials_b
        Cumulative counts at each look: people who responded, and people who got the variant.
    mixture_sd, alpha, min_effect, labels
        As in :func:`msprt`; ``mixture_sd`` and ``min_effect`` are in rate units (0.01 = 1 point).
    min_per_arm
        Looks before both variants have this many people are not tested: the variance estimate
        ``p(1-p)/n`` is too rough before.

    Examples
    --------
    >>> looks = np.arange(1, 11) * 1000
    >>> test = sequential_test_rates(looks // 10, looks, looks * 13 // 100, looks, mixture_sd=0.02)
    >>> test.recommendation.value, test.winner
    ('stop: winner', 'B')
    """
    arrays = {}
    for name, value in (
        ("successes_a", successes_a),
        ("trials_a", trials_a),
        ("successes_b", successes_b),
        ("trials_b", trials_b),
    ):
        arrays[name] = as_counts(name, value)
        _check_cumulative(name, arrays[name])
    _check_same_looks(arrays, "successes_a")
    for arm in ("a", "b"):
        s, n = arrays[f"successes_{arm}"], arrays[f"trials_{arm}"]
        if (s > n).any():
            bad = int(np.flatnonzero(s > n)[0])
            raise InputError(
                f"at look {bad} is {int(s[bad])}, more than trials_{arm} = {int(n[bad])}",
                field=f"successes_{arm}",
            )
    _check_min_per_arm(min_per_arm, 1)
    na = arrays["trials_a"].astype(np.float64)
    nb = arrays["trials_b"].astype(np.float64)
    enough = (na >= min_per_arm) & (nb >= min_per_arm)
    safe_a, safe_b = np.where(enough, na, 1.0), np.where(enough, nb, 1.0)
    pa = arrays["successes_a"] / safe_a
    pb = arrays["successes_b"] / safe_b
    # (s + 1) / (n + 2) keeps the variance positive when a variant has no response yet.
    qa = (arrays["successes_a"] + 1.0) / (safe_a + 2.0)
    qb = (arrays["successes_b"] + 1.0) / (safe_b + 2.0)
    variance = qa * (1.0 - qa) / safe_a + qb * (1.0 - qb) / safe_b
    return msprt(
        np.where(enough, pb - pa, np.nan),
        np.where(enough, variance, 0.0),
        mixture_sd=mixture_sd,
        alpha=alpha,
        min_effect=min_effect,
        labels=labels,
        rate=True,
    )


def sequential_test_means(
    count_a: npt.ArrayLike,
    sum_a: npt.ArrayLike,
    sum_squares_a: npt.ArrayLike,
    count_b: npt.ArrayLike,
    sum_b: npt.ArrayLike,
    sum_squares_b: npt.ArrayLike,
    *,
    mixture_sd: float,
    alpha: float = 0.05,
    min_effect: float | None = None,
    labels: tuple[str, str] = ("A", "B"),
    min_per_arm: int = 30,
) -> SequentialTest:
    """Run the mSPRT on two variants' mean values, from cumulative sums at each look.

    Parameters
    ----------
    count_a, sum_a, sum_squares_a, count_b, sum_b, sum_squares_b
        Cumulative totals at each look: people, the sum of their values, the sum of squared
        values. Sums are what a store can keep up to date cheaply.
    mixture_sd, alpha, min_effect, labels
        As in :func:`msprt`, in the values' units.
    min_per_arm
        Looks before both variants have this many people are not tested.
    """
    counts = {"count_a": as_counts("count_a", count_a), "count_b": as_counts("count_b", count_b)}
    sums = {
        name: as_values(name, value)
        for name, value in (
            ("sum_a", sum_a),
            ("sum_squares_a", sum_squares_a),
            ("sum_b", sum_b),
            ("sum_squares_b", sum_squares_b),
        )
    }
    _check_same_looks({**counts, **sums}, "count_a")
    for name in counts:
        _check_cumulative(name, counts[name])
    _check_min_per_arm(min_per_arm, 2)
    na = counts["count_a"].astype(np.float64)
    nb = counts["count_b"].astype(np.float64)
    enough = (na >= min_per_arm) & (nb >= min_per_arm)
    safe_a, safe_b = np.where(enough, na, 2.0), np.where(enough, nb, 2.0)
    mean_a, mean_b = sums["sum_a"] / safe_a, sums["sum_b"] / safe_b
    var_a = np.maximum(sums["sum_squares_a"] - safe_a * mean_a**2, 0.0) / (safe_a - 1.0)
    var_b = np.maximum(sums["sum_squares_b"] - safe_b * mean_b**2, 0.0) / (safe_b - 1.0)
    return msprt(
        np.where(enough, mean_b - mean_a, np.nan),
        np.where(enough, var_a / safe_a + var_b / safe_b, 0.0),
        mixture_sd=mixture_sd,
        alpha=alpha,
        min_effect=min_effect,
        labels=labels,
    )
