"""Holdout lift: what a campaign changed in a KPI, against the people held out of it.

The treated group got the campaign, the holdout was chosen at random and did not; the difference of
their KPIs (a rate, such as conversion, or a mean value per person, such as spend) is the
campaign's effect. Each lift comes with

* the **absolute difference** and its interval: Newcombe's hybrid score interval for a rate,
  Welch's interval for a mean;
* the **relative lift** ``treated / holdout - 1``, with a delta-method interval on the log scale and
  a seeded bootstrap percentile interval;
* a **verdict** in plain words: the effect is real, there is no detectable effect, or the holdout is
  too small to tell (with about how many people it would take).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from tummler.core.errors import InputError
from tummler.core.randomness import make_rng
from tummler.measure._bootstrap import binomial_means, bootstrap_means, percentile_interval
from tummler.measure._checks import (
    as_counts,
    as_values,
    check_alpha,
    check_n_bootstrap,
    check_positive,
    is_binary,
)
from tummler.measure._holdout_size import required_holdout
from tummler.measure._intervals import (
    log_ratio_interval,
    newcombe_interval,
    welch_interval,
    wilson_interval,
)

__all__ = [
    "Interval",
    "KpiKind",
    "Lift",
    "Verdict",
    "format_effect",
    "holdout_lift",
    "lift_from_counts",
]

KpiKind = Literal["rate", "mean"]
FloatArray = npt.NDArray[np.float64]

#: When no smallest effect worth detecting is given: a tenth of the holdout's KPI.
DEFAULT_RELATIVE_MIN_EFFECT = 0.1


class Verdict(StrEnum):
    """What a lift's interval lets one say."""

    EFFECT = "effect"
    """The interval excludes zero: the campaign changed the KPI (up or down)."""
    NO_EFFECT = "no_effect"
    """The interval includes zero and rules out every effect of the smallest size that matters."""
    UNDERPOWERED = "underpowered"
    """The interval includes zero and effects that matter: the holdout is too small to tell."""


@dataclass(frozen=True)
class Interval:
    """A confidence interval and how it was computed (``wilson``, ``newcombe``, ``welch``, ...)."""

    low: float
    high: float
    method: str

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the closed interval."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Lift:
    """A campaign's effect on one KPI, treated against holdout.

    Attributes
    ----------
    treatment, kpi
        What was given (``"the e-mail"``) and what was measured (``"conversion"``), as the
        verdict names them.
    kind
        ``rate`` (share of people with the event; differences are shown in percentage points) or
        ``mean`` (value per person).
    n_treated, n_holdout
        People in each group.
    treated_mean, holdout_mean
        The KPI in each group, with ``treated_interval`` and ``holdout_interval`` (Wilson for a
        rate, Student's t for a mean).
    difference, difference_interval
        ``treated_mean - holdout_mean`` and its interval (Newcombe for a rate, Welch for a mean).
    p_value
        Two-sided p-value of "no difference" (two-proportion z-test, or Welch's t-test).
    relative_lift
        ``treated_mean / holdout_mean - 1``; None when the holdout's KPI is 0.
    relative_interval_delta, relative_interval_bootstrap
        Intervals of the relative lift: delta method on the log scale, and bootstrap percentile.
        None where undefined (a zero mean) or not asked for (no bootstrap).
    min_effect
        The smallest absolute difference that matters, which separates "no effect" from
        "too few people to tell"; None when nobody in either group had the event.
    required_holdout
        When underpowered: about how many people the holdout needs to detect ``min_effect`` with
        80 % power (``required_per_group`` when the treated group is too small as well).
    verdict, message
        The verdict and a sentence that says it in plain words.
    alpha
        One minus the confidence level of every interval.
    """

    treatment: str
    kpi: str
    kind: KpiKind
    n_treated: int
    n_holdout: int
    treated_mean: float
    holdout_mean: float
    treated_interval: Interval
    holdout_interval: Interval
    difference: float
    difference_interval: Interval
    p_value: float
    relative_lift: float | None
    relative_interval_delta: Interval | None
    relative_interval_bootstrap: Interval | None
    min_effect: float | None
    required_holdout: int | None
    required_per_group: int | None
    verdict: Verdict
    message: str
    alpha: float


