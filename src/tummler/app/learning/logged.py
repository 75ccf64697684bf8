"""The store's logged decisions of an objective, with their rewards and the contexts the plans saw.

Learning and evaluation both weigh policies on what was decided: the non-holdout decisions of the
newest policy version of an objective that made any, each with its propensity, its attributed
reward and the context its plan computed, rebuilt by planning's own
:func:`~tummler.app.planning.planned_contexts` over the store as of the decision. A decision whose
message never went out has no reward and is left out (and counted in the notes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, Row, select

from tummler.app import policies
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import InputError, NotFoundError, StrategyError
from tummler.decide import ActionSet, ContextData, ContextFeaturizer
from tummler.store import models

if TYPE_CHECKING:
    from tummler.app.attribution import DecisionRewards
    from tummler.app.planning import PlannedContexts

__all__ = [
    "Logged",
    "LoggedBatch",
    "logged_decisions",
    "objective_rewards",
    "objectives",
    "workspace_strategy",
]

FloatArray = npt.NDArray[np.float64]
_PlanKey = tuple[int, str, datetime]  # campaign id, campaign key, decided at: one plan


@dataclass(frozen=True, eq=False)
class LoggedBatch:
    """The logged decisions of one plan (one campaign at one moment), with their contexts."""

    campaign: str
    actions: ActionSet
    message: Mapping[str, float]
    data: ContextData  # per contact of the plan's chunk
    rows: npt.NDArray[np.int64]  # per decision: its contact's row of ``data``
    mask: npt.NDArray[np.bool_]
    cost: FloatArray
    threshold: float
    decision_id: npt.NDArray[np.int64]
    action: npt.NDArray[np.int64]
    propensity: FloatArray
    reward: FloatArray

    def contexts(self, featurizer: ContextFeaturizer) -> npt.NDArray[np.float32]:
        """``(n, d_x)`` each decision's context through ``featurizer``."""
        return np.asarray(featurizer.transform(self.data, self.message)[self.rows], np.float32)


@dataclass(frozen=True)
class Logged:
    """An objective's usable decisions: which version made them and their plans' batches."""

    objective: str
    version_id: int
    batches: tuple[LoggedBatch, ...]
    skipped: tuple[str, ...]
    unsent: int = 0  # decisions of the version left out: their message never went out
    went_out: int = 0  # sends of the version whose message went out, batched or not

    @property
    def n(self) -> int:
        """How many decisions the batches hold."""
        return sum(b.decision_id.size for b in self.batches)


def workspace_strategy(workspace: Path, clock: Clock) -> Any:
    """The workspace's strategy, which the decisions were planned with."""
    from tummler.app.strategy import check_workspace_strategy

    loaded, _ = check_workspace_strategy(workspace, engine=None, clock=clock)
    if loaded.strategy is None:
        raise InputError(
            "the workspace has no readable strategy; run tummler strategy check",
            file=workspace / "strategy.yaml",
        )
    return loaded.strategy.strategy


def objective_rewards(engine: Engine, strategy: Any, campaign: str | None) -> DecisionRewards:
    """Every decision's reward under the strategy's objectives (of ``campaign`` only, when
    given), and what became of its message."""
    from tummler.app.attribution import load_rewards, reward_specs

    return load_rewards(engine, specs=reward_specs(strategy), campaign=campaign)


def objectives(engine: Engine, objective: str | None, campaign: str | None) -> list[str]:
    """The objectives to work on: ``objective``, that of ``campaign``, or every planned one."""
    if objective is not None:
        return [objective]
    query = select(models.Campaign.objective).distinct().order_by(models.Campaign.objective)
    if campaign is not None:
        query = query.where(models.Campaign.key == campaign)
    with engine.connect() as connection:
        found = [str(o) for o in connection.scalars(query)]
    if campaign is not None and not found:
        raise NotFoundError(
            f"no campaign {campaign!r} in the store; plan it first (tummler plan {campaign})"
        )
    return found


def logged_decisions(
    engine: Engine,
    *,
    workspace: Path,
    clock: Clock,
    strategy: Any,
    rewards: DecisionRewards,
    objective: str,
    sends_only: bool,
    version_id: int | None = None,
) -> Logged:
    """Rebuild the contexts of an objective's non-holdout decisions, as their plans saw them.

    ``sends_only``: decisions with a channel (learning); otherwise lever 0 of every non-holdout
    decision, *no send* included (evaluation: the logging policy's full choice). The decisions are
    those of ``version_id``, by default of the newest version of the objective that made any, and
    of ``rewards`` (:func:`objective_rewards`, read once for every objective).

    Each contact's stage and attributes are read as of the decision's ``decided_at`` from the
    contacts' history (:func:`tummler.app.contacts.contacts_as_of`): the latest change at or before
    it. When no change predates it, the earliest recorded one gives the stage it moved from (and
    the earliest attributes known), and a contact without any history is read as it is now. The
    rest of the profile (time zone, locale) and the consent, identities and events are read as of
    the decision by planning's own readers. One query per 5,000 contacts of each plan.
    """
    from tummler.app.attribution import HAPPENED

    wanted = (rewards.objective == objective) & ~rewards.holdout
    ids = rewards.decision_id[wanted].tolist()
    reward_of = dict(zip(ids, rewards.reward[wanted].tolist(), strict=True))
    state_of = dict(zip(ids, rewards.send_state[wanted].tolist(), strict=True))
    with engine.connect() as connection:
        number = policies.version_numbers(connection, objective)
        rows = _decision_rows(connection, objective, number, reward_of, sends_only)
        if version_id is None and rows:  # the newest version that made any
            newest = max(rows, key=lambda r: (number[int(r.policy_version_id)], r.id))
            version_id = int(newest.policy_version_id)
        rows = [r for r in rows if r.policy_version_id == version_id]
        # A send that never went out has no reward: leave it out rather than read it as 0.
        unsent = Counter(state_of[int(r.id)] for r in rows if state_of[int(r.id)] not in HAPPENED)
        rows = [r for r in rows if state_of[int(r.id)] in HAPPENED]
        skipped: list[str] = [_unsent_note(unsent)] if unsent else []
        batches = _batches(connection, workspace, clock, strategy, rows, reward_of, skipped)
    return Logged(
        objective,
        version_id or 0,
        tuple(batches),
        tuple(skipped),
        sum(unsent.values()),
        sum(1 for r in rows if r.channel is not None),
    )


