"""The known response model: how a synthetic person answers a send, and what it is worth.

Every probability is a logistic function of a sum of documented terms (see :class:`ResponseModel`);
:func:`~tummler.simulate.respond` (in :mod:`._respond`) draws outcomes from exactly the probabilities
that :func:`expected_reward` reports, so empirical rates match the expectations and the oracle
policy is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from tummler.core.errors import InputError
from tummler.simulate._population import Population
from tummler.simulate._sends import LENGTHS, URGENCIES, ActionSpace, Message
from tummler.simulate._state import (
    SimulationState,
    _timestamp,
    eligible_actions,
)
from tummler.simulate._tables import (
    AFFINITY_BASE,
    CHANNELS,
    EMOTIONS,
    STAGES,
    TOPICS,
    BoolArray,
    FloatArray,
    IntArray,
)

__all__ = [
    "ResponseModel",
    "RewardWeights",
    "expected_reward",
    "oracle_policy",
]

_C = len(CHANNELS)
_PROSPECT, _SUBSCRIBER, _CUSTOMER, _ADVOCATE, _LAPSED = range(len(STAGES))
_DAY = 86_400


@dataclass(frozen=True)
class RewardWeights:
    """What an outcome is worth: the reward of a send is the weighted sum of its outcomes, minus cost.

    The defaults reward clicks and replies and penalize unsubscribes and complaints heavily, so
    that sending to someone who does not want the message is worse than not sending.
    """

    clicked: float = 1.0
    replied: float = 0.5
    converted: float = 0.0
    value: float = 0.0
    unsubscribed: float = -3.0
    complained: float = -10.0
    #: Cost of one send per channel (in reward units), paid whenever the send is allowed.
    channel_cost: tuple[float, ...] = (0.0, 0.01, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if len(self.channel_cost) != _C:
            raise InputError(
                f"channel_cost needs one cost per channel ({_C}), got {len(self.channel_cost)}",
                field="channel_cost",
            )


@dataclass(frozen=True)
class ResponseModel:
    """The known constants of the response model. Per-channel tuples follow ``CHANNELS``.

    For a delivered send of message ``m``, variant ``v``, on channel ``c`` at local hour ``h`` to
    person ``j`` with stage ``s``, ``r`` sends in the fatigue window before it (across all channels,
    including the other sends of the same round) and contagion exposure ``e`` (summed edge weights
    to neighbours who clicked or replied in the contagion window)::

        click   = σ(η),  η = affinity[j, c] + stage_click[s] + rhythm[j]·cos(2π(h − peak[j])/24)
                           + suit[c, m, v] + topic_taste[j, m] + emotion_taste[j, v]
                           − fatigue_click·fatigue[j]·r + contagion·min(e, contagion_cap)
        open    = σ(η + open_offset[c]) (or clicked)     reply = σ(η + reply_offset[c])
        convert | click = σ(conversion[j] + stage_conversion[s] + topic_conversion[m])
        unsub   = σ(unsub_base[c] + stage_unsub[s] + unsub_fatigue·fatigue[j]·r
                    + unsub_mismatch·mismatch[c, m, v] − unsub_affinity·(affinity[j, c] − base[c]))
        complain = σ(complaint_base[c] + complaint_mismatch·mismatch[c, m, v]
                     + complaint_fatigue·fatigue[j]·r + night_complaint[c]·[h is quiet])

    ``suit`` sums the tables ``public``, ``urgency``, ``topic`` (message) and ``emotion``,
    ``length`` (variant); ``mismatch`` sums the negative parts of the same entries (a promotion on
    Mastodon, a long text by SMS). A send is delivered with probability ``deliver[c]`` when the
    person has an identity and consent on the channel; otherwise it is refused (nothing happens).
    """

    deliver: tuple[float, ...] = (0.97, 0.98, 0.995, 0.995, 0.97, 0.99)
    open_offset: tuple[float, ...] = (2.5, 2.0, 1.5, 1.5, 1.5, 1.0)
    reply_offset: tuple[float, ...] = (-2.5, -1.0, -0.8, -0.8, -1.5, -3.0)
    unsub_base: tuple[float, ...] = (-5.8, -5.2, -6.0, -6.0, -6.0, -5.6)
    complaint_base: tuple[float, ...] = (-7.8, -6.8, -7.2, -7.2, -7.8, -8.2)
    night_complaint: tuple[float, ...] = (0.3, 1.5, 0.1, 0.1, 0.3, 0.5)
    #: Local hours [quiet_start, 24) ∪ [0, quiet_end) count as quiet for complaints.
    quiet_start: int = 21
    quiet_end: int = 8
    #: Per stage (prospect, subscriber, customer, advocate, lapsed).
    stage_click: tuple[float, ...] = (-0.4, 0.0, 0.3, 0.7, -1.0)
    stage_conversion: tuple[float, ...] = (-0.5, -0.2, 0.2, 0.5, -0.5)
    stage_unsub: tuple[float, ...] = (0.3, 0.0, -0.2, -0.5, 0.6)
    #: Per topic (product, promotion, community, support, news).
    topic_conversion: tuple[float, ...] = (0.2, 0.4, -0.3, -0.8, -0.3)
    #: Channel suitability: rows (private, public).
    public: tuple[tuple[float, ...], ...] = (
        (0.2, 0.2, -0.6, -0.6, -0.4, 0.1),
        (-0.3, -0.5, 0.4, 0.4, 0.3, 0.0),
    )
    #: Rows follow URGENCIES.
    urgency: tuple[tuple[float, ...], ...] = (
        (0.1, -0.8, 0.1, 0.1, 0.0, -0.2),
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0.0, 0.4, -0.1, -0.1, -0.2, 0.3),
        (0.1, 0.9, -0.2, -0.2, -0.4, 0.5),
    )
    #: Rows follow TOPICS.
    topic: tuple[tuple[float, ...], ...] = (
        (0.1, -0.2, 0.1, 0.1, 0.1, 0.0),
        (0.2, -0.3, -1.0, -0.4, -0.7, 0.0),
        (-0.2, -0.4, 0.7, 0.5, 0.1, 0.0),
        (0.1, 0.3, -0.2, -0.2, -0.3, 0.4),
        (0.0, -0.5, 0.3, 0.3, 0.4, 0.0),
    )
    #: Rows follow EMOTIONS.
    emotion: tuple[tuple[float, ...], ...] = (
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0.1, 0.0, 0.2, 0.3, 0.0, 0.0),
        (0.1, 0.0, 0.0, 0.0, 0.3, 0.0),
        (0.0, 0.1, 0.1, 0.2, -0.2, 0.0),
        (-0.1, -0.2, -0.6, -0.4, -0.5, 0.0),
    )
    #: Rows follow LENGTHS.
    length: tuple[tuple[float, ...], ...] = (
        (-0.1, 0.3, 0.2, 0.3, -0.1, 0.1),
        (0.2, -0.9, -0.3, -0.4, 0.2, 0.0),
    )
    unsub_mismatch: float = 0.5
    complaint_mismatch: float = 0.8
    unsub_affinity: float = 0.3
    fatigue_window: timedelta = timedelta(days=7)
    fatigue_click: float = 0.12
    fatigue_unsub: float = 0.15
    fatigue_complaint: float = 0.15
    contagion: float = 0.15
    contagion_cap: float = 3.0
    contagion_window: timedelta = timedelta(days=7)
    #: Conversions (in total) that make a customer an advocate.
    advocate_after: int = 3
    reward: RewardWeights = field(default_factory=RewardWeights)

    def __post_init__(self) -> None:
        for name in (
            "deliver",
            "open_offset",
            "reply_offset",
            "unsub_base",
            "complaint_base",
            "night_complaint",
        ):
            if len(getattr(self, name)) != _C:
                raise InputError(f"{name} needs one value per channel ({_C})", field=name)
        for name, rows in (
            ("public", 2),
            ("urgency", len(URGENCIES)),
            ("topic", len(TOPICS)),
            ("emotion", len(EMOTIONS)),
            ("length", len(LENGTHS)),
        ):
            table = getattr(self, name)
            if len(table) != rows or any(len(row) != _C for row in table):
                raise InputError(f"{name} must be a {rows} × {_C} table", field=name)
        if not all(0.0 <= p <= 1.0 for p in self.deliver):
            raise InputError("deliver holds probabilities in [0, 1]", field="deliver")
        if self.fatigue_window <= timedelta(0) or self.contagion_window <= timedelta(0):
            raise InputError("fatigue_window and contagion_window must be positive", field="window")

    def suitability(self, message: Message) -> tuple[FloatArray, FloatArray]:
        """``(C, V)`` suitability of each channel for each variant of ``message``, and its mismatch."""
        message_terms = np.stack(
            [
                np.asarray(self.public[int(message.public)]),
                np.asarray(self.urgency[URGENCIES.index(message.urgency)]),
                np.asarray(self.topic[TOPICS.index(message.topic)]),
            ]
        )  # (3, C)
        variant_terms = np.stack(
            [
                np.stack(
                    [
                        np.asarray(self.emotion[EMOTIONS.index(v.emotion)]),
                        np.asarray(self.length[LENGTHS.index(v.length)]),
                    ]
                )
                for v in message.variants
            ],
            axis=-1,
        )  # (2, C, V)
        suit = message_terms.sum(axis=0)[:, None] + variant_terms.sum(axis=0)
        mismatch = np.maximum(-message_terms, 0.0).sum(axis=0)[:, None] + np.maximum(
            -variant_terms, 0.0
        ).sum(axis=0)
        return suit, mismatch


@dataclass(frozen=True, eq=False)
class _PersonTerms:
    """Per-contact parts of the model at one instant (fatigue count, contagion exposure)."""

    recent: FloatArray
    exposure: FloatArray


def _person_terms(
    population: Population, model: ResponseModel, state: SimulationState, at_s: int
) -> _PersonTerms:
    n = population.n
    window = int(model.fatigue_window.total_seconds())
    recent = np.bincount(state.send_contact[state.send_time >= at_s - window], minlength=n)
    window = int(model.contagion_window.total_seconds())
    responded = np.bincount(
        state.response_contact[state.response_time >= at_s - window], minlength=n
    )
    exposure = population.graph.adjacency @ (responded > 0).astype(np.float64)
    return _PersonTerms(
        recent=recent.astype(np.float64), exposure=np.asarray(exposure, dtype=np.float64)
    )


@dataclass(frozen=True, eq=False)
class _Probabilities:
    allowed: BoolArray
    deliver: FloatArray
    open: FloatArray | None
    click: FloatArray
    reply: FloatArray
    convert: FloatArray
    value: FloatArray
    unsub: FloatArray
    complaint: FloatArray
    cost: FloatArray

    def expected(self, weights: RewardWeights) -> FloatArray:
        # Small (broadcast) factors first, so that few full-size temporaries are made.
        per_click = weights.clicked + self.convert * (
            weights.converted + weights.value * self.value
        )
        gain = (
            self.click * per_click
            + weights.replied * self.reply
            + weights.complained * self.complaint
            + weights.unsubscribed * self.unsub
        )
        return np.where(self.allowed, self.deliver * gain - self.cost, 0.0)


def _sigmoid(x: FloatArray) -> FloatArray:
    """σ(x) = (1 + tanh(x/2)) / 2: no overflow for large |x|, computed in place on one buffer."""
    y = np.multiply(x, 0.5, dtype=np.float64)
    np.tanh(y, out=y)
    y += 1.0
    y *= 0.5
    return y


def _probabilities(
    population: Population,
    model: ResponseModel,
    state: SimulationState,
    message: Message,
    terms: _PersonTerms,
    contact: IntArray,
    channel: IntArray,
    hour: FloatArray,
    variant: IntArray,
    extra_recent: FloatArray | None,
    *,
    with_open: bool = True,
) -> _Probabilities:
    """The model's probabilities for sends given as index arrays that broadcast together.

    ``respond`` passes one entry per send; ``expected_reward`` passes a contact column and
    channel / hour / variant axes, and gets whole tables from the same formulas.
    """
    hidden = population.hidden
    suit, mismatch = model.suitability(message)
    stage = state.stage[contact]
    affinity = hidden.affinity[contact, channel]
    fatigue = hidden.fatigue[contact]
    recent = terms.recent[contact]
    if extra_recent is not None:
        recent = recent + extra_recent
    emotion = np.asarray([EMOTIONS.index(v.emotion) for v in message.variants])[variant]
    person = (
        np.asarray(model.stage_click)[stage]
        + hidden.topic_taste[contact, TOPICS.index(message.topic)]
        - model.fatigue_click * fatigue * recent
        + model.contagion * np.minimum(terms.exposure[contact], model.contagion_cap)
    )
    rhythm = hidden.rhythm[contact] * np.cos(
        2.0 * np.pi * (hour - hidden.peak_hour[contact]) / 24.0
    )
    eta = (
        (affinity + person) + (suit[channel, variant] + hidden.emotion_taste[contact, emotion])
    ) + rhythm
    bad_fit = mismatch[channel, variant]
    quiet = (hour >= model.quiet_start) | (hour < model.quiet_end)
    unsub = (
        np.asarray(model.unsub_base)[channel]
        + np.asarray(model.stage_unsub)[stage]
        + model.fatigue_unsub * fatigue * recent
        + model.unsub_mismatch * bad_fit
        - model.unsub_affinity * (affinity - np.asarray(AFFINITY_BASE)[channel])
    )
    complaint_by_day = (
        np.asarray(model.complaint_base)[channel] + model.complaint_mismatch * bad_fit
    ) + model.fatigue_complaint * fatigue * recent
    # Two sigmoids over the hour-free terms, then a pick by hour: cheaper than one over all axes.
    complaint = np.where(
        quiet,
        _sigmoid(complaint_by_day + np.asarray(model.night_complaint)[channel]),
        _sigmoid(complaint_by_day),
    )
    convert = (
        hidden.conversion[contact]
        + np.asarray(model.stage_conversion)[stage]
        + model.topic_conversion[TOPICS.index(message.topic)]
    )
    allowed = population.identity[contact, channel] & state.consent[contact, channel]
    return _Probabilities(
        allowed=allowed,
        deliver=np.asarray(model.deliver)[channel],
        open=_sigmoid(eta + np.asarray(model.open_offset)[channel]) if with_open else None,
        click=_sigmoid(eta),
        reply=_sigmoid(eta + np.asarray(model.reply_offset)[channel]),
        convert=_sigmoid(convert),
        value=hidden.value_mean[contact] * message.value_scale,
        unsub=_sigmoid(unsub),
        complaint=complaint,
        cost=np.asarray(model.reward.channel_cost)[channel],
    )


def expected_reward(
    population: Population,
    model: ResponseModel,
    state: SimulationState,
    message: Message,
    actions: ActionSpace,
    at: datetime | None = None,
    *,
    chunk: int = 65_536,
) -> FloatArray:
    """The true expected reward of every action for every contact: ``(n, k + 1)``, no send = 0.

    Each send is valued as the only send to its contact in the round (the fatigue count is the
    one in ``state`` at ``at``). Refused actions (no identity or consent) are worth 0, like no
    send; combine with :func:`eligible_actions` to tell them apart.

    Parameters
    ----------
    at
        When the round happens (default: ``state.now``); fatigue and contagion windows end there.
    chunk
        Contacts valued at a time, to bound memory (about ``chunk × k × 60`` bytes).
    """
    at_s = state.now if at is None else _timestamp(at)
    _check_message_fits(message, actions)
    terms = _person_terms(population, model, state, at_s)
    n, k = population.n, actions.k
    # The action space is a full grid, so every term broadcasts over (contact, channel, hour,
    # variant) axes and the same formulas as respond() give the whole table at once.
    channel = np.asarray(actions.channels, dtype=np.int64)[None, :, None, None]
    hour = np.asarray(actions.hours, dtype=np.float64)[None, None, :, None]
    variant = np.arange(actions.n_variants, dtype=np.int64)[None, None, None, :]
    out = np.zeros((n, k + 1), dtype=np.float64)
    step = max(1, chunk)
    for start in range(0, n, step):
        stop = min(n, start + step)
        contact = np.arange(start, stop, dtype=np.int64)[:, None, None, None]
        probabilities = _probabilities(
            population,
            model,
            state,
            message,
            terms,
            contact,
            channel,
            hour,
            variant,
            None,
            with_open=False,
        )
        values = np.broadcast_to(
            probabilities.expected(model.reward),
            (stop - start, len(actions.channels), len(actions.hours), actions.n_variants),
        )
        out[start:stop, :k] = values.reshape(stop - start, k)
    return out


def _check_message_fits(message: Message, actions: ActionSpace) -> None:
    if actions.n_variants > len(message.variants):
        raise InputError(
            f"the action space has {actions.n_variants} variants but message {message.key!r} "
            f"has {len(message.variants)}; build it with ActionSpace.for_message(message)",
            field="actions",
        )


def oracle_policy(
    population: Population,
    model: ResponseModel,
    state: SimulationState,
    message: Message,
    actions: ActionSpace,
    at: datetime | None = None,
) -> IntArray:
    """The best single action per contact under the true model; ``k`` (no send) unless one pays.

    This is the myopic oracle: it maximizes this round's expected reward, one lever per contact.
    """
    values = expected_reward(population, model, state, message, actions, at)
    return _best(values, eligible_actions(population, state, actions))


def _best(values: FloatArray, eligible: BoolArray) -> IntArray:
    k = values.shape[1] - 1
    sends = np.where(eligible[:, :k], values[:, :k], -np.inf)
    best = np.argmax(sends, axis=1)
    worth = sends[np.arange(values.shape[0]), best] > 0.0
    return np.asarray(np.where(worth, best, k), dtype=np.int64)
