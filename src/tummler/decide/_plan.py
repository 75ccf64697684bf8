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

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng
from tummler.decide._actions import ActionSet
from tummler.decide._chunks import NOISE_BLOCK, _BlockNoise, _Part, _pieces, _subset
from tummler.decide._eligibility import Eligibility
from tummler.decide._gaussian import FactorGaussian
from tummler.decide._part_major import _best_per_channel_t, _PartDraw, _point_values_t
from tummler.decide._policies import FactorScores, Policy
from tummler.decide._propensities import _deterministic, _shares
from tummler.decide._selection import (
    SelectionRules,
    best_per_channel,
    draw_holdout,
    fit_channel_prices,
    net_of_prices,
    select_levers,
    slot_penalty,
)

__all__ = ["NOISE_BLOCK", "Plan", "plan"]

NO_SEND = -1


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
    explore_share: float = 1.0,
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
    explore_share
        The most exploration the campaign may spend, as the share of (non-held-out) decisions
        that may explore: a Thompson policy draws from its posterior for each contact with this
        probability and decides on the posterior mean otherwise (its Monte Carlo propensities
        are those of the mixture); an epsilon policy explores ``min(epsilon, explore_share)``.
        1 (the default) leaves the policy as it is; 0 makes every decision greedy.
    chunk_size
        Contacts per chunk: bounds memory at a few ``chunk_size × n_channels × n_slots`` arrays.
        For Thompson policies a chunk of at least :data:`NOISE_BLOCK` contacts is rounded down to
        whole noise blocks; the plan is the same whatever the chunk size.

    Returns
    -------
    Plan
        The decisions.
    """
    x, eligibility = _checked(x, actions, policy, eligibility, draws=draws, chunk_size=chunk_size)
    if not 0.0 <= explore_share <= 1.0:
        raise PolicyError(f"explore_share must be between 0 and 1, got {explore_share}")
    holdout_rng, explore_rng, decision_rng, mc_rng = make_rng(rng).spawn(4)
    holdout = draw_holdout(strata, x.shape[0], holdout_share, holdout_rng)
    job = _Job.of(
        x, actions, policy, eligibility, rules, holdout, chunk_size=chunk_size, share=explore_share
    )
    decision = _decision_draw(job, decision_rng)
    exploration = _Exploration.draw(job, explore_rng)
    prices = _channel_prices(job, decision.net, exploration)
    greedy = _greedy_levers(job, decision, prices)
    action = exploration.applied_to(greedy, holdout)
    expected = _expected_values(job, action, decision.point_net, exploration, chunk_size)
    propensity = exploration.mixed(_greedy_propensities(job, greedy, action, prices, mc_rng, draws))
    _mark_unsent(action, propensity, expected, holdout, holdout_share)
    return Plan(
        action=action,
        propensity=propensity,
        expected_value=expected,
        holdout=holdout,
        explored=exploration.explored,
        reasons=eligibility.reasons.copy(),
        channel_price=prices,
        policy_kind=policy.kind,
        policy_version=policy.version,
        draws=draws if policy.stochastic else 0,
    )


def _checked(
    x: npt.ArrayLike,
    actions: ActionSet,
    policy: Policy,
    eligibility: Eligibility,
    *,
    draws: int,
    chunk_size: int,
) -> tuple[npt.NDArray[np.float32], Eligibility]:
    """``x`` as float32 and the eligibility resolved against the action set, once both are checked
    against each other, the policy and the options: errors that name the argument."""
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
    return x, eligibility


@dataclass(frozen=True, eq=False)
class _Job:
    """What every step of one plan shares: the checked inputs and what follows from them."""

    x: npt.NDArray[np.float32]
    actions: ActionSet
    policy: Policy
    eligibility: Eligibility
    rules: SelectionRules
    holdout: npt.NDArray[np.bool_]
    cost: npt.NDArray[np.float32]
    max_levers: int
    #: posterior normals per contact and draw (0: a deterministic policy)
    noise_size: int
    #: held-out contacts and those without an eligible channel decide *no send* whatever the
    #: scores: they are neither scored nor drawn for
    active: npt.NDArray[np.bool_]
    pieces: list[tuple[int, int]]
    #: the share of decisions that may explore (``plan``'s ``explore_share``)
    share: float

    @staticmethod
    def of(
        x: npt.NDArray[np.float32],
        actions: ActionSet,
        policy: Policy,
        eligibility: Eligibility,
        rules: SelectionRules,
        holdout: npt.NDArray[np.bool_],
        *,
        chunk_size: int,
        share: float = 1.0,
    ) -> _Job:
        n_ch = actions.n_channels
        noise_size = policy.noise_size(actions) if policy.stochastic else 0
        return _Job(
            x=x,
            actions=actions,
            policy=policy,
            eligibility=eligibility,
            rules=rules,
            holdout=holdout,
            cost=rules.channel_cost(n_ch),
            max_levers=rules.max_levers(n_ch),
            noise_size=noise_size,
            active=~holdout & eligibility.channel_ok.any(axis=1),
            pieces=_pieces(x.shape[0], chunk_size, aligned=noise_size > 0),
            share=share,
        )

    def parts(self) -> Iterator[tuple[int, int, _Part]]:
        """Each piece's bounds and active contacts, one at a time (pieces with none are skipped)."""
        for start, stop in self.pieces:
            part = _Part.of(self.x, self.eligibility, self.active, start, stop)
            if part is not None:
                yield start, stop, part


