"""Attribution: join each outcome to the decision it follows, and read rewards per decision.

An event is attributed to a decision of the same contact when it happens inside that decision's
attribution window — the window of the objective its campaign serves — counted from the decision's
*reference time*:

* the send time (``send_at``) of a decision that sends;
* ``decided_at`` for a *no send* (``channel`` is ``None``), for a holdout, and for a send without a
  ``send_at``.

Holdout decisions take part like any other, so that what the held-out people did in the same window is
known and lift can be measured against them. The window is half-open: ``reference <= at <
reference + window``; an event before the decision never belongs to it.

When several decisions could claim an event, the one on the event's channel wins (an e-mail click
belongs to the e-mail, not to an SMS sent the day after), and among those the **latest** decision wins
(ties: the later-written decision). Events no decision claims keep ``decision_id`` empty.

Attribution is incremental by default: only events without a decision are looked at, which is right
because a decision made later can never claim an earlier event. ``reattribute=True`` looks at every event
again (after windows changed in the strategy, or decisions were imported late).

A decision that sends has a result only once its message went out. :func:`read_send_states` says,
from the outbox's deliveries, what became of each decision's message (:class:`SendState`), and
:func:`load_rewards` gives a send that never went out no reward (NaN), not a reward of 0: the
action was never executed, so nothing the person did afterwards is its outcome.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, and_, case, func, or_, select, update
from sqlalchemy.sql import ColumnElement, Select

from tummler.core.clock import ensure_utc
from tummler.core.errors import ConfigError
from tummler.core.vocabulary import DeliveryStatus
from tummler.learn.rewards import RewardSpec, decision_rewards
from tummler.store.database import session_scope
from tummler.store.models import Campaign, Decision, Delivery, Event
from tummler.strategy import Strategy

__all__ = [
    "HAPPENED",
    "AttributionReport",
    "DecisionRewards",
    "SendState",
    "attribute_events",
    "load_rewards",
    "objective_windows",
    "read_send_states",
    "reward_specs",
]

#: Contacts per query when reading their decisions (bounded parameter lists on both backends).
_CONTACT_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class AttributionReport:
    """What one attribution pass did.

    Attributes
    ----------
    considered
        Events looked at.
    attributed
        Events that now point to a decision (whether or not they changed).
    changed
        Events whose ``decision_id`` was written (set, moved or cleared).
    unattributed
        Events no decision claims.
    """

    considered: int
    attributed: int
    changed: int
    unattributed: int


def objective_windows(strategy: Strategy) -> dict[str, timedelta]:
    """Each objective's attribution window, by objective id, as the strategy file states it."""
    return {objective.id: objective.attribution_window for objective in strategy.objectives}


def reward_specs(
    strategy: Strategy,
    *,
    unsubscribe_penalty: float | None = None,
    complaint_penalty: float | None = None,
    open_weight: float = 0.0,
) -> dict[str, RewardSpec]:
    """Each objective's reward: its KPI (``rate`` or ``value``) less the penalties the strategy
    states for it (``penalties``), unless given here."""
    return {
        objective.id: RewardSpec.for_kpi(
            objective.kpi.event,
            objective.kpi.measure,
            unsubscribe_penalty=(
                objective.penalties.unsubscribed
                if unsubscribe_penalty is None
                else unsubscribe_penalty
            ),
            complaint_penalty=(
                objective.penalties.complained if complaint_penalty is None else complaint_penalty
            ),
            open_weight=open_weight,
        )
        for objective in strategy.objectives
    }


@dataclass(frozen=True, slots=True)
class _Claim:
    decision_id: int
    channel: str | None
    start: datetime
    end: datetime


