"""Propensities: the probability that the policy pulls each logged lever.

Exact for deterministic policies (:func:`_deterministic`); by Monte Carlo for Thompson policies:
``draws`` replicates, each an independent posterior draw per contact, run through the same
selection as the decision (channel prices included), and a lever's propensity is the share of
replicates whose selection includes it. Policies whose draw is a :class:`FactorGaussian` take the
fused, part-major path (:func:`_monte_carlo_gaussian`); others go through their sampler
(:func:`_monte_carlo`). Both test a replicate only with *maxima* (is the logged slot's score the
largest?), never an argmax, and allocate nothing per replicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.decide._actions import ActionSet
from tummler.decide._chunks import _Part
from tummler.decide._eligibility import Eligibility
from tummler.decide._gaussian import FactorGaussian
from tummler.decide._part_major import _link, _PartDraw
from tummler.decide._policies import Policy, Sampler
from tummler.decide._selection import (
    SelectionRules,
    SlotPenalty,
    net_of_prices,
    select_levers,
    slot_penalty,
)


def _shares(
    policy: Policy,
    part: _Part,
    actions: ActionSet,
    blocks: list[tuple[int, npt.NDArray[np.float32]]],
    chosen: npt.NDArray[np.int64],
    *,
    cost: npt.NDArray[np.float32],
    prices: npt.NDArray[np.float64],
    rules: SelectionRules,
    max_levers: int,
    draws: int,
) -> npt.NDArray[np.float64]:
    """The Monte Carlo shares of one piece's chosen levers, block by block of its noise."""
    common: dict[str, Any] = {
        "cost": cost,
        "prices": prices,
        "rules": rules,
        "max_levers": max_levers,
        "draws": draws,
    }
    gaussian = policy._gaussian(part.x, actions)
    if gaussian is None:  # the generic path: the policy's sampler, row-major noise
        noise = blocks[0][1] if len(blocks) == 1 else np.concatenate([b for _, b in blocks], 2)

        def rows(replicate: int) -> npt.NDArray[np.float32]:
            return np.asarray(noise[replicate].T, dtype=np.float32)

        sampler = policy._sampler(part.x, actions)
        return _monte_carlo(sampler, rows, actions, part.eligibility, chosen, **common)
    shares = np.empty(chosen.shape)
    for first, block in blocks:
        stop = first + block.shape[2]
        shares[first:stop] = _monte_carlo_gaussian(
            gaussian,
            slice(first, stop),
            block.__getitem__,
            actions,
            part.eligibility.rows(first, stop),
            chosen[first:stop],
            **common,
        )
    return shares


def _deterministic(
    greedy: npt.NDArray[np.int64], chosen: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """1 where the chosen lever is one the greedy selection makes (for *no send*: when it sends none)."""
    included = (chosen[:, :, None] == greedy[:, None, :]).any(axis=2) & (chosen >= 0)
    nothing = (greedy < 0).all(axis=1)
    included[:, 0] |= (chosen[:, 0] < 0) & nothing
    return np.asarray(included, dtype=np.float64)


def _best_slot_and_variant(
    hit: npt.NDArray[np.bool_],
    scratch: npt.NDArray[np.bool_],
    values: tuple[
        npt.NDArray[np.floating],
        npt.NDArray[np.floating],
        npt.NDArray[np.floating],
        npt.NDArray[np.floating],
    ],
    at: tuple[
        npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]
    ],
) -> None:
    """Keep the hits whose logged slot and variant are also this replicate's best (in place).

    ``values`` are the slot values and their per-group maxima, the variant values and their
    per-channel maxima; ``at`` the flat positions of each logged lever's slot, group, variant and
    channel in them (the two Monte Carlo paths lay their arrays out differently, hence positions).
    """
    slots, slot_max, variants, variant_max = values
    slot_at, group_at, variant_at, channel_at = at
    shape = hit.shape
    np.greater_equal(
        slots.take(slot_at).reshape(shape), slot_max.take(group_at).reshape(shape), out=scratch
    )
    hit &= scratch
    np.greater_equal(
        variants.take(variant_at).reshape(shape),
        variant_max.take(channel_at).reshape(shape),
        out=scratch,
    )
    hit &= scratch


