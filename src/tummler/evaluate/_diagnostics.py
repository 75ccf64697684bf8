"""Warnings about logs that cannot support a conclusion, and the guard against extreme weights.

An estimate is only as good as the log under it. Each check here reads the logged rounds, the
evaluated policy and the estimates, and returns a :class:`EvaluationWarning` when a figure would
mislead: too few rounds for an interval, importance weights so large that a handful of rounds
decide IPS and DR, a policy that puts probability on actions the log never took, propensities
whose weights do not average 1, DM and DR that disagree beyond their intervals. Each warning has
a stable ``code`` (for scripts reading ``--json``) and a message saying what to do.
docs/evaluating-logs.md explains each one.

The guard is switch-DR's threshold (Wang et al. 2017): rounds whose importance weight exceeds
``tau`` are valued by the reward model instead of their weighted residual. By default ``tau`` is
:data:`GUARD_FACTOR` times the number of actions: a round passes it only when the logging policy
gave its action less than a tenth of a uniform policy's probability (under uniform logging no
weight exceeds ``k``, so the guard changes nothing there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tummler.evaluate._checks import LoggedRounds
from tummler.evaluate._estimators import (
    MIN_ROUNDS_FOR_INTERVAL,
    Estimate,
    effective_sample_size,
)

__all__ = [
    "GUARD_FACTOR",
    "WARNING_CODES",
    "EvaluationWarning",
    "SwitchGuard",
    "diagnose",
    "switch_guard",
    "switch_threshold",
]

#: switch-DR's default threshold is this many times the number of actions.
GUARD_FACTOR = 10.0
#: Below this effective sample size (and a tenth of the rounds) the weights are called too few.
MIN_EFFECTIVE_SAMPLE_SIZE = 100.0
#: A policy's share of probability on never-logged actions above which it is warned of.
UNSUPPORTED_SHARE = 0.001
#: Every warning code, in the order they are checked.
WARNING_CODES: tuple[str, ...] = (
    "too_few_rounds",
    "extreme_weights",
    "low_effective_sample_size",
    "unsupported_actions",
    "weights_off_one",
    "model_disagrees",
    "dm_interval_withheld",
)


@dataclass(frozen=True)
class EvaluationWarning:
    """Why a figure of an evaluation should not be read at face value.

    Attributes
    ----------
    code
        One of :data:`WARNING_CODES`.
    message
        What is wrong, what it does to which estimator, and what to do.
    details
        The figures behind it (JSON-ready), e.g. ``{"largest_weight": 1e9}``.
    """

    code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{code, message, ...details}``, one entry of ``warnings`` in ``--json``."""
        return {"code": self.code, "message": self.message, **self.details}


@dataclass(frozen=True)
class SwitchGuard:
    """The guard on extreme weights: switch-DR's threshold and what it switched.

    Attributes
    ----------
    tau
        Rounds whose importance weight exceeds it are valued by the reward model (switch-DR).
    switched_rounds
        How many rounds that was.
    largest_weight
        The largest importance weight of the policy on the log.
    """

    tau: float
    switched_rounds: int
    largest_weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": "switch_dr",
            "tau": self.tau,
            "switched_rounds": self.switched_rounds,
            "largest_weight": self.largest_weight,
        }


def switch_threshold(n_actions: int) -> float:
    """switch-DR's default ``tau``: :data:`GUARD_FACTOR` times the number of actions.

    >>> switch_threshold(3)
    30.0
    """
    return GUARD_FACTOR * n_actions


def switch_guard(rounds: LoggedRounds, tau: float) -> SwitchGuard:
    """What switch-DR's threshold ``tau`` does on these rounds."""
    weight = rounds.weight
    return SwitchGuard(
        tau=float(tau),
        switched_rounds=int(np.count_nonzero(weight > tau)),
        largest_weight=float(weight.max()),
    )


def diagnose(
    rounds: LoggedRounds,
    estimates: Sequence[Estimate],
    *,
    tau: float,
    n_bootstrap: int,
) -> tuple[EvaluationWarning, ...]:
    """Every warning that applies to one policy's estimates on these rounds, in code order."""
    by_name = {e.name: e for e in estimates}
    found = [
        _too_few_rounds(rounds.n, n_bootstrap),
        _extreme_weights(rounds, tau),
        _low_effective_sample_size(rounds),
        _unsupported_actions(rounds),
        _weights_off_one(rounds),
        _model_disagrees(by_name),
        _dm_interval_withheld(rounds.n, n_bootstrap, by_name),
    ]
    return tuple(w for w in found if w is not None)


def _too_few_rounds(n: int, n_bootstrap: int) -> EvaluationWarning | None:
    if n_bootstrap == 0 or n >= MIN_ROUNDS_FOR_INTERVAL:
        return None
    return EvaluationWarning(
        "too_few_rounds",
        f"{n} logged round(s) are too few for an interval (at least {MIN_ROUNDS_FOR_INTERVAL}): "
        f"resampling so few rounds shows almost no spread (one round gives [r, r]), so no "
        f"interval is given; the estimates are single numbers, not evidence",
        {"n_rounds": n, "min_rounds": MIN_ROUNDS_FOR_INTERVAL},
    )


