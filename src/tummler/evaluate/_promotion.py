"""The promotion verdict: is a candidate policy better than the promoted one, and may it replace it.

A candidate replaces the promoted policy when its *lower* confidence bound beats the promoted
policy's point estimate under one estimator, on the same logged rounds: the burden of proof is on
the newcomer. Two figures within rounding noise are a tie (:func:`compare_values`), and a tie is
not an improvement. ``force`` overrides a tie or a loss, and the verdict says it was forced. A
first promotion (nothing promoted yet) needs no comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from tummler.evaluate._comparison import Comparison, compare_values, tie_tolerance
from tummler.evaluate._estimators import Estimate

__all__ = ["PromotionVerdict", "promotion_verdict"]


@dataclass(frozen=True)
class PromotionVerdict:
    """What the figures decide.

    Attributes
    ----------
    promote
        Whether the candidate replaces the promoted policy.
    comparison
        The candidate's bound against the promoted policy's estimate; ``None`` at a first
        promotion.
    bound
        The candidate's figure that was compared: its lower bound, or its estimate without one.
    tolerance
        The width within which the two figures are a tie; ``None`` at a first promotion.
    forced
        Whether ``force`` promoted a candidate that was not better.
    """

    promote: bool
    comparison: Comparison | None
    bound: float
    tolerance: float | None
    forced: bool

    @property
    def refused(self) -> bool:
        """Not promoted because the candidate is worse (not merely level)."""
        return not self.promote and self.comparison is Comparison.WORSE


def promotion_verdict(
    candidate: Estimate,
    promoted: Estimate | None,
    *,
    reward_scale: float = 0.0,
    force: bool = False,
) -> PromotionVerdict:
    """Decide whether ``candidate`` replaces ``promoted`` (``None``: nothing promoted yet).

    Parameters
    ----------
    candidate, promoted
        The two policies' estimates under the deciding estimator, on the same rounds.
    reward_scale
        The largest absolute reward of those rounds (:func:`tie_tolerance`).
    force
        Promote even when the candidate is level or worse.

    Examples
    --------
    >>> new = Estimate("dr", 0.30, 0.25, 0.35, 100.0, 100)
    >>> old = Estimate("dr", 0.20, 0.15, 0.25, 100.0, 100)
    >>> promotion_verdict(new, old).promote, promotion_verdict(old, new).refused
    (True, True)
    """
    bound = candidate.ci_low if candidate.ci_low is not None else candidate.value
    if promoted is None:
        return PromotionVerdict(True, None, bound, None, forced=False)
    comparison = compare_values(bound, promoted.value, reward_scale=reward_scale)
    forced = force and comparison in (Comparison.TIE, Comparison.WORSE)
    return PromotionVerdict(
        promote=force or comparison is Comparison.BETTER,
        comparison=comparison,
        bound=bound,
        tolerance=tie_tolerance(bound, promoted.value, reward_scale=reward_scale),
        forced=forced,
    )
