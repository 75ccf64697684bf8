"""Which levers may be pulled for whom: the eligibility mask, with the reason each lever was removed.

The mask is kept factored, like the action set: a per-(contact, channel) part (identity, consent,
stage, fatigue, frequency caps, channel norms), a per-(contact, channel, slot) part (quiet hours,
campaign window) and, optionally, a per-(contact, channel, variant) part (a variant whose template
needs a field the contact lacks). ``mask()`` gives the dense ``(n, k)`` view for anything that wants
it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import IntFlag
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.decide._actions import ActionSet

__all__ = [
    "Eligibility",
    "EligibilityRules",
    "Reason",
    "channel_norms_allow",
    "compute_eligibility",
    "reason_names",
]

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]


class Reason(IntFlag):
    """Why a lever was removed; stored as bits so that one byte says everything about a channel."""

    NO_IDENTITY = 1
    NO_CONSENT = 2
    STAGE = 4
    QUIET_HOURS = 8
    OUTSIDE_WINDOW = 16
    FATIGUE_CAP = 32
    FREQUENCY_CAP = 64
    CHANNEL_NORM = 128


def reason_names(bits: int) -> list[str]:
    """The names of the rules set in ``bits``, lower-case, in bit order.

    >>> reason_names(Reason.NO_CONSENT | Reason.QUIET_HOURS)
    ['no_consent', 'quiet_hours']
    """
    return [r.name.lower() for r in Reason if bits & r and r.name is not None]


@dataclass(frozen=True)
class EligibilityRules:
    """The campaign's and the strategy's rules, as arrays over the action set's channels.

    Parameters
    ----------
    quiet_hours
        ``(start, end)`` local hours of day during which nothing is sent (wraps past midnight when
        ``start > end``, e.g. ``(21, 8)``); ``None``: no quiet hours.
    quiet_channels
        ``(n_channels,)`` which channels observe quiet hours (default: all).
    window
        ``(start, end)`` the campaign window in UTC hours counted from the same Monday 00:00 as the
        action set's slots; a slot is eligible when its UTC time falls inside. ``None``: no window.
    fatigue_cap
        At most this many sends across all channels per fatigue window; a contact at or over the
        cap gets nothing. ``None``: no cap.
    frequency_caps
        ``(n_channels,)`` per-channel caps over their window; negative: no cap.
    stage_allowed
        ``(n_channels, n_stages)`` which relationship stages a channel may be used for.
        ``None``: every stage.
    norm_allowed
        ``(n_channels,)`` whether the channel's norms accept this message (see
        :func:`channel_norms_allow`). ``None``: every channel.
    """

    quiet_hours: tuple[int, int] | None = None
    quiet_channels: BoolArray | None = None
    window: tuple[float, float] | None = None
    fatigue_cap: int | None = None
    frequency_caps: npt.NDArray[np.int64] | None = None
    stage_allowed: BoolArray | None = None
    norm_allowed: BoolArray | None = None

    def __post_init__(self) -> None:
        if self.quiet_hours is not None:
            start, end = self.quiet_hours
            if not (0 <= start < 24 and 0 <= end < 24):
                raise PolicyError(
                    f"quiet_hours must be two hours of day in [0, 24), got {self.quiet_hours}"
                )
        if self.fatigue_cap is not None and self.fatigue_cap < 0:
            raise PolicyError(f"fatigue_cap must be non-negative, got {self.fatigue_cap}")
        if self.window is not None and not self.window[0] < self.window[1]:
            raise PolicyError(f"window must be (start, end) with start < end, got {self.window}")


@dataclass(frozen=True, eq=False)
class Eligibility:
    """The eligibility of every (contact, action), factored.

    Attributes
    ----------
    channel_ok
        ``(n, n_channels)`` the channel may be used for the contact at all.
    slot_ok
        ``(n, n_channels, n_slots)`` the slot may be used on that channel (channel rules included).
    reasons
        ``(n, n_channels)`` uint8 :class:`Reason` bits of every rule that removed at least one lever
        of that channel.
    variant_ok
        ``(n, n_channels, n_variants)`` the variant may be sent to the contact (e.g. its template
        renders with the contact's fields); ``None``: every variant the action set has. A channel
        none of whose variants the contact may get is not eligible for it (:meth:`resolve` and
        :func:`~tummler.decide.plan` fold that into ``channel_ok``). Kept apart from the other
        factors so that the common case, no such mask, costs nothing.
    """

    channel_ok: BoolArray
    slot_ok: BoolArray
    reasons: npt.NDArray[np.uint8]
    variant_ok: BoolArray | None = None

    def __post_init__(self) -> None:
        variant_ok = self.variant_ok
        if variant_ok is None:
            return
        if (
            not isinstance(variant_ok, np.ndarray)
            or variant_ok.dtype != np.bool_
            or variant_ok.ndim != 3
            or variant_ok.shape[:2] != self.channel_ok.shape
        ):
            shape = getattr(variant_ok, "shape", None)
            raise PolicyError(
                f"variant_ok must be a boolean array of shape (n={self.channel_ok.shape[0]}, "
                f"n_channels={self.channel_ok.shape[1]}, n_variants), got "
                f"{getattr(variant_ok, 'dtype', type(variant_ok).__name__)} of shape {shape}"
            )

    @property
    def n(self) -> int:
        return int(self.channel_ok.shape[0])

    def rows(self, start: int, stop: int) -> Eligibility:
        """The eligibility of contacts ``start:stop`` (views, no copy)."""
        return Eligibility(
            self.channel_ok[start:stop],
            self.slot_ok[start:stop],
            self.reasons[start:stop],
            None if self.variant_ok is None else self.variant_ok[start:stop],
        )

    def take(self, index: npt.NDArray[np.intp]) -> Eligibility:
        """The eligibility of contacts ``index`` (copies)."""
        return Eligibility(
            self.channel_ok[index],
            self.slot_ok[index],
            self.reasons[index],
            None if self.variant_ok is None else self.variant_ok[index],
        )

    def resolve(self, actions: ActionSet) -> Eligibility:
        """This eligibility with its variant mask checked against ``actions`` and folded in.

        A channel none of whose variants the contact may get loses the channel (``channel_ok``
        becomes False: planning then neither scores nor draws for a contact left with no channel),
        and a mask that removes no variant the action set has is dropped, so that planning takes
        the unmasked path. Without a mask, ``self``.

        Raises
        ------
        PolicyError
            When ``variant_ok`` is not ``(n, n_channels, n_variants)`` for ``actions``.
        """
        if self.variant_ok is None:
            return self
        expected = (self.n, actions.n_channels, actions.n_variants)
        if self.variant_ok.shape != expected:
            raise PolicyError(
                f"eligibility.variant_ok must have shape (n, n_channels, n_variants) = {expected} "
                f"for this action set, got {self.variant_ok.shape}"
            )
        available = actions.variant_available[None]
        if (self.variant_ok | ~available).all():
            return replace(self, variant_ok=None)
        ok = self.variant_ok & available
        channel_ok = self.channel_ok & ok.any(axis=2)
        return Eligibility(channel_ok, self.slot_ok, self.reasons, ok)

    @cached_property
    def variant_penalty(self) -> FloatArray | None:
        """``(n, n_channels, n_variants)``: 0 where the variant may be sent, ``-inf`` elsewhere;
        ``None`` without a variant mask. Added to the variant scores, it keeps a masked variant
        from ever being a channel's best."""
        if self.variant_ok is None:
            return None
        return np.where(self.variant_ok, np.float32(0.0), np.float32(-np.inf))

    def mask(self, actions: ActionSet) -> BoolArray:
        """The dense ``(n, k)`` mask: True where the action may be pulled."""
        ok = self.slot_ok & self.channel_ok[:, :, None]
        dense = ok[:, :, :, None] & actions.variant_available[None, :, None, :]
        if self.variant_ok is not None:
            dense &= self.variant_ok[:, :, None, :]
        return dense.reshape(self.n, actions.k)

    def variants_per_channel(self, actions: ActionSet) -> npt.NDArray[np.int64]:
        """``(n, n_channels)`` how many of each channel's variants each contact may get."""
        if self.variant_ok is None:
            per_channel = actions.variant_available.sum(axis=1).astype(np.int64)
            return np.broadcast_to(per_channel[None, :], self.channel_ok.shape)
        ok = self.variant_ok & actions.variant_available[None]
        return np.asarray(ok.sum(axis=2), dtype=np.int64)

    def n_eligible(self, actions: ActionSet) -> npt.NDArray[np.int64]:
        """``(n,)`` how many actions each contact may get (without counting *no send*)."""
        slots = _count_true(self.slot_ok).astype(np.int64)  # (n, n_channels)
        slots *= self.channel_ok
        slots *= self.variants_per_channel(actions)
        return np.asarray(slots.sum(axis=1), dtype=np.int64)


def _count_true(ok: BoolArray) -> npt.NDArray[np.integer[Any]]:
    """The number of True values along the last axis.

    NumPy sums a short last axis row by row; when the axis is a whole number of 8-byte words, the
    words' population counts (a bool is one byte, 0 or 1) do it column by column, ~10× faster.
    """
    width = ok.shape[-1]
    if width % 8 or not ok.flags.c_contiguous or ok.size == 0:
        return np.asarray(np.count_nonzero(ok, axis=-1))
    words = ok.view(np.uint64)
    count = np.bitwise_count(words[..., 0]).astype(np.uint16)
    for j in range(1, words.shape[-1]):
        count += np.bitwise_count(words[..., j])
    return count


def channel_norms_allow(
    norms: Mapping[str, Mapping[str, Collection[object]]],
    channel_names: Sequence[str],
    message_attributes: Mapping[str, object],
) -> BoolArray:
    """Check a message against each channel's norms.

    ``norms[channel][attribute]`` lists the values that channel accepts (e.g. LinkedIn:
    ``{"emotion": {"informative", "inspiring"}}``); a channel without norms, or an attribute the
    message does not have, accepts anything.

    >>> channel_norms_allow({"linkedin": {"emotion": {"inspiring"}}}, ["email", "linkedin"],
    ...                     {"emotion": "playful"}).tolist()
    [True, False]
    """
    allowed = np.ones(len(channel_names), bool)
    for c, name in enumerate(channel_names):
        for attribute, values in norms.get(name, {}).items():
            if attribute in message_attributes and message_attributes[attribute] not in values:
                allowed[c] = False
    return allowed


def _as(name: str, value: npt.ArrayLike, shape: tuple[int, ...], dtype: type) -> npt.NDArray[Any]:
    array = np.asarray(value)
    if array.shape != shape:
        raise PolicyError(f"{name} must have shape {shape}, got {array.shape}")
    return array.astype(dtype, copy=False)


def compute_eligibility(
    actions: ActionSet,
    *,
    has_identity: npt.ArrayLike,
    consent: npt.ArrayLike,
    stage: npt.ArrayLike | None = None,
    utc_offset_hours: npt.ArrayLike | None = None,
    sends_in_window: npt.ArrayLike | None = None,
    channel_sends: npt.ArrayLike | None = None,
    rules: EligibilityRules | None = None,
    variant_ok: npt.ArrayLike | None = None,
) -> Eligibility:
    """Compute who may get which lever, from plain arrays the caller derived from the store.

    Parameters
    ----------
    actions
        The campaign's action set.
    has_identity
        ``(n, n_channels)`` the contact has an address or handle on the channel.
    consent
        ``(n, n_channels)`` consent is granted *now* (the caller derives it from the consent log).
    stage
        ``(n,)`` index of each contact's relationship stage (columns of ``rules.stage_allowed``).
    utc_offset_hours
        ``(n,)`` each contact's UTC offset in hours at send time (e.g. ``+2`` for CEST).
    sends_in_window
        ``(n,)`` sends across all channels in the fatigue window.
    channel_sends
        ``(n, n_channels)`` sends per channel in the frequency-cap window.
    rules
        The rules; default: none besides identity and consent.
    variant_ok
        ``(n, n_channels, n_variants)`` which variants each contact may get (e.g. those whose
        templates render with the contact's fields); a channel with none loses the channel
        (see :meth:`Eligibility.resolve`). ``None``: every variant.

    Returns
    -------
    Eligibility
        The factored mask with the reasons.
    """
    rules = rules or EligibilityRules()
    has_identity = np.asarray(has_identity)
    n = int(has_identity.shape[0]) if has_identity.ndim else -1
    n_ch = actions.n_channels
    identity = _as("has_identity", has_identity, (n, n_ch), bool)
    granted = _as("consent", consent, (n, n_ch), bool)
    channels = _ChannelMask(identity & granted, np.zeros((n, n_ch), np.uint8))
    channels.remove(identity, Reason.NO_IDENTITY)
    channels.remove(granted, Reason.NO_CONSENT)
    _apply_channel_rules(channels, rules, stage, sends_in_window, channel_sends)
    # The slot mask is the product of a (channel, slot) part (quiet hours) and a (contact, slot)
    # part (the window): built in one pass, the only (n, n_channels, n_slots) array made here.
    loud = _loud_slots(actions, rules)
    if loud is not None:
        hit = (~loud).any(axis=1)
        channels.reasons |= np.where(hit, Reason.QUIET_HOURS.value, 0).astype(np.uint8)[None, :]
    inside = _slots_in_window(actions, rules, utc_offset_hours, n)
    if inside is not None:
        outside = _count_true(inside) < actions.n_slots
        channels.reasons |= np.where(outside, Reason.OUTSIDE_WINDOW.value, 0).astype(np.uint8)[
            :, None
        ]
    variants = (
        None
        if variant_ok is None
        else _as("variant_ok", variant_ok, (n, n_ch, actions.n_variants), bool)
    )
    return Eligibility(
        channel_ok=channels.ok,
        slot_ok=_slot_mask(loud, inside, (n, n_ch, actions.n_slots)),
        reasons=channels.reasons,
        variant_ok=variants,
    ).resolve(actions)


@dataclass(eq=False)
class _ChannelMask:
    """``(n, n_channels)`` who may get each channel, and the reason bits of the rules that said no."""

    ok: BoolArray
    reasons: npt.NDArray[np.uint8]

    def remove(self, ok: BoolArray, reason: Reason) -> None:
        """Keep only the channels that ``ok`` allows, marking the others with ``reason``."""
        self.reasons |= np.where(ok, 0, reason.value).astype(np.uint8)
        self.ok = self.ok & ok


def _apply_channel_rules(
    channels: _ChannelMask,
    rules: EligibilityRules,
    stage: npt.ArrayLike | None,
    sends_in_window: npt.ArrayLike | None,
    channel_sends: npt.ArrayLike | None,
) -> None:
    """The rules that remove whole channels: relationship stage, fatigue, frequency caps, norms."""
    n, n_ch = channels.ok.shape
    if rules.stage_allowed is not None:
        if stage is None:
            raise PolicyError("stage is required when rules.stage_allowed is set")
        allowed = np.asarray(rules.stage_allowed, bool)
        if allowed.ndim != 2 or allowed.shape[0] != n_ch:
            raise PolicyError(
                f"rules.stage_allowed must have shape (n_channels={n_ch}, n_stages), got {allowed.shape}"
            )
        stages = _as("stage", stage, (n,), np.int64)
        if stages.size and (stages.min() < 0 or stages.max() >= allowed.shape[1]):
            raise PolicyError(
                f"stage values must lie in [0, {allowed.shape[1]}), the stage columns"
            )
        channels.remove(allowed[:, stages].T, Reason.STAGE)
    if rules.fatigue_cap is not None:
        if sends_in_window is None:
            raise PolicyError("sends_in_window is required when rules.fatigue_cap is set")
        sends = _as("sends_in_window", sends_in_window, (n,), np.int64)
        channels.remove(
            np.broadcast_to((sends < rules.fatigue_cap)[:, None], (n, n_ch)), Reason.FATIGUE_CAP
        )
    if rules.frequency_caps is not None:
        caps = _as("rules.frequency_caps", rules.frequency_caps, (n_ch,), np.int64)
        if channel_sends is None:
            raise PolicyError("channel_sends is required when rules.frequency_caps is set")
        counts = _as("channel_sends", channel_sends, (n, n_ch), np.int64)
        channels.remove((caps[None, :] < 0) | (counts < caps[None, :]), Reason.FREQUENCY_CAP)
    if rules.norm_allowed is not None:
        norm = _as("rules.norm_allowed", rules.norm_allowed, (n_ch,), bool)
        channels.remove(np.broadcast_to(norm[None, :], (n, n_ch)), Reason.CHANNEL_NORM)


def _loud_slots(actions: ActionSet, rules: EligibilityRules) -> BoolArray | None:
    """``(n_channels, n_slots)`` the slots outside quiet hours on each channel that observes them;
    ``None`` without quiet hours."""
    if rules.quiet_hours is None:
        return None
    n_ch = actions.n_channels
    start, end = rules.quiet_hours
    hour = actions.slot_hours % 24
    quiet = (hour >= start) & (hour < end) if start <= end else (hour >= start) | (hour < end)
    observes = (
        np.ones(n_ch, bool)
        if rules.quiet_channels is None
        else _as("rules.quiet_channels", rules.quiet_channels, (n_ch,), bool)
    )
    return np.asarray(~(observes[:, None] & quiet[None, :]))


def _slots_in_window(
    actions: ActionSet,
    rules: EligibilityRules,
    utc_offset_hours: npt.ArrayLike | None,
    n: int,
) -> BoolArray | None:
    """``(n, n_slots)`` the slots inside each contact's send window, in its time zone; ``None``
    without a window."""
    if rules.window is None:
        return None
    if utc_offset_hours is None:
        raise PolicyError("utc_offset_hours is required when rules.window is set")
    offset = _as("utc_offset_hours", utc_offset_hours, (n,), np.float64)
    utc = np.subtract(actions.slot_hours[None, :], offset[:, None])  # (n, n_sl)
    inside = np.greater_equal(utc, rules.window[0])
    inside &= np.less(utc, rules.window[1])
    return np.asarray(inside, dtype=bool)


def _slot_mask(
    loud: BoolArray | None, inside: BoolArray | None, shape: tuple[int, int, int]
) -> BoolArray:
    """``(n, n_channels, n_slots)`` the product of the quiet-hours and window masks, in one pass."""
    n_sl = shape[2]
    slot_ok = np.empty(shape, bool)
    if loud is not None and inside is not None and n_sl % 8 == 0:
        # as 8-byte words (a bool is one byte, 0 or 1): an eighth of the elements to combine
        words = np.ascontiguousarray(loud).view(np.uint64)
        np.bitwise_and(words[None], inside.view(np.uint64)[:, None, :], out=slot_ok.view(np.uint64))
    elif loud is not None and inside is not None:
        np.logical_and(loud[None, :, :], inside[:, None, :], out=slot_ok)
    elif loud is not None:
        slot_ok[...] = loud[None, :, :]
    elif inside is not None:
        slot_ok[...] = inside[:, None, :]
    else:
        slot_ok.fill(True)
    return slot_ok