@dataclass(frozen=True, eq=False)
class _DecisionDraw:
    """Pass one: each channel's best action and net value under the decision draw ``(n,
    n_channels)``, and (for Thompson policies) that action's value under the point estimate, for
    expected values (``net`` itself for deterministic policies)."""

    net: npt.NDArray[np.float32]
    best: npt.NDArray[np.int32]
    point_net: npt.NDArray[np.float32]


def _decision_draw(job: _Job, rng: np.random.Generator) -> _DecisionDraw:
    """Score every active contact, piece by piece: the fused path for a :class:`FactorGaussian`,
    the policy's sampler otherwise."""
    n, n_ch = job.x.shape[0], job.actions.n_channels
    net = np.full((n, n_ch), -np.inf, np.float32)
    best = np.zeros((n, n_ch), np.int32)
    point_net = net if job.noise_size == 0 else np.full((n, n_ch), -np.inf, np.float32)
    drawn = _DecisionDraw(net, best, point_net)
    with _BlockNoise(rng, job.noise_size, 1, job.active, job.share) as noise:
        for start, stop, part in job.parts():
            gaussian = job.policy._gaussian(part.x, job.actions)
            if gaussian is not None:
                _draw_fused(job, part, gaussian, noise, (start, stop), drawn)
                continue
            normals = noise.active_rows(start, stop)
            sampler = job.policy._sampler(part.x, job.actions)
            scores = sampler(None if normals is None else normals[0].T)
            part_net, part_best = best_per_channel(scores, part.eligibility, job.actions, job.cost)
            net[part.index], best[part.index] = part_net, part_best
            if normals is not None:
                point_net[part.index] = _point_values(
                    sampler(None), part_best, part_net, job.actions, job.cost
                )
    return drawn


def _draw_fused(
    job: _Job,
    part: _Part,
    gaussian: FactorGaussian,
    noise: _BlockNoise,
    bounds: tuple[int, int],
    drawn: _DecisionDraw,
) -> None:
    """Pass one for one piece on the fused, part-major path, block by block (in cache)."""
    m = gaussian.mean.shape[1]
    blocks: list[tuple[int, npt.NDArray[np.float32] | None]] = (
        [(first, block[0]) for first, block in noise.blocks(*bounds)]
        if job.noise_size > 0
        else [(first, None) for first in range(0, m, NOISE_BLOCK)]
    )
    for first, z in blocks:
        block = slice(first, min(m, first + NOISE_BLOCK) if z is None else first + z.shape[1])
        parts = gaussian.mean[:, block] if z is None else _PartDraw(gaussian, block).draw(z)
        eligibility = part.eligibility.rows(block.start, block.stop)
        block_net, block_best = _best_per_channel_t(
            parts, gaussian.link, slot_penalty(eligibility), eligibility, job.actions, job.cost
        )
        where = _subset(part.index, block)
        drawn.net[where], drawn.best[where] = block_net, block_best
        if z is not None:
            drawn.point_net[where] = _point_values_t(
                gaussian, block, block_best, block_net, job.actions, job.cost
            )