def _extreme_weights(rounds: LoggedRounds, tau: float) -> EvaluationWarning | None:
    weight = rounds.weight
    above = weight > tau
    count = int(np.count_nonzero(above))
    if not count:
        return None
    largest = float(weight.max())
    smallest = float(rounds.propensity[above].min())
    return EvaluationWarning(
        "extreme_weights",
        f"{count} round(s) have importance weights above {tau:g} (the largest {largest:.3g}, "
        f"from logged propensities as low as {smallest:.3g}): IPS and DR lean on them and can "
        f"be far off; switch-DR values those rounds by the reward model, and SNIPS is bounded "
        f"by the observed rewards. Check the propensities, or read switch-DR",
        {"rounds": count, "tau": float(tau), "largest_weight": largest, "min_propensity": smallest},
    )


def _low_effective_sample_size(rounds: LoggedRounds) -> EvaluationWarning | None:
    ess = effective_sample_size(rounds.weight)
    floor = min(MIN_EFFECTIVE_SAMPLE_SIZE, rounds.n / 10.0)
    if rounds.n < MIN_ROUNDS_FOR_INTERVAL or ess >= floor:
        return None
    return EvaluationWarning(
        "low_effective_sample_size",
        f"the importance weights are worth {ess:.3g} on-policy rounds out of {rounds.n:,} "
        f"(effective sample size): a few rounds decide IPS, SNIPS and DR, and their intervals "
        f"are not to be trusted; the policy strays far from what was logged",
        {"effective_sample_size": ess, "n_rounds": rounds.n},
    )


def _unsupported_share(rounds: LoggedRounds) -> tuple[float, list[int]]:
    k = rounds.action_dist.shape[1]
    never = np.flatnonzero(np.bincount(rounds.action, minlength=k) == 0)
    if not never.size:
        return 0.0, []
    return float(rounds.action_dist[:, never].sum(axis=1).mean()), never.tolist()


def _unsupported_actions(rounds: LoggedRounds) -> EvaluationWarning | None:
    share, never = _unsupported_share(rounds)
    if share <= UNSUPPORTED_SHARE:
        return None
    shown = ", ".join(str(a) for a in never[:10]) + (", ..." if len(never) > 10 else "")
    return EvaluationWarning(
        "unsupported_actions",
        f"the policy puts {share:.1%} of its probability on action(s) the log never took "
        f"({shown}): IPS counts them as reward 0, SNIPS as if they earned what the logged "
        f"actions did, DM and DR guess from the reward model; no estimator measures them. "
        f"Log those actions (explore) before trusting a value for this policy",
        {"share": share, "actions": never},
    )


def _weights_off_one(rounds: LoggedRounds) -> EvaluationWarning | None:
    if rounds.n < MIN_ROUNDS_FOR_INTERVAL:
        return None
    weight = rounds.weight
    mean = float(weight.mean())
    expected = 1.0 - _unsupported_share(rounds)[0]
    error = float(weight.std()) / np.sqrt(rounds.n)
    if abs(mean - expected) <= max(4.0 * error, 0.02):
        return None
    return EvaluationWarning(
        "weights_off_one",
        f"the importance weights average {mean:.3g}, not {expected:.3g} as they must when the "
        f"propensities are the logging policy's probabilities: the propensities look wrong "
        f"(or belong to another action set); IPS is off by that factor, SNIPS divides it out",
        {"mean_weight": mean, "expected": expected},
    )


def _model_disagrees(by_name: Mapping[str, Estimate]) -> EvaluationWarning | None:
    dm, dr = by_name.get("dm"), by_name.get("dr")
    if dm is None or dr is None:
        return None
    if dm.ci_low is None or dm.ci_high is None or dr.ci_low is None or dr.ci_high is None:
        return None
    if dm.ci_high >= dr.ci_low and dr.ci_high >= dm.ci_low:
        return None
    return EvaluationWarning(
        "model_disagrees",
        f"DM {dm.value:.4g} [{dm.ci_low:.4g}, {dm.ci_high:.4g}] and DR {dr.value:.4g} "
        f"[{dr.ci_low:.4g}, {dr.ci_high:.4g}] do not overlap: the reward model is biased for "
        f"this policy, so DM's figure is not its value; read DR (or switch-DR)",
        {"dm": dm.value, "dr": dr.value},
    )


def _dm_interval_withheld(
    n: int, n_bootstrap: int, by_name: Mapping[str, Estimate]
) -> EvaluationWarning | None:
    dm = by_name.get("dm")
    if dm is None or dm.ci_low is not None or n_bootstrap == 0 or n < MIN_ROUNDS_FOR_INTERVAL:
        return None
    return EvaluationWarning(
        "dm_interval_withheld",
        "DM has no interval: the reward model's predictions were given, not fitted here, so "
        "the model's own error cannot be measured (holding it fixed gives intervals far too "
        "narrow); give the contexts instead, and the model is refitted on resamples",
        {},
    )
