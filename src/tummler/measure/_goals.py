"""Goals: each objective's progress against the target its strategy sets.

A strategy's objective has a target that is either a **relative lift** over the holdout (0.1 =
+10 %) or an **absolute rate** to reach (0.05 = 5 % of the treated audience), and a horizon. A
target counts as *met* only when the interval's lower end reaches it, so that a lucky week does not
close an objective; it is *off track* when even the interval's upper end falls short (or the
horizon has passed with the estimate below it), and *on track* in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from tummler.core.errors import InputError
from tummler.measure._checks import check_positive
from tummler.measure._lift import Interval, Lift

__all__ = ["GoalProgress", "GoalStatus", "TargetKind", "goal_from_lift", "goal_progress"]

TargetKind = Literal["relative_lift", "absolute_rate"]


class GoalStatus(StrEnum):
    """Where an objective stands against its target."""

    MET = "met"
    ON_TRACK = "on track"
    OFF_TRACK = "off track"
    NOT_MEASURABLE = "not measurable yet"


@dataclass(frozen=True)
class GoalProgress:
    """One objective's progress against its target.

    Attributes
    ----------
    objective
        The objective's id.
    target_kind, target
        ``relative_lift`` or ``absolute_rate``, and the value to reach.
    estimate, interval
        Where the objective stands, and how sure that is; None when not measurable yet.
    progress
        ``estimate / target`` (1.0 = the target); None when not measurable.
    elapsed
        The share of the horizon that has passed, when given.
    status, message
        The status and a sentence that explains it.
    """

    objective: str
    target_kind: TargetKind
    target: float
    estimate: float | None
    interval: Interval | None
    progress: float | None
    elapsed: float | None
    status: GoalStatus
    message: str


def _format(value: float, kind: TargetKind) -> str:
    return f"{100 * value:+.1f}%" if kind == "relative_lift" else f"{100 * value:.2f}%"


def goal_progress(
    *,
    objective: str,
    target_kind: TargetKind,
    target: float,
    estimate: float | None,
    interval: Interval | None,
    elapsed: float | None = None,
) -> GoalProgress:
    """Compare an objective's measured KPI with its target.

    Parameters
    ----------
    objective
        The objective's id, for the message.
    target_kind, target
        ``relative_lift`` (0.1 = +10 % over the holdout) or ``absolute_rate`` (0.05 = 5 %).
    estimate, interval
        The measured relative lift or rate and its confidence interval; None when it cannot be
        measured yet (no holdout response).
    elapsed
        The share of the objective's horizon that has passed (0 to 1 and beyond); None when
        unknown. After the horizon an estimate below the target is off track.

    Raises
    ------
    InputError
        Naming the argument: an unknown target kind, a target that is not positive, an interval
        that does not contain its estimate, a negative elapsed share.

    Examples
    --------
    >>> goal_progress(objective="repeat", target_kind="relative_lift", target=0.1,
    ...               estimate=0.15, interval=Interval(0.11, 0.19, "delta-log")).status
    <GoalStatus.MET: 'met'>
    """
    if target_kind not in ("relative_lift", "absolute_rate"):
        raise InputError(
            f"= {target_kind!r} must be 'relative_lift' or 'absolute_rate'", field="target_kind"
        )
    target = check_positive("target", target)
    if elapsed is not None:
        elapsed = check_positive("elapsed", elapsed, allow_zero=True)
    if (estimate is None) != (interval is None):
        raise InputError("give both estimate and interval, or neither", field="interval")
    if (
        estimate is not None
        and interval is not None
        and not (interval.low <= estimate <= interval.high or math.isnan(estimate))
    ):
        raise InputError(
            f"({interval.low!r}, {interval.high!r}) does not contain the estimate {estimate!r}",
            field="interval",
        )
    wanted = _format(target, target_kind)
    if estimate is None or interval is None or not math.isfinite(estimate):
        return GoalProgress(
            objective=objective,
            target_kind=target_kind,
            target=target,
            estimate=None,
            interval=None,
            progress=None,
            elapsed=elapsed,
            status=GoalStatus.NOT_MEASURABLE,
            message=(
                f"{objective}: not measurable yet against the target of {wanted}; the holdout "
                f"has no response to compare with"
            ),
        )
    now = (
        f"{_format(estimate, target_kind)} ({_format(interval.low, target_kind)} to "
        f"{_format(interval.high, target_kind)})"
    )
    if interval.low >= target:
        status = GoalStatus.MET
        why = "the whole interval reaches it"
    elif interval.high < target:
        status = GoalStatus.OFF_TRACK
        why = "even the interval's upper end falls short"
    elif elapsed is not None and elapsed >= 1.0 and estimate < target:
        status = GoalStatus.OFF_TRACK
        why = "the horizon has passed with the estimate below it"
    else:
        status = GoalStatus.ON_TRACK
        why = "the target is within the interval; more data will tell"
        if elapsed is not None:
            why += f" ({100 * min(elapsed, 1.0):.0f}% of the horizon has passed)"
    return GoalProgress(
        objective=objective,
        target_kind=target_kind,
        target=target,
        estimate=estimate,
        interval=interval,
        progress=estimate / target,
        elapsed=elapsed,
        status=status,
        message=f"{objective}: {status.value} — {now} against a target of {wanted}; {why}",
    )


def goal_from_lift(
    lift: Lift,
    *,
    objective: str,
    relative_lift: float | None = None,
    absolute_rate: float | None = None,
    elapsed: float | None = None,
) -> GoalProgress:
    """Compare a measured holdout lift with an objective's target (exactly one of the two).

    A relative-lift target is compared with the lift's relative lift and its delta-method interval
    (the bootstrap one when the delta method is undefined); an absolute-rate target with the
    treated group's rate and its Wilson interval.

    Raises
    ------
    InputError
        When neither or both targets are given, or a rate target meets a mean KPI.
    """
    if (relative_lift is None) == (absolute_rate is None):
        raise InputError(
            "give exactly one of relative_lift (e.g. 0.1 for +10 %) or absolute_rate",
            field="relative_lift",
        )
    if relative_lift is not None:
        interval = lift.relative_interval_delta or lift.relative_interval_bootstrap
        estimate = lift.relative_lift if interval is not None else None
        return goal_progress(
            objective=objective,
            target_kind="relative_lift",
            target=relative_lift,
            estimate=estimate,
            interval=interval,
            elapsed=elapsed,
        )
    assert absolute_rate is not None
    if lift.kind != "rate":
        raise InputError(
            "a value KPI has no rate to reach: give relative_lift instead", field="absolute_rate"
        )
    return goal_progress(
        objective=objective,
        target_kind="absolute_rate",
        target=absolute_rate,
        estimate=lift.treated_mean,
        interval=lift.treated_interval,
        elapsed=elapsed,
    )