def _decision_rows(
    connection: Connection,
    objective: str,
    number: Mapping[int, int],
    reward_of: Mapping[int, float],
    sends_only: bool,
) -> list[Row[Any]]:
    """The objective's non-holdout decisions with a reward, made by a version of its name
    (``number``: their ids): those with a channel (``sends_only``), or lever 0 of each (*no
    send* included)."""
    d = models.Decision
    query = (
        select(
            d.id,
            d.contact_id,
            d.channel,
            d.lever,
            d.action,
            d.propensity,
            d.decided_at,
            d.policy_version_id,
            d.campaign_id,
            models.Campaign.key,
        )
        .join(models.Campaign, models.Campaign.id == d.campaign_id)
        .where(
            models.Campaign.objective == objective,
            d.holdout.is_(False),
            d.policy_version_id.in_(list(number)),
        )
        .order_by(d.id)
    )
    rows = [r for r in connection.execute(query) if int(r.id) in reward_of]
    if sends_only:
        return [r for r in rows if r.channel is not None]
    return [r for r in rows if r.lever == 0]


def _batches(
    connection: Connection,
    workspace: Path,
    clock: Clock,
    strategy: Any,
    rows: Sequence[Row[Any]],
    reward_of: Mapping[int, float],
    skipped: list[str],
) -> list[LoggedBatch]:
    """One batch per plan of ``rows``, in the order they were decided; a campaign whose file
    cannot be read is noted in ``skipped``."""
    from tummler.app import planning

    plans: dict[_PlanKey, list[Row[Any]]] = {}
    for r in rows:
        plans.setdefault((int(r.campaign_id), str(r.key), ensure_utc(r.decided_at)), []).append(r)
    campaigns: dict[str, Any] = {}
    batches: list[LoggedBatch] = []
    for (campaign_id, key, decided_at), group in sorted(plans.items(), key=lambda g: g[0][2]):
        if key not in campaigns:
            try:
                campaigns[key] = planning.load_campaign(workspace, key, clock)[1]
            except (NotFoundError, StrategyError) as exc:
                skipped.append(f"campaign {key!r}: {exc}")
                campaigns[key] = None
        if campaigns[key] is None:
            continue
        seen = _plan_seen(connection, strategy, campaigns[key], campaign_id, decided_at, group)
        if seen is not None:
            batches.append(_batch(key, seen, group, reward_of))
    return batches


def _plan_seen(
    connection: Connection,
    strategy: Any,
    campaign: Any,
    campaign_id: int,
    decided_at: datetime,
    group: Sequence[Row[Any]],
) -> PlannedContexts | None:
    """What the plan computed for the contacts of ``group``, as of ``decided_at``."""
    from tummler.app.contacts import contacts_as_of
    from tummler.app.planning import planned_contexts

    # The stage and attributes the plan saw, not today's: a stage the message moved would
    # otherwise teach the policy from a context it never decided on.
    contacts = contacts_as_of(connection, {int(r.contact_id) for r in group}, decided_at)
    if not contacts:
        return None
    return planned_contexts(
        connection,
        strategy,
        campaign,
        contacts=contacts,
        campaign_id=campaign_id,
        at=decided_at,
    )


def _batch(
    key: str, seen: PlannedContexts, group: Sequence[Row[Any]], reward_of: Mapping[int, float]
) -> LoggedBatch:
    """The decisions of ``group`` that the rebuilt plan ``seen`` covers, with their contexts."""
    where = {int(c): i for i, c in enumerate(seen.ids.tolist())}
    kept = [r for r in group if int(r.contact_id) in where and r.action <= seen.actions.k]
    take = np.array([where[int(r.contact_id)] for r in kept], np.int64)
    return LoggedBatch(
        campaign=key,
        actions=seen.actions,
        message=seen.message,
        data=seen.data,
        rows=take,
        mask=seen.mask[take],
        cost=np.asarray(seen.selection_rules.cost, np.float64),
        threshold=float(seen.selection_rules.threshold),
        decision_id=np.array([r.id for r in kept], np.int64),
        action=np.array([r.action for r in kept], np.int64),
        propensity=np.array([r.propensity for r in kept], np.float64),
        reward=np.array([reward_of[int(r.id)] for r in kept], np.float64),
    )


def _unsent_note(unsent: Mapping[str, int]) -> str:
    """Say how many decisions were left out because their message never went out, and why."""
    from tummler.app.attribution import SendState

    total = sum(unsent.values())
    parts = [
        f"{unsent[state]:,} {words}"
        for state, words in (
            (SendState.WAITING, "still waiting to be sent"),
            (SendState.NOT_SENT, "skipped, failed or dead at send time"),
        )
        if unsent.get(state)
    ]
    return (
        f"left out {total:,} decision{'s' if total != 1 else ''} whose message never went out "
        f"({', '.join(parts)}): an action never executed has no reward"
    )