def attribute_events(
    engine: Engine,
    *,
    windows: Mapping[str, timedelta],
    default_window: timedelta | None = None,
    since: datetime | None = None,
    reattribute: bool = False,
) -> AttributionReport:
    """Set ``events.decision_id`` for events that follow a decision of the same contact.

    Parameters
    ----------
    engine
        The store.
    windows
        Attribution window by objective id (:func:`objective_windows` reads them from the strategy).
    default_window
        The window for a campaign whose objective is not in ``windows``; ``None``: such a campaign is
        an error.
    since
        Only events at or after this time are looked at (default: all). Unattributed events
        earlier than every decision cannot follow one and are not looked at either.
    reattribute
        Look at events that already have a decision too, and move or clear them as the rules say.

    Returns
    -------
    AttributionReport
        Counts of what was looked at and written.

    Raises
    ------
    ConfigError
        When a window is not positive, or a campaign's objective has no window and there is no default.
    """
    for name, window in {**windows, "default_window": default_window}.items():
        if window is not None and window <= timedelta(0):
            raise ConfigError(f"attribution window of {name!r} must be positive, got {window}")
    with session_scope(engine) as session:
        query = select(Event.id, Event.contact_id, Event.at, Event.channel, Event.decision_id)
        if not reattribute:
            query = query.where(Event.decision_id.is_(None))
            # an event before every decision follows none: a store's imported history is never
            # read again once decisions start
            first = session.execute(
                select(func.min(Decision.decided_at), func.min(Decision.send_at))
            ).one()
            starts = [ensure_utc(t) for t in first if t is not None]
            if not starts:
                return AttributionReport(considered=0, attributed=0, changed=0, unattributed=0)
            since = min(starts) if since is None else max(min(starts), ensure_utc(since))
        if since is not None:
            query = query.where(Event.at >= ensure_utc(since))
        events = session.execute(query.order_by(Event.id)).all()
        contacts = sorted({int(row.contact_id) for row in events})
        claims = _claims(session, contacts, windows, default_window)
        changes: list[dict[str, Any]] = []
        attributed = 0
        for event_id, contact_id, at, channel, current in events:
            chosen = _choose(claims.get(int(contact_id), ()), ensure_utc(at), channel)
            if chosen is not None:
                attributed += 1
            if chosen != current:
                changes.append({"id": event_id, "decision_id": chosen})
        if changes:
            session.execute(update(Event), changes)
    return AttributionReport(
        considered=len(events),
        attributed=attributed,
        changed=len(changes),
        unattributed=len(events) - attributed,
    )


def _claims(
    session: Any,
    contacts: list[int],
    windows: Mapping[str, timedelta],
    default_window: timedelta | None,
) -> dict[int, list[_Claim]]:
    """Each contact's decisions as time spans, latest reference time first (ties: latest id)."""
    found: dict[int, list[tuple[datetime, int, _Claim]]] = defaultdict(list)
    missing: dict[str, str] = {}
    for start in range(0, len(contacts), _CONTACT_CHUNK):
        chunk = contacts[start : start + _CONTACT_CHUNK]
        rows = session.execute(
            select(
                Decision.id,
                Decision.contact_id,
                Decision.channel,
                Decision.send_at,
                Decision.decided_at,
                Decision.holdout,
                Campaign.objective,
                Campaign.key,
            )
            .join(Campaign, Campaign.id == Decision.campaign_id)
            .where(Decision.contact_id.in_(chunk))
        ).all()
        for decision_id, contact_id, channel, send_at, decided_at, holdout, objective, key in rows:
            window = windows.get(objective, default_window)
            if window is None:
                missing.setdefault(objective, key)
                continue
            sends = channel is not None and not holdout and send_at is not None
            reference = ensure_utc(send_at if sends else decided_at)
            claim = _Claim(int(decision_id), channel, reference, reference + window)
            found[int(contact_id)].append((reference, int(decision_id), claim))
    if missing:
        listing = ", ".join(f"{o!r} (campaign {k!r})" for o, k in sorted(missing.items()))
        raise ConfigError(
            f"no attribution window for objective {listing}: add the objective to the strategy "
            "or pass a default window"
        )
    return {
        contact: [claim for _, _, claim in sorted(spans, key=lambda s: (s[0], s[1]), reverse=True)]
        for contact, spans in found.items()
    }


def _choose(claims: Any, at: datetime, channel: str | None) -> int | None:
    """The decision that claims an event at ``at`` on ``channel``: same channel first, then latest."""
    latest: int | None = None
    for claim in claims:
        if claim.start <= at < claim.end:
            if channel is None or claim.channel == channel:
                return int(claim.decision_id)
            if latest is None:
                latest = claim.decision_id
    return latest


class SendState(StrEnum):
    """What became of a decision's message, as the outbox's deliveries record it.

    A decision *happened* — it has an outcome that measures it — when there was nothing to send
    or its message was sent. A send still waiting, or one the outbox ended without sending, was
    never executed: it has no outcome of its own.
    """

    #: A holdout, or the policy's choice of *no send*: both are real results (the control group,
    #: and the choice not to send), measured from ``decided_at``.
    NOTHING_TO_SEND = "nothing_to_send"
    #: A delivery was handed over: ``sent``, or with a ``sent_at`` (a message the provider
    #: accepted and later reported bounced is ``failed``; the bounce is its outcome).
    SENT = "sent"
    #: Not handed over yet: no delivery (``tummler send`` has not enqueued it), or ``pending``,
    #: ``sending``, or ``unknown`` (in doubt until someone checks the provider).
    WAITING = "waiting"
    #: The outbox ended it without sending: ``skipped`` at send time (consent, fatigue, a
    #: forgotten contact), ``failed`` or ``dead``.
    NOT_SENT = "not_sent"


