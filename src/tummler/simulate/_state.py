"""The simulation's state between rounds, a round's outcomes, and each contact's local clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

from tummler.simulate._population import Population
from tummler.simulate._sends import ActionSpace
from tummler.simulate._tables import BoolArray, FloatArray, IntArray

__all__ = ["Outcomes", "SimulationState", "eligible_actions", "initial_state", "local_hours"]

_DAY = 86_400


@dataclass(frozen=True, eq=False)
class SimulationState:
    """What changes as the simulation runs. Immutable: :func:`respond` returns a new one.

    Attributes
    ----------
    now
        Unix seconds of the latest round (the population's origin at first).
    stage
        ``(n,)`` current stage codes (index into ``STAGES``).
    consent
        ``(n, C)`` consent granted now (unsubscribes revoke it on their channel).
    conversions, complaints
        ``(n,)`` totals so far.
    send_contact, send_time
        Log of the allowed sends still inside the fatigue window (contact, unix seconds).
    response_contact, response_time
        Log of clicks and replies still inside the contagion window.
    """

    now: int
    stage: IntArray
    consent: BoolArray
    conversions: IntArray
    complaints: IntArray
    send_contact: IntArray
    send_time: IntArray
    response_contact: IntArray
    response_time: IntArray

    @property
    def at(self) -> datetime:
        """``now`` as a UTC datetime."""
        return datetime.fromtimestamp(self.now, UTC)


def initial_state(population: Population) -> SimulationState:
    """The state at the population's origin: its stages and consent, no sends yet."""
    empty = np.zeros(0, dtype=np.int64)
    return SimulationState(
        now=int(population.origin.timestamp()),
        stage=population.stage.copy(),
        consent=population.consent.copy(),
        conversions=np.zeros(population.n, dtype=np.int64),
        complaints=np.zeros(population.n, dtype=np.int64),
        send_contact=empty,
        send_time=empty,
        response_contact=empty,
        response_time=empty,
    )


@dataclass(frozen=True, eq=False)
class Outcomes:
    """What happened to each send of a round, and what it was worth.

    ``allowed`` is false for a send refused for lack of identity or consent (nothing else
    happens to it, it costs nothing). ``expected`` is the send's true expected reward — the
    quantity :func:`expected_reward` reports — and ``reward`` the realized one.
    """

    contact: IntArray
    channel: IntArray
    variant: IntArray
    hour: FloatArray
    sent_at: IntArray
    allowed: BoolArray
    delivered: BoolArray
    opened: BoolArray
    clicked: BoolArray
    replied: BoolArray
    converted: BoolArray
    value: FloatArray
    unsubscribed: BoolArray
    complained: BoolArray
    reward: FloatArray
    expected: FloatArray

    def __len__(self) -> int:
        return int(self.contact.shape[0])


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _offsets(population: Population, at_s: int) -> IntArray:
    """Each contact's UTC offset in seconds at the instant ``at_s``."""
    instant = datetime.fromtimestamp(at_s, UTC)
    table = np.asarray(
        [_zone(zone).utcoffset(instant).total_seconds() for zone in population.time_zones],  # type: ignore[union-attr]
        dtype=np.int64,
    )
    return table[population.time_zone]


def local_hours(population: Population, at: datetime) -> FloatArray:
    """Each contact's local hour of day (fractional) at the UTC instant ``at``.

    Use it to turn a send at a fixed UTC time (a legacy blast) into the local hours
    :class:`Sends` take.
    """
    at_s = _timestamp(at)
    local = (at_s + _offsets(population, at_s)) % _DAY
    return np.asarray(local / 3600.0, dtype=np.float64)


def _timestamp(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp())


def eligible_actions(
    population: Population, state: SimulationState, actions: ActionSpace
) -> BoolArray:
    """``(n, k + 1)``: whether each action would be allowed (identity and consent); no send always is."""
    allowed = population.identity & state.consent
    mask = np.ones((population.n, actions.k + 1), dtype=np.bool_)
    mask[:, : actions.k] = allowed[:, actions.channel]
    return mask
