"""What synthetic people do with a round's sends, drawn from the known model, and the state it leaves.

:func:`respond` draws outcomes from exactly the probabilities that
:func:`~tummler.simulate.expected_reward` reports, so empirical rates match the expectations.
State is never mutated: it returns a new :class:`SimulationState`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from tummler.core.errors import InputError
from tummler.simulate._model import (
    ResponseModel,
    _person_terms,
    _probabilities,
)
from tummler.simulate._population import Population
from tummler.simulate._sends import Message, Sends
from tummler.simulate._state import Outcomes, SimulationState, _offsets, _timestamp
from tummler.simulate._tables import CHANNELS, STAGES

__all__ = ["respond"]

_C = len(CHANNELS)
_PROSPECT, _SUBSCRIBER, _CUSTOMER, _ADVOCATE, _LAPSED = range(len(STAGES))
_DAY = 86_400


def respond(
    population: Population,
    model: ResponseModel,
    state: SimulationState,
    message: Message,
    sends: Sends,
    at: datetime,
    rng: np.random.Generator,
) -> tuple[SimulationState, Outcomes]:
    """Draw what people do with this round's sends; return the new state and the outcomes.

    Each send goes out at the first time on or after ``at`` when the contact's local clock shows
    its hour. Several sends to the same person in one round tire them: each counts the others
    as recent sends. Afterwards stages move: a click or reply makes a prospect or a lapsed
    contact a subscriber, a conversion makes a customer (``advocate_after`` conversions in all:
    an advocate), an unsubscribe or complaint makes anyone lapsed (bad news wins); an unsubscribe
    revokes consent on its channel. Nothing passed in is mutated.

    Parameters
    ----------
    population, model
        Who, and the known response model.
    state
        Where the simulation stands (fatigue and contagion windows, stages, consent).
    message, sends
        What is said, and to whom, on which channel, at which local hour, with which variant.
        A send without identity or consent on its channel is refused: nothing happens to it.
    at
        When the round happens (not before ``state.now``).
    rng
        The only source of randomness.

    Returns
    -------
    state, outcomes
        The state after the round, and per send what happened (:class:`Outcomes`).

    Raises
    ------
    InputError
        When a send names a contact, channel, hour or variant out of range, or ``at`` is before
        ``state.now``.
    """
    at_s = _timestamp(at)
    _check_sends(population, message, sends)
    if at_s < state.now:
        raise InputError(
            f"at ({datetime.fromtimestamp(at_s, UTC).isoformat()}) is before the state's time "
            f"({state.at.isoformat()}); rounds must move forward",
            field="at",
        )
    m = len(sends)
    terms = _person_terms(population, model, state, at_s)
    allowed_now = (
        population.identity[sends.contact, sends.channel]
        & state.consent[sends.contact, sends.channel]
    )
    per_contact = np.bincount(sends.contact[allowed_now], minlength=population.n)
    extra = np.maximum(per_contact[sends.contact] - 1, 0).astype(np.float64)
    p = _probabilities(
        population,
        model,
        state,
        message,
        terms,
        sends.contact,
        sends.channel,
        sends.hour,
        sends.variant,
        extra,
    )
    u = rng.random((8, m))
    delivered = p.allowed & (u[0] < p.deliver)
    clicked = delivered & (u[2] < p.click)
    open_probability = p.click if p.open is None else p.open  # p.open is always set here
    opened = delivered & ((u[1] < open_probability) | clicked)
    replied = delivered & (u[3] < p.reply)
    converted = clicked & (u[4] < p.convert)
    # Conversion values: gamma with shape 2, mean = the person's mean value.
    value = np.where(converted, p.value * rng.gamma(2.0, 0.5, size=m), 0.0)
    unsubscribed = delivered & (u[5] < p.unsub)
    complained = delivered & (u[6] < p.complaint)
    weights = model.reward
    reward = np.where(
        p.allowed,
        weights.clicked * clicked
        + weights.replied * replied
        + weights.converted * converted
        + weights.value * value
        + weights.unsubscribed * unsubscribed
        + weights.complained * complained
        - p.cost,
        0.0,
    )
    local_now = (at_s + _offsets(population, at_s)[sends.contact]) % _DAY
    delay = np.mod(np.round(sends.hour * 3600.0).astype(np.int64) - local_now, _DAY)
    sent_at = at_s + delay
    outcomes = Outcomes(
        contact=sends.contact,
        channel=sends.channel,
        variant=sends.variant,
        hour=sends.hour,
        sent_at=sent_at,
        allowed=p.allowed,
        delivered=delivered,
        opened=opened,
        clicked=clicked,
        replied=replied,
        converted=converted,
        value=value,
        unsubscribed=unsubscribed,
        complained=complained,
        reward=reward,
        expected=p.expected(weights),
    )
    return _advance(population, model, state, outcomes, at_s), outcomes


def _check_sends(population: Population, message: Message, sends: Sends) -> None:
    m = len(sends)
    for name in ("channel", "hour", "variant"):
        if getattr(sends, name).shape != (m,):
            raise InputError(
                f"sends.{name} has shape {getattr(sends, name).shape}, expected ({m},) like "
                "sends.contact",
                field=name,
            )
    checks = (
        ("contact", sends.contact, 0, population.n),
        ("channel", sends.channel, 0, _C),
        ("variant", sends.variant, 0, len(message.variants)),
    )
    for name, values, low, high in checks:
        if m and (values.min() < low or values.max() >= high):
            raise InputError(
                f"sends.{name} must lie in [{low}, {high}), got values from {values.min()} "
                f"to {values.max()}",
                field=name,
            )
    if m and not (
        np.isfinite(sends.hour).all() and (sends.hour >= 0).all() and (sends.hour < 24).all()
    ):
        raise InputError("sends.hour must be local hours in [0, 24)", field="hour")


def _advance(
    population: Population,
    model: ResponseModel,
    state: SimulationState,
    outcomes: Outcomes,
    at_s: int,
) -> SimulationState:
    n = population.n
    contact = outcomes.contact
    engaged = np.bincount(contact[outcomes.clicked | outcomes.replied], minlength=n) > 0
    converted = np.bincount(contact[outcomes.converted], minlength=n)
    bad = np.bincount(contact[outcomes.unsubscribed | outcomes.complained], minlength=n) > 0

    stage = state.stage.copy()
    stage[engaged & ((stage == _PROSPECT) | (stage == _LAPSED))] = _SUBSCRIBER
    conversions = state.conversions + converted
    stage[(converted > 0) & (stage != _ADVOCATE)] = _CUSTOMER
    stage[(conversions >= model.advocate_after) & (stage == _CUSTOMER)] = _ADVOCATE
    stage[bad] = _LAPSED

    consent = state.consent.copy()
    consent[contact[outcomes.unsubscribed], outcomes.channel[outcomes.unsubscribed]] = False
    complaints = state.complaints + np.bincount(contact[outcomes.complained], minlength=n)

    horizon = at_s - int(max(model.fatigue_window, model.contagion_window).total_seconds())
    send_contact = np.concatenate([state.send_contact, contact[outcomes.allowed]])
    send_time = np.concatenate([state.send_time, outcomes.sent_at[outcomes.allowed]])
    keep = send_time >= horizon
    responded = outcomes.clicked | outcomes.replied
    response_contact = np.concatenate([state.response_contact, contact[responded]])
    response_time = np.concatenate([state.response_time, outcomes.sent_at[responded]])
    keep_response = response_time >= horizon
    return SimulationState(
        now=at_s,
        stage=stage,
        consent=consent,
        conversions=conversions,
        complaints=complaints,
        send_contact=send_contact[keep],
        send_time=send_time[keep],
        response_contact=response_contact[keep_response],
        response_time=response_time[keep_response],
    )