#: The states of a decision that has an outcome.
HAPPENED: frozenset[SendState] = frozenset({SendState.NOTHING_TO_SEND, SendState.SENT})
#: Delivery statuses that end a delivery without handing it over (unless it has a ``sent_at``).
_ENDED_UNSENT = (
    DeliveryStatus.SKIPPED.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.DEAD.value,
)


def read_send_states(
    session: Any, decisions: Select[Any], *, as_of: datetime | None = None
) -> dict[int, SendState]:
    """Each decision's :class:`SendState`, from its deliveries, in one query.

    Parameters
    ----------
    session
        An open session (or connection) on the store.
    decisions
        A select of ``Decision.id``: the decisions to look at.
    as_of
        The state as it was then: a delivery counts as sent from its ``sent_at``, and as ended
        from its ``updated_at``; later changes are not seen. Default: now.

    Returns
    -------
    dict
        Decision id to its state, for every decision of ``decisions``. A decision with several
        deliveries is sent when any was sent, and not sent only when all ended unsent.
    """
    sent_at_known: ColumnElement[bool] = Delivery.sent_at.is_not(None)
    marked_sent = and_(Delivery.status == DeliveryStatus.SENT.value, Delivery.sent_at.is_(None))
    ended = and_(Delivery.status.in_(_ENDED_UNSENT), Delivery.sent_at.is_(None))
    if as_of is not None:
        until = ensure_utc(as_of)
        sent_at_known = and_(sent_at_known, Delivery.sent_at <= until)
        marked_sent = and_(marked_sent, Delivery.updated_at <= until)
        ended = and_(ended, Delivery.updated_at <= until)
    rows = session.execute(
        select(
            Decision.id,
            Decision.channel,
            Decision.holdout,
            func.count(Delivery.id),
            func.sum(case((or_(sent_at_known, marked_sent), 1), else_=0)),
            func.sum(case((ended, 1), else_=0)),
        )
        .outerjoin(Delivery, Delivery.decision_id == Decision.id)
        .where(Decision.id.in_(decisions.scalar_subquery()))
        .group_by(Decision.id, Decision.channel, Decision.holdout)
    ).all()
    return {
        int(decision_id): _send_state(
            channel, bool(holdout), int(n), int(sent or 0), int(gone or 0)
        )
        for decision_id, channel, holdout, n, sent, gone in rows
    }


def _send_state(
    channel: str | None, holdout: bool, deliveries: int, sent: int, ended: int
) -> SendState:
    if holdout or channel is None:
        return SendState.NOTHING_TO_SEND
    if sent:
        return SendState.SENT
    if deliveries and ended == deliveries:
        return SendState.NOT_SENT
    return SendState.WAITING


@dataclass(frozen=True, slots=True)
class DecisionRewards:
    """Logged decisions with their rewards, as arrays aligned by row (one row per decision).

    Holdout decisions are included (``holdout`` True) so that lift can be measured; a learner that
    only wants sends filters on it. A send whose message never went out (``send_state``
    ``waiting`` or ``not_sent``) has a NaN reward: it was never executed, so it has no outcome,
    and a learner or an off-policy estimator must leave it out (``happened``) rather than read it
    as a reward of 0.
    """

    decision_id: NDArray[np.int64]
    campaign_id: NDArray[np.int64]
    contact_id: NDArray[np.int64]
    objective: NDArray[np.object_]
    action: NDArray[np.int64]
    propensity: NDArray[np.float64]
    holdout: NDArray[np.bool_]
    reward: NDArray[np.float64]
    send_state: NDArray[np.object_]

    def __len__(self) -> int:
        return int(self.decision_id.size)

    @property
    def happened(self) -> NDArray[np.bool_]:
        """Per decision: whether it has an outcome (nothing to send, or sent)."""
        return np.fromiter((s in HAPPENED for s in self.send_state), np.bool_, len(self))


