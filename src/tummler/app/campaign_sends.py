"""What a campaign planned and sent, read back from the store.

Readers for whoever follows a campaign from outside the planner and the outbox (the demo's simulated
people answer exactly what was sent): who it decided for, when its next delivery falls due, and
what went out, when, on which channel and with which variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from tummler.core.clock import ensure_utc
from tummler.core.vocabulary import DeliveryStatus
from tummler.store import models

__all__ = ["CampaignSend", "addressed_contacts", "next_due", "sends"]


@dataclass(frozen=True, slots=True)
class CampaignSend:
    """One delivery the outbox marked ``sent``.

    Attributes
    ----------
    contact
        The contact's external id.
    channel, variant
        The channel it went out on and the variant's key.
    sent_local
        When it was sent, in the contact's time zone.
    message_id
        The provider's message id.
    """

    contact: str
    channel: str
    variant: str
    sent_local: datetime
    message_id: str


def next_due(engine: Engine, campaign: str) -> datetime | None:
    """When ``campaign``'s earliest pending delivery is scheduled (UTC); ``None`` when none is."""
    with engine.connect() as connection:
        due = connection.scalar(
            select(func.min(models.Delivery.scheduled_at))
            .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
            .join(models.Campaign, models.Campaign.id == models.Decision.campaign_id)
            .where(
                models.Campaign.key == campaign,
                models.Delivery.status == DeliveryStatus.PENDING.value,
            )
        )
    if due is None:
        return None
    return ensure_utc(due if isinstance(due, datetime) else datetime.fromisoformat(str(due)))


def sends(engine: Engine, campaign: str) -> list[CampaignSend]:
    """``campaign``'s sent deliveries, in the order they were made."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                models.Contact.external_id,
                models.Contact.time_zone,
                models.Delivery.channel,
                models.Delivery.sent_at,
                models.Variant.key,
                models.Delivery.provider_message_id,
            )
            .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
            .join(models.Campaign, models.Campaign.id == models.Decision.campaign_id)
            .join(models.Contact, models.Contact.id == models.Decision.contact_id)
            .join(models.Variant, models.Variant.id == models.Decision.variant_id)
            .where(
                models.Campaign.key == campaign,
                models.Delivery.status == DeliveryStatus.SENT.value,
            )
            .order_by(models.Delivery.id)
        ).all()
    return [
        CampaignSend(
            contact=row.external_id,
            channel=row.channel,
            variant=row.key,
            # ZoneInfo caches its zones itself
            sent_local=ensure_utc(row.sent_at).astimezone(ZoneInfo(row.time_zone)),
            message_id=str(row.provider_message_id),
        )
        for row in rows
    ]


def addressed_contacts(engine: Engine, campaign: str) -> list[str]:
    """The external ids of the contacts ``campaign`` decided for and did not hold out."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(models.Contact.external_id)
                .join(models.Decision, models.Decision.contact_id == models.Contact.id)
                .join(models.Campaign, models.Campaign.id == models.Decision.campaign_id)
                .where(models.Campaign.key == campaign, models.Decision.holdout.is_(False))
                .distinct()
            ).all()
        )
