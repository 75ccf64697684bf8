"""A past experiment from its logged decisions: each action's mean reward and its lift over a control.

A logged decision carries the logging policy's probability of the action it took (its propensity),
so every round is weighted by ``1 / propensity``. The means normalize those weights within each
action (the Hájek estimator): a past experiment with known but unequal assignment probabilities is
measured without bias from who got what, and for a uniform randomized experiment the means are
the arms' plain means. The arms are disjoint sets of rounds, so the variances of two means add.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from tummler.core.errors import InputError
from tummler.measure._intervals import log_ratio_interval, normal_quantile
from tummler.measure._lift import Interval

__all__ = ["ActionLift", "ActionMean", "LoggedExperiment", "logged_experiment"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ActionMean:
    """One action's mean reward in a logged experiment.

    Attributes
    ----------
    action
        The action's name.
    n
        Rounds in which it was taken.
    mean, interval
        Self-normalized inverse-propensity mean (Hájek): the reward weighted by ``1 / propensity``
        over the rounds of this action. For a uniform randomized experiment it equals the arm's
        plain mean. The interval is the delta method's normal interval.
    ips
        The unnormalized inverse-propensity estimate (Horvitz–Thompson) of the same value, over all
        rounds: it is unbiased but noisier, and differs from ``mean`` when the arms' sizes drift
        from their propensities.
    std_error
        Standard error of ``mean``.
    """

    action: str
    n: int
    mean: float
    interval: Interval
    ips: float
    std_error: float


@dataclass(frozen=True)
class ActionLift:
    """One action against the control action in a logged experiment.

    Attributes
    ----------
    action, control
        The two actions.
    difference, interval
        ``mean(action) - mean(control)`` and its normal interval (the arms are disjoint sets of
        rounds, so their variances add).
    relative_lift, relative_interval
        ``mean(action) / mean(control) - 1`` and its delta-method interval on the log scale; None
        when the control's mean is not positive.
    p_value
        Two-sided p-value of no difference.
    significant
        Whether ``interval`` excludes zero.
    message
        The verdict in plain words.
    """

    action: str
    control: str
    difference: float
    interval: Interval
    relative_lift: float | None
    relative_interval: Interval | None
    p_value: float
    significant: bool
    message: str


@dataclass(frozen=True)
class LoggedExperiment:
    """Each action's mean (in the order of the names, actions never taken left out) and each
    other action's lift over the control."""

    actions: tuple[ActionMean, ...]
    lifts: tuple[ActionLift, ...]


@dataclass(frozen=True)
class _Moments:
    mean: float
    variance: float


def logged_experiment(
    reward: FloatArray,
    propensity: FloatArray,
    action: npt.NDArray[np.int64],
    names: Sequence[str],
    *,
    control: str,
    alpha: float = 0.05,
) -> LoggedExperiment:
    """Each action's Hájek mean reward and its lift over ``control``.

    Parameters
    ----------
    reward, propensity, action
        ``(n,)`` per logged round: the reward, the logging policy's probability of the logged
        action (in (0, 1]), and the action's index into ``names``.
    names
        The actions' names.
    control
        The action the others are compared to.
    alpha
        One minus the confidence level of every interval.

    Returns
    -------
    LoggedExperiment

    Raises
    ------
    InputError
        When ``alpha`` is outside (0, 1), ``control`` is not one of the actions taken, or the
        arrays differ in length.

    Examples
    --------
    >>> import numpy as np
    >>> found = logged_experiment(
    ...     np.array([0.0, 1.0, 1.0, 1.0]),
    ...     np.full(4, 0.5),
    ...     np.array([0, 0, 1, 1]),
    ...     ["a", "b"],
    ...     control="a",
    ... )
    >>> [(m.action, m.mean) for m in found.actions], found.lifts[0].difference
    ([('a', 0.5), ('b', 1.0)], 0.5)
    """
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha = {alpha}: give a number in (0, 1), e.g. 0.05", field="alpha")
    if not reward.shape == propensity.shape == action.shape:
        raise InputError(
            f"reward, propensity and action differ in length ({reward.shape}, "
            f"{propensity.shape}, {action.shape}); give one value per logged round",
            field="reward",
        )
    z = normal_quantile(alpha)
    weight = 1.0 / propensity
    means: list[ActionMean] = []
    moments: dict[str, _Moments] = {}
    for index, name in enumerate(names):
        rows = action == index
        if not rows.any():
            continue
        moments[name] = _hajek(reward[rows], weight[rows])
        means.append(_action_mean(name, reward[rows], weight[rows], moments[name], reward.size, z))
    if control not in moments:
        raise InputError(
            f"control {control!r} is not an action of the log; its actions are "
            f"{', '.join(map(repr, moments))}",
            field="control",
        )
    lifts = tuple(
        _action_lift(m.action, moments[m.action], control, moments[control], z=z, alpha=alpha)
        for m in means
        if m.action != control
    )
    return LoggedExperiment(tuple(means), lifts)


def _hajek(reward: FloatArray, weight: FloatArray) -> _Moments:
    """The weighted mean and the delta method's variance of it."""
    total = float(weight.sum())
    mean = float((weight * reward).sum() / total)
    variance = float((weight**2 * (reward - mean) ** 2).sum() / total**2)
    return _Moments(mean, variance)


def _action_mean(
    name: str, reward: FloatArray, weight: FloatArray, moments: _Moments, rounds: int, z: float
) -> ActionMean:
    """One action's mean, its normal interval, and its Horvitz–Thompson estimate over ``rounds``."""
    se = math.sqrt(moments.variance)
    mean = moments.mean
    return ActionMean(
        name,
        int(reward.size),
        mean,
        Interval(mean - z * se, mean + z * se, "hajek-normal"),
        float((reward * weight).sum() / rounds),
        se,
    )


def _action_lift(
    name: str, arm: _Moments, control: str, base: _Moments, *, z: float, alpha: float
) -> ActionLift:
    """``name`` against ``control``: the difference, its interval and p-value, the relative lift
    on the log scale when both means are positive, and the verdict in words."""
    difference = arm.mean - base.mean
    se = math.sqrt(arm.variance + base.variance)
    low, high = difference - z * se, difference + z * se
    if se > 0:
        p_value = float(2.0 * stats.norm.sf(abs(difference) / se))
    else:
        p_value = 1.0 if difference == 0 else 0.0
    relative: float | None = None
    relative_interval: Interval | None = None
    if base.mean > 0 and arm.mean > 0:
        relative = arm.mean / base.mean - 1.0
        # the variances are already those of the means: one "observation" each
        ratio_low, ratio_high = log_ratio_interval(
            arm.mean, arm.variance, 1, base.mean, base.variance, 1, alpha=alpha
        )
        relative_interval = Interval(float(ratio_low) - 1.0, float(ratio_high) - 1.0, "log-delta")
    significant = low > 0 or high < 0
    level = f"{1 - alpha:.0%}"
    if significant:
        direction = "raised" if difference > 0 else "lowered"
        message = (
            f"{name} {direction} the reward by {difference:+.4f} against {control} "
            f"({level} interval {low:+.4f} to {high:+.4f})."
        )
    else:
        message = (
            f"{name} cannot be told apart from {control}: {difference:+.4f} "
            f"({level} interval {low:+.4f} to {high:+.4f} includes zero)."
        )
    return ActionLift(
        name,
        control,
        difference,
        Interval(low, high, "normal"),
        relative,
        relative_interval,
        p_value,
        significant,
        message,
    )
