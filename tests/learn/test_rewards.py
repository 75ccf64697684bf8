"""Rewards per decision: KPI minus penalties, with opens ignored unless asked for."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.core.errors import PolicyError
from tummler.core.vocabulary import EventType
from tummler.learn.rewards import RewardSpec, decision_rewards

NAN = float("nan")
CONVERTED = EventType.CONVERTED
REPLIED = EventType.REPLIED


def rewards(spec: RewardSpec, n: int, *events: tuple[int, str, float]) -> list[float]:
    decision = [e[0] for e in events]
    kinds = [e[1] for e in events]
    values = [e[2] for e in events]
    found: list[float] = decision_rewards(
        n, np.array(decision, dtype=np.int64), kinds, values, spec
    ).tolist()
    return found


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (RewardSpec(CONVERTED, "value"), [60.0, 0.0 - 2.0, 0.0 - 1.0, 0.0]),
        (RewardSpec(CONVERTED, "rate"), [1.0, 1.0 - 2.0, 0.0 - 1.0, 0.0]),
        (RewardSpec(CONVERTED, "count"), [2.0, 1.0 - 2.0, 0.0 - 1.0, 0.0]),
        (RewardSpec(REPLIED, "count", unsubscribe_penalty=0, complaint_penalty=0), [0, 0, 3, 0]),
        (RewardSpec(REPLIED, "count"), [0.0, -2.0, 3.0 - 1.0, 0.0]),
        (RewardSpec(REPLIED, "rate", complaint_penalty=0.5), [0.0, -0.5, 1.0 - 1.0, 0.0]),
        (RewardSpec(CONVERTED, "value", open_weight=0.1), [60.1, -2.0, 0.1 - 1.0, 0.0]),
    ],
    ids=["value", "rate", "count", "replies", "penalties", "rate minus complaint", "opens"],
)
def test_known_rewards(spec: RewardSpec, expected: list[float]) -> None:
    events = [
        (0, "converted", 50.0),
        (0, "converted", 10.0),
        (0, "opened", NAN),
        (1, "converted", NAN),  # a conversion without a value: counts, but is worth 0
        (1, "complained", NAN),
        (1, "complained", NAN),  # twice reported, punished once
        (2, "replied", NAN),
        (2, "replied", NAN),
        (2, "replied", NAN),
        (2, "opened", NAN),
        (2, "unsubscribed", NAN),
        (-1, "converted", 1000.0),  # attributed to no decision
    ]
    assert rewards(spec, 4, *events) == pytest.approx(expected)


def test_opens_are_not_a_reward_by_default() -> None:
    spec = RewardSpec(EventType.CLICKED)
    assert spec.open_weight == 0.0
    assert rewards(spec, 2, (0, "opened", NAN), (0, "delivered", NAN), (1, "clicked", NAN)) == [
        0.0,
        1.0,
    ]


def test_no_events_and_no_decisions() -> None:
    spec = RewardSpec(CONVERTED, "value")
    assert decision_rewards(3, [], [], None, spec).tolist() == [0.0, 0.0, 0.0]
    assert decision_rewards(0, [], [], [], spec).tolist() == []


def test_for_kpi_reads_a_strategy_kpi() -> None:
    spec = RewardSpec.for_kpi("converted", "value", complaint_penalty=5.0)
    assert spec == RewardSpec(CONVERTED, "value", complaint_penalty=5.0)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"kpi_event": "opened"}, "not a response a person chose"),
        ({"kpi_event": "delivered"}, "not a response a person chose"),
        ({"kpi_event": "unsubscribed"}, "not a response a person chose"),
        ({"kpi_event": "liked"}, "'liked' is not an event type"),
        ({"measure": "mean"}, "measure 'mean' is not one of rate, count, value"),
        ({"unsubscribe_penalty": -1.0}, "unsubscribe_penalty must be a finite number >= 0"),
        ({"complaint_penalty": math.inf}, "complaint_penalty must be a finite number >= 0"),
        ({"open_weight": math.nan}, "open_weight must be a finite number"),
    ],
)
def test_bad_specs_are_refused_with_the_argument_named(
    arguments: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(PolicyError, match=fragment):
        RewardSpec(**({"kpi_event": CONVERTED} | arguments))


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"n_decisions": -1}, "n_decisions must be an integer >= 0"),
        ({"event_decision": [0, 1]}, "event_type has 1 entries but event_decision has 2"),
        ({"event_value": [1.0, 2.0]}, "event_value has 2 entries"),
        ({"event_decision": [2]}, r"outside -1 \.\. 1"),
        ({"event_decision": [-2]}, r"outside -1 \.\. 1"),
        ({"event_decision": [0.5]}, "integer indices"),
        ({"event_decision": [[0]]}, "one-dimensional"),
        ({"event_value": [math.inf]}, "infinite"),
    ],
)
def test_bad_arrays_are_refused_with_the_argument_named(
    arguments: dict[str, Any], fragment: str
) -> None:
    given_arguments: dict[str, Any] = {
        "n_decisions": 2,
        "event_decision": [0],
        "event_type": ["converted"],
        "event_value": [1.0],
        "spec": RewardSpec(CONVERTED, "value"),
    } | arguments
    with pytest.raises(PolicyError, match=fragment):
        decision_rewards(**given_arguments)


_TYPES = [t.value for t in EventType]
_events = st.lists(
    st.tuples(
        st.integers(-1, 4),
        st.sampled_from(_TYPES),
        st.one_of(st.just(NAN), st.floats(-1e6, 1e6)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(events=_events, unsubscribe=st.floats(0, 10), complaint=st.floats(0, 10))
def test_a_rate_reward_is_bounded_by_one_and_the_penalties(
    events: list[tuple[int, str, float]], unsubscribe: float, complaint: float
) -> None:
    spec = RewardSpec(EventType.CLICKED, "rate", unsubscribe, complaint)
    got = np.array(rewards(spec, 5, *events))
    assert np.all(got <= 1.0)
    assert np.all(got >= -(unsubscribe + complaint))


@settings(max_examples=200, deadline=None)
@given(events=_events, extra=st.lists(st.integers(0, 4), max_size=10))
def test_adding_opens_changes_no_reward_by_default(
    events: list[tuple[int, str, float]], extra: list[int]
) -> None:
    spec = RewardSpec(CONVERTED, "value")
    more = events + [(d, "opened", NAN) for d in extra]
    assert rewards(spec, 5, *events) == rewards(spec, 5, *more)


@settings(max_examples=200, deadline=None)
@given(events=_events)
def test_value_rewards_sum_to_the_attributed_kpi_value_without_penalties(
    events: list[tuple[int, str, float]],
) -> None:
    spec = RewardSpec(CONVERTED, "value", unsubscribe_penalty=0.0, complaint_penalty=0.0)
    total = math.fsum(v for d, t, v in events if d >= 0 and t == "converted" and not math.isnan(v))
    assert sum(rewards(spec, 5, *events)) == pytest.approx(total, abs=1e-6)