def load_rewards(
    engine: Engine,
    *,
    specs: Mapping[str, RewardSpec],
    default: RewardSpec | None = None,
    campaign: str | None = None,
    since: datetime | None = None,
) -> DecisionRewards:
    """Read decisions and the events attributed to them, and compute each decision's reward.

    Run :func:`attribute_events` first: only events with a ``decision_id`` count. A send whose
    message never went out (:func:`read_send_states`) gets a NaN reward.

    Parameters
    ----------
    engine
        The store.
    specs
        The reward of each objective, by objective id (:func:`reward_specs` from the strategy).
    default
        The reward for a campaign whose objective is not in ``specs``; ``None``: an error.
    campaign
        Only this campaign's decisions (by campaign key); default: all.
    since
        Only decisions made at or after this time.

    Raises
    ------
    ConfigError
        When a decision's objective has no reward spec and there is no default.
    """
    with session_scope(engine) as session:
        decisions, outcomes, states = _read_decisions(session, campaign=campaign, since=since)
    n = len(decisions)
    decision_id = np.fromiter((row[0] for row in decisions), np.int64, n)
    objective = np.array([row[3] for row in decisions], dtype=object)
    reward = _rewards_by_objective(objective, decision_id, outcomes, specs, default)
    send_state = np.array([states[int(d)] for d in decision_id.tolist()], dtype=object)
    reward[[s not in HAPPENED for s in send_state]] = np.nan
    return DecisionRewards(
        decision_id=decision_id,
        campaign_id=np.fromiter((row[1] for row in decisions), np.int64, n),
        contact_id=np.fromiter((row[2] for row in decisions), np.int64, n),
        objective=objective,
        action=np.fromiter((row[4] for row in decisions), np.int64, n),
        propensity=np.fromiter((row[5] for row in decisions), np.float64, n),
        holdout=np.fromiter((bool(row[6]) for row in decisions), np.bool_, n),
        reward=reward,
        send_state=send_state,
    )


def _read_decisions(
    session: Any, *, campaign: str | None, since: datetime | None
) -> tuple[list[Any], list[Any], dict[int, SendState]]:
    """The decisions of ``campaign`` made since ``since`` (by id, with their campaign's
    objective), the events attributed to them, and what became of their messages."""
    conditions = []
    if campaign is not None:
        conditions.append(Campaign.key == campaign)
    if since is not None:
        conditions.append(Decision.decided_at >= ensure_utc(since))
    decisions = session.execute(
        select(
            Decision.id,
            Decision.campaign_id,
            Decision.contact_id,
            Campaign.objective,
            Decision.action,
            Decision.propensity,
            Decision.holdout,
        )
        .join(Campaign, Campaign.id == Decision.campaign_id)
        .where(*conditions)
        .order_by(Decision.id)
    ).all()
    states = read_send_states(
        session,
        select(Decision.id).join(Campaign, Campaign.id == Decision.campaign_id).where(*conditions),
    )
    outcomes = session.execute(
        select(Event.decision_id, Event.type, Event.value)
        .join(Decision, Decision.id == Event.decision_id)
        .join(Campaign, Campaign.id == Decision.campaign_id)
        .where(*conditions)
    ).all()
    return decisions, outcomes, states


def _rewards_by_objective(
    objective: NDArray[np.object_],
    decision_id: NDArray[np.int64],
    outcomes: list[Any],
    specs: Mapping[str, RewardSpec],
    default: RewardSpec | None,
) -> NDArray[np.float64]:
    """Each decision's reward from the events attributed to it (``outcomes``: decision id, type,
    value), under its objective's spec."""
    n = objective.size
    unknown = sorted({str(o) for o in objective if o not in specs}) if default is None else []
    if unknown:
        raise ConfigError(
            f"no reward spec for objective(s) {', '.join(map(repr, unknown))}: add them to the "
            "strategy or pass a default"
        )
    position = {int(d): i for i, d in enumerate(decision_id)}
    event_decision = np.fromiter(
        (position[int(row[0])] for row in outcomes), np.int64, len(outcomes)
    )
    event_type = np.array([row[1] for row in outcomes], dtype=object)
    event_value = np.fromiter(
        (np.nan if row[2] is None else float(row[2]) for row in outcomes), np.float64, len(outcomes)
    )
    reward = np.zeros(n, dtype=np.float64)
    for name in sorted({str(o) for o in objective}):
        spec = specs.get(name, default)
        assert spec is not None
        rows = objective == name
        local = np.full(n, -1, dtype=np.int64)
        local[rows] = np.arange(int(rows.sum()))
        mine = rows[event_decision] if event_decision.size else np.zeros(0, dtype=bool)
        reward[rows] = decision_rewards(
            int(rows.sum()),
            local[event_decision[mine]],
            event_type[mine],
            event_value[mine],
            spec,
        )
    return reward
