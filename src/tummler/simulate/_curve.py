"""The value of the baselines on one round's state: the yardstick a learning curve is drawn against.

A demo (or any experiment) runs its own policy through the real services; on the same state, the
same message and the same audience, :func:`baseline_values` says what the textbook policies would
have been worth — in *true* expected reward, the quantity :func:`~tummler.simulate.respond`
reports as ``Outcomes.expected`` — so that one policy's round can be put beside theirs without
any of them touching the state (baselines are valued, never played).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

__all__ = ["BASELINE_NAMES", "RoundValues", "baseline_values", "sends_value"]

#: The baselines :func:`baseline_values` values, in the order it reports them.
BASELINE_NAMES = ("random", "send to all", "best single action", "oracle")


@dataclass(frozen=True)
class RoundValues:
    """Each baseline's true expected reward on one round, and how many sends it would make."""

    value: Mapping[str, float]
    sends: Mapping[str, int]


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
    mask = np.asarray(audience, dtype=np.bool_)
    if mask.shape != (population.n,):
        raise InputError(
            f"audience must hold one flag per contact ({population.n}), got shape {mask.shape}",
            field="audience",
        )
    eligible = eligible_actions(population, state, actions)
    eligible[~mask, : actions.k] = False
    truth = expected_reward(population, model, state, message, actions, at)
    round_ = Round(index, at, population, state, message, actions, eligible, truth, model)
    policies: dict[str, DecideFn] = {
        "random": RandomPolicy(rng),
        "send to all": SendToAll(),
        "best single action": BestSingleAction(model),
        "oracle": OraclePolicy(model),
    }
    value: dict[str, float] = {}
    sends: dict[str, int] = {}
    for name, decide in policies.items():
        chosen = np.asarray(decide(round_), dtype=np.int64)
        value[name], sends[name] = sends_value(
            population, model, state, message, actions, chosen, at
        )
    return RoundValues(value=value, sends=sends)
