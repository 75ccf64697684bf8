"""A logged experiment's means and lifts (tummler.measure.logged_experiment), against answers
worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from tummler.core.errors import InputError
from tummler.measure import logged_experiment

Z95 = float(stats.norm.ppf(0.975))


def _worked_example() -> dict[str, Any]:
    # action a: rewards 1, 0, 0, 1 at propensities 0.5, 0.5, 0.25, 0.25 (weights 2, 2, 4, 4);
    # action b: rewards 1, 1, 0 at propensity 0.5 (weights 2, 2, 2).
    return {
        "reward": np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]),
        "propensity": np.array([0.5, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5]),
        "action": np.array([0, 0, 0, 0, 1, 1, 1]),
        "names": ["a", "b"],
    }


def test_the_means_are_hajek_means_with_the_delta_methods_errors() -> None:
    a, b = logged_experiment(**_worked_example(), control="a").actions
    # a: (2·1 + 4·1) / 12 = 1/2; variance Σ w²(r − m)² / (Σ w)² = (4 + 4 + 16 + 16)/4 / 144
    assert (a.action, a.n) == ("a", 4)
    assert a.mean == pytest.approx(0.5)
    assert a.std_error == pytest.approx(math.sqrt(10 / 144))
    assert a.interval.low == pytest.approx(0.5 - Z95 * math.sqrt(10 / 144))
    # b: 4/6 = 2/3; variance 4·(1/9 + 1/9 + 4/9) / 36 = 2/27
    assert (b.action, b.n) == ("b", 3)
    assert b.mean == pytest.approx(2 / 3)
    assert b.std_error == pytest.approx(math.sqrt(2 / 27))
    # Horvitz–Thompson over all 7 rounds: Σ r·w / 7
    assert a.ips == pytest.approx(6 / 7)
    assert b.ips == pytest.approx(4 / 7)


def test_the_lift_adds_the_variances_and_the_relative_lift_is_on_the_log_scale() -> None:
    (lift,) = logged_experiment(**_worked_example(), control="a").lifts
    se = math.sqrt(2 / 27 + 10 / 144)
    assert (lift.action, lift.control) == ("b", "a")
    assert lift.difference == pytest.approx(1 / 6)
    assert lift.interval.low == pytest.approx(1 / 6 - Z95 * se)
    assert lift.interval.high == pytest.approx(1 / 6 + Z95 * se)
    assert lift.p_value == pytest.approx(2 * stats.norm.sf((1 / 6) / se))
    assert not lift.significant
    assert lift.message.startswith("b cannot be told apart from a: +0.1667")
    # Var(log ratio) = (2/27)/(2/3)² + (10/144)/(1/2)² = 1/6 + 5/18 = 4/9: a standard error of 2/3
    assert lift.relative_lift == pytest.approx(1 / 3)
    assert lift.relative_interval is not None
    assert lift.relative_interval.low == pytest.approx(4 / 3 * math.exp(-Z95 * 2 / 3) - 1)
    assert lift.relative_interval.high == pytest.approx(4 / 3 * math.exp(Z95 * 2 / 3) - 1)


def test_a_control_that_earned_nothing_has_no_relative_lift() -> None:
    found = logged_experiment(
        np.array([0.0, 0.0, 1.0, 0.0]),
        np.full(4, 0.5),
        np.array([0, 0, 1, 1]),
        ["a", "b"],
        control="a",
    )
    (lift,) = found.lifts
    assert lift.relative_lift is None
    assert lift.relative_interval is None
    assert lift.difference == pytest.approx(0.5)


def test_an_action_never_taken_is_left_out() -> None:
    found = logged_experiment(
        np.array([1.0, 0.0]), np.full(2, 0.5), np.array([0, 2]), ["a", "b", "c"], control="a"
    )
    assert [m.action for m in found.actions] == ["a", "c"]
    assert [lift.action for lift in found.lifts] == ["c"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpha": 0.0}, "alpha = 0.0"),
        ({"alpha": 1.0}, "alpha = 1.0"),
        ({"control": "z"}, "control 'z' is not an action of the log; its actions are 'a', 'b'"),
        ({"reward": np.zeros(3)}, "differ in length"),
    ],
)
def test_bad_arguments(change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {**_worked_example(), "control": "a", **change}
    with pytest.raises(InputError, match=message):
        logged_experiment(**arguments)