@dataclass(frozen=True, eq=False)
class _Exploration:
    """The uniform exploration share of an epsilon policy: who explores and what they drew."""

    epsilon: float
    explored: npt.NDArray[np.bool_]
    #: ``(n,)`` the drawn action (``-1``: *no send*, or not explored)
    action: npt.NDArray[np.int64]
    #: ``(n,)`` eligible actions per contact, for exact propensities (zeros without exploration)
    n_eligible: npt.NDArray[np.int64]

    @staticmethod
    def draw(job: _Job, rng: np.random.Generator) -> _Exploration:
        n, eps = job.x.shape[0], min(job.policy.epsilon, job.share)
        explored = np.zeros(n, bool)
        action = np.full(n, NO_SEND, np.int64)
        if eps <= 0:
            return _Exploration(eps, explored, action, np.zeros(n, np.int64))
        n_eligible = job.eligibility.n_eligible(job.actions)
        explored = (rng.random(n) < eps) & ~job.holdout
        rows = np.flatnonzero(explored)
        action[rows] = _uniform_actions(job.eligibility, job.actions, rows, n_eligible[rows], rng)
        return _Exploration(eps, explored, action, n_eligible)

    def applied_to(
        self, greedy: npt.NDArray[np.int64], holdout: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.int64]:
        """The levers sent: the greedy ones, an explorer's drawn lever instead, none when held out."""
        action = greedy.copy()
        action[self.explored] = NO_SEND
        action[self.explored, 0] = self.action[self.explored]
        action[holdout] = NO_SEND
        return action

    def mixed(self, greedy_p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Each lever's propensity under the epsilon mixture of uniform and greedy choice."""
        if self.epsilon > 0:
            uniform = 1.0 / (self.n_eligible + 1.0)
            return np.minimum((1 - self.epsilon) * greedy_p + self.epsilon * uniform[:, None], 1.0)
        return np.minimum(greedy_p, 1.0)


def _mark_unsent(
    action: npt.NDArray[np.int64],
    propensity: npt.NDArray[np.float64],
    expected: npt.NDArray[np.float32],
    holdout: npt.NDArray[np.bool_],
    holdout_share: float,
) -> None:
    """Blank the lever positions nobody is sent (NaN); a held-out contact's first lever is logged
    with the holdout's share as propensity and a value of 0."""
    present = action >= 0
    present[:, 0] = True
    propensity[~present] = np.nan
    expected[~present] = np.nan
    propensity[holdout, 0] = holdout_share
    expected[holdout, 0] = 0.0


def _channel_prices(
    job: _Job, net: npt.NDArray[np.float32], exploration: _Exploration
) -> npt.NDArray[np.float64]:
    """The Lagrange multipliers that meet the channel caps on the greedy contacts (zeros when
    uncapped); explored sends count against a cap first."""
    n_ch = job.actions.n_channels
    caps = job.rules.caps(n_ch)
    if caps is None:
        return np.zeros(n_ch)
    greedy_rows = ~job.holdout & ~exploration.explored
    explored = exploration.action[exploration.action >= 0]
    used = np.bincount(job.actions.channel[explored], minlength=n_ch)
    return fit_channel_prices(
        net[greedy_rows],
        np.maximum(caps - used, 0.0),
        threshold=job.rules.threshold,
        max_levers=job.max_levers,
    )


def _greedy_levers(
    job: _Job, decision: _DecisionDraw, prices: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """``(n, max_levers)`` the levers the priced decision draw selects: each selected channel's
    best action, ``-1`` for none."""
    channels = select_levers(
        net_of_prices(decision.net, prices),
        threshold=job.rules.threshold,
        max_levers=job.max_levers,
    )
    return np.where(
        channels >= 0,
        np.take_along_axis(decision.best, np.maximum(channels, 0), axis=1),
        NO_SEND,
    ).astype(np.int64)


def _expected_values(
    job: _Job,
    action: npt.NDArray[np.int64],
    point_net: npt.NDArray[np.float32],
    exploration: _Exploration,
    chunk_size: int,
) -> npt.NDArray[np.float32]:
    """Each lever's expected value under the point estimate: a greedy lever is its channel's best
    action, valued in pass one; an explored one is scored here (a share epsilon of the contacts)."""
    lever_channel = job.actions.channel[np.maximum(action, 0)]
    expected = np.take_along_axis(point_net, lever_channel, axis=1)
    expected[action < 0] = 0.0
    uniform_rows = np.flatnonzero(exploration.action >= 0)
    for first in range(0, uniform_rows.size, chunk_size):
        rows = uniform_rows[first : first + chunk_size]
        point = job.policy._sampler(job.x[rows], job.actions)(None)
        expected[rows, :1] = _expected_value(
            point, job.actions, exploration.action[rows, None], job.cost
        )
    return expected


def _greedy_propensities(
    job: _Job,
    greedy: npt.NDArray[np.int64],
    action: npt.NDArray[np.int64],
    prices: npt.NDArray[np.float64],
    rng: np.random.Generator,
    draws: int,
) -> npt.NDArray[np.float64]:
    """Pass two: the probability that the greedy (or Thompson) selection includes each lever —
    exact for a deterministic policy, the clipped Monte Carlo share of ``draws`` otherwise."""
    if job.noise_size == 0:
        return _deterministic(greedy, action)
    greedy_p = np.ones(action.shape)
    with _BlockNoise(rng, job.noise_size, draws, job.active, job.share) as noise:
        for start, stop, part in job.parts():
            greedy_p[part.index] = _shares(
                job.policy,
                part,
                job.actions,
                noise.blocks(start, stop),
                action[part.index],
                cost=job.cost,
                prices=prices,
                rules=job.rules,
                max_levers=job.max_levers,
                draws=draws,
            )
    np.maximum(greedy_p, 1.0 / (2 * draws), out=greedy_p)
    return greedy_p


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
