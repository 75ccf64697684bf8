"""Learning from the store: ``tummler learn`` updates each objective's policy from its outcomes.

The decisions a version made, with the rewards attributed to them and the contexts their plans
saw (:mod:`~tummler.app.learning.logged`), update that version's policy; the result is stored as
the objective's next version, unpromoted, in planning's format so that ``tummler plan`` uses it
once promoted.

An objective's first learned version starts from the brand's history: when the decisions were
made by planning's prior, the prior is first fitted on the legacy sends the store holds from before
it (:mod:`~tummler.app.learning.warm_start`), and the row's notes and the version's
``learned_from`` say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tummler.app import policies
from tummler.app.learning.logged import (
    Logged,
    LoggedBatch,
    logged_decisions,
    objective_rewards,
    objectives,
    workspace_strategy,
)
from tummler.app.learning.warm_start import warm_start
from tummler.app.policies import CampaignPolicy
from tummler.core.clock import Clock, SystemClock, ensure_utc
from tummler.core.errors import NotFoundError, StrategyError
from tummler.learn.harm import clip_rewards

__all__ = ["StoreLearnRow", "learn_from_store"]


@dataclass(frozen=True)
class StoreLearnRow:
    """One objective's learning run: how many decisions, their mean reward, what was stored."""

    objective: str
    decisions: int
    mean_reward: float | None
    parent: str | None
    stored: str | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "objective": self.objective,
            "decisions": self.decisions,
            "mean_reward": self.mean_reward,
            "parent": self.parent,
            "stored": self.stored,
            "notes": list(self.notes),
        }


def learn_from_store(
    engine: Engine,
    *,
    workspace: Path,
    objective: str | None = None,
    campaign: str | None = None,
    clock: Clock | None = None,
) -> list[StoreLearnRow]:
    """Update each objective's policy from its attributed decisions and store the next version.

    For every objective (or only ``objective``, or the objective of ``campaign``), events are
    attributed to decisions first, then the non-holdout decisions with a channel made by the
    newest version that made any are read with their rewards; their contexts are rebuilt as the
    plans computed them (the version's own featurizer over the store as of each decision), and
    the version's policy is updated with them. Only sends whose message went out count: one
    still waiting to be sent, or skipped, failed or dead at send time, was never executed and
    has no reward (reading it as 0 would teach the policy that its channel never works); the
    row's notes say how many were left out. The result is stored as a new, unpromoted version
    of the same name (:mod:`tummler.app.policies` numbers it), its parent the version it was
    learned from, in planning's format so that ``tummler plan`` uses it once promoted.

    A logistic policy needs rewards in [0, 1]: penalties that take a reward below 0 are clipped
    to 0 for it (an unsubscribe then counts as no success), and amounts above 1 to 1. What the
    clipping took below 0 is added, per channel, to the parent's
    :class:`~tummler.learn.harm.ChannelHarm`, which planning adds to each channel's cost per send.

    Parameters
    ----------
    engine
        The store.
    workspace
        The workspace whose strategy and campaign files the decisions were planned with.
    objective, campaign
        Restrict the run to one objective or to one campaign's decisions.
    clock
        "Now", for the attribution's reading of the strategy and the new version's time.

    Returns
    -------
    list of StoreLearnRow
        One row per objective; ``stored`` is ``None`` when there was nothing to learn from.
    """
    from tummler.app.attribution import attribute_events, objective_windows

    clock = clock or SystemClock()
    strategy = workspace_strategy(workspace, clock)
    attribute_events(engine, windows=objective_windows(strategy))
    rewards = objective_rewards(engine, strategy, campaign)
    rows: list[StoreLearnRow] = []
    for name in objectives(engine, objective, campaign):
        logged = logged_decisions(
            engine,
            workspace=workspace,
            clock=clock,
            strategy=strategy,
            rewards=rewards,
            objective=name,
            sends_only=True,
        )
        rows.append(_learn_objective(engine, logged, workspace, strategy, clock))
    return rows