@dataclass(frozen=True)
class _Group:
    n: int
    mean: float
    var: float  # sample variance (ddof=1) of a mean KPI; p(1-p) of a rate
    successes: int | None  # for a rate


def _group_from_values(values: FloatArray, kind: KpiKind) -> _Group:
    n = int(values.shape[0])
    mean = float(values.mean())
    if kind == "rate":
        return _Group(n=n, mean=mean, var=mean * (1.0 - mean), successes=int(values.sum()))
    var = float(values.var(ddof=1)) if n > 1 else 0.0
    return _Group(n=n, mean=mean, var=var, successes=None)


def format_effect(value: float, kind: KpiKind, *, signed: bool = False) -> str:
    """Write a difference as people read it: percentage points for a rate, the value otherwise.

    >>> format_effect(0.0031, "rate")
    '0.31 points'
    >>> format_effect(-12.5, "mean", signed=True)
    '-12.50'
    """
    sign = "+" if signed else ""
    if kind == "rate":
        return f"{100.0 * value:{sign}.2f} points"
    if abs(value) >= 1000:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.2f}"


def _format_bound(value: float, kind: KpiKind) -> str:
    return f"{100.0 * value:.2f}" if kind == "rate" else format_effect(value, kind)


def _mean_interval(group: _Group, kind: KpiKind, alpha: float) -> Interval:
    if kind == "rate":
        assert group.successes is not None
        low, high = wilson_interval(group.successes, group.n, alpha=alpha)
        return Interval(float(low), float(high), "wilson")
    if group.n < 2:
        return Interval(-math.inf, math.inf, "t")
    half = float(stats.t.ppf(1.0 - alpha / 2.0, group.n - 1)) * math.sqrt(group.var / group.n)
    return Interval(group.mean - half, group.mean + half, "t")


def _difference(
    treated: _Group, holdout: _Group, kind: KpiKind, alpha: float
) -> tuple[Interval, float]:
    if kind == "rate":
        assert treated.successes is not None
        assert holdout.successes is not None
        low, high = newcombe_interval(
            treated.successes, treated.n, holdout.successes, holdout.n, alpha=alpha
        )
        pooled = (treated.successes + holdout.successes) / (treated.n + holdout.n)
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / treated.n + 1.0 / holdout.n))
        d = treated.mean - holdout.mean
        p_value = 1.0 if se == 0 else float(2.0 * stats.norm.sf(abs(d) / se))
        return Interval(float(low), float(high), "newcombe"), p_value
    low, high = welch_interval(
        treated.mean, treated.var, treated.n, holdout.mean, holdout.var, holdout.n, alpha=alpha
    )
    se = math.sqrt(treated.var / treated.n + holdout.var / holdout.n)
    d = treated.mean - holdout.mean
    if se == 0:
        p_value = 1.0 if d == 0 else 0.0
    else:
        a = treated.var / treated.n
        b = holdout.var / holdout.n
        df = (a + b) ** 2 / (
            (a * a / (treated.n - 1) if treated.n > 1 else 0.0)
            + (b * b / (holdout.n - 1) if holdout.n > 1 else 0.0)
        )
        p_value = float(2.0 * stats.t.sf(abs(d) / se, df))
    return Interval(float(low), float(high), "welch"), p_value


