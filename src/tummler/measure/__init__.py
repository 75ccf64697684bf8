"""Measurement: holdout lift, variant tests, send-time and channel insights, ROI, breadth and depth,
goals. Pure.

Arrays in, frozen dataclasses out, each with its intervals and a sentence in plain words; the
report command and the HTML page render them. Every function checks its arguments at the door and
raises :class:`~tummler.core.errors.InputError` naming the argument; randomness (bootstraps, Monte
Carlo) comes only from a ``numpy.random.Generator`` or a seed passed in.

* :func:`holdout_lift`, :func:`lift_from_counts`: what a campaign changed, treated against holdout.
* :func:`probability_to_be_best`: Bayesian comparison of variants.
* :func:`sequential_test_rates`, :func:`sequential_test_means`, :func:`msprt`: an always-valid
  sequential test (mSPRT) with a stopping recommendation.
* :func:`send_time_response`, :func:`channel_response`, :func:`response_by_cell`: response by
  hour of week and by channel from randomized exploration, flagged when not causal.
* :func:`roi`, :func:`combine_roi`: return on cost per campaign and per objective.
* :func:`breadth_depth`, :func:`stage_transitions`: reach against depth of relationships.
* :func:`goal_progress`, :func:`goal_from_lift`: objectives against their targets.
* :func:`logged_experiment`: a past experiment's mean reward per action and lift over a control,
  from its logged decisions and propensities.
"""

from tummler.measure._bayes import VariantPosterior, probability_to_be_best
from tummler.measure._breadth import (
    STAGE_ORDER,
    BreadthDepth,
    StageTransitions,
    breadth_depth,
    stage_transitions,
)
from tummler.measure._goals import (
    GoalProgress,
    GoalStatus,
    TargetKind,
    goal_from_lift,
    goal_progress,
)
from tummler.measure._holdout_size import required_holdout
from tummler.measure._insights import (
    HOURS_IN_WEEK,
    CellResponse,
    channel_response,
    response_by_cell,
    send_time_response,
)
from tummler.measure._intervals import (
    log_ratio_interval,
    newcombe_interval,
    welch_interval,
    wilson_interval,
)
from tummler.measure._lift import (
    Interval,
    KpiKind,
    Lift,
    Verdict,
    format_effect,
    holdout_lift,
    lift_from_counts,
)
from tummler.measure._logged import ActionLift, ActionMean, LoggedExperiment, logged_experiment
from tummler.measure._roi import Roi, combine_roi, roi
from tummler.measure._sequential import (
    SequentialTest,
    StopRecommendation,
    msprt,
    sequential_test_means,
    sequential_test_rates,
)

__all__ = [
    "HOURS_IN_WEEK",
    "STAGE_ORDER",
    "ActionLift",
    "ActionMean",
    "BreadthDepth",
    "CellResponse",
    "GoalProgress",
    "GoalStatus",
    "Interval",
    "KpiKind",
    "Lift",
    "LoggedExperiment",
    "Roi",
    "SequentialTest",
    "StageTransitions",
    "StopRecommendation",
    "TargetKind",
    "VariantPosterior",
    "Verdict",
    "breadth_depth",
    "channel_response",
    "combine_roi",
    "format_effect",
    "goal_from_lift",
    "goal_progress",
    "holdout_lift",
    "lift_from_counts",
    "log_ratio_interval",
    "logged_experiment",
    "msprt",
    "newcombe_interval",
    "probability_to_be_best",
    "required_holdout",
    "response_by_cell",
    "roi",
    "send_time_response",
    "sequential_test_means",
    "sequential_test_rates",
    "stage_transitions",
    "welch_interval",
    "wilson_interval",
]
