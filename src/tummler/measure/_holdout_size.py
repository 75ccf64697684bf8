"""How large a holdout must be to see an effect: the sample size of a two-sided test. Pure."""

from __future__ import annotations

import math

from scipy import stats

from tummler.measure._intervals import normal_quantile

__all__ = ["required_holdout"]


def required_holdout(
    *,
    var_treated: float,
    var_holdout: float,
    n_treated: int,
    min_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> tuple[int | None, int | None]:
    """Return ``(holdout size, size per group)`` needed to detect ``min_effect``.

    The first keeps the treated group as it is and asks how large the holdout must be for a
    two-sided test at level ``alpha`` to detect a difference of ``min_effect`` with probability
    ``power``; when even an infinite holdout would not do (the treated group is too small), it is
    None and the second gives the size of two equal groups that would. Variances are per person.

    >>> required_holdout(var_treated=0.09, var_holdout=0.09, n_treated=10**9, min_effect=0.01)
    (7065, None)
    """
    z = normal_quantile(alpha) + float(stats.norm.ppf(power))
    target_var = (min_effect / z) ** 2
    room = target_var - var_treated / n_treated
    if room > 0 and var_holdout > 0:
        return math.ceil(var_holdout / room), None
    return None, math.ceil((var_treated + var_holdout) / target_var)
