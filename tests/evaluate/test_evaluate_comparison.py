"""Comparing two policy values: differences within rounding noise are ties, never a verdict."""

from __future__ import annotations

import math

import pytest

from tummler.core.errors import PolicyError
from tummler.evaluate import (
    TIE_ABSOLUTE_TOLERANCE,
    TIE_RELATIVE_TOLERANCE,
    Comparison,
    compare_values,
    tie_tolerance,
)

TIE, BETTER, WORSE = Comparison.TIE, Comparison.BETTER, Comparison.WORSE


@pytest.mark.parametrize(
    ("value", "reference", "reward_scale", "expected"),
    [
        # the issue: every reward 0, a candidate's lower bound against the promoted estimate
        (-3.18e-11, -1.67e-11, 0.0, TIE),
        (-1.67e-11, -3.18e-11, 0.0, TIE),
        (-3.18e-11, -1.67e-11, 1.0, TIE),
        (0.0, 0.0, 0.0, TIE),
        (0.0, -0.0, 1.0, TIE),
        (0.1 + 0.2, 0.3, 1.0, TIE),  # 0.30000000000000004
        (0.3, 0.1 + 0.2, 1.0, TIE),
        (0.3 + 9e-10, 0.3, 1.0, TIE),
        (0.3 - 9e-10, 0.3, 1.0, TIE),
        (0.3 + 2e-9, 0.3, 1.0, BETTER),
        (0.3 - 2e-9, 0.3, 1.0, WORSE),
        (5e-10, 0.0, 0.0, TIE),  # absolute: below 1e-9 is no figure at all
        (2e-9, 0.0, 0.0, BETTER),
        (-2e-9, 0.0, 0.0, WORSE),
        # relative: amounts (a value KPI) of a million, rounding in the 7th decimal
        (1e6 + 1e-4, 1e6, 40.0, TIE),
        (1e6, 1e6 + 1e-4, 40.0, TIE),
        (1e6 + 1e-2, 1e6, 40.0, BETTER),
        # the reward scale sets the unit even when the estimates are near 0
        (3e-8, 0.0, 100.0, TIE),
        (3e-7, 0.0, 100.0, BETTER),
        # clear differences are what they are
        (0.70, 0.2833, 1.0, BETTER),
        (0.2833, 0.70, 1.0, WORSE),
    ],
)
def test_near_ties(
    value: float, reference: float, reward_scale: float, expected: Comparison
) -> None:
    assert compare_values(value, reference, reward_scale=reward_scale) is expected


def test_the_tolerance_is_the_larger_of_the_absolute_and_the_relative_one() -> None:
    assert TIE_ABSOLUTE_TOLERANCE == TIE_RELATIVE_TOLERANCE == 1e-9
    assert tie_tolerance(-3.18e-11, -1.67e-11) == 1e-9
    assert tie_tolerance(0.5, 0.25, reward_scale=1.0) == 1e-9
    assert tie_tolerance(1e6, 2.0, reward_scale=40.0) == pytest.approx(1e-3)
    assert tie_tolerance(0.0, 0.0, reward_scale=-250.0) == pytest.approx(2.5e-7)


@pytest.mark.parametrize(
    ("value", "reference", "message"),
    [
        (math.nan, 0.0, "value is nan"),
        (0.0, math.nan, "reference is nan"),
        (math.inf, 0.0, "value is inf"),
        (0.0, -math.inf, "reference is -inf"),
    ],
)
def test_a_figure_that_is_not_a_number_cannot_be_compared(
    value: float, reference: float, message: str
) -> None:
    with pytest.raises(PolicyError, match=f"cannot compare policy values: {message}"):
        compare_values(value, reference)
