"""Selection: from scores to levers — cost, relevance threshold, lever budget, channel budgets, holdout.

Everything here works on *per-channel* arrays ``(n, n_channels)``: because scores are additive over
the action factors, each channel's best (slot, variant) is found once, and every later step — the
lever budget, the relevance gate, the Lagrangian prices of capped channels — only compares channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.decide._actions import ActionSet
from tummler.decide._eligibility import Eligibility
from tummler.decide._policies import FactorScores

__all__ = [
    "SelectionRules",
    "SlotPenalty",
    "best_per_channel",
    "draw_holdout",
    "fit_channel_prices",
    "net_of_prices",
    "select_levers",
    "slot_penalty",
]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SelectionRules:
    """How scores become levers.

    Parameters
    ----------
    cost
        ``(n_channels,)`` the cost of one send per channel, in reward units; subtracted from the
        expected reward. ``None``: free.
    threshold
        The relevance threshold: a lever is pulled only when its expected reward minus its cost
        reaches it; *no send* otherwise. Most brand content is worth nothing to its recipient.
    lever_budget
        At most this many levers (channels) per contact; each extra lever must clear the threshold
        on its own. At most one action per channel.
    critical
        A critical message may use every eligible channel that clears the threshold.
    channel_caps
        ``(n_channels,)`` the most sends per channel in this plan (e.g. an SMS spend cap divided by
        the price of one SMS); ``inf``: no cap. Met by pricing the channel (a Lagrange multiplier),
        so that the capped sends go to the contacts for whom that channel matters most.
    """

    cost: npt.NDArray[np.float64] | None = None
    threshold: float = 0.0
    lever_budget: int = 1
    critical: bool = False
    channel_caps: npt.NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.lever_budget, int | np.integer) or self.lever_budget < 1:
            raise PolicyError(f"lever_budget must be a positive integer, got {self.lever_budget!r}")
        if not np.isfinite(self.threshold):
            raise PolicyError(f"threshold must be a finite number, got {self.threshold}")
        if self.channel_caps is not None and (np.asarray(self.channel_caps) < 0).any():
            raise PolicyError("channel_caps must be non-negative (inf for no cap)")

    def max_levers(self, n_channels: int) -> int:
        """The most levers a contact can get under these rules."""
        return n_channels if self.critical else min(self.lever_budget, n_channels)

    def channel_cost(self, n_channels: int) -> FloatArray:
        """``(n_channels,)`` the cost, checked against the action set."""
        if self.cost is None:
            return np.zeros(n_channels, np.float32)
        cost = np.asarray(self.cost, dtype=np.float32)
        if cost.shape != (n_channels,) or not np.isfinite(cost).all():
            raise PolicyError(
                f"rules.cost must be {n_channels} finite numbers (one per channel), got {cost.shape}"
            )
        return cost

    def caps(self, n_channels: int) -> npt.NDArray[np.float64] | None:
        """``(n_channels,)`` the channel caps, or ``None`` when no channel is capped."""
        if self.channel_caps is None:
            return None
        caps = np.asarray(self.channel_caps, dtype=np.float64)
        if caps.shape != (n_channels,):
            raise PolicyError(
                f"rules.channel_caps must have {n_channels} entries, got {caps.shape}"
            )
        return None if np.isinf(caps).all() else caps


@dataclass(frozen=True, eq=False)
class SlotPenalty:
    """The slot mask as additive penalties, shared by channels whose slot masks are the same.

    Attributes
    ----------
    allowed
        ``(n, n_groups, n_slots)`` the slot mask of each group.
    group
        ``(n_channels,)`` the group of each channel.
    """

    allowed: npt.NDArray[np.bool_]
    group: npt.NDArray[np.intp]

    @cached_property
    def penalty(self) -> FloatArray:
        """``(n, n_groups, n_slots)``: 0 where the slot is eligible, ``-inf`` elsewhere."""
        return np.where(self.allowed, np.float32(0.0), np.float32(-np.inf))

    @cached_property
    def penalty_t(self) -> FloatArray:
        """``(n_groups, n_slots, n)``: :attr:`penalty` part-major, for work across contacts."""
        allowed = np.ascontiguousarray(self.allowed.transpose(1, 2, 0))  # transpose the bytes
        return np.where(allowed, np.float32(0.0), np.float32(-np.inf))


def slot_penalty(eligibility: Eligibility) -> SlotPenalty:
    """Turn the slot mask into penalties, one per group of channels with identical slot masks.

    Quiet hours usually apply to some channels and not others, and the campaign window to all, so
    four channels tend to form one or two groups: the best slot is then searched once per group,
    not once per channel. Computed once per chunk and reused by every posterior draw.
    """
    ok = eligibility.slot_ok
    # Compared as 8-byte words where the slots fill whole words: an eighth of the elements.
    words = ok.view(np.uint64) if ok.shape[2] % 8 == 0 and ok.flags.c_contiguous else ok
    representatives: list[int] = []
    group = np.empty(ok.shape[1], np.intp)
    for c in range(ok.shape[1]):
        for g, rep in enumerate(representatives):
            if np.array_equal(words[:, rep], words[:, c]):
                group[c] = g
                break
        else:
            group[c] = len(representatives)
            representatives.append(c)
    return SlotPenalty(allowed=ok[:, representatives], group=group)


def best_per_channel(
    scores: FactorScores,
    eligibility: Eligibility,
    actions: ActionSet,
    cost: FloatArray,
    penalty: SlotPenalty | None = None,
) -> tuple[FloatArray, npt.NDArray[np.int32]]:
    """Each channel's best eligible (slot, variant) and its net value.

    Because scores are additive over the factors (and the link is monotone), the best action of a
    channel is its best eligible slot combined with its best available variant (among those the
    contact may get, under ``eligibility.variant_ok``).

    Returns
    -------
    net
        ``(n, n_channels)`` expected reward minus cost of the channel's best action; ``-inf`` where
        the channel has no eligible action.
    action
        ``(n, n_channels)`` the index of that action (meaningless where ``net`` is ``-inf``).
    """
    n_sl, n_var = actions.n_slots, actions.n_variants
    pen = slot_penalty(eligibility) if penalty is None else penalty
    slot_values = scores.slot[:, None, :] + pen.penalty
    group_slot = slot_values.argmax(axis=2)
    group_best = np.take_along_axis(slot_values, group_slot[:, :, None], axis=2)[:, :, 0]
    best_slot, slot_best = group_slot[:, pen.group], group_best[:, pen.group]
    variant_values = scores.variant + actions.variant_penalty[None]
    if eligibility.variant_penalty is not None:  # variants some contacts may not get
        variant_values += eligibility.variant_penalty
    best_variant = variant_values.argmax(axis=2)
    variant_best = np.take_along_axis(variant_values, best_variant[:, :, None], axis=2)[:, :, 0]
    valid = np.isfinite(slot_best) & eligibility.channel_ok
    if eligibility.variant_ok is not None:
        valid &= np.isfinite(variant_best)
    linear = scores.channel + np.where(valid, slot_best, np.float32(0.0)) + variant_best
    net = np.asarray(scores.apply_link(linear), dtype=np.float32) - cost[None, :]
    net[~valid] = -np.inf
    channels = np.arange(actions.n_channels, dtype=np.int32)[None, :]
    action = ((channels * n_sl + best_slot) * n_var + best_variant).astype(np.int32)
    return net, action


def select_levers(
    net: npt.NDArray[np.floating[Any]], *, threshold: float, max_levers: int
) -> npt.NDArray[np.int64]:
    """Pick each contact's levers: the best channels by net value that clear the threshold.

    Parameters
    ----------
    net
        ``(n, n_channels)`` net value per channel (already minus any channel price).
    threshold
        The relevance threshold every lever must clear on its own.
    max_levers
        The lever budget (``n_channels`` for a critical message).

    Returns
    -------
    numpy.ndarray
        ``(n, max_levers)`` channel indices, best first, ``-1`` where no lever.

    Examples
    --------
    >>> select_levers(np.array([[0.1, 0.5, 0.3], [-1.0, 0.0, 0.01]]), threshold=0.2, max_levers=2)
    array([[ 1,  2],
           [-1, -1]])
    """
    n = net.shape[0]
    if max_levers == 1:
        # A running comparison over the few channels beats argmax's per-row overhead.
        best = np.zeros(n, np.int64)
        top = np.array(net[:, 0], copy=True)
        better = np.empty(n, bool)
        for c in range(1, net.shape[1]):
            np.greater(net[:, c], top, out=better)
            np.copyto(best, c, where=better)
            np.maximum(top, net[:, c], out=top)
        return np.where(top >= threshold, best, -1)[:, None]
    order = np.argsort(-net, axis=1, kind="stable")[:, :max_levers]
    ok = np.take_along_axis(net, order, axis=1) >= threshold
    return np.where(ok, order, -1).astype(np.int64)


def _sends(levers: npt.NDArray[np.int64], n_channels: int) -> npt.NDArray[np.int64]:
    flat = levers[levers >= 0]
    return np.bincount(flat, minlength=n_channels).astype(np.int64)


def fit_channel_prices(
    net: npt.NDArray[np.floating[Any]],
    caps: npt.NDArray[np.float64],
    *,
    threshold: float,
    max_levers: int,
    max_rounds: int = 50,
) -> npt.NDArray[np.float64]:
    """Price capped channels so that the selection respects every cap (a Lagrangian relaxation).

    Subtracting a price ``λ_c`` from every net value of channel ``c`` sends its capped volume to the
    contacts with the largest *advantage* of ``c`` over their next-best option — not to the largest
    raw scores, as truncating a sorted list would. For one channel, with the others' prices fixed,
    the smallest feasible ``λ_c`` is exactly the ``(cap + 1)``-th largest gap between the channel's
    net value and the value it must beat (the threshold, or the ``max_levers``-th best other
    channel): the limit a bisection on ``λ_c`` would converge to, found in one partial sort.
    Channels are priced in turn (Gauss–Seidel) until no cap is exceeded.

    Parameters
    ----------
    net
        ``(n, n_channels)`` net values, ``-inf`` where a channel is not eligible.
    caps
        ``(n_channels,)`` the most sends per channel (``inf``: uncapped).
    threshold, max_levers
        As in :func:`select_levers`.

    Returns
    -------
    numpy.ndarray
        ``(n_channels,)`` prices ``λ ≥ 0``; 0 for uncapped channels.
    """
    values = np.asarray(net, dtype=np.float64)
    n, n_ch = values.shape
    prices = np.zeros(n_ch)
    capped = [c for c in range(n_ch) if np.isfinite(caps[c])]
    for _ in range(max_rounds):
        for c in capped:
            adjusted = values - prices[None, :]
            others = np.delete(adjusted, c, axis=1)
            if others.shape[1] >= max_levers:
                kth = -np.partition(-others, max_levers - 1, axis=1)[:, max_levers - 1]
                beat = np.maximum(kth, threshold)
            else:
                beat = np.full(n, threshold, dtype=np.float64)
            gap = values[:, c] - beat
            gap = gap[np.isfinite(gap)]
            cap = int(caps[c])
            if gap.size <= cap:
                prices[c] = 0.0
                continue
            cut = -np.partition(-gap, cap)[cap]  # the (cap + 1)-th largest gap
            prices[c] = max(0.0, float(np.nextafter(cut, np.inf)))
        sends = _sends(
            select_levers(values - prices, threshold=threshold, max_levers=max_levers), n_ch
        )
        if all(sends[c] <= caps[c] for c in capped):
            return prices
    # Ties between channels can make Gauss–Seidel cycle; raise the offending prices until it fits.
    for _ in range(64):
        sends = _sends(
            select_levers(values - prices, threshold=threshold, max_levers=max_levers), n_ch
        )
        over = [c for c in capped if sends[c] > caps[c]]
        if not over:
            return prices
        for c in over:
            prices[c] = prices[c] * 2 + 1e-9
    raise PolicyError("could not price the capped channels to meet rules.channel_caps")


def net_of_prices(
    net: npt.NDArray[np.float32], prices: npt.NDArray[np.float64]
) -> npt.NDArray[np.floating]:
    """Net values minus channel prices, in float64 when any channel is priced: the prices sit one
    ulp above a float64 gap, and rounding them to float32 would let a tie through the cap."""
    if not prices.any():
        return net
    return net.astype(np.float64) - prices[None, :]


def draw_holdout(
    strata: npt.ArrayLike | None, n: int, share: float, rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    """Draw a random holdout of ``share`` of each stratum, before anything is scored.

    Each stratum of size ``s`` holds out ``⌊share·s⌋`` contacts plus one more with probability equal
    to the fractional part, so every contact is held out with probability exactly ``share`` and each
    stratum's share is within one contact of it.

    Parameters
    ----------
    strata
        ``(n,)`` integer stratum of each contact (e.g. stage × country); ``None``: one stratum.
    n
        The number of contacts.
    share
        The holdout share in [0, 1).
    rng
        The source of randomness.
    """
    if not 0.0 <= share < 1.0:
        raise PolicyError(f"holdout_share must lie in [0, 1), got {share}")
    groups = np.zeros(n, np.int64) if strata is None else np.asarray(strata)
    if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
        raise PolicyError(f"strata must be an integer array of shape ({n},), got {groups.shape}")
    if share == 0.0 or n == 0:
        return np.zeros(n, bool)
    inverse, sizes = _strata(groups)
    target = share * sizes
    count = np.floor(target).astype(np.int64)
    count += rng.random(sizes.size) < (target - count)
    # Ordering by "stratum + uniform" orders contacts by stratum, randomly within each; a contact
    # is held out when its rank within its stratum is below the stratum's count. Only those ranks
    # matter, so a partition at each stratum's cut does what a full sort would.
    key = inverse + rng.random(n)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cut = starts + count - 1
    taking = count > 0
    held = np.zeros(n, bool)
    if taking.any():
        at = cut[taking]
        kth = np.partition(key, at)[at]
        bound = np.full(sizes.size, -np.inf)
        bound[taking] = kth
        held = key <= bound[inverse]
    if np.array_equal(np.bincount(inverse, weights=held, minlength=sizes.size), count):
        return held
    # A tie at a cut (vanishingly rare): rank exactly, ties broken by position.
    order = np.argsort(key, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - starts[inverse[order]]
    return np.asarray(rank < count[inverse])


def _strata(
    groups: npt.NDArray[np.integer[Any]],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Each contact's stratum as an index into the sorted distinct strata, and their sizes
    (``np.unique``'s answer, by counting when the strata are small non-negative integers)."""
    low, high = int(groups.min()), int(groups.max())
    if low < 0 or high > max(1_000_000, groups.size):
        _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
        return inverse.reshape(-1), sizes.astype(np.int64)
    counts = np.bincount(groups, minlength=high + 1)
    seen = counts > 0
    index = np.cumsum(seen) - 1
    return index[groups], counts[seen].astype(np.int64)
