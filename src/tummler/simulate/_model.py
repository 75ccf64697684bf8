"""The known response model: how a synthetic person answers a send, and what it is worth.

Every probability is a logistic function of a sum of documented terms (see :class:`ResponseModel`);
:func:`respond` draws outcomes from exactly the probabilities that :func:`expected_reward` reports, so
empirical rates match the expectations and the oracle policy is known.

State is never mutated: :func:`respond` returns a new :class:`SimulationState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError
from tummler.simulate._population import (
    AFFINITY_BASE,
    CHANNELS,
    EMOTIONS,
    STAGES,
    TOPICS,
    BoolArray,
    FloatArray,
    IntArray,
    Population,
)

__all__ = [
    "LENGTHS",
    "URGENCIES",
    "ActionSpace",
    "Message",
    "Outcomes",
    "ResponseModel",
    "RewardWeights",
    "Sends",
    "SimulationState",
    "Variant",
    "eligible_actions",
    "expected_reward",
    "initial_state",
    "local_hours",
    "oracle_policy",
    "respond",
]

URGENCIES = ("low", "normal", "high", "critical")
LENGTHS = ("short", "long")

_C = len(CHANNELS)
_PROSPECT, _SUBSCRIBER, _CUSTOMER, _ADVOCATE, _LAPSED = range(len(STAGES))
_DAY = 86_400


def _check_level(name: str, value: str, levels: tuple[str, ...]) -> None:
    if value not in levels:
        raise InputError(f"unknown {name} {value!r}; use one of {', '.join(levels)}", field=name)


@dataclass(frozen=True)
class Variant:
    """One wording of a message: its emotion and its length suit some channels more than others."""

    key: str
    emotion: str = "neutral"
    length: str = "short"

    def __post_init__(self) -> None:
        _check_level("emotion", self.emotion, EMOTIONS)
        _check_level("length", self.length, LENGTHS)

    def attributes(self) -> dict[str, str]:
        """The variant's attributes, as a variant's metadata would state them."""
        return {"emotion": self.emotion, "length": self.length}


@dataclass(frozen=True)
class Message:
    """What a campaign says: its topic, whether it is public, its urgency, and its variants.

    ``value_scale`` multiplies every person's mean conversion value (a premium product: > 1).
    """

    key: str
    topic: str = "product"
    public: bool = False
    urgency: str = "normal"
    variants: tuple[Variant, ...] = (Variant("a"),)
    value_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_level("topic", self.topic, TOPICS)
        _check_level("urgency", self.urgency, URGENCIES)
        if not self.variants:
            raise InputError("a message needs at least one variant", field="variants")
        if not self.value_scale >= 0.0:
            raise InputError(
                f"value_scale must be >= 0, got {self.value_scale}", field="value_scale"
            )

    def attributes(self) -> dict[str, str | bool]:
        """The message's attributes as a campaign file would state them."""
        return {"topic": self.topic, "public": self.public, "urgency": self.urgency}


@dataclass(frozen=True)
class ActionSpace:
    """Channel × local send hour × variant; action ``k`` (one past the last) is *no send*.

    Action ``a`` is ``(i * len(hours) + s) * n_variants + v`` for the ``i``-th channel of
    ``channels``, the ``s``-th hour and variant ``v``; ``channel``, ``hour`` and ``variant`` give
    each action's parts as arrays (channel as an index into ``CHANNELS``). The default hours
    include 21:00, inside the model's quiet hours, where complaints are more likely.
    """

    channels: tuple[int, ...] = tuple(range(_C))
    hours: tuple[int, ...] = (8, 12, 18, 21)
    n_variants: int = 1

    def __post_init__(self) -> None:
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise InputError("channels must be a non-empty tuple without repeats", field="channels")
        if any(not 0 <= c < _C for c in self.channels):
            raise InputError(
                f"channels are indices into CHANNELS (0 to {_C - 1}), got {self.channels}",
                field="channels",
            )
        if not self.hours or any(not 0 <= h < 24 for h in self.hours):
            raise InputError(f"hours must be local hours 0 to 23, got {self.hours}", field="hours")
        if self.n_variants < 1:
            raise InputError(f"n_variants must be >= 1, got {self.n_variants}", field="n_variants")

    @classmethod
    def for_message(
        cls,
        message: Message,
        *,
        channels: tuple[int, ...] = tuple(range(_C)),
        hours: tuple[int, ...] = (8, 12, 18, 21),
    ) -> ActionSpace:
        """The action space with one variant per variant of ``message``."""
        return cls(channels=channels, hours=hours, n_variants=len(message.variants))

    @property
    def k(self) -> int:
        """Number of send actions (no send is action ``k``)."""
        return len(self.channels) * len(self.hours) * self.n_variants

    @cached_property
    def channel(self) -> IntArray:
        grid = np.asarray(self.channels, dtype=np.int64)
        return np.repeat(grid, len(self.hours) * self.n_variants)

    @cached_property
    def hour(self) -> IntArray:
        grid = np.repeat(np.asarray(self.hours, dtype=np.int64), self.n_variants)
        return np.tile(grid, len(self.channels))

    @cached_property
    def variant(self) -> IntArray:
        return np.tile(
            np.arange(self.n_variants, dtype=np.int64), len(self.channels) * len(self.hours)
        )

    def names(self) -> tuple[str, ...]:
        """``"email@08:00/v0"``-style names, then ``"no send"``."""
        return (
            *(
                f"{CHANNELS[c].value}@{h:02d}:00/v{v}"
                for c, h, v in zip(self.channel, self.hour, self.variant, strict=True)
            ),
            "no send",
        )

    def sends(self, chosen: npt.ArrayLike) -> Sends:
        """Turn chosen actions into sends.

        Parameters
        ----------
        chosen
            ``(n,)`` one action per contact, or ``(n, L)`` up to ``L`` levers per contact; the
            value ``k`` (or any negative value) means no send.

        Raises
        ------
        InputError
            When an action is above ``k`` or the array has more than two dimensions.
        """
        array = np.asarray(chosen, dtype=np.int64)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise InputError(
                f"chosen must be (n,) or (n, L), got shape {array.shape}", field="chosen"
            )
        if (array > self.k).any():
            raise InputError(
                f"chosen holds action {int(array.max())} but there are only {self.k} send actions "
                f"(and {self.k} = no send)",
                field="chosen",
            )
        contact, lever = np.nonzero((array >= 0) & (array < self.k))
        action = array[contact, lever]
        return Sends(
            contact=contact.astype(np.int64),
            channel=self.channel[action],
            hour=self.hour[action].astype(np.float64),
            variant=self.variant[action],
        )


@dataclass(frozen=True, eq=False)
class Sends:
    """Sends of one round: to whom, on which channel, at which local hour, which variant."""

    contact: IntArray
    channel: IntArray
    hour: FloatArray
    variant: IntArray

    def __len__(self) -> int:
        return int(self.contact.shape[0])


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
