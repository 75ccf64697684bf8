"""Compare two estimates of policy values, with a tolerance for rounding and solver noise.

Off-policy estimates are sums of many floating-point terms, and the model-based ones add a reward
model fitted to a solver's tolerance. When every logged reward is 0 (no outcome yet), every
policy's true value is 0 and the estimates come out as noise around it: -3.18e-11 for one
version, -1.67e-11 for the other. Such figures must not decide anything, in either direction, so
two values closer than :func:`tie_tolerance` are a *tie*. A tie is not an improvement: whoever asks
"is the candidate better?" keeps what they have.
"""

from __future__ import annotations

import math
from enum import StrEnum

from tummler.core.errors import PolicyError

__all__ = [
    "TIE_ABSOLUTE_TOLERANCE",
    "TIE_RELATIVE_TOLERANCE",
    "Comparison",
    "compare_values",
    "tie_tolerance",
]

#: Two values closer than this share of their scale (the larger of the two values and the largest
#: reward of the log, in absolute value) are one value. Rounding in a sum of ``n`` terms stays near
#: ``n`` times the machine epsilon (2.2e-16) of that scale: far below this for any log that fits in
#: memory, while any difference a decision could rest on is far above it.
TIE_RELATIVE_TOLERANCE = 1e-9
#: Two values closer than this, in reward units, are one value whatever their scale: when every
#: reward is 0, the scale is 0 too, and the estimates are a reward model's noise around 0.
TIE_ABSOLUTE_TOLERANCE = 1e-9


class Comparison(StrEnum):
    """How a value compares with a reference value, ties within :func:`tie_tolerance`."""

    BETTER = "better"
    TIE = "tie"
    WORSE = "worse"


def tie_tolerance(value: float, reference: float, *, reward_scale: float = 0.0) -> float:
    """The largest difference between ``value`` and ``reference`` that is still a tie.

    Parameters
    ----------
    value, reference
        The two figures compared (say a candidate's lower bound and the current policy's estimate).
    reward_scale
        The largest absolute reward of the log they were estimated on (0 when unknown).

    Examples
    --------
    >>> tie_tolerance(-3.18e-11, -1.67e-11)
    1e-09
    >>> tie_tolerance(20.0, 19.5, reward_scale=40.0) == 40.0 * TIE_RELATIVE_TOLERANCE
    True
    """
    scale = max(abs(value), abs(reference), abs(reward_scale))
    return max(TIE_RELATIVE_TOLERANCE * scale, TIE_ABSOLUTE_TOLERANCE)


def compare_values(value: float, reference: float, *, reward_scale: float = 0.0) -> Comparison:
    """Whether ``value`` is above, level with, or below ``reference``, rounding noise aside.

    Higher is better: values are mean rewards per round.

    Parameters
    ----------
    value, reference
        The figure to judge and the figure it must beat.
    reward_scale
        The largest absolute reward of the log (:func:`tie_tolerance`).

    Raises
    ------
    PolicyError
        When either figure is not a finite number (an estimate without any weight behind it).

    Examples
    --------
    >>> compare_values(-3.18e-11, -1.67e-11)  # the same 0, up to a reward model's noise
    <Comparison.TIE: 'tie'>
    >>> compare_values(0.31, 0.30, reward_scale=1.0)
    <Comparison.BETTER: 'better'>
    >>> compare_values(0.29, 0.30, reward_scale=1.0)
    <Comparison.WORSE: 'worse'>
    """
    for name, figure in (("value", value), ("reference", reference)):
        if not math.isfinite(figure):
            raise PolicyError(
                f"cannot compare policy values: {name} is {figure}; the estimator had no weight "
                "to go by, so choose another estimator or gather more logs"
            )
    difference = value - reference
    if abs(difference) <= tie_tolerance(value, reference, reward_scale=reward_scale):
        return Comparison.TIE
    return Comparison.BETTER if difference > 0 else Comparison.WORSE
