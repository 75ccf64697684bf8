"""Baselines played each in its own copy of the world: known answers from a hand-run loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tummler.core.errors import InputError
from tummler.simulate import (
    BASELINE_NAMES,
    ActionSpace,
    BaselineWorlds,
    Message,
    ResponseModel,
    Round,
    SendToAll,
    baseline_values,
    eligible_actions,
    initial_state,
    make_population,
    respond,
)

ORIGIN = datetime(2026, 2, 2, 6, 0, tzinfo=UTC)
MESSAGE = Message("launch")
SPACE = ActionSpace.for_message(MESSAGE)
MODEL = ResponseModel()


def _day(r: int) -> datetime:
    return ORIGIN + timedelta(days=r + 1)


def test_each_world_is_the_baseline_played_by_hand_with_the_same_seeds() -> None:
    people = make_population(1_500, np.random.default_rng(4), origin=ORIGIN)
    audience = np.ones(people.n, bool)
    audience[::3] = False
    worlds = BaselineWorlds(people, MODEL, initial_state(people), np.random.default_rng(5))
    played = [
        worlds.play(MESSAGE, SPACE, _day(r), audience=audience, seed=100 + r, index=r)
        for r in range(4)
    ]
    # send-to-all by hand: decide on its own state, respond with the round's seed, carry on
    state = initial_state(people)
    for r in range(4):
        eligible = eligible_actions(people, state, SPACE)
        eligible[~audience, : SPACE.k] = False
        chosen = SendToAll()(Round(r, _day(r), people, state, MESSAGE, SPACE, eligible))
        state, outcomes = respond(
            people,
            MODEL,
            state,
            MESSAGE,
            SPACE.sends(chosen),
            _day(r),
            np.random.default_rng(100 + r),
        )
        assert played[r].value["send to all"] == pytest.approx(float(outcomes.expected.sum()))
        assert played[r].sends["send to all"] == int(outcomes.allowed.sum())
    np.testing.assert_array_equal(worlds.states["send to all"].consent, state.consent)
    assert set(worlds.states) == set(BASELINE_NAMES)


def test_the_first_round_is_the_myopic_value_and_later_ones_pay_for_erosion() -> None:
    people = make_population(1_500, np.random.default_rng(6), origin=ORIGIN)
    start = initial_state(people)
    everyone = np.ones(people.n, bool)
    worlds = BaselineWorlds(people, MODEL, start, np.random.default_rng(7))
    first = worlds.play(MESSAGE, SPACE, _day(0), audience=everyone, seed=1)
    myopic = baseline_values(
        people,
        MODEL,
        start,
        MESSAGE,
        SPACE,
        _day(0),
        audience=everyone,
        rng=np.random.default_rng(7),
    )
    assert first.value == pytest.approx(myopic.value)
    for r in range(1, 5):
        worlds.play(MESSAGE, SPACE, _day(r), audience=everyone, seed=1 + r)
    # every lever every day: send-to-all's list erodes faster than the oracle's single levers
    lost = {name: int(start.consent.sum() - s.consent.sum()) for name, s in worlds.states.items()}
    assert lost["send to all"] > lost["oracle"] >= 0
    # and its next round is worth less in its own world than on the untouched start
    later = baseline_values(
        people,
        MODEL,
        worlds.states["send to all"],
        MESSAGE,
        SPACE,
        _day(5),
        audience=everyone,
        rng=np.random.default_rng(0),
    )
    fresh = baseline_values(
        people,
        MODEL,
        start,
        MESSAGE,
        SPACE,
        _day(5),
        audience=everyone,
        rng=np.random.default_rng(0),
    )
    assert later.value["send to all"] < fresh.value["send to all"]


def test_a_wrong_audience_is_refused() -> None:
    people = make_population(100, np.random.default_rng(8), origin=ORIGIN)
    worlds = BaselineWorlds(people, MODEL, initial_state(people), np.random.default_rng(9))
    with pytest.raises(InputError, match="audience must hold one flag per contact"):
        worlds.play(MESSAGE, SPACE, _day(0), audience=np.ones(99, bool), seed=0)
