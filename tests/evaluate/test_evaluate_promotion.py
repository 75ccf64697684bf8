"""The promotion verdict: a candidate replaces the promoted policy only on evidence."""

from __future__ import annotations

import pytest

from tummler.evaluate import Comparison, Estimate, promotion_verdict


def estimate(value: float, ci_low: float | None = None) -> Estimate:
    return Estimate("dr", value, ci_low, None, 100.0, 100)


@pytest.mark.parametrize(
    ("candidate", "promoted", "force", "promote", "comparison", "forced", "refused"),
    [
        (estimate(0.3, 0.25), None, False, True, None, False, False),  # first promotion
        (estimate(0.3, 0.25), estimate(0.2), False, True, Comparison.BETTER, False, False),
        # the lower bound, not the estimate, must beat the promoted estimate
        (estimate(0.3, 0.15), estimate(0.2), False, False, Comparison.WORSE, False, True),
        (estimate(-3.18e-11), estimate(-1.67e-11), False, False, Comparison.TIE, False, False),
        (estimate(-3.18e-11), estimate(-1.67e-11), True, True, Comparison.TIE, True, False),
        (estimate(0.1, 0.05), estimate(0.2), True, True, Comparison.WORSE, True, False),
    ],
)
def test_promotion_verdict(
    candidate: Estimate,
    promoted: Estimate | None,
    force: bool,
    promote: bool,
    comparison: Comparison | None,
    forced: bool,
    refused: bool,
) -> None:
    verdict = promotion_verdict(candidate, promoted, force=force)
    assert (verdict.promote, verdict.comparison, verdict.forced, verdict.refused) == (
        promote,
        comparison,
        forced,
        refused,
    )
    assert verdict.bound == (candidate.ci_low if candidate.ci_low is not None else candidate.value)
    assert (verdict.tolerance is None) == (promoted is None)