def _verdict(
    *,
    treatment: str,
    kpi: str,
    kind: KpiKind,
    difference: float,
    interval: Interval,
    min_effect: float | None,
    needed: tuple[int | None, int | None],
    alpha: float,
) -> tuple[Verdict, str]:
    level = f"{100.0 * (1.0 - alpha):g}% CI"
    bounds = f"{level} {_format_bound(interval.low, kind)} to {_format_bound(interval.high, kind)}"
    what = kpi if kind == "rate" else f"{kpi} per person"
    if interval.low > 0 or interval.high < 0:
        verb = "raised" if difference > 0 else "lowered"
        return Verdict.EFFECT, (
            f"{treatment} {verb} {what} by {format_effect(abs(difference), kind)} "
            f"({bounds}); the effect is real"
        )
    effect = format_effect(difference, kind, signed=True)
    if min_effect is not None and -min_effect < interval.low and interval.high < min_effect:
        return Verdict.NO_EFFECT, (
            f"no detectable effect of {treatment} on {what}: {effect} ({bounds}); the interval "
            f"includes zero and rules out effects of {format_effect(min_effect, kind)} or more"
        )
    holdout, per_group = needed
    if min_effect is None:
        advice = f"nobody in either group had any {kpi} yet; wait for more people or events"
    elif holdout is None and per_group is None:
        advice = f"{kpi} did not vary within either group; wait for more people"
    elif holdout is not None:
        advice = (
            f"need about {holdout:,} people in the holdout to detect "
            f"{format_effect(min_effect, kind)}"
        )
    else:
        advice = (
            f"need about {per_group:,} people in each group to detect "
            f"{format_effect(min_effect, kind)}"
        )
    return Verdict.UNDERPOWERED, (
        f"too few people in the holdout to tell whether {treatment} changed {what}: {effect} "
        f"({bounds}); {advice}"
    )


def _lift(
    treated: _Group,
    holdout: _Group,
    kind: KpiKind,
    *,
    treated_replicates: FloatArray | None,
    holdout_replicates: FloatArray | None,
    treatment: str,
    kpi: str,
    alpha: float,
    min_effect: float | None,
    power: float,
) -> Lift:
    difference_interval, p_value = _difference(treated, holdout, kind, alpha)
    difference = treated.mean - holdout.mean
    relative = treated.mean / holdout.mean - 1.0 if holdout.mean > 0 else None
    delta = _relative_interval_delta(treated, holdout, alpha)
    boot = None
    if relative is not None:
        boot = _relative_interval_bootstrap(treated_replicates, holdout_replicates, alpha)
    if min_effect is None:
        reference = holdout.mean if holdout.mean != 0 else treated.mean
        if reference != 0:
            min_effect = DEFAULT_RELATIVE_MIN_EFFECT * abs(reference)
    needed = _needed(treated, holdout, kind, min_effect, alpha=alpha, power=power)
    verdict, message = _verdict(
        treatment=treatment,
        kpi=kpi,
        kind=kind,
        difference=difference,
        interval=difference_interval,
        min_effect=min_effect,
        needed=needed,
        alpha=alpha,
    )
    underpowered = verdict is Verdict.UNDERPOWERED
    return Lift(
        treatment=treatment,
        kpi=kpi,
        kind=kind,
        n_treated=treated.n,
        n_holdout=holdout.n,
        treated_mean=treated.mean,
        holdout_mean=holdout.mean,
        treated_interval=_mean_interval(treated, kind, alpha),
        holdout_interval=_mean_interval(holdout, kind, alpha),
        difference=difference,
        difference_interval=difference_interval,
        p_value=p_value,
        relative_lift=relative,
        relative_interval_delta=delta,
        relative_interval_bootstrap=boot,
        min_effect=min_effect,
        required_holdout=needed[0] if underpowered else None,
        required_per_group=needed[1] if underpowered else None,
        verdict=verdict,
        message=message,
        alpha=alpha,
    )


def _relative_interval_delta(treated: _Group, holdout: _Group, alpha: float) -> Interval | None:
    """The relative lift's interval by the delta method on the log ratio (both means positive)."""
    if holdout.mean <= 0 or treated.mean <= 0:
        return None
    low, high = log_ratio_interval(
        treated.mean,
        treated.var,
        treated.n,
        holdout.mean,
        holdout.var,
        holdout.n,
        alpha=alpha,
    )
    return Interval(float(low) - 1.0, float(high) - 1.0, "delta-log")


