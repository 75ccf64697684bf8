"""Planning: for every contact, the levers to pull (or none), with propensities — in bounded memory.

``plan`` runs in chunks of contacts and never materializes the ``(n, k)`` score matrix:

1. the holdout is drawn first, from its own random stream, before anything is scored;
2. pass one scores each chunk — for Thompson policies with an independent posterior draw *per
   contact* — keeps each channel's best action and net value ``(n, n_channels)``, and draws the
   exploration share of epsilon-greedy and uniform policies;
3. capped channels are priced on those per-channel values (:func:`fit_channel_prices`), and the
   levers are selected;
4. pass two computes propensities — exact for deterministic and epsilon policies, by Monte Carlo over
   ``draws`` replicates for Thompson policies, each again an independent draw per contact (the same
   selection, prices included, run per replicate) — and the expected value of each lever under the
   point estimate.

Per-contact draws matter: with one draw shared by a chunk of contacts, a fresh prior sends a whole
chunk to the same channel, exploration is correlated across contacts and logs from it make poor
off-policy estimates. The normals behind the draws come from streams seeded per block of
:data:`NOISE_BLOCK` contacts (and per replicate), so the plan is the same whatever ``chunk_size``.

A lever's propensity is the probability that the policy includes that action among the contact's
levers (for a one-lever budget, simply the probability of the action); for *no send*, the
probability of sending nothing. Treated contacts' propensities are conditional on not being held
out; a held-out contact's *no send* is logged with the holdout share as its propensity.

Channel caps bind the greedy (and Thompson) decisions exactly. Sends drawn by an exploration share
count against a cap first, but are not themselves capped: with epsilon-greedy, a cap smaller than
the exploration share's expected sends on that channel can be exceeded by exploration alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng
from tummler.decide._actions import ActionSet
from tummler.decide._eligibility import Eligibility
from tummler.decide._policies import FactorScores, Policy, Sampler
from tummler.decide._selection import (
    SelectionRules,
    best_per_channel,
    draw_holdout,
    fit_channel_prices,
    select_levers,
    slot_penalty,
)

__all__ = ["NOISE_BLOCK", "Plan", "plan"]

NO_SEND = -1
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
        Who may get which lever (:func:`~tummler.decide.compute_eligibility`).
    rules
        Cost, relevance threshold, lever budget, urgency and channel caps.
    rng
        The source of all randomness (a generator or a seed); same seed, same plan (whatever
        ``chunk_size``).
    strata, holdout_share
        The holdout: ``holdout_share`` of each stratum is held out before scoring.
    draws
        Monte Carlo replicates for the propensities of Thompson policies (each one an independent
        posterior draw per contact): a lever's propensity is the share of replicates in which the
        contact's selection includes it. An estimated
        propensity is clipped to at least ``1 / (2 · draws)`` so that it is never 0 for an action
        that was in fact taken (which would break inverse propensity weighting).
    chunk_size
        Contacts per chunk: bounds memory at a few ``chunk_size × n_channels × n_slots`` arrays.

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
    chunks = [(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)]

    # Pass one: each channel's best action and net value under the decision draw.
    net = np.empty((n, n_ch), np.float32)
    best = np.empty((n, n_ch), np.int32)
    noise_size = policy.noise_size(actions) if policy.stochastic else 0
    decision_noise = _BlockNoise(decision_rng, noise_size)
    for start, stop in chunks:
        scores = policy._sampler(x[start:stop], actions)(decision_noise.rows(0, start, stop))
        net[start:stop], best[start:stop] = best_per_channel(
            scores, eligibility.rows(start, stop), actions, cost
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

    # Pass two: propensities and expected values.
    propensity = np.full(action.shape, np.nan)
    expected = np.full(action.shape, np.nan, np.float32)
    present = action >= 0
    present[:, 0] = True
    mc_noise = _BlockNoise(mc_rng, noise_size)
    for start, stop in chunks:
        part = slice(start, stop)
        chosen = action[part]
        sampler = policy._sampler(x[part], actions)
        expected[part] = _expected_value(sampler(None), actions, chosen, cost)
        if noise_size > 0:
            greedy_p = _monte_carlo(
                sampler,
                mc_noise.chunk(start, stop),
                actions,
                eligibility.rows(start, stop),
                chosen,
                cost=cost,
                prices=prices,
                rules=rules,
                max_levers=max_levers,
                draws=draws,
            )
            greedy_p = np.maximum(greedy_p, 1.0 / (2 * draws))
        else:
            greedy_p = _deterministic(greedy[part], chosen)
        uniform = 1.0 / (n_eligible[part] + 1.0)
        propensity[part] = np.minimum((1 - eps) * greedy_p + eps * uniform[:, None], 1.0)
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


class _BlockNoise:
    """Standard normals for every contact and replicate, the same whatever the chunking.

    Rows ``[b · NOISE_BLOCK, (b + 1) · NOISE_BLOCK)`` of replicate ``r`` come from their own stream,
    seeded by ``(entropy, r, b)``. A chunk that covers part of a block draws the block's stream up
    to the chunk's last row and keeps its own rows, so chunk boundaries never shift the numbers.
    """

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.entropy = int(rng.integers(0, 2**63))
        self.size = size

    def rows(self, replicate: int, start: int, stop: int) -> npt.NDArray[np.float32] | None:
        """``(stop - start, size)`` normals of replicate ``replicate``; ``None`` when size is 0."""
        if self.size == 0:
            return None
        out = np.empty((stop - start, self.size), np.float32)
        for block in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
            first = block * NOISE_BLOCK
            lo, hi = max(start, first), min(stop, first + NOISE_BLOCK)
            seed = np.random.SeedSequence(self.entropy, spawn_key=(replicate, block))
            stream = np.random.Generator(np.random.SFC64(seed))  # fast; a stream per block
            drawn = stream.standard_normal((hi - first, self.size), dtype=np.float32)
            out[lo - start : hi - start] = drawn[lo - first :]
        return out

    def chunk(self, start: int, stop: int) -> Callable[[int], npt.NDArray[np.float32] | None]:
        """The normals of rows ``[start, stop)``, by replicate."""

        def rows(replicate: int) -> npt.NDArray[np.float32] | None:
            return self.rows(replicate, start, stop)

        return rows


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
    per_variant = actions.variant_available.sum(axis=1)
    ok = eligibility.slot_ok[r] & eligibility.channel_ok[r][:, :, None]  # (m, n_ch, n_sl)
    per_channel = ok.sum(axis=2) * per_variant[None, :]
    cum = np.cumsum(per_channel, axis=1)
    channel = (cum <= j[:, None]).sum(axis=1)
    within = j - np.where(
        channel > 0, np.take_along_axis(cum, np.maximum(channel - 1, 0)[:, None], axis=1)[:, 0], 0
    )
    nv = per_variant[channel]
    slot_rank, variant_rank = within // nv, within % nv
    slots_cum = np.cumsum(ok[np.arange(r.size), channel], axis=1)
    slot = (slots_cum <= slot_rank[:, None]).sum(axis=1)
    vars_cum = np.cumsum(actions.variant_available[channel], axis=1)
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
    chosen slot's score the largest?), never an argmax, and maxima over the slot axis vectorize
    well in slot-major layout: this is what keeps the many draws affordable.
    """
    m = chosen.shape[0]
    rows = np.arange(m)
    penalty = slot_penalty(eligibility)
    pen_t = np.ascontiguousarray(np.moveaxis(penalty.penalty, 2, 0))  # (n_slots, m, n_groups)
    a = np.maximum(chosen, 0)
    lever_channel, lever_slot = actions.channel[a], actions.slot[a]
    lever_variant, lever_group = actions.variant[a], penalty.group[actions.channel[a]]
    lever_pen = pen_t[lever_slot, rows[:, None], lever_group]  # (m, L)
    present = chosen >= 0
    none_chosen = ~present[:, 0]
    channel_ok = eligibility.channel_ok
    variant_pen = actions.variant_penalty
    hits = np.zeros(chosen.shape)
    for replicate in range(draws):
        scores = sampler(noise(replicate))
        slot_t = np.ascontiguousarray(scores.slot.T)  # (n_slots, m)
        slot_max = (slot_t[:, :, None] + pen_t).max(axis=0)  # (m, n_groups)
        variant = scores.variant + variant_pen[None]
        variant_max = variant[:, :, 0]
        for v in range(1, actions.n_variants):
            variant_max = np.maximum(variant_max, variant[:, :, v])
        per_channel_slot = slot_max[:, penalty.group]
        valid = channel_ok & np.isfinite(per_channel_slot)
        linear = scores.channel + np.where(valid, per_channel_slot, np.float32(0.0)) + variant_max
        net = np.asarray(scores.apply_link(linear), dtype=np.float32) - cost[None, :]
        net[~valid] = -np.inf
        levers = select_levers(
            _priced(net, prices), threshold=rules.threshold, max_levers=max_levers
        )
        selected = np.zeros(net.shape, bool)
        r, lever = np.nonzero(levers >= 0)
        selected[r, levers[r, lever]] = True
        slot_ok = (
            slot_t[lever_slot, rows[:, None]] + lever_pen >= slot_max[rows[:, None], lever_group]
        )
        variant_ok = (
            variant[rows[:, None], lever_channel, lever_variant]
            >= variant_max[rows[:, None], lever_channel]
        )
        hit = present & selected[rows[:, None], lever_channel] & slot_ok & variant_ok
        hit[:, 0] |= none_chosen & (levers[:, 0] < 0)
        hits += hit
    return np.asarray(hits / draws)