def _learn_objective(
    engine: Engine, logged: Logged, workspace: Path, strategy: Any, clock: Clock
) -> StoreLearnRow:
    """Learn one objective's next version from its logged decisions, and store it."""
    name = logged.objective
    if not logged.n:
        return StoreLearnRow(name, 0, None, None, None, logged.skipped)
    with Session(engine) as session:
        parent_row = policies.get_version(session, logged.version_id)
        parent = policies.spec_of(parent_row)
        current = policies.read_policy(parent_row.parameters, origin=f"policy version {parent}")
        is_prior = parent_row.parent_id is None
        prior_at = ensure_utc(parent_row.created_at)
    if not isinstance(current, CampaignPolicy) or current.featurizer is None:
        why = (
            "learned from a log, not for campaigns"
            if not isinstance(current, CampaignPolicy)
            else "stored without its featurizer; its contexts cannot be rebuilt"
        )
        return StoreLearnRow(name, 0, None, parent, None, (*logged.skipped, f"{parent} was {why}"))
    history: dict[str, Any] = {}
    if is_prior and not current.learned_from:
        current, history = _warm_started(
            engine, current, logged, workspace, strategy, clock, prior_at
        )
    learned, used, total, notes = _update(current, logged.batches, parent)
    notes = [*logged.skipped, *notes]
    if history:
        notes.append(str(history.pop("note")))
    if not used:
        return StoreLearnRow(name, 0, None, parent, None, tuple(notes))
    harm = learned.channel_harm
    if harm:
        notes.append(
            "harm per send from unsubscribes and complaints: " + harm.listing(sorted(harm.sends))
        )
    now = clock.now()
    learned = replace(
        learned,
        learned_from={
            "parent": parent,
            "decisions": used,
            "at": ensure_utc(now).isoformat(),
            **({"warm_start": history} if history else {}),
        },
    )
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        version = policies.record_version(
            session,
            name=name,
            kind=learned.kind,
            parameters=learned.to_dict(),
            parent_id=logged.version_id,
            now=now,
        )
        stored = policies.spec_of(version)
    return StoreLearnRow(name, used, total / used, parent, stored, tuple(notes))


def _warm_started(
    engine: Engine,
    current: CampaignPolicy,
    logged: Logged,
    workspace: Path,
    strategy: Any,
    clock: Clock,
    prior_at: Any,
) -> tuple[CampaignPolicy, dict[str, Any]]:
    """Planning's prior fitted on the legacy sends from before it, read as the first fitting
    campaign of ``logged`` would have read them; the warm start's record (with its ``note``),
    empty when there was no history."""
    from tummler.app.planning import load_campaign

    policy = current.policy
    for batch in logged.batches:
        if (
            policy.n_channels == batch.actions.n_channels
            and policy.n_action_features == batch.actions.n_features
        ):
            break
    else:
        return current, {}
    try:
        campaign = load_campaign(workspace, batch.campaign, clock)[1]
    except (NotFoundError, StrategyError):
        return current, {}
    started, done = warm_start(
        engine,
        current,
        strategy=strategy,
        campaign=campaign,
        actions=batch.actions,
        message=batch.message,
        objective=logged.objective,
        before=prior_at,
    )
    if done is None:
        return current, {}
    return started, {**done.to_dict(), "note": done.note()}


def _update(
    current: CampaignPolicy, batches: Sequence[LoggedBatch], parent: str
) -> tuple[CampaignPolicy, int, float, list[str]]:
    """Update ``current``'s policy (in place) and harm with every batch it fits: the learned
    policy, the decisions used, their summed reward, and notes on the batches left out."""
    assert current.featurizer is not None
    policy, harm, notes, used, total = current.policy, current.channel_harm, [], 0, 0.0
    for batch in batches:
        if (
            policy.n_channels != batch.actions.n_channels
            or policy.n_action_features != batch.actions.n_features
        ):
            notes.append(f"campaign {batch.campaign!r}: other channels than {parent}'s")
            continue
        reward, lost = clip_rewards(policy.kind, batch.reward)
        if lost is not None:  # the penalties the clipped rewards cannot carry: a cost per send
            channel = np.asarray(batch.actions.channel_names, object)
            harm = harm.add(channel[batch.actions.channel[batch.action]], lost)
        x = batch.contexts(current.featurizer)
        policy.update(x, batch.actions, batch.action, reward, batch.propensity)
        used += batch.decision_id.size
        total += float(batch.reward.sum())
    return replace(current, policy=policy, channel_harm=harm), used, total, notes