def _relative_interval_bootstrap(
    treated_replicates: FloatArray | None, holdout_replicates: FloatArray | None, alpha: float
) -> Interval | None:
    """The relative lift's percentile interval over bootstrap replicates of the two means."""
    if treated_replicates is None or holdout_replicates is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            holdout_replicates > 0,
            treated_replicates / np.where(holdout_replicates > 0, holdout_replicates, 1.0),
            np.nan,
        )
    bounds = percentile_interval(ratio - 1.0, alpha)
    if bounds is None:
        return None
    return Interval(bounds[0], bounds[1], "bootstrap-percentile")


def _needed(
    treated: _Group,
    holdout: _Group,
    kind: KpiKind,
    min_effect: float | None,
    *,
    alpha: float,
    power: float,
) -> tuple[int | None, int | None]:
    """The holdout size, and people per group, that would detect ``min_effect`` at ``power``
    (``None`` without an effect to detect or any variance)."""
    if min_effect is None:
        return None, None
    if kind == "rate":
        pooled = (treated.mean * treated.n + holdout.mean * holdout.n) / (treated.n + holdout.n)
        var_t = var_c = pooled * (1.0 - pooled)
    else:
        var_t, var_c = treated.var, holdout.var
    if not var_t + var_c > 0:  # no variance (or none known): nothing to size
        return None, None
    return required_holdout(
        var_treated=var_t,
        var_holdout=var_c,
        n_treated=treated.n,
        min_effect=min_effect,
        alpha=alpha,
        power=power,
    )


def _check_common(alpha: float, min_effect: float | None, power: float, n_bootstrap: int) -> None:
    check_alpha(alpha)
    if min_effect is not None:
        check_positive("min_effect", min_effect)
    if isinstance(power, bool) or not isinstance(power, float | int) or not 0.5 <= power < 1.0:
        raise InputError(f"power = {power!r} must lie in [0.5, 1); 0.8 is usual", field="power")
    check_n_bootstrap(n_bootstrap)


def holdout_lift(
    treated: npt.ArrayLike,
    holdout: npt.ArrayLike,
    *,
    kind: KpiKind | None = None,
    treatment: str = "the campaign",
    kpi: str = "the KPI",
    alpha: float = 0.05,
    min_effect: float | None = None,
    power: float = 0.8,
    n_bootstrap: int = 2000,
    rng: np.random.Generator | int = 0,
) -> Lift:
    """Measure a campaign's effect on a KPI from each person's outcome, treated against holdout.

    The holdout was drawn at random from the same audience, so the difference of the two groups'
    KPIs is the campaign's causal effect, and its interval says how sure that is.

    Parameters
    ----------
    treated, holdout
        One outcome per person: 0/1 for a rate KPI (converted or not), a value otherwise.
    kind
        ``rate`` or ``mean``; by default ``rate`` when every outcome is 0 or 1.
    treatment, kpi
        How the verdict names the campaign and the KPI: ``"the e-mail"``, ``"conversion"``.
    alpha
        One minus the confidence level.
    min_effect
        The smallest absolute difference that matters (0.005 for half a point of a rate). An
        interval around zero narrower than this says "no effect"; a wider one says "too few
        people to tell". By default a tenth of the holdout's KPI.
    power
        The power the "need about N" advice plans for.
    n_bootstrap
        Resamples for the bootstrap interval of the relative lift; 0 for none.
    rng
        The only source of randomness (the bootstrap), or a seed for one.

    Returns
    -------
    Lift

    Raises
    ------
    InputError
        Naming the argument: not 1-dimensional, not numbers, NaN, empty, ``kind="rate"`` with
        outcomes other than 0 and 1, or a setting out of range.

    Examples
    --------
    >>> lift = holdout_lift([1] * 300 + [0] * 700, [1] * 200 + [0] * 800, treatment="the e-mail",
    ...                     kpi="visits", n_bootstrap=0)
    >>> lift.message
    'the e-mail raised visits by 10.00 points (95% CI 6.21 to 13.75); the effect is real'
    """
    treated_ = as_values("treated", treated)
    holdout_ = as_values("holdout", holdout)
    _check_common(alpha, min_effect, power, n_bootstrap)
    binary = is_binary(treated_) and is_binary(holdout_)
    if kind is None:
        kind = "rate" if binary else "mean"
    elif kind not in ("rate", "mean"):
        raise InputError(f"kind = {kind!r} must be 'rate' or 'mean'", field="kind")
    if kind == "rate" and not binary:
        name = "treated" if not is_binary(treated_) else "holdout"
        raise InputError(
            "a rate KPI needs outcomes of 0 or 1 only; pass kind='mean' for values", field=name
        )
    if kind == "mean" and min(treated_.size, holdout_.size) < 2:
        name = "treated" if treated_.size < 2 else "holdout"
        raise InputError("a mean KPI needs at least 2 people per group", field=name)
    treated_replicates = holdout_replicates = None
    if n_bootstrap:
        generator = make_rng(rng)
        flag = kind == "rate"
        treated_replicates = bootstrap_means(
            treated_, binary=flag, n_bootstrap=n_bootstrap, rng=generator
        )
        holdout_replicates = bootstrap_means(
            holdout_, binary=flag, n_bootstrap=n_bootstrap, rng=generator
        )
    return _lift(
        _group_from_values(treated_, kind),
        _group_from_values(holdout_, kind),
        kind,
        treated_replicates=treated_replicates,
        holdout_replicates=holdout_replicates,
        treatment=treatment,
        kpi=kpi,
        alpha=alpha,
        min_effect=min_effect,
        power=power,
    )


