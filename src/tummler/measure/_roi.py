"""Return on investment: incremental value minus cost, over cost, with its interval.

Only the *incremental* value counts: what the treated people brought beyond what they would have
brought anyway, which the holdout shows. With ``n_t`` treated people, mean values ``m_t`` (treated)
and ``m_h`` (holdout) per person, and a known total cost ``C``,

``incremental value = n_t · (m_t - m_h)``  and  ``ROI = (incremental value - C) / C``.

The cost is known; the uncertainty is in ``m_t - m_h``, so the ROI's interval is Welch's interval
of the difference, scaled (exact linear transformation, no approximation beyond Welch's). A seeded
bootstrap interval is given beside it for skewed values (a few large orders). Campaigns of one
objective combine by adding incremental values, variances and costs (:func:`combine_roi`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError
from tummler.core.randomness import make_rng
from tummler.measure._bootstrap import bootstrap_means, percentile_interval
from tummler.measure._checks import as_values, check_alpha, check_n_bootstrap, check_positive
from tummler.measure._intervals import normal_quantile, welch_interval
from tummler.measure._lift import Interval

__all__ = ["Roi", "combine_roi", "roi"]


@dataclass(frozen=True)
class Roi:
    """The return on a campaign's (or an objective's) cost.

    Attributes
    ----------
    label
        What is measured (``"the spring e-mail"``, ``"objective grow-repeat-purchases"``).
    n_treated
        People the cost was spent on.
    incremental_value, incremental_interval, incremental_std_error
        ``n_treated · (mean treated - mean holdout)`` and its uncertainty.
    cost
        The total cost.
    roi, roi_interval
        ``(incremental value - cost) / cost`` (0.5 = 50 % return) and its interval from the
        incremental value's.
    roi_interval_bootstrap
        The bootstrap percentile interval of the ROI, when asked for.
    message
        The result in plain words.
    alpha
        One minus the confidence level.
    """

    label: str
    n_treated: int
    incremental_value: float
    incremental_interval: Interval
    incremental_std_error: float
    cost: float
    roi: float
    roi_interval: Interval
    roi_interval_bootstrap: Interval | None
    message: str
    alpha: float


def _message(label: str, value: float, interval: Interval, alpha: float) -> str:
    bounds = f"{100 * (1 - alpha):g}% CI {100 * interval.low:.0f}% to {100 * interval.high:.0f}%"
    if interval.low > 0:
        outcome = "paid for itself"
    elif interval.high < 0:
        outcome = "cost more than it brought in"
    else:
        outcome = "may or may not pay for itself; the interval includes break-even"
    return f"{label}: ROI {100 * value:.0f}% ({bounds}); it {outcome}"


def roi(
    treated_value: npt.ArrayLike,
    holdout_value: npt.ArrayLike,
    cost: float,
    *,
    label: str = "the campaign",
    alpha: float = 0.05,
    n_bootstrap: int = 2000,
    rng: np.random.Generator | int = 0,
) -> Roi:
    """Measure a campaign's return: incremental value over the holdout, minus cost, over cost.

    Parameters
    ----------
    treated_value, holdout_value
        The value each person brought in the attribution window (0 for most), per group.
    cost
        The campaign's total cost, in the values' currency (sends, discounts, people's time).
    label
        How the message names what is measured.
    alpha
        One minus the confidence level.
    n_bootstrap
        Resamples for the bootstrap interval; 0 for none.
    rng
        The only source of randomness, or a seed for one.

    Raises
    ------
    InputError
        Naming the argument: not numbers, NaN, fewer than 2 people in a group, a cost that is not
        positive.

    Examples
    --------
    >>> result = roi([10.0, 0.0, 20.0, 10.0] * 50, [0.0, 10.0, 0.0, 10.0] * 50, 500.0,
    ...              n_bootstrap=0)
    >>> round(result.incremental_value), round(result.roi, 2)
    (1000, 1.0)
    """
    treated = as_values("treated_value", treated_value)
    holdout = as_values("holdout_value", holdout_value)
    for name, values in (("treated_value", treated), ("holdout_value", holdout)):
        if values.shape[0] < 2:
            raise InputError("needs at least 2 people to estimate a spread", field=name)
    cost_ = check_positive("cost", cost)
    alpha = check_alpha(alpha)
    n_bootstrap = check_n_bootstrap(n_bootstrap)
    n_t, n_h = treated.shape[0], holdout.shape[0]
    m_t, m_h = float(treated.mean()), float(holdout.mean())
    v_t, v_h = float(treated.var(ddof=1)), float(holdout.var(ddof=1))
    low, high = welch_interval(m_t, v_t, n_t, m_h, v_h, n_h, alpha=alpha)
    incremental = n_t * (m_t - m_h)
    increment_interval = Interval(n_t * float(low), n_t * float(high), "welch")
    value = (incremental - cost_) / cost_
    interval = Interval(
        (increment_interval.low - cost_) / cost_, (increment_interval.high - cost_) / cost_, "welch"
    )
    boot: Interval | None = None
    if n_bootstrap:
        generator = make_rng(rng)
        t = bootstrap_means(treated, binary=False, n_bootstrap=n_bootstrap, rng=generator)
        h = bootstrap_means(holdout, binary=False, n_bootstrap=n_bootstrap, rng=generator)
        bounds = percentile_interval((n_t * (t - h) - cost_) / cost_, alpha)
        if bounds is not None:
            boot = Interval(bounds[0], bounds[1], "bootstrap-percentile")
    return Roi(
        label=label,
        n_treated=n_t,
        incremental_value=incremental,
        incremental_interval=increment_interval,
        incremental_std_error=n_t * math.sqrt(v_t / n_t + v_h / n_h),
        cost=cost_,
        roi=value,
        roi_interval=interval,
        roi_interval_bootstrap=boot,
        message=_message(label, value, interval, alpha),
        alpha=alpha,
    )


def combine_roi(parts: Sequence[Roi], *, label: str = "the objective") -> Roi:
    """Combine the ROI of independent campaigns (of one objective) into one.

    Incremental values, their variances and costs add; the interval is normal, which the sum of
    several campaigns' estimates is close to.

    Raises
    ------
    InputError
        When ``parts`` is empty or mixes confidence levels.
    """
    if not parts:
        raise InputError("is empty; give the ROI of at least one campaign", field="parts")
    alphas = {part.alpha for part in parts}
    if len(alphas) != 1:
        raise InputError(
            f"mixes confidence levels {sorted(alphas)}; measure every campaign at one alpha",
            field="parts",
        )
    alpha = alphas.pop()
    incremental = sum(part.incremental_value for part in parts)
    std_error = math.sqrt(sum(part.incremental_std_error**2 for part in parts))
    cost = sum(part.cost for part in parts)
    z = normal_quantile(alpha)
    increment_interval = Interval(
        incremental - z * std_error, incremental + z * std_error, "normal"
    )
    value = (incremental - cost) / cost
    interval = Interval(
        (increment_interval.low - cost) / cost, (increment_interval.high - cost) / cost, "normal"
    )
    return Roi(
        label=label,
        n_treated=sum(part.n_treated for part in parts),
        incremental_value=incremental,
        incremental_interval=increment_interval,
        incremental_std_error=std_error,
        cost=cost,
        roi=value,
        roi_interval=interval,
        roi_interval_bootstrap=None,
        message=_message(label, value, interval, alpha),
        alpha=alpha,
    )
