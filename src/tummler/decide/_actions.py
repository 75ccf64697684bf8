"""The action set: channel × send slot × variant, plus the implicit *no send*.

Every action's features are the sum of three factor parts — one for its channel, one for its slot, one
for its (channel, variant) pair::

    φ(c, s, v) = φ_channel[c] + φ_slot[s] + φ_variant[c, v]

A bilinear model ``x^T B φ(a)`` is then *additive* over the factors, so the best slot and the best
variant of a channel can be found separately (``n_slots + n_variants`` work per channel instead of
``n_slots × n_variants``). This is what keeps planning for a million contacts close to a bare matmul,
and it lets Thompson sampling afford many posterior draws for its propensities. The dense
``features`` matrix (k, d_a) is still available for anything that wants the general view.

Action ``a`` has index ``(c * n_slots + s) * n_variants + v``; *no send* is index ``k``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError

__all__ = ["HOURS_PER_WEEK", "ActionSet", "build_action_set"]

HOURS_PER_WEEK = 168

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ActionSet:
    """The levers one campaign may pull, as a product of channels, slots and variants.

    Parameters
    ----------
    channel_names
        The channels, in the order the ``channel`` index refers to (e.g. ``("email", "sms")``).
    slot_hours
        ``(n_slots,)`` the local hour of each send slot, counted from the campaign week's Monday 00:00
        in the contact's own time zone (may exceed 168 for campaigns longer than a week).
    variant_names
        ``(n_channels, n_variants)`` the name of each variant per channel; ``""`` where a channel has
        fewer variants than ``n_variants`` (``variant_available`` is then ``False``).
    variant_available
        ``(n_channels, n_variants)`` which (channel, variant) pairs exist.
    channel_features, slot_features, variant_features
        The factor parts of the action features: ``(n_channels, d_a)``, ``(n_slots, d_a)`` and
        ``(n_channels, n_variants, d_a)``.
    feature_names
        ``(d_a,)`` a name for each action feature, for explanations.
    """

    channel_names: tuple[str, ...]
    slot_hours: IntArray
    variant_names: tuple[tuple[str, ...], ...]
    variant_available: BoolArray
    channel_features: FloatArray
    slot_features: FloatArray
    variant_features: FloatArray
    feature_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n_ch, n_sl = len(self.channel_names), len(self.slot_hours)
        if n_ch == 0 or n_sl == 0:
            raise PolicyError("an action set needs at least one channel and one slot")
        if len(set(self.channel_names)) != n_ch:
            raise PolicyError(f"channel_names has duplicates: {self.channel_names}")
        avail = self.variant_available
        if avail.ndim != 2 or avail.shape[0] != n_ch or avail.shape[1] == 0:
            raise PolicyError(
                f"variant_available must have shape (n_channels={n_ch}, n_variants), got {avail.shape}"
            )
        d_a = self.channel_features.shape[1] if self.channel_features.ndim == 2 else -1
        expected = {
            "channel_features": (n_ch, d_a),
            "slot_features": (n_sl, d_a),
            "variant_features": (n_ch, avail.shape[1], d_a),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise PolicyError(
                    f"{name} must have shape {shape}, got {getattr(self, name).shape}"
                )
        if self.feature_names and len(self.feature_names) != d_a:
            raise PolicyError(f"feature_names must have {d_a} names, got {len(self.feature_names)}")

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def n_slots(self) -> int:
        return len(self.slot_hours)

    @property
    def n_variants(self) -> int:
        return int(self.variant_available.shape[1])

    @property
    def k(self) -> int:
        """The number of actions, *no send* not included (its index is ``k``)."""
        return self.n_channels * self.n_slots * self.n_variants

    @property
    def n_features(self) -> int:
        return int(self.channel_features.shape[1])

    @cached_property
    def channel(self) -> IntArray:
        """``(k,)`` the channel index of each action."""
        return np.repeat(np.arange(self.n_channels), self.n_slots * self.n_variants)

    @cached_property
    def slot(self) -> IntArray:
        """``(k,)`` the slot index of each action."""
        return np.tile(np.repeat(np.arange(self.n_slots), self.n_variants), self.n_channels)

    @cached_property
    def variant(self) -> IntArray:
        """``(k,)`` the variant index (within its channel) of each action."""
        return np.tile(np.arange(self.n_variants), self.n_channels * self.n_slots)

    @cached_property
    def available(self) -> BoolArray:
        """``(k,)`` whether the action exists (its channel has that variant)."""
        return self.variant_available[self.channel, self.variant]

    @cached_property
    def features(self) -> FloatArray:
        """``(k, d_a)`` the dense action features."""
        return (
            self.channel_features[self.channel]
            + self.slot_features[self.slot]
            + self.variant_features[self.channel, self.variant]
        ).astype(np.float32)

    @cached_property
    def variant_penalty(self) -> FloatArray:
        """``(n_channels, n_variants)`` 0 for available variants, ``-inf`` for padding."""
        return np.where(self.variant_available, np.float32(0.0), np.float32(-np.inf))

    @cached_property
    def factor_features_t(self) -> npt.NDArray[np.float64]:
        """``(d_a, n_channels + n_slots + n_channels·n_variants)`` every factor's features, transposed:
        one matmul with it gives all factor scores."""
        stacked = np.concatenate(
            [
                self.channel_features,
                self.slot_features,
                self.variant_features.reshape(self.n_channels * self.n_variants, -1),
            ]
        )
        return np.ascontiguousarray(stacked.T, dtype=np.float64)

    def index(self, channel: int, slot: int, variant: int) -> int:
        """The action index of (channel, slot, variant)."""
        return (channel * self.n_slots + slot) * self.n_variants + variant

    def name(self, action: int) -> str:
        """A readable name such as ``email@mon-09h/B``; ``no-send`` for index ``k``."""
        if action == self.k or action < 0:
            return "no-send"
        c, s, v = int(self.channel[action]), int(self.slot[action]), int(self.variant[action])
        hour = int(self.slot_hours[s])
        day = _DAYS[(hour // 24) % 7]
        return f"{self.channel_names[c]}@{day}-{hour % 24:02d}h/{self.variant_names[c][v]}"


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def build_action_set(
    channels: Sequence[str],
    slot_hours: Sequence[int] | npt.NDArray[np.integer],
    variants: Mapping[str, Sequence[str]] | int,
    *,
    message_attributes: Mapping[str, float] | None = None,
) -> ActionSet:
    """Build the action set of a campaign with tummler's standard action features.

    Features (all float32): channel one-hot; channel × each message attribute (so that what is learned
    about, say, emotional messages on SMS carries over to the next campaign); cyclic hour of day and
    day of week (sin, cos) of the slot; one-hot of the (channel, variant) pair.

    Parameters
    ----------
    channels
        Channel names, e.g. ``["email", "sms"]``.
    slot_hours
        Local hours of week of the send slots (see :class:`ActionSet`).
    variants
        Variant names per channel, or a number of variants that every channel has (named A, B, ...).
    message_attributes
        Numeric message attributes (e.g. ``{"emotional": 1.0, "public": 0.0, "urgency": 0.5}``).

    Examples
    --------
    >>> actions = build_action_set(["email", "sms"], [9, 33], 2, message_attributes={"public": 1.0})
    >>> actions.k, actions.n_features
    (8, 12)
    >>> actions.name(actions.index(1, 1, 0))
    'sms@tue-09h/A'
    """
    channels = tuple(channels)
    hours = np.asarray(slot_hours, dtype=np.int64).reshape(-1)
    if hours.size and hours.min() < 0:
        raise PolicyError(f"slot_hours must be non-negative hours of week, got {hours.min()}")
    if isinstance(variants, int):
        if variants < 1:
            raise PolicyError(f"variants must be at least 1, got {variants}")
        names = [[chr(ord("A") + i) if i < 26 else f"V{i}" for i in range(variants)]] * len(
            channels
        )
    else:
        missing = [c for c in channels if c not in variants or not variants[c]]
        if missing:
            raise PolicyError(f"variants has no variant for channel(s) {missing}")
        names = [list(variants[c]) for c in channels]
    n_ch, n_sl = len(channels), len(hours)
    n_var = max((len(v) for v in names), default=0)
    attrs = dict(message_attributes or {})
    attr_names = sorted(attrs)
    d_a = n_ch + n_ch * len(attr_names) + 4 + n_ch * n_var
    feature_names: list[str] = [f"channel={c}" for c in channels]
    feature_names += [f"channel={c}×{a}" for c in channels for a in attr_names]
    feature_names += ["hour_sin", "hour_cos", "weekday_sin", "weekday_cos"]
    ch_f = np.zeros((n_ch, d_a), np.float32)
    ch_f[np.arange(n_ch), np.arange(n_ch)] = 1.0
    for j, a in enumerate(attr_names):
        ch_f[np.arange(n_ch), n_ch + np.arange(n_ch) * len(attr_names) + j] = attrs[a]
    sl_f = np.zeros((n_sl, d_a), np.float32)
    base = n_ch + n_ch * len(attr_names)
    hour_of_day = 2 * np.pi * (hours % 24) / 24
    day_of_week = 2 * np.pi * ((hours // 24) % 7) / 7
    sl_f[:, base : base + 4] = np.stack(
        [np.sin(hour_of_day), np.cos(hour_of_day), np.sin(day_of_week), np.cos(day_of_week)], axis=1
    )
    var_f = np.zeros((n_ch, n_var, d_a), np.float32)
    avail = np.zeros((n_ch, n_var), bool)
    padded: list[tuple[str, ...]] = []
    for c, vs in enumerate(names):
        avail[c, : len(vs)] = True
        padded.append(tuple(vs) + ("",) * (n_var - len(vs)))
        var_f[c, np.arange(len(vs)), base + 4 + c * n_var + np.arange(len(vs))] = 1.0
    feature_names += [
        f"variant={channels[c]}/{padded[c][v] or f'-{v}'}"
        for c in range(n_ch)
        for v in range(n_var)
    ]
    return ActionSet(
        channel_names=channels,
        slot_hours=hours,
        variant_names=tuple(padded),
        variant_available=avail,
        channel_features=ch_f,
        slot_features=sl_f,
        variant_features=var_f,
        feature_names=tuple(feature_names),
    )
