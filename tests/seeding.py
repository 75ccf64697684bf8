"""Contacts a plan can reach, for the store tests of planning and learning.

One contact is a ``contacts`` row with a channel identity and a granted consent per channel, and,
when asked, a recent e-mail click (the example campaigns' audiences are the recently engaged).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tummler.store.models import ChannelIdentity, ConsentEvent, Contact, Event

DAY = timedelta(days=1)


def add_reachable(
    session: Session,
    key: str,
    channels: Mapping[str, str],
    *,
    now: datetime,
    stage: str = "customer",
    zone: str = "UTC",
    attributes: Mapping[str, Any] | None = None,
    since: timedelta = 200 * DAY,
    consent_since: timedelta = 100 * DAY,
    clicked_ago: timedelta | None = None,
    without_consent: Collection[str] = (),
) -> int:
    """Add contact ``key`` with an identity (address by channel) and a granted consent on every
    channel of ``channels`` but ``without_consent``; ``clicked_ago``: an e-mail click that long
    before ``now``. Returns the contact's id."""
    row = Contact(
        external_id=key,
        stage=stage,
        time_zone=zone,
        attributes=dict(attributes if attributes is not None else {"first_name": key}),
        created_at=now - since,
        updated_at=now - since,
    )
    session.add(row)
    session.flush()
    for channel, address in channels.items():
        session.add(
            ChannelIdentity(contact_id=row.id, channel=channel, address=address, created_at=now)
        )
        if channel not in without_consent:
            session.add(
                ConsentEvent(
                    contact_id=row.id,
                    channel=channel,
                    status="granted",
                    source="signup",
                    at=now - consent_since,
                    recorded_at=now - consent_since,
                )
            )
    if clicked_ago is not None:
        session.add(
            Event(
                contact_id=row.id,
                channel="email",
                type="clicked",
                at=now - clicked_ago,
                source="test",
                provider_event_id=f"click-{key}",
            )
        )
    return int(row.id)
