"""What is in the outbox: deliveries with their state, newest first, and counts per status."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from tummler.store import models

__all__ = ["DeliveryListing", "DeliveryRow", "list_deliveries"]


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as ``tummler deliveries`` shows it."""

    id: int
    campaign: str
    channel: str
    status: str
    attempts: int
    scheduled_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryListing:
    """The newest deliveries that match, and how many match per status (all of them, not only
    those listed)."""

    rows: list[DeliveryRow]
    counts: Counter[str]


def _matching(query: Any, status: str | None, campaign: str | None) -> Any:
    query = query.join(models.Decision, models.Decision.id == models.Delivery.decision_id).join(
        models.Campaign, models.Campaign.id == models.Decision.campaign_id
    )
    if status is not None:
        query = query.where(models.Delivery.status == status)
    if campaign is not None:
        query = query.where(models.Campaign.key == campaign)
    return query


def list_deliveries(
    engine: Engine, *, status: str | None = None, campaign: str | None = None, limit: int = 50
) -> DeliveryListing:
    """The newest ``limit`` deliveries, of one ``status`` and one ``campaign`` key when given."""
    rows = _matching(
        select(
            models.Delivery.id,
            models.Campaign.key,
            models.Delivery.channel,
            models.Delivery.status,
            models.Delivery.attempts,
            models.Delivery.scheduled_at,
            models.Delivery.sent_at,
            models.Delivery.last_error,
        ),
        status,
        campaign,
    )
    counting = _matching(
        select(models.Delivery.status, func.count(models.Delivery.id)), status, campaign
    ).group_by(models.Delivery.status)
    with engine.connect() as connection:
        found = connection.execute(rows.order_by(models.Delivery.id.desc()).limit(limit)).all()
        counts = Counter({str(s): int(n) for s, n in connection.execute(counting)})
    return DeliveryListing([DeliveryRow(*row) for row in found], counts)
