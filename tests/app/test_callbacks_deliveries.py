"""Provider callbacks land on the delivery (and so the decision) their message id names, both backends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tummler.api import ApiSettings, create_app
from tummler.api.signatures import twilio_signature
from tummler.app.callbacks import IncomingEvent, RejectedEventsError, bare_message_id, record_events
from tummler.core.clock import FrozenClock
from tummler.core.errors import InputError
from tummler.core.settings import Settings
from tummler.core.vocabulary import EventType
from tummler.deliver import stable_message_id
from tummler.store.database import session_scope
from tummler.store.models import (
    Campaign,
    ChannelIdentity,
    Contact,
    Decision,
    Delivery,
    Event,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))
MAILGUN_KEY = "mailgun-signing-key"
TWILIO_TOKEN = "twilio-auth-token"
PUBLIC_URL = "https://tummler.example.org"
SMTP_KEY = "spring:c1:email"
SMTP_ID = stable_message_id(SMTP_KEY, "news.example.org")

_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    _PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@dataclass(frozen=True)
class World:
    client: TestClient
    engine: Engine
    ana: int
    bob: int
    #: delivery id -> decision id
    decisions: dict[str, tuple[int, int]]


def _contact(session: Any, external: str, email: str, phone: str) -> int:
    contact = Contact(external_id=external, created_at=NOW, updated_at=NOW)
    session.add(contact)
    session.flush()
    session.add_all(
        [
            ChannelIdentity(contact_id=contact.id, channel="email", address=email, created_at=NOW),
            ChannelIdentity(contact_id=contact.id, channel="sms", address=phone, created_at=NOW),
        ]
    )
    return int(contact.id)


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    """Ana and Bob; Bob has three deliveries (SendGrid, SMTP, Twilio) with known message ids."""
    decisions: dict[str, tuple[int, int]] = {}
    with session_scope(engine) as session:
        ana = _contact(session, "c1", "ana@example.org", "+33612345678")
        bob = _contact(session, "c2", "bob@example.org", "+33612345679")
        campaign = Campaign(key="spring", objective="purchase", created_at=NOW, updated_at=NOW)
        session.add(campaign)
        session.flush()
        for lever, (name, channel, message_id, status) in enumerate(
            [
                ("sendgrid", "email", "14c5d75ce93.dfd.64b469", "sent"),
                ("smtp", "email", SMTP_ID, "unknown"),
                ("twilio", "sms", "SM42", "sent"),
                ("done", "email", "mg-1@mail.example.org", "failed"),
            ]
        ):
            decision = Decision(
                campaign_id=campaign.id,
                contact_id=bob,
                lever=lever,
                channel=channel,
                action=1,
                propensity=0.5,
                decided_at=NOW - timedelta(hours=1),
            )
            session.add(decision)
            session.flush()
            delivery = Delivery(
                decision_id=decision.id,
                idempotency_key=SMTP_KEY if name == "smtp" else f"spring:{name}",
                channel=channel,
                status=status,
                attempts=1,
                last_error="smtp: 550 no such user" if status == "failed" else None,
                provider_message_id=message_id,
                scheduled_at=NOW - timedelta(hours=1),
                sent_at=NOW - timedelta(minutes=50) if status == "sent" else None,
                updated_at=NOW - timedelta(minutes=50),
            )
            session.add(delivery)
            session.flush()
            decisions[name] = (int(delivery.id), int(decision.id))
    settings = ApiSettings(
        sendgrid_verification_key=SENDGRID_PUBLIC,
        mailgun_signing_key=MAILGUN_KEY,
        twilio_auth_token=TWILIO_TOKEN,
    )
    app = create_app(
        Settings(workspace=tmp_path, public_url=PUBLIC_URL + "/"),
        engine,
        api_settings=settings,
        clock=FrozenClock(NOW),
    )
    with TestClient(app) as client:
        yield World(client, engine, ana, bob, decisions)


def post_sendgrid(client: TestClient, items: list[dict[str, Any]]) -> Any:
    body = json.dumps(items).encode()
    signature = _PRIVATE.sign(STAMP.encode() + body, ec.ECDSA(hashes.SHA256()))
    return client.post(
        "/v1/callbacks/sendgrid",
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": STAMP,
            "Content-Type": "application/json",
        },
    )


def post_mailgun(client: TestClient, event: dict[str, Any]) -> Any:
    token = "a" * 50
    digest = hmac.new(MAILGUN_KEY.encode(), (STAMP + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": STAMP, "token": token, "signature": digest}}
    return client.post("/v1/callbacks/mailgun", json={**body, "event-data": event})


def post_twilio(client: TestClient, params: dict[str, str]) -> Any:
    url = f"{PUBLIC_URL}/v1/callbacks/twilio"
    return client.post(
        "/v1/callbacks/twilio",
        content=urlencode(params).encode(),
        headers={
            "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, list(params.items())),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def sg(event: str, number: int, email: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "event": event,
        "timestamp": int(NOW.timestamp()) + number,
        "sg_event_id": f"sg-{number}",
        **extra,
    }


def events(engine: Engine) -> list[tuple[str, int, int | None, str]]:
    with session_scope(engine) as session:
        return [
            (e.type, e.contact_id, e.decision_id, e.provider_event_id)
            for e in session.scalars(select(Event).order_by(Event.id))
        ]


def delivery(engine: Engine, delivery_id: int) -> tuple[str, str | None]:
    with session_scope(engine) as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row.status, row.last_error


def test_sendgrid_message_id_lands_on_the_delivery_and_its_decision(world: World) -> None:
    delivery_id, decision_id = world.decisions["sendgrid"]
    # Sent to an address SendGrid reports differently from the one on file: the message id wins.
    message = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
    response = post_sendgrid(
        world.client,
        [
            sg("processed", 1, "ana@example.org", sg_message_id=message),
            sg("delivered", 2, "ana@example.org", sg_message_id=message),
            sg("click", 3, "ana@example.org", sg_message_id=message),
        ],
    )
    assert response.status_code == 200, response.text
    assert events(world.engine) == [
        ("sent", world.bob, decision_id, "sg-1"),
        ("delivered", world.bob, decision_id, "sg-2"),
        ("clicked", world.bob, decision_id, "sg-3"),
    ]
    assert delivery(world.engine, delivery_id) == ("sent", None)  # delivered keeps sent


def test_a_bounce_marks_the_delivery_failed_with_the_reason_and_never_goes_back(
    world: World,
) -> None:
    delivery_id, decision_id = world.decisions["sendgrid"]
    reason = "550 5.1.1 The email account does not exist"
    message = {"sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.1"}
    response = post_sendgrid(
        world.client, [sg("bounce", 1, "bob@example.org", reason=reason, **message)]
    )
    assert response.status_code == 200, response.text
    assert delivery(world.engine, delivery_id) == ("failed", f"sendgrid: {reason}")
    # A late "delivered" does not move a failed delivery back to sent; the event is still kept.
    response = post_sendgrid(world.client, [sg("delivered", 2, "bob@example.org", **message)])
    assert response.json()["accepted"] == 1
    assert delivery(world.engine, delivery_id) == ("failed", f"sendgrid: {reason}")
    assert [e[:3] for e in events(world.engine)] == [
        ("bounced", world.bob, decision_id),
        ("delivered", world.bob, decision_id),
    ]


def test_mailgun_finds_the_smtp_message_id_tummler_set(world: World) -> None:
    delivery_id, decision_id = world.decisions["smtp"]
    response = post_mailgun(
        world.client,
        {
            "event": "delivered",
            "id": "mg-ev-1",
            "timestamp": NOW.timestamp(),
            "recipient": "bob@example.org",
            "message": {"headers": {"message-id": bare_message_id(SMTP_ID)}},
        },
    )
    assert response.status_code == 200, response.text
    assert events(world.engine) == [("delivered", world.bob, decision_id, "mg-ev-1")]
    # unknown: the connector could not tell; the provider's report settles it as sent.
    assert delivery(world.engine, delivery_id) == ("sent", None)


def test_mailgun_permanent_failure_names_the_providers_words(world: World) -> None:
    delivery_id, _ = world.decisions["smtp"]
    response = post_mailgun(
        world.client,
        {
            "event": "failed",
            "severity": "permanent",
            "id": "mg-ev-2",
            "timestamp": NOW.timestamp(),
            "recipient": "bob@example.org",
            "message": {"headers": {"message-id": SMTP_ID}},
            "delivery-status": {"message": "mailbox full", "code": 552},
        },
    )
    assert response.status_code == 200, response.text
    assert delivery(world.engine, delivery_id) == ("failed", "mailgun: mailbox full")


def test_a_failed_delivery_is_not_touched_again(world: World) -> None:
    delivery_id, decision_id = world.decisions["done"]
    response = post_mailgun(
        world.client,
        {
            "event": "rejected",
            "id": "mg-ev-3",
            "timestamp": NOW.timestamp(),
            "recipient": "bob@example.org",
            "message": {"headers": {"message-id": "<mg-1@mail.example.org>"}},
            "reason": "suppressed",
        },
    )
    assert response.status_code == 200, response.text
    assert delivery(world.engine, delivery_id) == ("failed", "smtp: 550 no such user")
    assert events(world.engine) == [("bounced", world.bob, decision_id, "mg-ev-3")]


def test_twilio_message_sid_lands_on_the_sms_delivery(world: World) -> None:
    delivery_id, decision_id = world.decisions["twilio"]
    params = {"MessageSid": "SM42", "To": "+33612345678", "AccountSid": "AC1"}
    for status in ("delivered", "undelivered"):
        extra = {"ErrorCode": "30005"} if status == "undelivered" else {}
        response = post_twilio(world.client, {**params, "MessageStatus": status, **extra})
        assert response.status_code == 200, response.text
    assert events(world.engine) == [
        ("delivered", world.bob, decision_id, "SM42/delivered"),
        ("bounced", world.bob, decision_id, "SM42/undelivered"),
    ]
    assert delivery(world.engine, delivery_id) == (
        "failed",
        "twilio: Twilio undelivered, error 30005",
    )


def test_no_matching_delivery_falls_back_to_the_address(world: World) -> None:
    response = post_sendgrid(
        world.client,
        [sg("bounce", 1, "ana@example.org", sg_message_id="nobody-sent-this.filter1")],
    )
    assert response.status_code == 200, response.text
    assert events(world.engine) == [("bounced", world.ana, None, "sg-1")]
    for name in ("sendgrid", "smtp", "twilio"):
        assert delivery(world.engine, world.decisions[name][0])[0] != "failed"


def test_duplicates_are_dropped_and_move_nothing_twice(world: World) -> None:
    delivery_id, _ = world.decisions["sendgrid"]
    item = sg("bounce", 1, "bob@example.org", sg_message_id="14c5d75ce93.dfd.64b469", reason="x")
    assert post_sendgrid(world.client, [item, item]).json()["duplicates"] == 1
    # Put the delivery back by hand: a retried webhook must not bounce it again.
    with session_scope(world.engine) as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        row.status, row.last_error = "sent", None
    response = post_sendgrid(world.client, [item])
    assert response.json()["accepted"] == 0
    assert response.json()["duplicates"] == 1
    assert delivery(world.engine, delivery_id) == ("sent", None)
    assert len(events(world.engine)) == 1


def test_unknown_message_id_and_unknown_address_is_refused_whole(world: World) -> None:
    response = post_sendgrid(
        world.client,
        [
            sg("delivered", 1, "bob@example.org", sg_message_id="14c5d75ce93.dfd.64b469"),
            sg("bounce", 2, "nobody@example.org", sg_message_id="unknown.filter2"),
        ],
    )
    assert response.status_code == 422
    assert "nobody@example.org" in response.text
    assert events(world.engine) == []
    assert delivery(world.engine, world.decisions["sendgrid"][0]) == ("sent", None)


def test_generic_event_by_message_id_alone(world: World) -> None:
    delivery_id, decision_id = world.decisions["smtp"]
    report = record_events(
        world.engine,
        [
            IncomingEvent(
                EventType.CONVERTED,
                NOW,
                value=12.5,
                provider_event_id="order-9",
                provider_message_id=SMTP_ID,
            )
        ],
    )
    assert report.accepted == 1
    assert events(world.engine) == [("converted", world.bob, decision_id, "order-9")]
    assert delivery(world.engine, delivery_id)[0] == "unknown"  # a conversion says nothing of it
    with pytest.raises(RejectedEventsError, match="no delivery with provider message id 'nope'"):
        record_events(
            world.engine, [IncomingEvent(EventType.OPENED, NOW, provider_message_id="nope")]
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_event_must_name_a_person_or_a_message(engine: Engine) -> None:
    with pytest.raises(InputError, match="exactly one of contact"):
        IncomingEvent(EventType.OPENED, NOW)
    with pytest.raises(InputError, match="got email, phone"):
        IncomingEvent(EventType.OPENED, NOW, email="a@b.c", phone="+1", provider_message_id="m")
    assert bare_message_id(" <a@b> ") == "a@b"


def test_the_generic_route_finds_the_person_by_provider_message_id(
    world: World, tmp_path: Path
) -> None:
    from tummler.api import Role, hash_api_key

    _, decision_id = world.decisions["twilio"]
    keys = ApiSettings(api_keys={hash_api_key("k"): Role.PARTNER})
    app = create_app(
        Settings(workspace=tmp_path), world.engine, api_settings=keys, clock=FrozenClock(NOW)
    )
    body = {
        "type": "replied",
        "channel": "sms",
        "at": STAMP,
        "provider_message_id": "SM42",
        "provider_event_id": "reply-1",
        "source": "partner",
    }
    with TestClient(app) as client:
        accepted = client.post("/v1/events", json=body, headers={"X-API-Key": "k"})
        nobody = client.post(
            "/v1/events", json={**body, "provider_message_id": None}, headers={"X-API-Key": "k"}
        )
    assert accepted.status_code == 200, accepted.text
    assert events(world.engine) == [("replied", world.bob, decision_id, "reply-1")]
    assert nobody.status_code == 422
    assert "provider_message_id" in nobody.text
