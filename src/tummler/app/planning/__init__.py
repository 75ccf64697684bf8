"""The planning service: ``tummler plan CAMPAIGN`` and ``tummler explain CONTACT CAMPAIGN``.

:func:`plan_campaign` does the I/O around the pure engine in :mod:`tummler.decide`, one job a
module:

- :mod:`.setup`: the strategy and the campaign (refusing a strategy whose check finds errors), the
  horizon, the send slots, the action set, the eligibility and selection rules, the featurizer;
- :mod:`.contexts`: the audience, read from the store in chunks of contacts and filtered with the
  audience expression (:mod:`tummler.app.audience`, the reader the strategy check shares): reach,
  sends in the fatigue and frequency-cap windows, engagement history, mentions, social degree;
- :mod:`.slots`: each slot's UTC time in each contact's time zone, daylight saving included;
- :mod:`.templates`: every variant rendered for every field shape of contacts before deciding;
- :mod:`.policy_choice`: the latest promoted policy version that fits, or a fresh prior;
- :mod:`.caps`: spend caps as caps on the channels' sends, and what they cost;
- :mod:`.selection`: the engine's decisions, runner-ups and feature contributions;
- :mod:`.decisions`: one row per lever, replacing the previous plan's; :mod:`.report` the summary;
- :mod:`.explain`: a decision read back in plain words; :mod:`.replay`: a plan's contexts
  rebuilt for learning;
- :mod:`.campaign`: :func:`plan_campaign`, the steps in order.
"""

from tummler.app.planning.campaign import plan_campaign
from tummler.app.planning.caps import ChannelBudget
from tummler.app.planning.contexts import ProgressCallback
from tummler.app.planning.explain import DecisionExplanation, LeverExplanation, explain_decision
from tummler.app.planning.replay import PlannedContexts, planned_contexts
from tummler.app.planning.report import PlanReport
from tummler.app.planning.setup import HISTORY_WINDOWS_DAYS, load_campaign
from tummler.app.planning.slots import local_slots_to_utc

__all__ = [
    "HISTORY_WINDOWS_DAYS",
    "ChannelBudget",
    "DecisionExplanation",
    "LeverExplanation",
    "PlanReport",
    "PlannedContexts",
    "ProgressCallback",
    "explain_decision",
    "load_campaign",
    "local_slots_to_utc",
    "plan_campaign",
    "planned_contexts",
]