@dataclass(frozen=True, eq=False)
class _LoggedLevers:
    """The logged levers of a block of contacts, and where each sits in a replicate's buffers.

    ``at`` holds the flat positions of each lever's slot, group, variant and channel in the slot
    values, their per-group maxima, the variant values and their per-channel maxima, computed once
    per block; the two Monte Carlo paths lay those buffers out differently (contact-major for the
    sampler's, part-major — contact-minor — for the fused one).
    """

    channel: npt.NDArray[np.int64]
    present: npt.NDArray[np.bool_]
    none_chosen: npt.NDArray[np.bool_]
    at: tuple[
        npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]
    ]

    @staticmethod
    def of(
        chosen: npt.NDArray[np.int64],
        actions: ActionSet,
        penalty: SlotPenalty,
        *,
        part_major: bool,
    ) -> _LoggedLevers:
        m = chosen.shape[0]
        n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
        a = np.maximum(chosen, 0)
        channel = actions.channel[a]
        group = penalty.group[channel]
        if part_major:
            column = np.arange(m)[:, None]
            slot_at = ((group * n_sl + actions.slot[a]) * m + column).ravel()
            group_at = (group * m + column).ravel()
            channel_at = (channel * m + column).ravel()
            variant_at = ((channel * n_var + actions.variant[a]) * m + column).ravel()
        else:
            rows = np.arange(m)[:, None]
            n_groups = penalty.allowed.shape[1]
            slot_at = ((rows * n_groups + group) * n_sl + actions.slot[a]).ravel()
            group_at = (rows * n_groups + group).ravel()
            channel_at = (rows * n_ch + channel).ravel()
            variant_at = (channel_at * n_var + actions.variant[a].ravel()).ravel()
        present = chosen >= 0
        return _LoggedLevers(
            channel, present, ~present[:, 0], (slot_at, group_at, variant_at, channel_at)
        )

    def count(
        self,
        hit: npt.NDArray[np.bool_],
        scratch: npt.NDArray[np.bool_],
        levers: npt.NDArray[np.int64],
        maxima: tuple[
            npt.NDArray[np.floating],
            npt.NDArray[np.floating],
            npt.NDArray[np.floating],
            npt.NDArray[np.floating],
        ],
        hits: npt.NDArray[np.int32],
    ) -> None:
        """Add one replicate to ``hits``: ``hit`` holds whose channel it selected, ``levers`` its
        selection; a lever counts when it is present and its slot and variant are the best."""
        hit &= self.present
        _best_slot_and_variant(hit, scratch, maxima, self.at)
        hit[:, 0] |= self.none_chosen & (levers[:, 0] < 0)
        hits += hit


def _monte_carlo(
    sampler: Sampler,
    noise: Callable[[int], npt.NDArray[np.float32] | None],
    actions: ActionSet,
    eligibility: Eligibility,
    chosen: npt.NDArray[np.int64],
    *,
    cost: npt.NDArray[np.float32],
    prices: npt.NDArray[np.float64],
    rules: SelectionRules,
    max_levers: int,
    draws: int,
) -> npt.NDArray[np.float64]:
    """The share of ``draws`` replicates whose selection includes each chosen lever.

    Replicate ``r`` scores the contacts with the posterior draws ``sampler(noise(r))``: one
    independent draw per contact, so the share for contact ``i`` estimates the probability that
    *its own* Thompson draw selects the lever.

    A draw includes lever ``(c, s, v)`` when it selects channel ``c`` and ``s`` and ``v`` are the
    best eligible slot and variant of ``c`` under that draw. Both tests need only *maxima* (is the
    chosen slot's score the largest?), never an argmax. Every replicate works in buffers allocated
    once, and reads the chosen lever's scores at flat positions computed once: per replicate and
    contact, the work is a few dozen float32 operations besides the normals.
    """
    m, n_lev = chosen.shape
    n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
    penalty = slot_penalty(eligibility)
    n_groups = penalty.allowed.shape[1]
    logged = _LoggedLevers.of(chosen, actions, penalty, part_major=False)
    channel_at = logged.at[3]
    # A channel without an eligible slot is out whatever the draw.
    reachable = np.asarray(np.isfinite(penalty.penalty).any(axis=2))[:, penalty.group]
    invalid = ~(eligibility.channel_ok & reachable)
    variant_pen = actions.variant_penalty[None]
    if eligibility.variant_ok is not None and eligibility.variant_penalty is not None:
        # variants some contacts may not get; a channel with none is out whatever the draw
        variant_pen = variant_pen + eligibility.variant_penalty
        invalid |= ~(eligibility.variant_ok & actions.variant_available[None]).any(axis=2)
    spread = None if n_groups == 1 else penalty.group
    slot_values = np.empty((m, n_groups, n_sl), np.float32)
    slot_max = np.empty((m, n_groups), np.float32)
    variant_values = np.empty((m, n_ch, n_var), np.float32)
    variant_max = np.empty((m, n_ch), np.float32)
    linear = np.empty((m, n_ch), np.float32)
    hit = np.empty((m, n_lev), bool)
    scratch = np.empty((m, n_lev), bool)
    hits = np.zeros((m, n_lev), np.int32)
    selected = np.empty((m, n_ch), bool)
    for replicate in range(draws):
        scores = sampler(noise(replicate))
        np.add(scores.slot[:, None, :], penalty.penalty, out=slot_values)
        np.max(slot_values, axis=2, out=slot_max)
        np.add(scores.variant, variant_pen, out=variant_values)
        np.max(variant_values, axis=2, out=variant_max)
        np.add(scores.channel, slot_max if spread is None else slot_max[:, spread], out=linear)
        linear += variant_max
        net = np.asarray(scores.apply_link(linear), dtype=np.float32)
        net -= cost
        np.copyto(net, np.float32(-np.inf), where=invalid)
        levers = select_levers(
            net_of_prices(net, prices), threshold=rules.threshold, max_levers=max_levers
        )
        # hit = chosen lever present, its channel selected, its slot and variant the best
        if max_levers == 1:
            np.equal(logged.channel, levers, out=hit)
        else:
            selected.fill(False)
            r, lever = np.nonzero(levers >= 0)
            selected[r, levers[r, lever]] = True
            hit[...] = selected.take(channel_at).reshape(m, n_lev)
        logged.count(
            hit, scratch, levers, (slot_values, slot_max, variant_values, variant_max), hits
        )
    return np.asarray(hits / draws)


