"""An unsubscribe or a complaint stops every send at once, whichever way it reaches tummler.

Every way in is driven for real against the example workspace (`tummler init`): the generic
``POST /v1/events``, signed SendGrid and Mailgun webhooks, an SMS ``STOP`` to Twilio's message
webhook, an imported events file, and an unsubscribe link. After each, the consent log holds the
revocation (dated at the event, naming it), the next plan removes the channel for "no consent",
and a delivery planned before it is skipped by the outbox at send time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from provider_signing import twilio_post
from tummler.app.outbox import Unsubscribe, enqueue, run_outbox
from tummler.app.planning import plan_campaign
from tummler.app.unsubscribe import unsubscribe_key
from tummler.core.clock import FrozenClock
from tummler.core.randomness import make_rng
from tummler.core.settings import Settings
from tummler.deliver import FileSinkConnector
from tummler.store.database import session_scope
from tummler.store.models import ConsentEvent, Decision, Delivery, Event
from ways_in import (
    WAYS,
    Brand,
    Person,
    consent_of,
    open_brand,
    via_api,
    via_import,
    via_sendgrid,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def brand(engine: Engine, tmp_path: Path) -> Iterator[Brand]:
    with open_brand(engine, tmp_path, FrozenClock(NOW)) as made:
        yield made


def plan(brand: Brand, campaign: str) -> None:
    plan_campaign(
        brand.engine,
        workspace=brand.workspace,
        campaign_key=campaign,
        clock=FrozenClock(NOW),
        seed=3,
    )


def decisions_of(brand: Brand, person: Person) -> list[Decision]:
    with session_scope(brand.engine) as session:
        return list(session.scalars(select(Decision).where(Decision.contact_id == person.id)))


# --- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("way", list(WAYS))
def test_an_unsubscribe_revokes_consent_at_once_and_the_next_plan_drops_the_channel(
    brand: Brand, way: str
) -> None:
    unsubscribe, channel = WAYS[way]
    person, other = brand.people[1], brand.people[2]
    assert consent_of(brand, person, channel).granted

    unsubscribe(brand, person, channel)

    state = consent_of(brand, person, channel)
    assert (state.status, state.name) == ("revoked", channel)
    assert state.at is not None
    assert state.at <= NOW
    assert consent_of(brand, other, channel).granted  # nobody else's
    other_channel = "sms" if channel == "email" else "email"
    assert consent_of(brand, person, other_channel).granted  # nor another channel's

    plan(brand, f"trust-{channel}")
    (decision,) = decisions_of(brand, person)
    assert decision.channel is None
    assert "no_consent" in decision.reasons["removed"][channel]
    assert "no_consent" not in decisions_of(brand, other)[0].reasons.get("removed", {}).get(
        channel, []
    )


@pytest.mark.parametrize("way", list(WAYS))
def test_a_send_planned_before_the_unsubscribe_is_skipped_at_send_time(
    brand: Brand, way: str, tmp_path: Path
) -> None:
    unsubscribe, channel = WAYS[way]
    campaign = f"trust-{channel}"
    plan(brand, campaign)
    enqueue(brand.engine, campaign, clock=FrozenClock(NOW))
    planned = {d.contact_id for p in brand.people for d in decisions_of(brand, p) if d.channel}
    person, other = [p for p in brand.people if p.id in planned][:2]

    unsubscribe(brand, person, channel)
    sink = tmp_path / "sent.jsonl"
    later = FrozenClock(NOW + 2 * DAY)  # every slot is due; noon in UTC is outside quiet hours
    connectors = {channel: FileSinkConnector(sink, clock=later)}
    key = unsubscribe_key(Settings(workspace=brand.workspace))
    asyncio.run(
        run_outbox(
            brand.engine,
            connectors,
            clock=later,
            rng=make_rng(1),
            unsubscribe=Unsubscribe("https://brand.example/u", key),
        )
    )

    status = _delivery_status(brand.engine)
    assert status[person.id][0] == "skipped"
    assert "consent revoked" in (status[person.id][1] or "")
    assert status[other.id][0] == "sent"
    sent_to = [json.loads(line)["to"] for line in sink.read_text().splitlines()]
    assert (person.email if channel == "email" else person.phone) not in sent_to


def _delivery_status(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Decision.contact_id, Delivery.status, Delivery.last_error).join(
                Delivery, Delivery.decision_id == Decision.id
            )
        ).all()
    return {int(c): (s, e) for c, s, e in rows}


@pytest.mark.parametrize(
    ("way", "scope", "revoked"),
    [
        ("api", "channel", {"email"}),
        ("api", "all", {"email", "sms"}),
        ("sendgrid", "channel", {"email"}),
        ("sendgrid", "all", {"email", "sms"}),
        ("import", "channel", {"email"}),
        ("import", "all", {"email", "sms"}),
    ],
)
def test_a_complaint_revokes_what_the_strategy_says(
    brand: Brand, way: str, scope: str, revoked: set[str]
) -> None:
    strategy = brand.workspace / "strategy.yaml"
    text = strategy.read_text()
    assert "on_complaint: channel" in text
    strategy.write_text(text.replace("on_complaint: channel", f"on_complaint: {scope}"))
    person = brand.people[3]
    if way == "api":
        via_api(brand, person, "email", kind="complained")
    elif way == "sendgrid":
        via_sendgrid(brand, person, "email", kind="spamreport")
    else:
        via_import(brand, person, "email", kind="complained")
    assert {c for c in ("email", "sms") if not consent_of(brand, person, c).granted} == revoked
    with session_scope(brand.engine) as session:
        sources = set(
            session.scalars(
                select(ConsentEvent.source).where(
                    ConsentEvent.contact_id == person.id, ConsentEvent.status == "revoked"
                )
            )
        )
    assert len(sources) == 1
    assert sources.pop().startswith("complained:")


@pytest.mark.parametrize("way", ["api", "sendgrid", "import"])
def test_storing_the_same_unsubscribe_again_writes_no_second_revocation(
    brand: Brand, way: str
) -> None:
    unsubscribe, channel = WAYS[way]
    person = brand.people[4]
    unsubscribe(brand, person, channel)
    unsubscribe(brand, person, channel)  # a retried webhook, a re-imported file
    with session_scope(brand.engine) as session:
        revocations = session.scalars(
            select(ConsentEvent).where(
                ConsentEvent.contact_id == person.id, ConsentEvent.status == "revoked"
            )
        ).all()
    assert len(revocations) == 1


def test_a_grant_after_the_unsubscribe_wins_and_a_later_retry_does_not_undo_it(
    brand: Brand,
) -> None:
    person = brand.people[5]
    via_api(brand, person, "email")
    with session_scope(brand.engine) as session:
        session.add(
            ConsentEvent(
                contact_id=person.id,
                channel="email",
                status="granted",
                source="signup form",
                at=NOW - timedelta(minutes=1),
                recorded_at=NOW - timedelta(minutes=1),
            )
        )
    via_api(brand, person, "email")  # the provider retries the old unsubscribe
    assert consent_of(brand, person, "email").granted


def test_an_sms_reply_that_is_not_a_stop_word_is_a_reply_and_keeps_consent(brand: Brand) -> None:
    person = brand.people[6]
    for n, body in enumerate(["Stop by the shop tomorrow?", "thanks!", "START"]):
        params = {"MessageSid": f"SMx{n}", "From": person.phone, "To": "+15550100", "Body": body}
        response = twilio_post(brand.client, params, path="/v1/callbacks/twilio/messages")
        assert response.status_code == 200, response.text
    assert consent_of(brand, person, "sms").granted
    with session_scope(brand.engine) as session:
        kinds = list(session.scalars(select(Event.type).where(Event.contact_id == person.id)))
    assert kinds.count("replied") == 3
    assert "unsubscribed" not in kinds
