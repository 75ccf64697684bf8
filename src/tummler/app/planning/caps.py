"""Spend caps: a campaign's ``spend_caps`` and a channel's shared ``spend_cap`` as a cap on the
channel's sends in one plan, and what each cap cost (:class:`ChannelBudget`).

A capped channel is priced (:func:`tummler.decide.fit_channel_prices`): the capped sends go to the
contacts for whom it is worth most over their next-best option. The plan's summary gives each capped
channel's spend and shadow price; the decision of a contact who would have got the channel without
the cap says so, and ``explain`` with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, or_, select

from tummler.app.planning.contexts import _FAILED_DELIVERY
from tummler.app.planning.setup import _Setup
from tummler.decide import ActionSet, Plan, SelectionRules
from tummler.store import models
from tummler.strategy import Channel


@dataclass(frozen=True)
class ChannelBudget:
    """A channel with a spend cap in one plan: what it could spend, what it spent, what the cap cost.

    Attributes
    ----------
    channel
        The channel's id.
    limit
        The most this plan could spend on it: the tighter of the campaign's ``spend_caps`` (less
        what the campaign's kept, already delivered decisions spent) and the strategy's shared
        ``spend_cap`` (less what every campaign has committed in its window).
    committed
        The spend already committed that counted against the tighter cap.
    sends_allowed
        ``limit`` divided by the channel's ``cost_per_send``, rounded down.
    sends, spend
        What the plan sends on the channel, and what that costs.
    shadow_price
        The channel's Lagrange multiplier: how much more than its cost a send had to be worth
        (over the contact's next-best option) to get one of the capped sends; 0 when the cap did
        not bind.
    dropped, moved
        Contacts who would have got this channel without the cap and got no send / another
        channel instead.
    """

    channel: str
    limit: float
    committed: float
    sends_allowed: int
    sends: int
    spend: float
    shadow_price: float
    dropped: int
    moved: int


@dataclass(frozen=True, eq=False)
class _Caps:
    """The spend caps of one plan, per channel of the action set (``inf``: uncapped)."""

    limit: npt.NDArray[np.float64]  # money this plan may spend
    committed: npt.NDArray[np.float64]  # spend already committed against the tighter cap
    sends: npt.NDArray[np.float64]  # limit // cost_per_send

    @property
    def capped(self) -> bool:
        """Whether any channel has a cap."""
        return bool(np.isfinite(self.sends).any())

    def applied_to(self, rules: SelectionRules) -> SelectionRules:
        """``rules`` with these caps on the channels' sends (unchanged when nothing is capped)."""
        return replace(rules, channel_caps=self.sends) if self.capped else rules


def _spend_caps(connection: Connection, setup: _Setup, *, campaign_id: int | None) -> _Caps:
    """Each channel's spend limit for this plan: the tighter of the campaign's ``spend_caps`` and
    the strategy's shared ``spend_cap``, each less the spend already committed against it.

    Committed against the campaign's cap: its own decisions that already have a delivery (they are
    kept when re-planning). Against the shared cap: every campaign's sends on the channel (planned
    or made, not held out, not failed) from one window before the horizon's start to its end — a
    window of the cap ending anywhere in the horizon holds no more than that, so the plan keeps
    every such window under the cap. This campaign's decisions without a delivery are not counted:
    this plan replaces them. Spend is sends × today's ``cost_per_send``.
    """
    n_ch = len(setup.channels)
    limit = np.full(n_ch, np.inf)
    committed = np.zeros(n_ch)
    sends = np.full(n_ch, np.inf)
    for c, channel in enumerate(setup.channels):
        cost = channel.cost_per_send
        if cost <= 0:
            continue  # a free channel: a spend cap caps nothing (the strategy check warns)
        options: list[tuple[float, float]] = []  # (limit, committed)
        campaign_cap = setup.campaign.spend_caps.get(channel.id)
        if campaign_cap is not None:
            kept = _kept_sends(connection, channel, campaign_id=campaign_id)
            options.append((campaign_cap - kept * cost, kept * cost))
        if channel.spend_cap is not None:
            sends_in_window = _shared_sends(
                connection, setup, channel.id, channel.spend_cap.window, campaign_id=campaign_id
            )
            spent = sends_in_window * cost
            options.append((channel.spend_cap.amount - spent, spent))
        if options:
            left, already = min(options)
            limit[c] = max(left, 0.0)
            committed[c] = already
            # a small tolerance, so that 0.15 / 0.05 is three sends, not 2.999...
            sends[c] = math.floor(limit[c] / cost + 1e-9)
    return _Caps(limit=limit, committed=committed, sends=sends)


def _delivered() -> Any:
    return select(models.Delivery.decision_id).scalar_subquery()


def _kept_sends(connection: Connection, channel: Channel, *, campaign_id: int | None) -> int:
    """The campaign's sends on ``channel`` that already have a delivery (re-planning keeps them)."""
    if campaign_id is None:
        return 0
    return int(
        connection.scalar(
            select(func.count())
            .select_from(models.Decision)
            .where(
                models.Decision.campaign_id == campaign_id,
                models.Decision.channel == channel.id,
                models.Decision.holdout.is_(False),
                models.Decision.id.in_(_delivered()),
            )
        )
        or 0
    )


def _shared_sends(
    connection: Connection,
    setup: _Setup,
    channel_id: str,
    window: timedelta,
    *,
    campaign_id: int | None,
) -> int:
    """Every campaign's sends on the channel that count against its shared spend cap (of
    ``window``)."""
    failed = (
        select(models.Delivery.decision_id)
        .where(models.Delivery.status.in_(_FAILED_DELIVERY))
        .scalar_subquery()
    )
    query = (
        select(func.count())
        .select_from(models.Decision)
        .where(
            models.Decision.channel == channel_id,
            models.Decision.holdout.is_(False),
            models.Decision.send_at >= setup.start - window,
            models.Decision.send_at < setup.end,
            models.Decision.id.not_in(failed),
        )
    )
    if campaign_id is not None:
        query = query.where(
            or_(
                models.Decision.campaign_id != campaign_id,
                models.Decision.id.in_(_delivered()),
            )
        )
    return int(connection.scalar(query) or 0)


def _budgets(
    setup: _Setup, caps: _Caps | None, result: Plan, lost: npt.NDArray[np.bool_]
) -> tuple[ChannelBudget, ...]:
    if caps is None:
        return ()
    actions = setup.actions
    per_channel = result.sends_per_channel(actions)
    has = _channels_of(result.action, actions)
    nothing = ~has.any(axis=1)
    budgets = []
    for c, channel in enumerate(setup.channels):
        if not np.isfinite(caps.sends[c]):
            continue
        budgets.append(
            ChannelBudget(
                channel=channel.id,
                limit=float(caps.limit[c]),
                committed=float(caps.committed[c]),
                sends_allowed=int(caps.sends[c]),
                sends=int(per_channel[c]),
                spend=float(per_channel[c] * channel.cost_per_send),
                shadow_price=float(result.channel_price[c]),
                dropped=int((lost[:, c] & nothing).sum()),
                moved=int((lost[:, c] & ~nothing).sum()),
            )
        )
    return tuple(budgets)


def _channels_of(action: npt.NDArray[np.int64], actions: ActionSet) -> npt.NDArray[np.bool_]:
    """``(n, n_channels)`` which channels each contact's levers use."""
    has = np.zeros((action.shape[0], actions.n_channels), bool)
    rows, levers = np.nonzero(action >= 0)
    has[rows, actions.channel[action[rows, levers]]] = True
    return has
