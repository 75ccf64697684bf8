"""ROI, breadth against depth, stage movements and goals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tummler.core.errors import InputError
from tummler.core.vocabulary import Stage
from tummler.measure import (
    STAGE_ORDER,
    GoalStatus,
    Interval,
    breadth_depth,
    combine_roi,
    goal_from_lift,
    goal_progress,
    lift_from_counts,
    roi,
    stage_transitions,
)

# ------------------------------------------------------------------------------------------ ROI


def test_roi_written_out() -> None:
    treated = np.array([10.0, 0.0, 20.0, 10.0] * 50)  # mean 10, 200 people
    holdout = np.array([0.0, 10.0, 0.0, 10.0] * 25)  # mean 5, 100 people
    result = roi(treated, holdout, 500.0, label="the spring e-mail", rng=1)
    # incremental = 200 · (10 - 5) = 1000; ROI = (1000 - 500) / 500 = 1
    assert result.incremental_value == pytest.approx(1000.0)
    assert result.roi == pytest.approx(1.0)
    ci = stats.ttest_ind(treated, holdout, equal_var=False).confidence_interval(0.95)
    assert result.incremental_interval.low == pytest.approx(200 * ci.low)
    assert result.roi_interval.low == pytest.approx((200 * ci.low - 500) / 500)
    assert result.roi_interval_bootstrap is not None
    assert result.roi_interval_bootstrap.contains(1.0)
    assert result.message.startswith("the spring e-mail: ROI 100% (95% CI ")
    assert result.message.endswith("it paid for itself")


def test_roi_interval_covers_95_percent_of_seeded_campaigns() -> None:
    rng = np.random.default_rng(77)
    reps, n_t, n_h, cost = 1000, 1500, 500, 400.0
    # Spend: 10 % buy, order values exponential with mean 40 (treated) or 36 (holdout).
    truth = (n_t * (0.1 * 40.0 - 0.1 * 36.0) - cost) / cost
    hits = 0
    for _ in range(reps):
        treated = (rng.random(n_t) < 0.1) * rng.exponential(40.0, n_t)
        holdout = (rng.random(n_h) < 0.1) * rng.exponential(36.0, n_h)
        hits += roi(treated, holdout, cost, n_bootstrap=0).roi_interval.contains(truth)
    assert 0.93 <= hits / reps <= 0.97


def test_combined_roi_adds_values_variances_and_costs() -> None:
    rng = np.random.default_rng(2)
    a = roi(rng.exponential(12, 500), rng.exponential(10, 200), 300.0, n_bootstrap=0)
    b = roi(rng.exponential(11, 800), rng.exponential(10, 300), 500.0, n_bootstrap=0)
    both = combine_roi([a, b], label="objective repeat-purchases")
    assert both.cost == 800.0
    assert both.incremental_value == pytest.approx(a.incremental_value + b.incremental_value)
    assert both.incremental_std_error == pytest.approx(
        math.hypot(a.incremental_std_error, b.incremental_std_error)
    )
    assert both.roi == pytest.approx((both.incremental_value - 800.0) / 800.0)
    assert both.message.startswith("objective repeat-purchases: ROI ")


def test_a_campaign_that_costs_more_than_it_brings_says_so() -> None:
    result = roi([1.0, 2.0] * 100, [1.0, 2.0] * 100, 50.0, n_bootstrap=0)
    assert result.roi == pytest.approx(-1.0)
    assert result.message.endswith("it cost more than it brought in")


# -------------------------------------------------------------------------- breadth and depth


def test_breadth_and_depth_written_out() -> None:
    reached = [1, 1, 1, 1, 1, 0, 0, 0]
    engagements = [0, 2, 4, 0, 6, 3, 0, 0]  # the unreached person's 3 are not the campaign's
    result = breadth_depth(reached, engagements)
    assert (result.audience, result.reached, result.engaged) == (8, 5, 3)
    assert result.reach_share == 5 / 8
    assert result.share_engaged == 3 / 5
    assert result.engagements == 12
    assert result.engagement_per_engaged == 4.0
    half = stats.t.ppf(0.975, 2) * 2.0 / math.sqrt(3)  # sd of (2, 4, 6) is 2
    assert result.engagement_per_engaged_interval.low == pytest.approx(4 - half)
    assert result.share_engaged_interval.contains(0.6)


def test_stage_transition_matrix_counts_and_directions() -> None:
    before = ["prospect", "prospect", "subscriber", "customer", "customer", Stage.ADVOCATE]
    after = ["subscriber", "prospect", "customer", "lapsed", "advocate", "advocate"]
    result = stage_transitions(before, after)
    assert result.stages == STAGE_ORDER
    index = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    assert result.counts[index[Stage.PROSPECT]][index[Stage.SUBSCRIBER]] == 1
    assert result.counts[index[Stage.CUSTOMER]][index[Stage.LAPSED]] == 1
    assert sum(map(sum, result.counts)) == 6
    assert result.shares[index[Stage.CUSTOMER]] == pytest.approx((0.5, 0, 0, 0, 0.5))
    assert all(math.isnan(v) for v in result.shares[index[Stage.LAPSED]])
    assert (result.moved_up, result.moved_down, result.stayed) == (3, 1, 2)
    assert result.net_movement == pytest.approx(2 / 6)


# ---------------------------------------------------------------------------------------- goals


@pytest.mark.parametrize(
    ("interval", "elapsed", "status"),
    [
        ((0.11, 0.19), None, GoalStatus.MET),
        ((0.02, 0.19), 0.5, GoalStatus.ON_TRACK),
        ((0.01, 0.08), 0.2, GoalStatus.OFF_TRACK),
        ((0.02, 0.19), 1.0, GoalStatus.ON_TRACK),  # estimate 0.15 >= 0.1 at the horizon
    ],
)
def test_goal_status_from_the_interval(
    interval: tuple[float, float], elapsed: float | None, status: GoalStatus
) -> None:
    estimate = 0.15 if interval[1] > 0.1 else 0.05
    result = goal_progress(
        objective="repeat",
        target_kind="relative_lift",
        target=0.1,
        estimate=estimate,
        interval=Interval(*interval, "delta-log"),
        elapsed=elapsed,
    )
    assert result.status is status
    assert result.progress == pytest.approx(estimate / 0.1)
    assert result.message.startswith(f"repeat: {status.value} — ")


def test_goal_is_off_track_when_the_horizon_passed_below_target() -> None:
    result = goal_progress(
        objective="signups",
        target_kind="absolute_rate",
        target=0.05,
        estimate=0.045,
        interval=Interval(0.03, 0.06, "wilson"),
        elapsed=1.2,
    )
    assert result.status is GoalStatus.OFF_TRACK
    assert "the horizon has passed" in result.message


def test_goals_from_a_lift() -> None:
    lift = lift_from_counts(1300, 10_000, 1000, 10_000, n_bootstrap=0)  # +30 %, 13 % rate
    relative = goal_from_lift(lift, objective="visits", relative_lift=0.1)
    assert relative.status is GoalStatus.MET
    assert relative.estimate == pytest.approx(0.3)
    rate = goal_from_lift(lift, objective="visits", absolute_rate=0.2)
    assert rate.status is GoalStatus.OFF_TRACK
    assert rate.interval == lift.treated_interval
    nothing = goal_from_lift(
        lift_from_counts(10, 100, 0, 100, n_bootstrap=0), objective="visits", relative_lift=0.1
    )
    assert nothing.status is GoalStatus.NOT_MEASURABLE


@pytest.mark.parametrize(
    ("call", "field", "fragment"),
    [
        (lambda: roi([1.0, 2.0], [1.0, 2.0], 0.0), "cost", "> 0"),
        (lambda: roi([1.0], [1.0, 2.0], 1.0), "treated_value", "at least 2"),
        (lambda: combine_roi([]), "parts", "at least one campaign"),
        (lambda: breadth_depth([1, 2], [0, 1]), "reached", "True/False"),
        (lambda: breadth_depth([1, 0], [0]), "engagements", "one per person"),
        (lambda: breadth_depth([1, 0], [0, -1]), "engagements", "negative"),
        (lambda: stage_transitions(["prospect"], ["friend"]), "after", "not a stage"),
        (
            lambda: stage_transitions(["prospect"], ["prospect", "lapsed"]),
            "after",
            "one per person",
        ),
        (lambda: stage_transitions([], []), "before", "is empty"),
        (
            lambda: goal_progress(
                objective="x", target_kind="relative_lift", target=0, estimate=None, interval=None
            ),
            "target",
            "> 0",
        ),
        (
            lambda: goal_progress(
                objective="x",
                target_kind="relative_lift",
                target=0.1,
                estimate=0.5,
                interval=Interval(0.0, 0.2, "x"),
            ),
            "interval",
            "does not contain",
        ),
        (
            lambda: goal_from_lift(lift_from_counts(1, 2, 1, 2, n_bootstrap=0), objective="x"),
            "relative_lift",
            "exactly one",
        ),
    ],
)
def test_bad_inputs_name_the_argument(call: object, field: str, fragment: str) -> None:
    assert callable(call)
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.field == field
    assert fragment in str(caught.value)