def lift_from_counts(
    treated_successes: int,
    treated_trials: int,
    holdout_successes: int,
    holdout_trials: int,
    *,
    treatment: str = "the campaign",
    kpi: str = "the KPI",
    alpha: float = 0.05,
    min_effect: float | None = None,
    power: float = 0.8,
    n_bootstrap: int = 2000,
    rng: np.random.Generator | int = 0,
) -> Lift:
    """Measure a campaign's effect on a rate KPI from counts: people with the event, and people.

    The same as :func:`holdout_lift` on 0/1 outcomes, for when only the counts are at hand (a
    report read from the store's aggregates).

    Raises
    ------
    InputError
        Naming the argument: a negative or fractional count, a group with nobody in it, or more
        successes than trials.

    Examples
    --------
    >>> lift_from_counts(300, 1000, 200, 1000, n_bootstrap=0).verdict
    <Verdict.EFFECT: 'effect'>
    """
    counts = {}
    for name, value in (
        ("treated_successes", treated_successes),
        ("treated_trials", treated_trials),
        ("holdout_successes", holdout_successes),
        ("holdout_trials", holdout_trials),
    ):
        array = as_counts(name, value)
        if array.shape != (1,):
            raise InputError("must be one count, not an array", field=name)
        counts[name] = int(array[0])
    for group in ("treated", "holdout"):
        successes, trials = counts[f"{group}_successes"], counts[f"{group}_trials"]
        if trials == 0:
            raise InputError("is 0; a group needs at least one person", field=f"{group}_trials")
        if successes > trials:
            raise InputError(
                f"= {successes} is more than {group}_trials = {trials}; count people with at "
                f"least one event, not events",
                field=f"{group}_successes",
            )
    _check_common(alpha, min_effect, power, n_bootstrap)
    groups = []
    for group in ("treated", "holdout"):
        successes, trials = counts[f"{group}_successes"], counts[f"{group}_trials"]
        p = successes / trials
        groups.append(_Group(n=trials, mean=p, var=p * (1.0 - p), successes=successes))
    treated_replicates = holdout_replicates = None
    if n_bootstrap:
        generator = make_rng(rng)
        treated_replicates, holdout_replicates = (
            binomial_means(group.n, group.mean, n_bootstrap=n_bootstrap, rng=generator)
            for group in groups
        )
    return _lift(
        groups[0],
        groups[1],
        "rate",
        treated_replicates=treated_replicates,
        holdout_replicates=holdout_replicates,
        treatment=treatment,
        kpi=kpi,
        alpha=alpha,
        min_effect=min_effect,
        power=power,
    )
