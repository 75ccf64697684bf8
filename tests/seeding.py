"""Contacts a plan can reach, and what the outbox did with a plan's messages, for the store tests
of planning, learning and reporting.

One contact is a ``contacts`` row with a channel identity and a granted consent per channel, and,
when asked, a recent e-mail click (the example campaigns' audiences are the recently engaged).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from tummler.app.outbox import enqueue
from tummler.app.workspace import open_store
from tummler.core.clock import FrozenClock
from tummler.core.settings import load_settings
from tummler.store.database import session_scope
from tummler.store.models import (
    Campaign,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    Decision,
    Delivery,
    Event,
)

DAY = timedelta(days=1)


@contextmanager
def workspace_store(workspace: Path) -> Iterator[Engine]:
    """An engine on ``workspace``'s store, disposed of when the block ends."""
    engine = open_store(load_settings(workspace))
    try:
        yield engine
    finally:
        engine.dispose()


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


def add_recent_clickers(engine: Engine, n: int, *, now: datetime) -> None:
    """``n`` customers ``c0``.. reachable on e-mail and SMS, each with a click in the last 20 days
    (an audience of recently engaged customers), half in Berlin and half in UTC."""
    with session_scope(engine) as session:
        for i in range(n):
            add_reachable(
                session,
                f"c{i}",
                {"email": f"c{i}@example.org", "sms": f"+49151{i:07d}"},
                now=now,
                zone=("Europe/Berlin", "UTC")[i % 2],
                attributes={"first_name": f"C{i}", "city": "Berlin", "lifetime_value": float(i)},
                clicked_ago=(1 + i % 20) * DAY,
            )


#: What the outbox can have done with a decision's message, as :func:`record_sends` writes it:
#: ``bounced`` is a message handed over and later reported bounced (``failed`` with a
#: ``sent_at``); ``pending`` leaves the delivery as enqueued; ``None`` removes it (never enqueued).
SEND_OUTCOMES = ("sent", "bounced", "skipped", "failed", "dead", "unknown", "pending", None)


def record_sends(
    engine: Engine,
    campaign_key: str,
    *,
    at: datetime,
    outcomes: Mapping[int, str | None] | None = None,
    default: str | None = "sent",
) -> dict[str | None, int]:
    """Enqueue a campaign's deliveries with the outbox's own :func:`enqueue`, then record what
    became of each, as the outbox would: ``outcomes`` by decision id, ``default`` for the rest.

    A message handed over is sent at its decision's ``send_at`` (``at`` when it has none); every
    other change is dated ``at``. Returns how many deliveries got each outcome."""
    enqueue(engine, campaign_key, clock=FrozenClock(at))
    chosen = dict(outcomes or {})
    changes: list[dict[str, Any]] = []
    gone: list[int] = []
    counts: dict[str | None, int] = {}
    with session_scope(engine) as session:
        rows = session.execute(
            select(Delivery.id, Delivery.decision_id, Decision.send_at)
            .join(Decision, Decision.id == Delivery.decision_id)
            .join(Campaign, Campaign.id == Decision.campaign_id)
            .where(Campaign.key == campaign_key)
        ).all()
        for delivery_id, decision_id, send_at in rows:
            outcome = chosen.get(int(decision_id), default)
            if outcome not in SEND_OUTCOMES:
                raise ValueError(f"unknown send outcome {outcome!r}; one of {SEND_OUTCOMES}")
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome is None:
                gone.append(int(delivery_id))
            elif outcome != "pending":
                handed_over = outcome in ("sent", "bounced")
                changes.append(
                    {
                        "id": int(delivery_id),
                        "status": "failed" if outcome == "bounced" else outcome,
                        "sent_at": (send_at or at) if handed_over else None,
                        "updated_at": at,
                    }
                )
        if changes:
            session.execute(update(Delivery), changes)
        if gone:
            session.execute(delete(Delivery).where(Delivery.id.in_(gone)))
    return counts