def _monte_carlo_gaussian(
    gaussian: FactorGaussian,
    rows: slice,
    noise: Callable[[int], npt.NDArray[np.float32]],
    actions: ActionSet,
    eligibility: Eligibility,
    chosen: npt.NDArray[np.int64],
    *,
    cost: npt.NDArray[np.float32],
    prices: npt.NDArray[np.float64],
    rules: SelectionRules,
    max_levers: int,
    draws: int,
) -> npt.NDArray[np.float64]:
    """:func:`_monte_carlo` for a policy whose draw is a :class:`FactorGaussian`, fused.

    The same replicates, the same tests, but the draw and the selection run part-major: every
    array is ``(parts, contacts)``, so each step is a contiguous float32 operation over a block of
    contacts that stays in the CPU's caches, the best slot is a maximum over the slot axis of a
    ``(groups, slots, contacts)`` array (vectorized across contacts, not a reduction per
    contact), and nothing is allocated per replicate. ``noise(r)`` is ``(size, m)``: contact
    ``i``'s normals are column ``i``, the same numbers :func:`_monte_carlo` takes as row ``i``.
    """
    draw = _PartDraw(gaussian, rows)
    penalty = slot_penalty(eligibility)
    logged = _LoggedLevers.of(chosen, actions, penalty, part_major=True)
    replicate_net = _FusedNet(gaussian.link, actions, eligibility, penalty, cost)
    selection = _FusedSelection(actions.n_channels, draw.m, prices, rules, max_levers)
    hit = np.empty(chosen.shape, bool)
    scratch = np.empty(chosen.shape, bool)
    hits = np.zeros(chosen.shape, np.int32)
    for replicate in range(draws):
        net = replicate_net(draw.draw(noise(replicate)))
        levers = selection(net, logged, hit)
        logged.count(hit, scratch, levers, replicate_net.maxima, hits)
    return np.asarray(hits / draws)


