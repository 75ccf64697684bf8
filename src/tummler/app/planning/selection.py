"""Scoring and deciding: the engine's plan over the whole audience, with per-contact variants and
channel spend caps, and each decision's runner-up and largest feature contributions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.app.planning.caps import _channels_of
from tummler.app.planning.contexts import _Audience
from tummler.app.planning.setup import _Setup
from tummler.core.randomness import make_rng
from tummler.decide import ContextFeaturizer, Eligibility, Plan, Policy, SelectionRules, plan


@dataclass(frozen=True, eq=False)
class _Decided:
    """The plan, with what the app adds to it: per contact, the variants each may get and the
    channels it lost to a spend cap."""

    result: Plan
    variant_ok: npt.NDArray[np.bool_]  # (n, n_ch, n_var)
    lacking: npt.NDArray[np.bool_]  # (n, n_ch, n_var) a variant the contact may not get: a field
    blocked: npt.NDArray[np.bool_]  # (n, n_ch) the channel was reachable but no variant renders
    lost: npt.NDArray[np.bool_]  # (n, n_ch) the contact would have got it without the spend caps
    explore_share: float = 1.0  # the share of decisions that could explore

    @property
    def rows(self) -> int:
        """Decision rows to write: one per lever, one per contact without any."""
        return int(np.maximum(self.result.n_levers, 1).sum())


def _decide(
    audience: _Audience,
    setup: _Setup,
    policy: Policy,
    variant_ok: npt.NDArray[np.bool_],
    rules: SelectionRules,
    *,
    seed: int,
    draws: int,
    explore_share: float = 1.0,
) -> _Decided:
    """Decide the levers of every contact of the ``audience``, with per-contact variants and
    channel spend caps.

    A variant that some contacts cannot get (their template needs a field they lack) is part of
    the eligibility (``variant_ok``): the engine never picks it for them, a channel none of whose
    variants renders is not eligible for them, and everyone is planned in one pass — the holdout
    drawn and the caps priced over all contacts alike. When a cap binds, the same plan without
    caps (same seed, so the same holdout and posterior draws) says which contacts lost a channel
    to it. ``explore_share`` is the share of decisions that may explore (the strategy's
    ``exploration``, at the policy's version).
    """
    x, eligibility, stage = audience.x, audience.eligibility, audience.stage
    actions = setup.actions
    available = actions.variant_available[None]
    variant_ok = variant_ok & available
    reachable = eligibility.channel_ok & eligibility.slot_ok.any(axis=2)
    lacking = available & ~variant_ok & reachable[:, :, None]
    blocked = reachable & ~variant_ok.any(axis=2)
    masked = replace(eligibility, variant_ok=variant_ok)
    options: dict[str, Any] = {
        "strata": stage,
        "holdout_share": setup.holdout_share,
        "explore_share": explore_share,
    }
    result = plan(x, actions, policy, masked, rules, rng=make_rng(seed), draws=draws, **options)
    lost = np.zeros(eligibility.channel_ok.shape, bool)
    prices = result.channel_price
    if prices.any():
        free = plan(
            x,
            actions,
            policy,
            masked,
            replace(rules, channel_caps=None),
            rng=make_rng(seed),
            draws=1,  # only the decisions are compared; they do not depend on draws
            **options,
        )
        lost = (
            _channels_of(free.action, actions)
            & ~_channels_of(result.action, actions)
            & (prices > 0)[None, :]
        )
    return _Decided(result, variant_ok, lacking, blocked, lost, explore_share)


def _explanations(
    x: npt.NDArray[np.float32],
    result: Plan,
    setup: _Setup,
    policy: Policy,
    eligibility: Eligibility,
    names: npt.NDArray[np.object_],
    weights: npt.NDArray[np.float32] | None,
    *,
    start: int,
    stop: int,
    top: int = 3,
    variant_ok: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.int64], list[list[list[Any]]]]:
    """For contacts ``start:stop``, the runner-up action (``-1``: *no send*) and the largest feature
    contributions to the first lever's score against the runner-up's, vectorized. ``variant_ok``
    (``(stop - start, n_channels, n_variants)``) leaves out the variants a contact may not get."""
    actions = setup.actions
    cost = setup.selection_rules.channel_cost(actions.n_channels)[actions.channel]
    contributions: list[list[list[Any]]] = [[] for _ in range(stop - start)]
    rows = np.arange(stop - start)
    value = policy.scores(x[start:stop], actions) - cost[None, :]
    mask = eligibility.rows(start, stop).mask(actions) & actions.available[None, :]
    if variant_ok is not None:
        mask &= variant_ok[:, actions.channel, actions.variant]
    value = np.where(mask, value, -np.inf)
    first = result.action[start:stop, 0]
    value[rows[first >= 0], first[first >= 0]] = -np.inf
    # the runner-up on another channel says more ("e-mail over SMS because..."); the same
    # channel's next slot or variant only when no other channel is eligible
    other = np.where(
        (first >= 0)[:, None]
        & (actions.channel[None, :] == actions.channel[np.maximum(first, 0)][:, None]),
        -np.inf,
        value,
    )
    best_other = other.argmax(axis=1)
    use_other = np.isfinite(other[rows, best_other])
    best = np.where(use_other, best_other, value.argmax(axis=1))
    found = np.isfinite(value[rows, best])
    runner = np.where(found, best, -1).astype(np.int64)
    if weights is None:
        return runner, contributions
    wt = weights.T  # (k, d_x)
    column = np.where((first >= 0)[:, None], wt[np.maximum(first, 0)], 0.0)
    column = column - np.where(found[:, None], wt[best], 0.0)
    delta = x[start:stop] * column
    order = np.argsort(-np.abs(delta), axis=1, kind="stable")[:, :top]
    picked = np.take_along_axis(delta, order, axis=1)
    for i in np.flatnonzero((picked != 0).any(axis=1)):
        contributions[i] = [
            [str(names[j]), round(float(v), 6)]
            for j, v in zip(order[i], picked[i], strict=True)
            if v != 0
        ]
    return runner, contributions


@dataclass(frozen=True, eq=False)
class _Planned:
    """A decided plan and what it was decided from: all that writing and reporting it need."""

    setup: _Setup
    audience: _Audience
    decided: _Decided
    policy: Policy
    featurizer: ContextFeaturizer
