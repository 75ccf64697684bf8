"""Run any decision function for several rounds against the known model; measure regret.

A decision function takes a :class:`Round` and returns, per contact, one action index (``k`` for
no send) or an ``(n, L)`` array of levers. Regret is measured against the myopic oracle: in every
round, on the state the policy itself has led to, the best single action per contact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError
from tummler.simulate._model import ResponseModel, _best, expected_reward
from tummler.simulate._population import Population
from tummler.simulate._respond import respond
from tummler.simulate._sends import ActionSpace, Message, Sends
from tummler.simulate._state import Outcomes, SimulationState, eligible_actions, initial_state
from tummler.simulate._tables import BoolArray, FloatArray, IntArray

__all__ = [
    "BestSingleAction",
    "DecideFn",
    "LearnFn",
    "OraclePolicy",
    "RandomPolicy",
    "Round",
    "RoundsResult",
    "SendToAll",
    "run_rounds",
]


@dataclass(frozen=True, eq=False)
class Round:
    """What a decision function may look at: the contacts, the state, the message and actions.

    ``eligible`` is ``(n, k + 1)``: identity and consent now (no send always allowed). The
    population's ``hidden`` truth and ``truth``, the :func:`expected_reward` table that
    :func:`run_rounds` computes anyway to measure regret, are there too: only oracle baselines
    may read them, a learner must not.
    """

    index: int
    at: datetime
    population: Population
    state: SimulationState
    message: Message
    actions: ActionSpace
    eligible: BoolArray
    truth: FloatArray | None = None
    #: The model ``truth`` was computed with.
    truth_model: ResponseModel | None = None

    def expected_reward(self, model: ResponseModel) -> FloatArray:
        """The true ``(n, k + 1)`` expected reward table under ``model`` (reusing ``truth``)."""
        if self.truth is not None and model == self.truth_model:
            return self.truth
        return expected_reward(
            self.population, model, self.state, self.message, self.actions, self.at
        )


DecideFn = Callable[[Round], npt.ArrayLike]
LearnFn = Callable[[Round, Sends, Outcomes], None]


@dataclass(frozen=True, eq=False)
class RoundsResult:
    """Per-round figures of a run (arrays of length ``rounds``) and the state it ends in.

    ``reward`` is realized, ``expected`` the true expected reward of the sends made, ``oracle``
    the oracle's expected reward on the same state, ``regret = oracle − expected``.
    """

    reward: FloatArray
    expected: FloatArray
    oracle: FloatArray
    regret: FloatArray
    sends: IntArray
    state: SimulationState

    @property
    def cumulative_reward(self) -> FloatArray:
        return np.cumsum(self.reward)

    @property
    def cumulative_regret(self) -> FloatArray:
        return np.cumsum(self.regret)


def run_rounds(
    population: Population,
    model: ResponseModel,
    decide: DecideFn,
    *,
    messages: Message | Sequence[Message],
    rounds: int,
    start: datetime,
    rng: np.random.Generator,
    state: SimulationState | None = None,
    interval: timedelta = timedelta(days=1),
    actions: ActionSpace | None = None,
    learn: LearnFn | None = None,
) -> RoundsResult:
    """Plan → deliver → respond → learn, ``rounds`` times.

    Parameters
    ----------
    decide
        Returns ``(n,)`` action indices or ``(n, L)`` levers per contact; ``k`` means no send.
    messages
        One message for every round, or a sequence used in turn.
    start, interval
        Round ``r`` happens at ``start + r · interval``.
    rng
        Draws the responses (a decision function brings its own generator).
    state
        Where to start (default: the population's origin state), e.g. ``history(...).state``.
    actions
        The action space (default: :meth:`ActionSpace.for_message` of each round's message).
    learn
        Called after every round with the round, its sends and their outcomes.

    Raises
    ------
    InputError
        When ``rounds`` is negative, no message is given, or ``decide`` returns a wrong shape.
    """
    if rounds < 0:
        raise InputError(f"rounds must be >= 0, got {rounds}", field="rounds")
    queue = (messages,) if isinstance(messages, Message) else tuple(messages)
    if not queue:
        raise InputError("give at least one message", field="messages")
    state = state or initial_state(population)
    figures = np.zeros((5, rounds))
    for r in range(rounds):
        message = queue[r % len(queue)]
        space = actions or ActionSpace.for_message(message)
        at = start + r * interval
        eligible = eligible_actions(population, state, space)
        values = expected_reward(population, model, state, message, space, at)
        best = _best(values, eligible)
        oracle = float(values[np.arange(population.n), best].sum())
        round_ = Round(r, at, population, state, message, space, eligible, values, model)
        chosen = np.asarray(decide(round_))
        if chosen.shape[:1] != (population.n,):
            raise InputError(
                f"decide returned shape {chosen.shape}; it must return (n,) or (n, L) with "
                f"n = {population.n}",
                field="decide",
            )
        sends = space.sends(chosen)
        state, outcomes = respond(population, model, state, message, sends, at, rng)
        if learn is not None:
            learn(round_, sends, outcomes)
        expected = float(outcomes.expected.sum())
        figures[:, r] = (
            float(outcomes.reward.sum()),
            expected,
            oracle,
            oracle - expected,
            float(outcomes.allowed.sum()),
        )
    return RoundsResult(
        reward=figures[0],
        expected=figures[1],
        oracle=figures[2],
        regret=figures[3],
        sends=figures[4].astype(np.int64),
        state=state,
    )


class RandomPolicy:
    """Uniformly random among each contact's allowed actions, *no send* included."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, round_: Round) -> IntArray:
        scores = np.where(round_.eligible, self.rng.random(round_.eligible.shape), -1.0)
        return np.asarray(np.argmax(scores, axis=1), dtype=np.int64)


class SendToAll:
    """Every allowed channel at once, at one hour with one variant: the "pull every lever" baseline.

    Parameters
    ----------
    slot, variant
        Index into the action space's hours, and the variant, used for every send.
    """

    def __init__(self, slot: int = 0, variant: int = 0) -> None:
        self.slot = slot
        self.variant = variant

    def __call__(self, round_: Round) -> IntArray:
        space = round_.actions
        if not 0 <= self.slot < len(space.hours) or not 0 <= self.variant < space.n_variants:
            raise InputError(
                f"slot {self.slot} or variant {self.variant} is outside the action space "
                f"({len(space.hours)} hours, {space.n_variants} variants)",
                field="slot",
            )
        per_channel = len(space.hours) * space.n_variants
        action = (
            np.arange(len(space.channels)) * per_channel
            + self.slot * space.n_variants
            + self.variant
        )
        allowed = round_.eligible[:, action]
        return np.asarray(np.where(allowed, action[None, :], space.k), dtype=np.int64)


class BestSingleAction:
    """The one (channel, hour, variant) with the highest total true value, sent to all it can reach.

    The "best single channel" baseline: the best a brand can do without personalizing, found
    with the true model (so it is an upper bound on any context-free policy).
    """

    def __init__(self, model: ResponseModel) -> None:
        self.model = model

    def __call__(self, round_: Round) -> IntArray:
        values = round_.expected_reward(self.model)
        k = round_.actions.k
        totals = np.where(round_.eligible[:, :k], values[:, :k], 0.0).sum(axis=0)
        action = int(np.argmax(totals))
        return np.where(round_.eligible[:, action], action, k).astype(np.int64)


class OraclePolicy:
    """The best single action per contact under the true model (see :func:`oracle_policy`)."""

    def __init__(self, model: ResponseModel) -> None:
        self.model = model

    def __call__(self, round_: Round) -> IntArray:
        return _best(round_.expected_reward(self.model), round_.eligible)
