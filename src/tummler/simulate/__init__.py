"""A synthetic brand with a known response model, for regret, tests and demos. Pure.

Build a :class:`Population` with :func:`make_population` (observable attributes, channels,
consent, a homophilous heavy-tailed social graph, and the :class:`HiddenTruth`), then:

- :func:`respond` draws what people do with a round's :class:`Sends` (returns a new
  :class:`SimulationState` and the :class:`Outcomes`; nothing is mutated);
- :func:`expected_reward` gives the true value of every action for every contact, and
  :func:`oracle_policy` the best one;
- :func:`history` simulates past legacy blasts and mentions to seed a store;
- :func:`run_rounds` runs any decision function and measures its regret, with the baselines
  :class:`RandomPolicy`, :class:`SendToAll`, :class:`BestSingleAction` and :class:`OraclePolicy`;
- :class:`BaselineWorlds` plays those baselines each in its own copy of the world (same people,
  same seeds), so a policy run elsewhere — through the store, in ``tummler demo`` — can be set
  beside them with list erosion counted; :func:`baseline_values` values them on one state only.

>>> import numpy as np
>>> from datetime import datetime, UTC
>>> population = make_population(500, np.random.default_rng(1), origin=datetime(2026, 1, 1, tzinfo=UTC))
>>> model = ResponseModel()
>>> message = Message("launch", topic="product", variants=(Variant("a"), Variant("b", emotion="joy")))
>>> start = datetime(2026, 1, 2, tzinfo=UTC)
>>> oracle = run_rounds(population, model, OraclePolicy(model), messages=message, rounds=2,
...                     start=start, rng=np.random.default_rng(2))
>>> abs(float(oracle.regret.sum())) < 1e-9
True
>>> guess = run_rounds(population, model, RandomPolicy(np.random.default_rng(3)), messages=message,
...                    rounds=2, start=start, rng=np.random.default_rng(2))
>>> bool(guess.regret.sum() > 0)
True
"""

from tummler.simulate._curve import (
    BASELINE_NAMES,
    BaselineWorlds,
    RoundValues,
    baseline_values,
    sends_value,
)
from tummler.simulate._history import MENTION_TEMPLATES, History, LegacyPolicy, history
from tummler.simulate._model import (
    ResponseModel,
    RewardWeights,
    expected_reward,
    oracle_policy,
)
from tummler.simulate._population import (
    HiddenTruth,
    Population,
    SocialGraph,
    make_population,
    observable_features,
)
from tummler.simulate._records import (
    EVENT_TYPES,
    MENTION_TOPICS,
    SENTIMENTS,
    EventLog,
    EventRecord,
    MentionLog,
    MentionRecord,
    outcome_events,
)
from tummler.simulate._respond import respond
from tummler.simulate._rounds import (
    BestSingleAction,
    DecideFn,
    LearnFn,
    OraclePolicy,
    RandomPolicy,
    Round,
    RoundsResult,
    SendToAll,
    run_rounds,
)
from tummler.simulate._sends import LENGTHS, URGENCIES, ActionSpace, Message, Sends, Variant
from tummler.simulate._state import (
    Outcomes,
    SimulationState,
    eligible_actions,
    initial_state,
    local_hours,
)
from tummler.simulate._tables import (
    AGE_BANDS,
    ATTRIBUTES,
    CHANNELS,
    CONTACT_REF,
    EDGE_KINDS,
    EMOTIONS,
    IMPORT_COLUMNS,
    INTERESTS,
    LTV_BANDS,
    SIGNUP_CHANNELS,
    STAGES,
    TOPICS,
)

__all__ = [
    "AGE_BANDS",
    "ATTRIBUTES",
    "BASELINE_NAMES",
    "CHANNELS",
    "CONTACT_REF",
    "EDGE_KINDS",
    "EMOTIONS",
    "EVENT_TYPES",
    "IMPORT_COLUMNS",
    "INTERESTS",
    "LENGTHS",
    "LTV_BANDS",
    "MENTION_TEMPLATES",
    "MENTION_TOPICS",
    "SENTIMENTS",
    "SIGNUP_CHANNELS",
    "STAGES",
    "TOPICS",
    "URGENCIES",
    "ActionSpace",
    "BaselineWorlds",
    "BestSingleAction",
    "DecideFn",
    "EventLog",
    "EventRecord",
    "HiddenTruth",
    "History",
    "LearnFn",
    "LegacyPolicy",
    "MentionLog",
    "MentionRecord",
    "Message",
    "OraclePolicy",
    "Outcomes",
    "Population",
    "RandomPolicy",
    "ResponseModel",
    "RewardWeights",
    "Round",
    "RoundValues",
    "RoundsResult",
    "SendToAll",
    "Sends",
    "SimulationState",
    "SocialGraph",
    "Variant",
    "baseline_values",
    "eligible_actions",
    "expected_reward",
    "history",
    "initial_state",
    "local_hours",
    "make_population",
    "observable_features",
    "oracle_policy",
    "outcome_events",
    "respond",
    "run_rounds",
    "sends_value",
]
