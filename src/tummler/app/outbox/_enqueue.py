"""Decisions become deliveries: one per decision that sends something, under an idempotency key.

:func:`enqueue` inserts with ``INSERT ... ON CONFLICT DO NOTHING`` on the unique
``idempotency_key``, so enqueueing twice (or from two processes at once) never makes a second
delivery. The other functions here answer the questions asked before a worker runs: which
campaign, and how many deliveries are due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from tummler.app.outbox._rules import is_transactional
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import NotFoundError
from tummler.core.vocabulary import DeliveryStatus
from tummler.store import models
from tummler.store.database import is_postgres, session_scope

__all__ = [
    "EnqueueReport",
    "count_due",
    "enqueue",
    "enqueue_planned",
    "idempotency_key",
    "in_campaign",
    "lookup_campaign",
    "waiting_marketing_emails",
]

logger = logging.getLogger("tummler.outbox")

_PENDING = DeliveryStatus.PENDING.value
_INSERT_CHUNK = 500


def idempotency_key(campaign_key: str, contact_id: int, channel: str) -> str:
    """The delivery's key: one message per campaign, contact and channel, ever.

    The contact is named by its internal id, so the key (which travels to providers as a header
    and into Message-IDs) carries no personal data.

    >>> idempotency_key("spring-sale", 42, "email")
    'spring-sale:42:email'
    """
    return f"{campaign_key}:{contact_id}:{channel}"


@dataclass(frozen=True, slots=True)
class EnqueueReport:
    """What :func:`enqueue` did for one campaign.

    Attributes
    ----------
    campaign
        The campaign's key.
    decisions
        Decisions to send (with a channel, not held out).
    created
        Deliveries created by this call.
    existing
        Deliveries that were already there (an earlier enqueue): left as they were.
    """

    campaign: str
    decisions: int
    created: int
    existing: int


def enqueue(engine: Engine, campaign_key: str, *, clock: Clock) -> EnqueueReport:
    """Create one pending delivery per decision of ``campaign_key`` that sends something.

    A delivery is due at its decision's ``send_at`` (now when it has none). Holdout decisions and
    *no send* decisions get none. Running it again creates only what is missing.

    Raises
    ------
    NotFoundError
        When no campaign has that key (plan it first with ``tummler plan``).
    """
    now = clock.now()
    with session_scope(engine) as session:
        campaign_id = session.scalar(
            select(models.Campaign.id).where(models.Campaign.key == campaign_key)
        )
        if campaign_id is None:
            raise NotFoundError(
                f"no campaign {campaign_key!r} in the store; plan it first with "
                f"`tummler plan {campaign_key}`"
            )
        rows = session.execute(
            select(
                models.Decision.id,
                models.Decision.contact_id,
                models.Decision.channel,
                models.Decision.send_at,
            )
            .where(
                models.Decision.campaign_id == campaign_id,
                models.Decision.channel.is_not(None),
                models.Decision.holdout.is_(False),
            )
            .order_by(models.Decision.id)
        ).all()
        records = [
            {
                "decision_id": row.id,
                "idempotency_key": idempotency_key(campaign_key, row.contact_id, row.channel),
                "channel": row.channel,
                "status": _PENDING,
                "attempts": 0,
                "scheduled_at": ensure_utc(row.send_at) if row.send_at is not None else now,
                "updated_at": now,
            }
            for row in rows
        ]
        before = _count_campaign_deliveries(session, campaign_id)
        dialect = postgresql if is_postgres(engine) else sqlite
        for start in range(0, len(records), _INSERT_CHUNK):
            statement = dialect.insert(models.Delivery).on_conflict_do_nothing(
                index_elements=["idempotency_key"]
            )
            session.execute(statement, records[start : start + _INSERT_CHUNK])
        after = _count_campaign_deliveries(session, campaign_id)
    created = after - before
    logger.info("enqueued %d deliveries for campaign %s", created, campaign_key)
    return EnqueueReport(campaign_key, len(records), created, len(records) - created)


def _count_campaign_deliveries(session: Any, campaign_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(models.Delivery.id))
            .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
            .where(models.Decision.campaign_id == campaign_id)
        )
        or 0
    )


def lookup_campaign(engine: Engine, campaign_key: str | None) -> int | None:
    """The id of the campaign with key ``campaign_key`` (``None`` for ``None``: every campaign).

    Raises
    ------
    NotFoundError
        When no campaign has that key.
    """
    if campaign_key is None:
        return None
    with engine.connect() as connection:
        found = connection.scalar(
            select(models.Campaign.id).where(models.Campaign.key == campaign_key)
        )
    if found is None:
        raise NotFoundError(f"no campaign {campaign_key!r} in the store; check its key")
    return int(found)


def count_due(
    engine: Engine,
    *,
    clock: Clock,
    campaign_key: str | None = None,
    channels: Sequence[str] | None = None,
) -> int:
    """Pending deliveries due now (for a progress bar's total)."""
    campaign_id = lookup_campaign(engine, campaign_key)
    query = select(func.count(models.Delivery.id)).where(
        models.Delivery.status == _PENDING, models.Delivery.scheduled_at <= clock.now()
    )
    if channels is not None:
        query = query.where(models.Delivery.channel.in_(channels))
    query = in_campaign(query, campaign_id)
    with engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def enqueue_planned(engine: Engine, campaign_key: str | None, *, clock: Clock) -> int:
    """Enqueue ``campaign_key``, or (``None``) every campaign with a decision that sends
    something; returns the deliveries created."""
    if campaign_key is not None:
        return enqueue(engine, campaign_key, clock=clock).created
    sending = select(models.Decision.campaign_id).where(models.Decision.channel.is_not(None))
    with engine.connect() as connection:
        keys = list(
            connection.scalars(
                select(models.Campaign.key)
                .where(models.Campaign.id.in_(sending))
                .order_by(models.Campaign.key)
            )
        )
    return sum(enqueue(engine, key, clock=clock).created for key in keys)


def in_campaign(query: Any, campaign_id: int | None) -> Any:
    """``query`` over deliveries, narrowed to one campaign's (``None``: left as it is)."""
    if campaign_id is None:
        return query
    return query.where(
        models.Delivery.decision_id.in_(
            select(models.Decision.id).where(models.Decision.campaign_id == campaign_id)
        )
    )


def waiting_marketing_emails(
    engine: Engine, channels: Sequence[str], campaign_id: int | None
) -> dict[str, int]:
    """Deliveries ``pending`` or ``sending`` on the e-mail ``channels``, per campaign key, for
    the campaigns that are not transactional: what would need an unsubscribe link."""
    waiting = in_campaign(
        select(models.Decision.campaign_id, func.count(models.Delivery.id).label("n"))
        .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
        .where(
            models.Delivery.status.in_([_PENDING, DeliveryStatus.SENDING.value]),
            models.Delivery.channel.in_(channels),
        )
        .group_by(models.Decision.campaign_id),
        campaign_id,
    ).subquery()
    query = (
        select(models.Campaign.key, models.Campaign.definition, waiting.c.n)
        .join(waiting, waiting.c.campaign_id == models.Campaign.id)
        .order_by(models.Campaign.key)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {row.key: int(row.n) for row in rows if not is_transactional(row.definition)}
