"""The baselines beside a policy run elsewhere: the yardstick a learning curve is drawn against.

A demo (or any experiment) runs its own policy through the real services. :class:`BaselineWorlds`
plays each textbook policy in *its own copy* of the simulated world — the same people, the same
starting state, the same audience and the same seed for every round's responses (common random
numbers) — so that what a policy does to its list (unsubscribes that revoke consent, fatigue that
lowers the next round's response, stages that move) counts against it in the rounds that follow.
Values are *true* expected reward, the quantity :func:`~tummler.simulate.respond` reports as
``Outcomes.expected``.

:func:`baseline_values` values the baselines on one given state without playing them (myopic: the
harm a send does later is not counted); it answers "what would each have been worth right now".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from tummler.core.errors import InputError
from tummler.simulate._model import ResponseModel, expected_reward
from tummler.simulate._population import Population
from tummler.simulate._respond import respond
from tummler.simulate._rounds import (
    BestSingleAction,
    DecideFn,
    OraclePolicy,
    RandomPolicy,
    Round,
    SendToAll,
)
from tummler.simulate._sends import ActionSpace, Message
from tummler.simulate._state import SimulationState, eligible_actions
from tummler.simulate._tables import BoolArray

__all__ = ["BASELINE_NAMES", "BaselineWorlds", "RoundValues", "baseline_values", "sends_value"]

#: The baselines :func:`baseline_values` values, in the order it reports them.
BASELINE_NAMES = ("random", "send to all", "best single action", "oracle")


@dataclass(frozen=True)
class RoundValues:
    """Each baseline's true expected reward on one round, and how many sends it would make."""

    value: Mapping[str, float]
    sends: Mapping[str, int]


def _baselines(model: ResponseModel, rng: np.random.Generator) -> dict[str, DecideFn]:
    """:data:`BASELINE_NAMES`' decision functions (the random one draws from ``rng``)."""
    return {
        "random": RandomPolicy(rng),
        "send to all": SendToAll(),
        "best single action": BestSingleAction(model),
        "oracle": OraclePolicy(model),
    }


def _audience_mask(population: Population, audience: BoolArray) -> BoolArray:
    mask = np.asarray(audience, dtype=np.bool_)
    if mask.shape != (population.n,):
        raise InputError(
            f"audience must hold one flag per contact ({population.n}), got shape {mask.shape}",
            field="audience",
        )
    return mask


@dataclass(eq=False)
class BaselineWorlds:
    """Each of :data:`BASELINE_NAMES` played round after round in its own copy of the world.

    Every world starts from ``state`` (the one the policy being measured starts from). Each
    :meth:`play` lets every baseline decide for the round's audience on *its own* state, draws the
    people's responses with a generator seeded by ``seed`` — the same seed in every world, and
    the caller's own policy should use it too (common random numbers) — and keeps the state each
    world is left in. So send-to-all pays in later rounds for the unsubscribes and fatigue it
    causes, as any policy played through the loop does.

    >>> from datetime import UTC, datetime
    >>> from tummler.simulate import Message, ResponseModel, initial_state, make_population
    >>> people = make_population(200, np.random.default_rng(1), origin=datetime(2026, 1, 1, tzinfo=UTC))
    >>> worlds = BaselineWorlds(people, ResponseModel(), initial_state(people), np.random.default_rng(2))
    >>> space = ActionSpace.for_message(Message("m"))
    >>> day = datetime(2026, 1, 2, tzinfo=UTC)
    >>> first = worlds.play(Message("m"), space, day, audience=np.ones(200, bool), seed=5)
    >>> sorted(first.value) == sorted(BASELINE_NAMES)
    True
    >>> worlds.states["send to all"] is worlds.states["oracle"]
    False
    """

    population: Population
    model: ResponseModel
    start: SimulationState
    rng: np.random.Generator
    states: dict[str, SimulationState] = field(default_factory=dict)
    _policies: dict[str, DecideFn] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.states = dict.fromkeys(BASELINE_NAMES, self.start) | self.states
        self._policies = _baselines(self.model, self.rng)

    def play(
        self,
        message: Message,
        actions: ActionSpace,
        at: datetime,
        *,
        audience: BoolArray,
        seed: int | np.random.SeedSequence,
        index: int = 0,
    ) -> RoundValues:
        """Play one round in every world: each baseline decides for ``audience`` (everyone else
        gets *no send*), its people respond (drawn from ``seed``), its world moves on.

        Returns
        -------
        RoundValues
            Each baseline's true expected reward this round, in its own world, and its allowed
            sends.

        Raises
        ------
        InputError
            When ``audience`` is not one flag per contact.
        """
        mask = _audience_mask(self.population, audience)
        value: dict[str, float] = {}
        sends: dict[str, int] = {}
        for name, decide in self._policies.items():
            state = self.states[name]
            eligible = eligible_actions(self.population, state, actions)
            eligible[~mask, : actions.k] = False
            round_ = Round(index, at, self.population, state, message, actions, eligible)
            chosen = np.asarray(decide(round_), dtype=np.int64)
            after, outcomes = respond(
                self.population,
                self.model,
                state,
                message,
                actions.sends(chosen),
                at,
                np.random.default_rng(seed),
            )
            self.states[name] = after
            value[name] = float(outcomes.expected.sum())
            sends[name] = int(outcomes.allowed.sum())
        return RoundValues(value=value, sends=sends)


