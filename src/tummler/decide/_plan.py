"""Planning: for every contact, the levers to pull (or none), with propensities — in bounded memory.

``plan`` runs in chunks of contacts and never materializes the ``(n, k)`` score matrix:

1. the holdout is drawn first, from its own random stream, before anything is scored;
2. pass one scores each chunk — for Thompson policies with an independent posterior draw *per
   contact* — keeps each channel's best action and net value ``(n, n_channels)`` (and, for Thompson
   policies, that action's value under the point estimate), and draws the exploration share of
   epsilon-greedy and uniform policies;
3. capped channels are priced on those per-channel values (:func:`fit_channel_prices`), the levers
   are selected, and each lever's expected value (under the point estimate) is read off pass one;
4. pass two computes propensities — exact for deterministic and epsilon policies, by Monte Carlo over
   ``draws`` replicates for Thompson policies, each again an independent draw per contact (the same
   selection, prices included, run per replicate).

Held-out contacts and contacts with no eligible channel decide *no send* whatever the scores: they
are neither scored nor drawn for.

A per-contact variant mask (``Eligibility.variant_ok``: a variant whose template needs a field the
contact lacks) is one more additive penalty, on the variant scores, on every path — the fused and
the general draw, the Monte Carlo replicates, the uniform share and its exact propensities — so
every contact is planned in the same pass, caps priced over all alike. Without a mask (or with one
that removes nothing) those paths are exactly the unmasked ones.

Per-contact draws matter: with one draw shared by a chunk of contacts, a fresh prior sends a whole
chunk to the same channel, exploration is correlated across contacts and logs from it make poor
off-policy estimates. The normals behind the draws come from streams seeded per block of
:data:`NOISE_BLOCK` contacts (one stream for all of a block's replicates), so the plan is the same
whatever ``chunk_size``.

Speed. Scores are additive over the action factors, so a contact's draw is a few dozen numbers, not
one per action. Policies whose draw is an explicit Gaussian (:class:`FactorGaussian`: the logistic
and diagonal linear Thompson samplers, and the point estimate of epsilon-greedy) take a fused path:
arrays are part-major ``(parts, contacts)``, every step is a contiguous float32 operation over a
block of contacts that stays in cache, arg-maxima are running comparisons across contacts, and a
Monte Carlo replicate allocates nothing. The normals — most of a Thompson plan's work — are drawn a
block ahead on a second thread. Other policies go through their sampler (:meth:`Policy._sampler`).

A lever's propensity is the probability that the policy includes that action among the contact's
levers (for a one-lever budget, simply the probability of the action); for *no send*, the
probability of sending nothing. Treated contacts' propensities are conditional on not being held
out; a held-out contact's *no send* is logged with the holdout share as its propensity.

Channel caps bind the greedy (and Thompson) decisions exactly. Sends drawn by an exploration share
count against a cap first, but are not themselves capped: with epsilon-greedy, a cap smaller than
the exploration share's expected sends on that channel can be exceeded by exploration alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng
from tummler.decide._actions import ActionSet
from tummler.decide._eligibility import Eligibility
from tummler.decide._policies import FactorGaussian, FactorScores, Policy, Sampler
from tummler.decide._selection import (
    SelectionRules,
    SlotPenalty,
    best_per_channel,
    draw_holdout,
    fit_channel_prices,
    select_levers,
    slot_penalty,
)

__all__ = ["NOISE_BLOCK", "Plan", "plan"]

NO_SEND = -1
#: Multiply-adds below which OpenBLAS runs a matrix product on the calling thread.
_SINGLE_THREADED = 200_000
#: Contacts per noise stream: every block of this many contacts draws its posterior noise from its
#: own stream, seeded by (plan seed, purpose, block), whatever the chunking.
NOISE_BLOCK = 4096


@dataclass(frozen=True, eq=False)
class Plan:
    """The decisions for one campaign and audience, as arrays over contacts.

    Attributes
    ----------
    action
        ``(n, max_levers)`` the action of each lever, best first; ``-1``: no lever. A row of ``-1``
        is a *no send* decision (logged as one decision with ``channel = None``).
    propensity
        ``(n, max_levers)`` the propensity of each lever; column 0 of a *no send* row holds the
        propensity of *no send*; ``nan`` where there is no lever.
    expected_value
        ``(n, max_levers)`` expected reward minus channel cost under the point estimate; 0 for
        *no send*; ``nan`` where there is no lever.
    holdout
        ``(n,)`` the contact is in the control group (its decision is *no send*).
    explored
        ``(n,)`` the decision was drawn from the uniform exploration share.
    reasons
        ``(n, n_channels)`` :class:`~tummler.decide.Reason` bits of the rules that removed levers.
    channel_price
        ``(n_channels,)`` the Lagrange multipliers that met the channel caps (0 when uncapped).
    policy_kind, policy_version
        The policy that decided.
    draws
        The posterior draws behind Monte Carlo propensities (0 when exact).
    """

    action: npt.NDArray[np.int64]
    propensity: npt.NDArray[np.float64]
    expected_value: npt.NDArray[np.float32]
    holdout: npt.NDArray[np.bool_]
    explored: npt.NDArray[np.bool_]
    reasons: npt.NDArray[np.uint8]
    channel_price: npt.NDArray[np.float64]
    policy_kind: str
    policy_version: int
    draws: int

    @property
    def n(self) -> int:
        return int(self.action.shape[0])

    @property
    def n_levers(self) -> npt.NDArray[np.int64]:
        """``(n,)`` how many levers each contact gets (0: no send)."""
        return np.asarray((self.action >= 0).sum(axis=1), dtype=np.int64)

    def sends_per_channel(self, actions: ActionSet) -> npt.NDArray[np.int64]:
        """``(n_channels,)`` the number of sends on each channel."""
        chosen = self.action[self.action >= 0]
        return np.bincount(actions.channel[chosen], minlength=actions.n_channels).astype(np.int64)

    def sends_per_slot(self, actions: ActionSet) -> npt.NDArray[np.int64]:
        """``(n_slots,)`` the number of sends in each slot."""
        chosen = self.action[self.action >= 0]
        return np.bincount(actions.slot[chosen], minlength=actions.n_slots).astype(np.int64)


def plan(
    x: npt.ArrayLike,
    actions: ActionSet,
    policy: Policy,
    eligibility: Eligibility,
    rules: SelectionRules,
    *,
    rng: np.random.Generator | int | None,
    strata: npt.ArrayLike | None = None,
    holdout_share: float = 0.0,
    draws: int = 32,
    chunk_size: int = 32_768,
) -> Plan:
    """Decide every contact's levers — channel, slot, variant — or none, with propensities.

    Parameters
    ----------
    x
        ``(n, d_x)`` context features (float32 is used as is; anything else is converted).
    actions
        The campaign's action set.
    policy
        Any registered policy.
    eligibility
        Who may get which lever (:func:`~tummler.decide.compute_eligibility`), per contact down to
        the variant when it has a ``variant_ok`` mask: a withheld variant is never a contact's
        lever, in the decision, the exploration share or the propensities, and a channel none of
        whose variants a contact may get is not eligible for it.
    rules
        Cost, relevance threshold, lever budget, urgency and channel caps.
    rng
        The source of all randomness (a generator or a seed); same seed, same plan (whatever
        ``chunk_size``).
    strata, holdout_share
        The holdout: ``holdout_share`` of each stratum is held out before scoring.
    draws
        Monte Carlo replicates for the propensities of Thompson policies (each one an independent
        posterior draw per contact, independent of the decision's draw): a lever's propensity is
        the share of replicates in which the contact's selection includes it. The decisions do not
        depend on ``draws``. An estimated
        propensity is clipped to at least ``1 / (2 · draws)`` so that it is never 0 for an action
        that was in fact taken (which would break inverse propensity weighting).
    chunk_size
        Contacts per chunk: bounds memory at a few ``chunk_size × n_channels × n_slots`` arrays.
        For Thompson policies a chunk of at least :data:`NOISE_BLOCK` contacts is rounded down to
        whole noise blocks; the plan is the same whatever the chunk size.

    Returns
    -------
    Plan
        The decisions.
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if x.ndim != 2:
        raise PolicyError(f"x must be a 2-D array (contacts × features), got shape {x.shape}")
    n = x.shape[0]
    if eligibility.n != n or eligibility.channel_ok.shape[1] != actions.n_channels:
        raise PolicyError(
            f"eligibility is for {eligibility.n} contacts and {eligibility.channel_ok.shape[1]} "
            f"channels; x has {n} rows and actions {actions.n_channels} channels"
        )
    if eligibility.slot_ok.shape[1:] != (actions.n_channels, actions.n_slots):
        raise PolicyError(
            f"eligibility.slot_ok must have shape (n, {actions.n_channels}, {actions.n_slots})"
        )
    # A variant mask is checked against the action set, a channel none of whose variants the
    # contact may get is folded into channel_ok, and a mask that removes nothing is dropped.
    eligibility = eligibility.resolve(actions)
    if draws < 1:
        raise PolicyError(f"draws must be at least 1, got {draws}")
    if chunk_size < 1:
        raise PolicyError(f"chunk_size must be at least 1, got {chunk_size}")
    policy._check_actions(actions)
    if x.shape[1] != policy.n_context_features:
        raise PolicyError(
            f"x must have {policy.n_context_features} columns for this policy, got {x.shape[1]}"
        )
    if not np.isfinite(x).all():
        raise PolicyError("x has NaN or infinite values; impute them in the featurizer")
    root = make_rng(rng)
    holdout_rng, explore_rng, decision_rng, mc_rng = root.spawn(4)
    holdout = draw_holdout(strata, n, holdout_share, holdout_rng)

    n_ch = actions.n_channels
    cost = rules.channel_cost(n_ch)
    max_levers = rules.max_levers(n_ch)
    eps = policy.epsilon
    noise_size = policy.noise_size(actions) if policy.stochastic else 0
    # Held-out contacts and those without an eligible channel decide *no send* whatever the
    # scores: they are neither scored nor drawn for.
    active = ~holdout & eligibility.channel_ok.any(axis=1)
    pieces = _pieces(n, chunk_size, aligned=noise_size > 0)

    # Pass one: each channel's best action and net value under the decision draw, and (for
    # Thompson policies) that action's value under the point estimate, for expected values.
    net = np.full((n, n_ch), -np.inf, np.float32)
    best = np.zeros((n, n_ch), np.int32)
    point_net = net if noise_size == 0 else np.full((n, n_ch), -np.inf, np.float32)
    with _BlockNoise(decision_rng, noise_size, 1, active) as decision_noise:
        for start, stop in pieces:
            part = _Part.of(x, eligibility, active, start, stop)
            if part is None:
                continue
            gaussian = policy._gaussian(part.x, actions)
            if gaussian is not None:  # the fused, part-major path, block by block (in cache)
                m = gaussian.mean.shape[1]
                blocks: list[tuple[int, npt.NDArray[np.float32] | None]] = (
                    [(first, block[0]) for first, block in decision_noise.blocks(start, stop)]
                    if noise_size > 0
                    else [(first, None) for first in range(0, m, NOISE_BLOCK)]
                )
                for first, z in blocks:
                    block = slice(
                        first, min(m, first + NOISE_BLOCK) if z is None else first + z.shape[1]
                    )
                    parts = (
                        gaussian.mean[:, block] if z is None else _PartDraw(gaussian, block).draw(z)
                    )
                    block_net, block_best = _best_per_channel_t(
                        parts,
                        gaussian.link,
                        slot_penalty(part.eligibility.rows(block.start, block.stop)),
                        part.eligibility.rows(block.start, block.stop),
                        actions,
                        cost,
                    )
                    where = _subset(part.index, block)
                    net[where], best[where] = block_net, block_best
                    if z is not None:
                        point_net[where] = _point_values_t(
                            gaussian, block, block_best, block_net, actions, cost
                        )
                continue
            noise = decision_noise.active_rows(start, stop)
            sampler = policy._sampler(part.x, actions)
            drawn = sampler(None if noise is None else noise[0].T)
            part_net, part_best = best_per_channel(drawn, part.eligibility, actions, cost)
            net[part.index], best[part.index] = part_net, part_best
            if noise is not None:
                point_net[part.index] = _point_values(
                    sampler(None), part_best, part_net, actions, cost
                )

    # Only the uniform share needs the count of eligible actions (exact propensities).
    n_eligible = eligibility.n_eligible(actions) if eps > 0 else np.zeros(n, np.int64)
    explored = np.zeros(n, bool)
    explore_action = np.full(n, NO_SEND, np.int64)
    if eps > 0:
        explored = (explore_rng.random(n) < eps) & ~holdout
        rows = np.flatnonzero(explored)
        explore_action[rows] = _uniform_actions(
            eligibility, actions, rows, n_eligible[rows], explore_rng
        )

    caps = rules.caps(n_ch)
    prices = np.zeros(n_ch)
    if caps is not None:
        greedy_rows = ~holdout & ~explored
        used = np.bincount(actions.channel[explore_action[explore_action >= 0]], minlength=n_ch)
        prices = fit_channel_prices(
            net[greedy_rows],
            np.maximum(caps - used, 0.0),
            threshold=rules.threshold,
            max_levers=max_levers,
        )
    greedy_channels = select_levers(
        _priced(net, prices), threshold=rules.threshold, max_levers=max_levers
    )
    greedy = np.where(
        greedy_channels >= 0,
        np.take_along_axis(best, np.maximum(greedy_channels, 0), axis=1),
        NO_SEND,
    ).astype(np.int64)

    action = greedy.copy()
    action[explored] = NO_SEND
    action[explored, 0] = explore_action[explored]
    action[holdout] = NO_SEND
    present = action >= 0
    present[:, 0] = True

    # Expected values: a greedy lever is its channel's best action, valued in pass one; an
    # explored one is scored here (a share epsilon of the contacts).
    lever_channel = actions.channel[np.maximum(action, 0)]
    expected = np.take_along_axis(point_net, lever_channel, axis=1)
    expected[action < 0] = 0.0
    uniform_rows = np.flatnonzero(explore_action >= 0)
    for first in range(0, uniform_rows.size, chunk_size):
        rows = uniform_rows[first : first + chunk_size]
        point = policy._sampler(x[rows], actions)(None)
        expected[rows, :1] = _expected_value(point, actions, explore_action[rows, None], cost)

    # Pass two: propensities.
    if noise_size == 0:
        greedy_p = _deterministic(greedy, action)
    else:
        greedy_p = np.ones(action.shape)
        with _BlockNoise(mc_rng, noise_size, draws, active) as mc_noise:
            for start, stop in pieces:
                part = _Part.of(x, eligibility, active, start, stop)
                if part is None:
                    continue
                greedy_p[part.index] = _shares(
                    policy,
                    part,
                    actions,
                    mc_noise.blocks(start, stop),
                    action[part.index],
                    cost=cost,
                    prices=prices,
                    rules=rules,
                    max_levers=max_levers,
                    draws=draws,
                )
        np.maximum(greedy_p, 1.0 / (2 * draws), out=greedy_p)
    if eps > 0:
        uniform = 1.0 / (n_eligible + 1.0)
        propensity = np.minimum((1 - eps) * greedy_p + eps * uniform[:, None], 1.0)
    else:
        propensity = np.minimum(greedy_p, 1.0)
    propensity[~present] = np.nan
    expected[~present] = np.nan
    propensity[holdout, 0] = holdout_share
    expected[holdout, 0] = 0.0
    return Plan(
        action=action,
        propensity=propensity,
        expected_value=expected,
        holdout=holdout,
        explored=explored,
        reasons=eligibility.reasons.copy(),
        channel_price=prices,
        policy_kind=policy.kind,
        policy_version=policy.version,
        draws=draws if policy.stochastic else 0,
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


def _subset(index: slice | npt.NDArray[np.intp], rows: slice) -> slice | npt.NDArray[np.intp]:
    """Rows ``rows`` of a piece whose rows are ``index``."""
    if isinstance(index, slice):
        return slice(index.start + rows.start, index.start + rows.stop)
    return index[rows]


def _pieces(n: int, chunk_size: int, *, aligned: bool) -> list[tuple[int, int]]:
    """``[start, stop)`` pieces of at most ``chunk_size`` contacts; ``aligned``: a piece is either
    whole noise blocks or part of one, so that every piece's draws are the same whatever the
    chunking."""
    if not aligned or chunk_size >= NOISE_BLOCK:
        step = chunk_size if not aligned else chunk_size // NOISE_BLOCK * NOISE_BLOCK
        return [(s, min(n, s + step)) for s in range(0, n, step)]
    return [
        (s, min(n, s + chunk_size, block + NOISE_BLOCK))
        for block in range(0, n, NOISE_BLOCK)
        for s in range(block, min(n, block + NOISE_BLOCK), chunk_size)
    ]


@dataclass(frozen=True, eq=False)
class _Part:
    """The active contacts of one piece: their rows of ``x`` and of the eligibility."""

    index: slice | npt.NDArray[np.intp]
    x: npt.NDArray[np.float32]
    eligibility: Eligibility

    @staticmethod
    def of(
        x: npt.NDArray[np.float32],
        eligibility: Eligibility,
        active: npt.NDArray[np.bool_],
        start: int,
        stop: int,
    ) -> _Part | None:
        rows = np.flatnonzero(active[start:stop])
        if rows.size == 0:
            return None
        if rows.size == stop - start:
            return _Part(slice(start, stop), x[start:stop], eligibility.rows(start, stop))
        index = rows + start
        return _Part(index, x[index], eligibility.take(index))


class _BlockNoise:
    """Standard normals for every active contact and replicate, the same whatever the chunking.

    The active contacts of block ``b`` (rows ``[b · NOISE_BLOCK, (b + 1) · NOISE_BLOCK)``) draw all
    their replicates from one stream seeded by ``(entropy, b)``, as one ``(replicates, size,
    active)`` array (a contact's normals are a column: the planner works part by part over
    contiguous rows of contacts). A piece of a block takes its columns from it, so chunk
    boundaries never shift the numbers, and held-out or ineligible contacts cost no draws. The
    next block is drawn in a background thread while the current one is used (NumPy draws without
    holding the GIL): the draws are the bulk of a Thompson plan's work, and this puts them on a
    second core.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        size: int,
        replicates: int,
        active: npt.NDArray[np.bool_],
    ) -> None:
        self.entropy = int(rng.integers(0, 2**63))
        self.size = size
        self.replicates = replicates
        self.active = active
        self._pool = ThreadPoolExecutor(max_workers=1) if size > 0 else None
        self._pending: dict[int, Future[npt.NDArray[np.float32]]] = {}
        self._current: tuple[int, npt.NDArray[np.float32]] | None = None

    def __enter__(self) -> _BlockNoise:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _draw(self, block: int) -> npt.NDArray[np.float32]:
        first = block * NOISE_BLOCK
        count = int(np.count_nonzero(self.active[first : first + NOISE_BLOCK]))
        seed = np.random.SeedSequence(self.entropy, spawn_key=(block,))
        stream = np.random.Generator(np.random.SFC64(seed))  # fast; a stream per block
        return stream.standard_normal((self.replicates, self.size, count), dtype=np.float32)

    def _block(self, block: int) -> npt.NDArray[np.float32]:
        if self._current is not None and self._current[0] == block:
            return self._current[1]
        assert self._pool is not None
        future = self._pending.pop(block, None) or self._pool.submit(self._draw, block)
        for stale in [b for b in self._pending if b < block]:
            self._pending.pop(stale).cancel()
        following = block + 1
        if following * NOISE_BLOCK < self.active.size and following not in self._pending:
            self._pending[following] = self._pool.submit(self._draw, following)
        self._current = (block, future.result())
        return self._current[1]

    def blocks(self, start: int, stop: int) -> list[tuple[int, npt.NDArray[np.float32]]]:
        """Per block of ``[start, stop)``: the offset of its first active row among the piece's
        active rows, and its ``(replicates, size, active rows)`` normals.

        ``[start, stop)`` is whole blocks or lies within one block.
        """
        parts: list[tuple[int, npt.NDArray[np.float32]]] = []
        if self.size == 0:
            return parts
        offset = 0
        for block in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
            first = block * NOISE_BLOCK
            lo = int(np.count_nonzero(self.active[first : max(first, start)]))
            count = int(
                np.count_nonzero(self.active[max(first, start) : min(stop, first + NOISE_BLOCK)])
            )
            if count:
                parts.append((offset, self._block(block)[:, :, lo : lo + count]))
            offset += count
        return parts

    def active_rows(self, start: int, stop: int) -> npt.NDArray[np.float32] | None:
        """``(replicates, size, active rows in [start, stop))`` normals; ``None`` when size is 0."""
        if self.size == 0:
            return None
        parts = [noise for _, noise in self.blocks(start, stop)]
        if not parts:
            return np.zeros((self.replicates, self.size, 0), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def _priced(
    net: npt.NDArray[np.float32], prices: npt.NDArray[np.float64]
) -> npt.NDArray[np.floating]:
    """Net values minus channel prices, in float64 when any channel is priced: the prices sit one
    ulp above a float64 gap, and rounding them to float32 would let a tie through the cap."""
    if not prices.any():
        return net
    return net.astype(np.float64) - prices[None, :]


def _uniform_actions(
    eligibility: Eligibility,
    actions: ActionSet,
    rows: npt.NDArray[np.intp],
    n_eligible: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """One action drawn uniformly from each row's eligible actions and *no send* (``-1``)."""
    pick = np.floor(rng.random(rows.size) * (n_eligible + 1)).astype(np.int64)
    pick = np.minimum(pick, n_eligible)
    out = np.full(rows.size, NO_SEND, np.int64)
    send = pick < n_eligible
    if not send.any():
        return out
    r, j = rows[send], pick[send]
    m = r.size
    # (m, n_ch, n_var): the variants each contact may get
    variant_ok = (
        np.broadcast_to(actions.variant_available[None], (m, *actions.variant_available.shape))
        if eligibility.variant_ok is None
        else eligibility.variant_ok[r] & actions.variant_available[None]
    )
    per_variant = variant_ok.sum(axis=2)  # (m, n_ch)
    ok = eligibility.slot_ok[r] & eligibility.channel_ok[r][:, :, None]  # (m, n_ch, n_sl)
    per_channel = ok.sum(axis=2) * per_variant
    cum = np.cumsum(per_channel, axis=1)
    channel = (cum <= j[:, None]).sum(axis=1)
    within = j - np.where(
        channel > 0, np.take_along_axis(cum, np.maximum(channel - 1, 0)[:, None], axis=1)[:, 0], 0
    )
    each = np.arange(m)
    nv = per_variant[each, channel]
    slot_rank, variant_rank = within // nv, within % nv
    slots_cum = np.cumsum(ok[each, channel], axis=1)
    slot = (slots_cum <= slot_rank[:, None]).sum(axis=1)
    vars_cum = np.cumsum(variant_ok[each, channel], axis=1)
    variant = (vars_cum <= variant_rank[:, None]).sum(axis=1)
    out[send] = (channel * actions.n_slots + slot) * actions.n_variants + variant
    return out


def _expected_value(
    point: FactorScores,
    actions: ActionSet,
    chosen: npt.NDArray[np.int64],
    cost: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    a = np.maximum(chosen, 0)
    c, s, v = actions.channel[a], actions.slot[a], actions.variant[a]
    rows = np.arange(chosen.shape[0])[:, None]
    linear = point.channel[rows, c] + point.slot[rows, s] + point.variant[rows, c, v]
    value = np.asarray(point.apply_link(linear), dtype=np.float32) - cost[c]
    return np.where(chosen >= 0, value, np.float32(0.0)).astype(np.float32)


def _deterministic(
    greedy: npt.NDArray[np.int64], chosen: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """1 where the chosen lever is one the greedy selection makes (for *no send*: when it sends none)."""
    included = (chosen[:, :, None] == greedy[:, None, :]).any(axis=2) & (chosen >= 0)
    nothing = (greedy < 0).all(axis=1)
    included[:, 0] |= (chosen[:, 0] < 0) & nothing
    return np.asarray(included, dtype=np.float64)


def _point_values(
    point: FactorScores,
    best: npt.NDArray[np.int32],
    net: npt.NDArray[np.float32],
    actions: ActionSet,
    cost: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """``(m, n_channels)`` the point estimate's value of each channel's drawn best action, minus
    cost (``-inf`` where the channel has none): the expected value logged for the lever."""
    slot = np.take_along_axis(point.slot, actions.slot[best], axis=1)
    variant = np.take_along_axis(point.variant, actions.variant[best][:, :, None], axis=2)[:, :, 0]
    linear = point.channel + slot + variant
    value = np.asarray(point.apply_link(linear), dtype=np.float32) - cost[None, :]
    value[~np.isfinite(net)] = -np.inf
    return value


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
    rows = np.arange(m)[:, None]
    a = np.maximum(chosen, 0)
    lever_channel = actions.channel[a]
    lever_group = penalty.group[lever_channel]
    # Flat positions of the chosen lever in each per-replicate buffer.
    slot_at = ((rows * n_groups + lever_group) * n_sl + actions.slot[a]).ravel()
    group_at = (rows * n_groups + lever_group).ravel()
    channel_at = (rows * n_ch + lever_channel).ravel()
    variant_at = (channel_at * n_var + actions.variant[a].ravel()).ravel()
    present = chosen >= 0
    none_chosen = ~present[:, 0]
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
            _priced(net, prices), threshold=rules.threshold, max_levers=max_levers
        )
        # hit = chosen lever present, its channel selected, its slot and variant the best
        if max_levers == 1:
            np.equal(lever_channel, levers, out=hit)
        else:
            selected.fill(False)
            r, lever = np.nonzero(levers >= 0)
            selected[r, levers[r, lever]] = True
            hit[...] = selected.take(channel_at).reshape(m, n_lev)
        hit &= present
        _best_slot_and_variant(
            hit,
            scratch,
            (slot_values, slot_max, variant_values, variant_max),
            (slot_at, group_at, variant_at, channel_at),
        )
        hit[:, 0] |= none_chosen & (levers[:, 0] < 0)
        hits += hit
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
    m = draw.m
    n_lev = chosen.shape[1]
    n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
    slot0, variant0 = n_ch, n_ch + n_sl
    penalty = slot_penalty(eligibility)
    n_groups = penalty.allowed.shape[1]
    pen = penalty.penalty_t  # (n_groups, n_sl, m)
    a = np.maximum(chosen, 0)
    lever_channel, lever_group = actions.channel[a], penalty.group[actions.channel[a]]
    column = np.arange(m)[:, None]
    # Flat positions of the chosen lever in each buffer (all contact-minor).
    slot_at = ((lever_group * n_sl + actions.slot[a]) * m + column).ravel()
    group_at = (lever_group * m + column).ravel()
    channel_at = (lever_channel * m + column).ravel()
    variant_at = ((lever_channel * n_var + actions.variant[a]) * m + column).ravel()
    present = chosen >= 0
    none_chosen = ~present[:, 0]
    reachable = np.asarray(np.isfinite(pen).any(axis=1))[penalty.group]  # (n_ch, m)
    usable = eligibility.channel_ok.T & reachable
    if eligibility.variant_ok is not None:
        usable &= (eligibility.variant_ok & actions.variant_available[None]).any(axis=2).T
    # 0 where the channel may be used, -inf where it is out whatever the draw
    out_penalty = np.where(usable, np.float32(0), np.float32(-np.inf))
    # one lever and no channel prices: the selection is a running maximum over the channels
    single = max_levers == 1 and not prices.any()
    top = np.empty(m, np.float32)
    best = np.empty(m, np.int64)
    better = np.empty(m, bool)
    variant_pen = actions.variant_penalty.reshape(-1, 1)
    if eligibility.variant_penalty is not None:  # variants some contacts may not get
        variant_pen = np.ascontiguousarray(
            (eligibility.variant_penalty + actions.variant_penalty[None]).reshape(m, -1).T
        )
    padded = not np.isfinite(variant_pen).all()
    cost_t = cost[:, None]

    values = np.empty((n_groups, n_sl, m), np.float32)
    slot_max = np.empty((n_groups, m), np.float32)
    variant_max = np.empty((n_ch, m), np.float32)
    linear = np.empty((n_ch, m), np.float32)
    hit = np.empty((m, n_lev), bool)
    scratch = np.empty((m, n_lev), bool)
    selected = np.empty((m, n_ch), bool)
    hits = np.zeros((m, n_lev), np.int32)
    for replicate in range(draws):
        parts = draw.draw(noise(replicate))
        # best slot per group, best variant per channel, each channel's net value
        np.add(parts[None, slot0:variant0], pen, out=values)
        np.max(values, axis=1, out=slot_max)
        variants = parts[variant0:]
        if padded:
            variants += variant_pen
        by_channel = variants.reshape(n_ch, n_var, m)
        np.copyto(variant_max, by_channel[:, 0])
        for v in range(1, n_var):
            np.maximum(variant_max, by_channel[:, v], out=variant_max)
        for c in range(n_ch):
            np.add(parts[c], slot_max[penalty.group[c]], out=linear[c])
        linear += variant_max
        net = np.asarray(_link(gaussian.link, linear), dtype=np.float32)
        net -= cost_t
        net += out_penalty
        if single:
            # the best channel, first on ties, as select_levers picks it
            np.copyto(top, net[0])
            best.fill(0)
            for c in range(1, n_ch):
                np.greater(net[c], top, out=better)
                np.copyto(best, c, where=better)
                np.maximum(top, net[c], out=top)
            np.less(top, rules.threshold, out=better)
            np.copyto(best, -1, where=better)
            np.equal(lever_channel, best[:, None], out=hit)
            levers = best[:, None]
        elif max_levers == 1:
            levers = select_levers(
                _priced(net.T, prices), threshold=rules.threshold, max_levers=max_levers
            )
            np.equal(lever_channel, levers, out=hit)
        else:
            levers = select_levers(
                _priced(net.T, prices), threshold=rules.threshold, max_levers=max_levers
            )
            selected.fill(False)
            r, lever = np.nonzero(levers >= 0)
            selected[r, levers[r, lever]] = True
            hit[...] = selected.T.take(channel_at).reshape(m, n_lev)
        hit &= present
        _best_slot_and_variant(
            hit,
            scratch,
            (values, slot_max, variants, variant_max),
            (slot_at, group_at, variant_at, channel_at),
        )
        hit[:, 0] |= none_chosen & (levers[:, 0] < 0)
        hits += hit
    return np.asarray(hits / draws)


def _link(link: str, linear: npt.NDArray[np.float32]) -> npt.NDArray[np.floating[Any]]:
    """The expected reward of ``linear`` scores under ``link`` (in place for the logistic link)."""
    if link == "identity":
        return linear
    np.negative(linear, out=linear)
    with np.errstate(over="ignore"):  # exp(large) = inf gives the right limit, 0
        np.exp(linear, out=linear)
    linear += 1
    np.reciprocal(linear, out=linear)
    return linear


class _PartDraw:
    """Draws a :class:`FactorGaussian`'s factor scores for a block of contacts, part-major, into
    one buffer allocated once: the same sums as the policy's sampler (shared deviation, plus own
    deviation, plus mean), each part written in place."""

    def __init__(self, gaussian: FactorGaussian, rows: slice) -> None:
        layout = gaussian.layout
        self.mean = gaussian.mean[:, rows]
        self.own_sd = None if gaussian.own_sd is None else gaussian.own_sd[:, rows]
        self.shared_sd = None if gaussian.shared_sd is None else gaussian.shared_sd[:, rows]
        self.n_own = int(layout.own_parts.size)
        n_parts, self.m = self.mean.shape
        # The shared normals move only the parts their features touch (the slots, for tummler's
        # standard features): one small matmul over those parts, written in place.
        touched = np.flatnonzero((layout.shared_features != 0).any(axis=0))
        self.lo, self.hi = (int(touched[0]), int(touched[-1]) + 1) if touched.size else (0, 0)
        self.shared_t = np.ascontiguousarray(layout.shared_features[:, self.lo : self.hi].T)
        # Columns per matmul: small enough that OpenBLAS keeps it on this thread (it starts its
        # threads above 2¹⁸ multiply-adds, which for products this small costs more than it saves).
        self.columns = max(1, _SINGLE_THREADED // max(1, self.shared_t.size))
        shared = self.shared_sd is not None and self.hi > self.lo
        covered = np.zeros(n_parts, bool)
        covered[self.lo : self.hi] = shared
        # Own runs are split where the shared parts begin and end: inside, the own deviation is
        # added to the shared one; outside, written (saving a clear and a pass).
        self.runs: list[tuple[int, int, int, bool]] = []
        for first, end, column in layout.own_runs if self.own_sd is not None else ():
            cuts = sorted({first, end, *(c for c in (self.lo, self.hi) if first < c < end)})
            for lo, hi in itertools.pairwise(cuts):
                inside = shared and self.lo <= lo and hi <= self.hi
                self.runs.append((lo, hi, column + lo - first, inside))
            covered[first:end] = True
        self.untouched = ~covered
        self.parts = np.empty((n_parts, self.m), np.float32)
        self.shared = np.empty((layout.shared.size, self.m), np.float32)
        self.own = np.empty((self.n_own, self.m), np.float32)

    def draw(self, z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(n_parts, m)`` the draw for normals ``z`` (``(noise_size, m)``); reused buffer."""
        parts = self.parts
        if self.untouched.any():
            parts[self.untouched] = 0.0
        if self.shared_sd is not None and self.hi > self.lo:
            np.multiply(self.shared_sd, z[self.n_own :], out=self.shared)
            for lo in range(0, self.m, self.columns):
                hi = min(self.m, lo + self.columns)
                np.matmul(self.shared_t, self.shared[:, lo:hi], out=parts[self.lo : self.hi, lo:hi])
        if self.own_sd is not None:
            for first, end, column, add in self.runs:
                own_sd, normals = (
                    self.own_sd[column : column + end - first],
                    z[column : column + end - first],
                )
                if add:
                    own = self.own[column : column + end - first]
                    np.multiply(own_sd, normals, out=own)
                    parts[first:end] += own
                else:
                    np.multiply(own_sd, normals, out=parts[first:end])
        parts += self.mean
        return parts


def _best_per_channel_t(
    parts: npt.NDArray[np.float32],
    link: str,
    penalty: SlotPenalty,
    eligibility: Eligibility,
    actions: ActionSet,
    cost: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """:func:`~tummler.decide.best_per_channel` on part-major scores ``(n_parts, m)``.

    The arg-maxima over slots and variants are running comparisons across whole rows of
    contacts (first maximum on ties, as ``argmax``), not a reduction per contact.
    """
    n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
    m = parts.shape[1]
    pen = penalty.penalty_t
    values = parts[None, n_ch : n_ch + n_sl] + pen  # (n_groups, n_sl, m)
    slot_best = values[:, 0].copy()
    slot_arg = np.zeros(slot_best.shape, np.int32)
    better = np.empty(slot_best.shape, bool)
    for slot in range(1, n_sl):
        np.greater(values[:, slot], slot_best, out=better)
        np.copyto(slot_arg, slot, where=better)
        np.maximum(slot_best, values[:, slot], out=slot_best)
    variants = (parts[n_ch + n_sl :] + actions.variant_penalty.reshape(-1, 1)).reshape(
        n_ch, n_var, m
    )
    if eligibility.variant_penalty is not None:  # variants some contacts may not get
        variants += eligibility.variant_penalty.transpose(1, 2, 0)
    variant_best = variants[:, 0].copy()
    variant_arg = np.zeros(variant_best.shape, np.int32)
    better = np.empty(variant_best.shape, bool)
    for variant in range(1, n_var):
        np.greater(variants[:, variant], variant_best, out=better)
        np.copyto(variant_arg, variant, where=better)
        np.maximum(variant_best, variants[:, variant], out=variant_best)
    slot_of = slot_best[penalty.group]  # (n_ch, m)
    valid = np.isfinite(slot_of) & eligibility.channel_ok.T
    if eligibility.variant_ok is not None:
        valid &= np.isfinite(variant_best)
    linear = parts[:n_ch] + np.where(valid, slot_of, np.float32(0.0)) + variant_best
    net = np.asarray(_link(link, linear), dtype=np.float32) - cost[:, None]
    net[~valid] = -np.inf
    channels = np.arange(n_ch, dtype=np.int32)[:, None]
    action = (channels * n_sl + slot_arg[penalty.group]) * n_var + variant_arg
    return net.T, action.T


def _point_values_t(
    gaussian: FactorGaussian,
    rows: slice,
    best: npt.NDArray[np.int32],
    net: npt.NDArray[np.float32],
    actions: ActionSet,
    cost: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """:func:`_point_values` from a :class:`FactorGaussian`'s part-major mean."""
    mean = np.ascontiguousarray(gaussian.mean[:, rows])
    n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
    m = mean.shape[1]
    column = np.arange(m)[:, None]
    channel = np.arange(n_ch)[None, :]
    slot = mean.take((n_ch + actions.slot[best]) * m + column)
    variant = mean.take((n_ch + n_sl + channel * n_var + actions.variant[best]) * m + column)
    linear = mean[:n_ch].T + slot + variant
    value = np.asarray(_link(link=gaussian.link, linear=linear), dtype=np.float32) - cost[None, :]
    value[~np.isfinite(net)] = -np.inf
    return value