class _FusedNet:
    """Each channel's net value under one part-major replicate, in buffers allocated once.

    The best slot per slot group, the best variant per channel, their sum with the channel's score
    through the link, minus cost, ``-inf`` where the channel is out whatever the draw. The slot and
    variant values and their maxima stay in :attr:`maxima` for the best-slot-and-variant test.
    """

    def __init__(
        self,
        link: str,
        actions: ActionSet,
        eligibility: Eligibility,
        penalty: SlotPenalty,
        cost: npt.NDArray[np.float32],
    ) -> None:
        n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
        m = eligibility.n
        self.link, self.group, self.n_var = link, penalty.group, n_var
        self.slot0, self.variant0 = n_ch, n_ch + n_sl
        self.pen = penalty.penalty_t  # (n_groups, n_sl, m)
        reachable = np.asarray(np.isfinite(self.pen).any(axis=1))[penalty.group]  # (n_ch, m)
        usable = eligibility.channel_ok.T & reachable
        if eligibility.variant_ok is not None:
            usable &= (eligibility.variant_ok & actions.variant_available[None]).any(axis=2).T
        # 0 where the channel may be used, -inf where it is out whatever the draw
        self.out_penalty = np.where(usable, np.float32(0), np.float32(-np.inf))
        self.variant_pen = actions.variant_penalty.reshape(-1, 1)
        if eligibility.variant_penalty is not None:  # variants some contacts may not get
            self.variant_pen = np.ascontiguousarray(
                (eligibility.variant_penalty + actions.variant_penalty[None]).reshape(m, -1).T
            )
        self.padded = not np.isfinite(self.variant_pen).all()
        self.cost_t = cost[:, None]
        self.values = np.empty((penalty.allowed.shape[1], n_sl, m), np.float32)
        self.slot_max = np.empty((penalty.allowed.shape[1], m), np.float32)
        self.variants = np.empty((0, m), np.float32)  # a view of the last draw's variant rows
        self.variant_max = np.empty((n_ch, m), np.float32)
        self.linear = np.empty((n_ch, m), np.float32)

    def __call__(self, parts: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(n_channels, m)`` net values of the draw ``parts`` (whose variant rows it modifies)."""
        np.add(parts[None, self.slot0 : self.variant0], self.pen, out=self.values)
        np.max(self.values, axis=1, out=self.slot_max)
        variants = parts[self.variant0 :]
        if self.padded:
            variants += self.variant_pen
        self.variants = variants
        by_channel = variants.reshape(self.variant_max.shape[0], self.n_var, -1)
        np.copyto(self.variant_max, by_channel[:, 0])
        for v in range(1, self.n_var):
            np.maximum(self.variant_max, by_channel[:, v], out=self.variant_max)
        linear = self.linear
        for c, group in enumerate(self.group):
            np.add(parts[c], self.slot_max[group], out=linear[c])
        linear += self.variant_max
        net = np.asarray(_link(self.link, linear), dtype=np.float32)
        net -= self.cost_t
        net += self.out_penalty
        return net

    @property
    def maxima(
        self,
    ) -> tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
    ]:
        """The last replicate's slot values, their per-group maxima, variant values and their
        per-channel maxima."""
        return self.values, self.slot_max, self.variants, self.variant_max


class _FusedSelection:
    """:func:`~tummler.decide.select_levers` on part-major net values, in buffers allocated once.

    With one lever and no channel prices the selection is a running maximum over the channels
    (first on ties, as ``select_levers`` picks it); otherwise ``select_levers`` itself runs.
    """

    def __init__(
        self,
        n_channels: int,
        m: int,
        prices: npt.NDArray[np.float64],
        rules: SelectionRules,
        max_levers: int,
    ) -> None:
        self.prices, self.threshold, self.max_levers = prices, rules.threshold, max_levers
        self.single = max_levers == 1 and not prices.any()
        self.top = np.empty(m, np.float32)
        self.best = np.empty(m, np.int64)
        self.better = np.empty(m, bool)
        self.selected = np.empty((m, n_channels), bool)

    def __call__(
        self,
        net: npt.NDArray[np.float32],
        logged: _LoggedLevers,
        hit: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.int64]:
        """The levers selected under ``net`` ``(n_channels, m)``; ``hit``: whether each logged
        lever's channel is among them (in place)."""
        if self.single:
            top, best, better = self.top, self.best, self.better
            np.copyto(top, net[0])
            best.fill(0)
            for c in range(1, net.shape[0]):
                np.greater(net[c], top, out=better)
                np.copyto(best, c, where=better)
                np.maximum(top, net[c], out=top)
            np.less(top, self.threshold, out=better)
            np.copyto(best, -1, where=better)
            np.equal(logged.channel, best[:, None], out=hit)
            return best[:, None]
        levers = select_levers(
            net_of_prices(net.T, self.prices), threshold=self.threshold, max_levers=self.max_levers
        )
        if self.max_levers == 1:
            np.equal(logged.channel, levers, out=hit)
        else:
            self.selected.fill(False)
            r, lever = np.nonzero(levers >= 0)
            self.selected[r, levers[r, lever]] = True
            hit[...] = self.selected.T.take(logged.at[3]).reshape(hit.shape)
        return levers
