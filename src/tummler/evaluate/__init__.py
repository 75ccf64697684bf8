"""Off-policy evaluation: estimate a policy's value from logged decisions. Pure.

Estimators are functions over arrays in the style of Open Bandit Pipeline (``reward``, ``action``,
``propensity``, ``action_dist``, ``estimated_rewards``), each returning an :class:`Estimate` with a
seeded bootstrap interval and the effective sample size of its importance weights. Those functions
check their arrays on every call; to evaluate many policies on the same logs, check the logs once
(:class:`LoggedData`), each policy once (:meth:`LoggedData.rounds`) and call :func:`estimate`.
Two policies' values on the same logs differ by :func:`paired_difference`, with a paired interval.
Two estimates are compared with :func:`compare_values`, which calls differences within rounding
noise a tie, and :func:`promotion_verdict` decides whether a candidate replaces the promoted
policy.
"""

from tummler.evaluate._baselines import (
    BASELINES,
    Baseline,
    baseline_action_dist,
    context_free_policy,
    logging_shares,
)
from tummler.evaluate._checks import LoggedData, LoggedRounds
from tummler.evaluate._comparison import (
    TIE_ABSOLUTE_TOLERANCE,
    TIE_RELATIVE_TOLERANCE,
    Comparison,
    compare_values,
    tie_tolerance,
)
from tummler.evaluate._diagnostics import (
    WARNING_CODES,
    EvaluationWarning,
    SwitchGuard,
    switch_threshold,
)
from tummler.evaluate._estimators import (
    ESTIMATORS,
    MIN_ROUNDS_FOR_INTERVAL,
    Estimate,
    dm,
    dr,
    effective_sample_size,
    estimate,
    ips,
    snips,
    switch_dr,
)
from tummler.evaluate._evaluation import PolicyEvaluation, evaluate_policy
from tummler.evaluate._model_bootstrap import (
    DEFAULT_MODEL_REFITS,
    refit_dm_replicates,
    refit_interval,
)
from tummler.evaluate._paired import paired_difference
from tummler.evaluate._promotion import PromotionVerdict, promotion_verdict
from tummler.evaluate._reward_model import (
    RewardModelKind,
    RewardPredictor,
    fit_reward_model,
    fit_reward_predictor,
)

__all__ = [
    "BASELINES",
    "DEFAULT_MODEL_REFITS",
    "ESTIMATORS",
    "MIN_ROUNDS_FOR_INTERVAL",
    "TIE_ABSOLUTE_TOLERANCE",
    "TIE_RELATIVE_TOLERANCE",
    "WARNING_CODES",
    "Baseline",
    "Comparison",
    "Estimate",
    "EvaluationWarning",
    "LoggedData",
    "LoggedRounds",
    "PolicyEvaluation",
    "PromotionVerdict",
    "RewardModelKind",
    "RewardPredictor",
    "SwitchGuard",
    "baseline_action_dist",
    "compare_values",
    "context_free_policy",
    "dm",
    "dr",
    "effective_sample_size",
    "estimate",
    "evaluate_policy",
    "fit_reward_model",
    "fit_reward_predictor",
    "ips",
    "logging_shares",
    "paired_difference",
    "promotion_verdict",
    "refit_dm_replicates",
    "refit_interval",
    "snips",
    "switch_dr",
    "switch_threshold",
    "tie_tolerance",
]
