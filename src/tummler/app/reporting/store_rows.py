"""A campaign's decisions read from the store, each with what became of it.

One row per decision made by the report's time: its group, channel, send time, variant,
propensity and policy version, what the outbox did with its message
(:func:`~tummler.app.attribution.read_send_states`), and the events attributed to it that
happened by then, as the objective's KPI, the conversion value and the engagements; with the
audience's relationship stages from the contacts' history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, select
from sqlalchemy.orm import Session

from tummler.app.attribution import SendState, read_send_states
from tummler.app.contacts import stages_as_of
from tummler.app.reporting.objectives import ObjectiveSpec
from tummler.core.clock import ensure_utc
from tummler.core.errors import NotFoundError
from tummler.core.vocabulary import EventType
from tummler.store.database import session_scope
from tummler.store.models import Campaign, Decision, Event, PolicyVersion, Variant

__all__ = ["ENGAGEMENT_EVENTS", "Stages", "read_store"]

#: Events that count as engagement for breadth against depth (not opens: proxies open mail).
ENGAGEMENT_EVENTS = frozenset(
    {EventType.CLICKED, EventType.REPLIED, EventType.CONVERTED, EventType.VISITED}
)


@dataclass(frozen=True)
class Stages:
    """The audience's stages from the contacts' history: at the report's time, and per campaign
    as its first decision saw them."""

    now: dict[int, str]
    before: dict[int, dict[int, str]]


def read_store(
    engine: Engine, *, campaign: str | None, as_of: datetime, specs: Mapping[str, ObjectiveSpec]
) -> tuple[list[tuple[int, str, str]], dict[int, dict[str, Any]], Stages]:
    """The campaigns (id, key, objective) by key, each decision's row by decision id, and the
    audience's stages, as of ``as_of``.

    Raises
    ------
    NotFoundError
        When ``campaign`` is not in the store.
    """
    with session_scope(engine) as session:
        campaigns = _campaigns(session, campaign)
        mine = Decision.campaign_id.in_([c[0] for c in campaigns]), Decision.decided_at <= as_of
        decisions = session.execute(_DECISIONS.where(*mine).order_by(Decision.id)).all()
        events = session.execute(
            select(Event.decision_id, Event.type, Event.value)
            .join(Decision, Decision.id == Event.decision_id)
            .where(*mine, Event.at <= as_of)
        ).all()
        states = read_send_states(session, select(Decision.id).where(*mine), as_of=as_of)
        stages = _stages(session.connection(), decisions, as_of)
    objective_of = {c[0]: c[2] for c in campaigns}
    happened: dict[int, list[tuple[str, float | None]]] = defaultdict(list)
    for decision_id, kind, value in events:
        happened[int(decision_id)].append((str(kind), None if value is None else float(value)))
    outcome = {}
    for row in decisions:
        objective = objective_of[int(row[1])]
        outcome[int(row[0])] = _row(
            row,
            specs.get(objective, ObjectiveSpec(objective)),
            happened.get(int(row[0]), []),
            states[int(row[0])],
        )
    return campaigns, outcome, stages


#: A decision with its variant's key and its policy version, in the order :func:`_row` reads.
_DECISIONS = (
    select(
        Decision.id,
        Decision.campaign_id,
        Decision.contact_id,
        Decision.holdout,
        Decision.channel,
        Decision.send_at,
        Variant.key,
        Decision.propensity,
        PolicyVersion.name,
        PolicyVersion.version,
        PolicyVersion.created_at,
        Decision.decided_at,
    )
    .outerjoin(Variant, Variant.id == Decision.variant_id)
    .outerjoin(PolicyVersion, PolicyVersion.id == Decision.policy_version_id)
)


def _campaigns(session: Session, campaign: str | None) -> list[tuple[int, str, str]]:
    """Every campaign (or the one named) as (id, key, objective), by key.

    Raises
    ------
    NotFoundError
        When ``campaign`` is not in the store.
    """
    query = select(Campaign.id, Campaign.key, Campaign.objective).order_by(Campaign.key)
    if campaign is not None:
        query = query.where(Campaign.key == campaign)
    campaigns = [(int(r[0]), str(r[1]), str(r[2])) for r in session.execute(query)]
    if campaign is not None and not campaigns:
        known = sorted(session.scalars(select(Campaign.key)).all())
        raise NotFoundError(
            f"no campaign {campaign!r} in the store; known: "
            f"{', '.join(known) if known else 'none (run tummler strategy sync)'}"
        )
    return campaigns


def _stages(connection: Connection, decisions: Sequence[Row[Any]], as_of: datetime) -> Stages:
    """Each campaign's audience's stages as its first decision saw them, and everyone's now."""
    audience: dict[int, set[int]] = defaultdict(set)
    first: dict[int, datetime] = {}
    for d in decisions:
        audience[int(d[1])].add(int(d[2]))
        decided = ensure_utc(d[11])
        first[int(d[1])] = min(first.get(int(d[1]), decided), decided)
    everyone = {cid for members in audience.values() for cid in members}
    return Stages(
        now=stages_as_of(connection, everyone, as_of),
        before={
            cid: stages_as_of(connection, members, first[cid]) for cid, members in audience.items()
        },
    )


def _row(
    row: Row[Any],
    spec: ObjectiveSpec,
    happened: list[tuple[str, float | None]],
    send: SendState,
) -> dict[str, Any]:
    """One decision as the measurements read it, with its KPI, value and engagements."""
    mine = [v for kind, v in happened if kind == spec.event]
    if spec.measure == "rate":
        kpi = 1.0 if mine else 0.0
    else:
        kpi = float(sum(v for v in mine if v is not None))
    value = float(
        sum(v for kind, v in happened if kind == EventType.CONVERTED.value and v is not None)
    )
    return {
        "campaign": int(row[1]),
        "contact": int(row[2]),
        "holdout": bool(row[3]),
        "channel": row[4],
        "send_at": None if row[5] is None else ensure_utc(row[5]),
        "variant": row[6],
        "propensity": float(row[7]),
        "policy": None if row[8] is None else (str(row[8]), int(row[9]), ensure_utc(row[10])),
        "decided_at": ensure_utc(row[11]),
        "send": send,
        "kpi": kpi,
        "value": value,
        "engagements": sum(1 for kind, _ in happened if kind in ENGAGEMENT_EVENTS),
    }