def sends_value(
    population: Population,
    model: ResponseModel,
    state: SimulationState,
    message: Message,
    actions: ActionSpace,
    chosen: np.ndarray,
    at: datetime,
) -> tuple[float, int]:
    """The true expected reward of choosing ``chosen`` (``(n,)`` or ``(n, L)`` action indices) on
    ``state``, and the number of sends that consent and identity allow. Several levers to one
    person tire them, exactly as :func:`respond` counts it."""
    sends = actions.sends(chosen)
    # The draw does not change the expectation; a fixed generator keeps the caller's untouched.
    _, outcomes = respond(population, model, state, message, sends, at, np.random.default_rng(0))
    return float(outcomes.expected.sum()), int(outcomes.allowed.sum())


def baseline_values(
    population: Population,
    model: ResponseModel,
    state: SimulationState,
    message: Message,
    actions: ActionSpace,
    at: datetime,
    *,
    audience: BoolArray,
    rng: np.random.Generator,
    index: int = 0,
) -> RoundValues:
    """Value :data:`BASELINE_NAMES` on one round, each deciding for ``audience`` only.

    Parameters
    ----------
    population, model, state, message, actions, at
        The round, as :func:`respond` would play it.
    audience
        ``(n,)`` who may be sent to this round; everyone else gets *no send* from every baseline.
    rng
        The random baseline's draws.
    index
        The round's number (for the :class:`Round` the baselines read).

    Returns
    -------
    RoundValues
        True expected reward and allowed sends per baseline. ``oracle`` is the best *single* lever
        per person (the myopic oracle of :func:`run_rounds`): no one-lever policy beats it, while
        ``send to all`` pulls every lever at once.

    Raises
    ------
    InputError
        When ``audience`` is not one flag per contact.
    """
    mask = _audience_mask(population, audience)
    eligible = eligible_actions(population, state, actions)
    eligible[~mask, : actions.k] = False
    truth = expected_reward(population, model, state, message, actions, at)
    round_ = Round(index, at, population, state, message, actions, eligible, truth, model)
    policies = _baselines(model, rng)
    value: dict[str, float] = {}
    sends: dict[str, int] = {}
    for name, decide in policies.items():
        chosen = np.asarray(decide(round_), dtype=np.int64)
        value[name], sends[name] = sends_value(
            population, model, state, message, actions, chosen, at
        )
    return RoundValues(value=value, sends=sends)
