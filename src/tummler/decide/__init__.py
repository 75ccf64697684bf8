"""Decide, per person and per message, which lever to pull — or none. Pure: arrays in, arrays out.

The pieces, in the order the app's planning service uses them::

    actions = build_action_set(channels, slot_hours, variants, message_attributes=...)
    x = ContextFeaturizer(...).fit(data).transform(data, message)
    eligibility = compute_eligibility(actions, has_identity=..., consent=..., rules=...)
    decisions = plan(x, actions, policy, eligibility, SelectionRules(...), rng=seed, strata=...)
    why = explain(row, x, actions, policy, decisions, eligibility)

The lever rules that planning and sending share (quiet hours, the critical overrides) live in one
place: :func:`quiet_slots` for the planner's grid, :func:`quiet_until` for the outbox.

Policies follow one contract (:class:`Policy`) and register themselves in :data:`POLICIES`; store
one with ``policy.to_dict()`` and load it with :func:`policy_from_dict`.
"""

from tummler.decide._actions import HOURS_PER_WEEK, ActionSet, build_action_set
from tummler.decide._baselines import BestChannelPerSegment, SendEveryEligibleChannel, UniformRandom
from tummler.decide._bilinear import EpsilonGreedy, LinearThompson, LogisticThompson
from tummler.decide._eligibility import (
    Eligibility,
    EligibilityRules,
    Reason,
    channel_norms_allow,
    compute_eligibility,
    reason_names,
)
from tummler.decide._explain import Explanation, explain
from tummler.decide._features import HISTORY_SIGNALS, ContextData, ContextFeaturizer
from tummler.decide._levers import (
    MINUTES_PER_DAY,
    Override,
    QuietWindow,
    active_overrides,
    quiet_minutes,
    quiet_slots,
    quiet_until,
)
from tummler.decide._plan import Plan, plan
from tummler.decide._policies import (
    POLICIES,
    FactorScores,
    Policy,
    policy_from_dict,
)
from tummler.decide._selection import (
    SelectionRules,
    best_per_channel,
    draw_holdout,
    fit_channel_prices,
    select_levers,
)

__all__ = [
    "HISTORY_SIGNALS",
    "HOURS_PER_WEEK",
    "MINUTES_PER_DAY",
    "POLICIES",
    "ActionSet",
    "BestChannelPerSegment",
    "ContextData",
    "ContextFeaturizer",
    "Eligibility",
    "EligibilityRules",
    "EpsilonGreedy",
    "Explanation",
    "FactorScores",
    "LinearThompson",
    "LogisticThompson",
    "Override",
    "Plan",
    "Policy",
    "QuietWindow",
    "Reason",
    "SelectionRules",
    "SendEveryEligibleChannel",
    "UniformRandom",
    "active_overrides",
    "best_per_channel",
    "build_action_set",
    "channel_norms_allow",
    "compute_eligibility",
    "draw_holdout",
    "explain",
    "fit_channel_prices",
    "plan",
    "policy_from_dict",
    "quiet_minutes",
    "quiet_slots",
    "quiet_until",
    "reason_names",
    "select_levers",
]
