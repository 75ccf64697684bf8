"""Closed-form confidence intervals, vectorized: every argument broadcasts.

These are the building blocks of the lift, ROI, goal and breadth measurements. They take arrays so
that a simulation of thousands of experiments checks an interval's coverage in one call, and they
do no argument checking: the public measurement functions check their inputs at the door.

The choices, and why:

* **Wilson** for one proportion: it keeps its coverage near the nominal level for small counts and
  rates near 0 or 1, where the Wald interval ``p ± z·sqrt(p(1-p)/n)`` collapses to a point.
* **Newcombe's hybrid score interval** (method 10 of Newcombe 1998) for a difference of two
  proportions: it combines the two Wilson intervals, and inherits their good coverage.
* **Welch** for a difference of two means: it does not assume equal variances in the two groups,
  which a small holdout beside a large treated group rarely has.
* **The delta method on the log scale** for a ratio of means (relative lift): ``log(m1/m2)`` is
  much closer to normal than ``m1/m2``, and the interval stays positive.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "log_ratio_interval",
    "newcombe_interval",
    "normal_quantile",
    "welch_interval",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]


def normal_quantile(alpha: float) -> float:
    """Return ``z`` with ``P(|Z| <= z) = 1 - alpha`` for a standard normal ``Z`` (1.96 at 0.05)."""
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def wilson_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, *, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Return the Wilson score interval ``(low, high)`` of the proportion ``successes / trials``.

    Parameters
    ----------
    successes, trials
        Counts; they broadcast against each other. ``trials`` of 0 gives the whole (0, 1).
    alpha
        One minus the confidence level.

    Examples
    --------
    >>> low, high = wilson_interval(81, 263)
    >>> round(float(low), 4), round(float(high), 4)
    (0.2553, 0.3662)
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = normal_quantile(alpha)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / np.where(n > 0, n, 1.0), 0.5)
        safe_n = np.where(n > 0, n, 1.0)
        centre = (p + z2 / (2.0 * safe_n)) / (1.0 + z2 / safe_n)
        half = (z / (1.0 + z2 / safe_n)) * np.sqrt(
            p * (1.0 - p) / safe_n + z2 / (4.0 * safe_n * safe_n)
        )
    # At k = 0 and k = n the bounds are exactly 0 and 1; rounding must not move them inside.
    low = np.where((n > 0) & (k > 0), np.clip(centre - half, 0.0, 1.0), 0.0)
    high = np.where((n > 0) & (k < n), np.clip(centre + half, 0.0, 1.0), 1.0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def newcombe_interval(
    successes_1: npt.ArrayLike,
    trials_1: npt.ArrayLike,
    successes_2: npt.ArrayLike,
    trials_2: npt.ArrayLike,
    *,
    alpha: float = 0.05,
) -> tuple[FloatArray, FloatArray]:
    """Return Newcombe's hybrid score interval ``(low, high)`` of ``p1 - p2``.

    With ``(l1, u1)`` and ``(l2, u2)`` the Wilson intervals of the two proportions and
    ``d = p1 - p2``, the interval is ``d - sqrt((p1-l1)² + (u2-p2)²)`` to
    ``d + sqrt((u1-p1)² + (p2-l2)²)``.

    Examples
    --------
    Newcombe (1998), table II, example (a): 56/70 against 48/80.

    >>> low, high = newcombe_interval(56, 70, 48, 80)
    >>> round(float(low), 4), round(float(high), 4)
    (0.0524, 0.3339)
    """
    k1 = np.asarray(successes_1, dtype=np.float64)
    n1 = np.asarray(trials_1, dtype=np.float64)
    k2 = np.asarray(successes_2, dtype=np.float64)
    n2 = np.asarray(trials_2, dtype=np.float64)
    p1 = np.where(n1 > 0, k1 / np.where(n1 > 0, n1, 1.0), 0.5)
    p2 = np.where(n2 > 0, k2 / np.where(n2 > 0, n2, 1.0), 0.5)
    l1, u1 = wilson_interval(k1, n1, alpha=alpha)
    l2, u2 = wilson_interval(k2, n2, alpha=alpha)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def welch_degrees_of_freedom(
    var_1: npt.ArrayLike, n_1: npt.ArrayLike, var_2: npt.ArrayLike, n_2: npt.ArrayLike
) -> FloatArray:
    """Return the Welch–Satterthwaite degrees of freedom (infinite when both variances are 0)."""
    a = np.asarray(var_1, dtype=np.float64) / np.asarray(n_1, dtype=np.float64)
    b = np.asarray(var_2, dtype=np.float64) / np.asarray(n_2, dtype=np.float64)
    n1 = np.asarray(n_1, dtype=np.float64)
    n2 = np.asarray(n_2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bottom = np.where(n1 > 1, a * a / (n1 - 1.0), 0.0) + np.where(
            n2 > 1, b * b / (n2 - 1.0), 0.0
        )
        df = np.where(bottom > 0, (a + b) ** 2 / np.where(bottom > 0, bottom, 1.0), np.inf)
    return np.asarray(df, dtype=np.float64)


def welch_interval(
    mean_1: npt.ArrayLike,
    var_1: npt.ArrayLike,
    n_1: npt.ArrayLike,
    mean_2: npt.ArrayLike,
    var_2: npt.ArrayLike,
    n_2: npt.ArrayLike,
    *,
    alpha: float = 0.05,
) -> tuple[FloatArray, FloatArray]:
    """Return Welch's interval ``(low, high)`` of ``mean_1 - mean_2``.

    ``var_1`` and ``var_2`` are the sample variances (``ddof=1``) of the two groups.

    Examples
    --------
    >>> low, high = welch_interval(10.0, 4.0, 20, 8.0, 9.0, 30)
    >>> round(float(low), 3), round(float(high), 3)
    (0.578, 3.422)
    """
    se = np.sqrt(
        np.asarray(var_1, dtype=np.float64) / np.asarray(n_1, dtype=np.float64)
        + np.asarray(var_2, dtype=np.float64) / np.asarray(n_2, dtype=np.float64)
    )
    df = welch_degrees_of_freedom(var_1, n_1, var_2, n_2)
    t = np.where(
        np.isfinite(df),
        stats.t.ppf(1.0 - alpha / 2.0, np.where(np.isfinite(df), df, 1.0)),
        normal_quantile(alpha),
    )
    d = np.asarray(mean_1, dtype=np.float64) - np.asarray(mean_2, dtype=np.float64)
    return np.asarray(d - t * se, dtype=np.float64), np.asarray(d + t * se, dtype=np.float64)


def log_ratio_interval(
    mean_1: npt.ArrayLike,
    var_1: npt.ArrayLike,
    n_1: npt.ArrayLike,
    mean_2: npt.ArrayLike,
    var_2: npt.ArrayLike,
    n_2: npt.ArrayLike,
    *,
    alpha: float = 0.05,
) -> tuple[FloatArray, FloatArray]:
    """Return the delta-method interval ``(low, high)`` of ``mean_1 / mean_2``, on the log scale.

    ``Var(log m1/m2) ≈ var_1 / (n_1·m1²) + var_2 / (n_2·m2²)``; the interval of the log ratio is
    exponentiated back. It needs both means positive; elsewhere it is NaN.

    Examples
    --------
    >>> low, high = log_ratio_interval(0.2, 0.16, 1000, 0.1, 0.09, 1000)
    >>> round(float(low), 3), round(float(high), 3)
    (1.599, 2.501)
    """
    m1 = np.asarray(mean_1, dtype=np.float64)
    m2 = np.asarray(mean_2, dtype=np.float64)
    ok = (m1 > 0) & (m2 > 0)
    s1 = np.where(ok, m1, 1.0)
    s2 = np.where(ok, m2, 1.0)
    # Coefficients of variation as ratios first: squaring a tiny mean would underflow to zero.
    cv_1 = np.sqrt(np.asarray(var_1, dtype=np.float64) / np.asarray(n_1, dtype=np.float64)) / s1
    cv_2 = np.sqrt(np.asarray(var_2, dtype=np.float64) / np.asarray(n_2, dtype=np.float64)) / s2
    se = np.sqrt(cv_1 * cv_1 + cv_2 * cv_2)
    z = normal_quantile(alpha)
    log_ratio = np.log(s1) - np.log(s2)
    with np.errstate(over="ignore"):  # a ratio beyond the floats is infinite, not an error
        low = np.where(ok, np.exp(log_ratio - z * se), np.nan)
        high = np.where(ok, np.exp(log_ratio + z * se), np.nan)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
