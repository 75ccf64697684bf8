"""Provider webhooks: signatures checked, event names mapped, retries de-duplicated, both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from provider_signing import (
    STAMP,
    mailgun_body,
    provider_settings,
    sendgrid_headers,
    signed_then_redated,
    twilio_post,
    workspace_settings,
)
from tummler.api import ApiSettings, create_app
from tummler.app.callbacks import MAILGUN_EVENTS, SENDGRID_EVENTS, TWILIO_STATUSES
from tummler.core.clock import FrozenClock
from tummler.core.vocabulary import EventType
from tummler.store.database import session_scope
from tummler.store.models import ChannelIdentity, Contact, Event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

#: Checks made before the store is touched (authentication, validation) run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def stored(engine: Engine) -> list[tuple[str, str | None, str, str, datetime]]:
    with session_scope(engine) as session:
        return [
            (e.type, e.channel, e.source, e.provider_event_id, e.at)
            for e in session.scalars(select(Event).order_by(Event.id))
        ]


def _app(engine: Engine, tmp_path: Path, api_settings: ApiSettings) -> TestClient:
    app = create_app(
        workspace_settings(tmp_path), engine, api_settings=api_settings, clock=FrozenClock(NOW)
    )
    return TestClient(app)


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    with session_scope(engine) as session:
        contact = Contact(external_id="c1", created_at=NOW, updated_at=NOW)
        session.add(contact)
        session.flush()
        session.add_all(
            [
                ChannelIdentity(
                    contact_id=contact.id,
                    channel="email",
                    address="ana@example.org",
                    created_at=NOW,
                ),
                ChannelIdentity(
                    contact_id=contact.id, channel="sms", address="+33612345678", created_at=NOW
                ),
            ]
        )
    with _app(engine, tmp_path, provider_settings()) as test_client:
        yield test_client


# --- SendGrid ------------------------------------------------------------------------------------


def sg(event: str, number: int, email: str = "Ana@example.org") -> dict[str, Any]:
    return {
        "email": email,
        "event": event,
        "timestamp": 1772445600 + number,
        "sg_event_id": f"sg-{number}",
        "sg_message_id": "m1",
    }


def test_sendgrid_events_are_mapped_and_stored_once(client: TestClient, engine: Engine) -> None:
    names = ["processed", "delivered", "open", "click", "spamreport", "deferred", "unsubscribe"]
    body = json.dumps([sg(name, i) for i, name in enumerate(names)]).encode()
    response = client.post("/v1/callbacks/sendgrid", content=body, headers=sendgrid_headers(body))
    assert response.status_code == 200
    # the unsubscribe revokes e-mail; this workspace has no strategy, so the spam complaint takes
    # the strictest rule and revokes every channel kind (6)
    assert response.json() == {
        "accepted": 6,
        "duplicates": 0,
        "ignored": 1,
        "suppressed": 0,
        "revoked": 7,
    }
    rows = stored(engine)
    assert [row[0] for row in rows] == [
        "sent",
        "delivered",
        "opened",
        "clicked",
        "complained",
        "unsubscribed",
    ]
    assert {row[1:3] for row in rows} == {("email", "sendgrid")}
    assert rows[0][3:] == ("sg-0", datetime.fromtimestamp(1772445600, UTC))
    again = client.post("/v1/callbacks/sendgrid", content=body, headers=sendgrid_headers(body))
    assert again.json() == {
        "accepted": 0,
        "duplicates": 6,
        "ignored": 1,
        "suppressed": 0,
        "revoked": 0,
    }
    assert len(stored(engine)) == 6


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("tamper", "fragment"),
    [
        (lambda body, headers: (body + b" ", headers), "does not match"),
        (
            lambda body, headers: (
                body,
                {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1"},
            ),
            "does not match",
        ),
        (
            lambda body, headers: (
                body,
                {k: v for k, v in headers.items() if k != "X-Twilio-Email-Event-Webhook-Signature"},
            ),
            "Signed Event Webhook",
        ),
        (
            lambda body, headers: (
                body,
                {**headers, "X-Twilio-Email-Event-Webhook-Signature": "!!not base64!!"},
            ),
            "not base64",
        ),
        (
            lambda body, _headers: (body, sendgrid_headers(body, timestamp=str(int(STAMP) - 3600))),
            "more than 300 s",
        ),
    ],
    ids=["body changed", "timestamp changed", "unsigned", "garbage signature", "replayed late"],
)
def test_sendgrid_without_a_valid_signature_is_refused(
    client: TestClient, engine: Engine, tamper: Any, fragment: str
) -> None:
    body = json.dumps([sg("click", 1)]).encode()
    sent_body, headers = tamper(body, sendgrid_headers(body))
    response = client.post("/v1/callbacks/sendgrid", content=sent_body, headers=headers)
    assert response.status_code == 401
    assert fragment in response.json()["detail"]
    assert stored(engine) == []


@SQLITE_ONLY
def test_sendgrid_item_problems_are_named_by_index(client: TestClient, engine: Engine) -> None:
    items: list[Any] = [
        sg("click", 0),
        sg("bogus", 1),
        {"event": "open"},
        sg("open", 3, "x"),
        {**sg("open", 4), "event": ["open"]},
        "not an object",
    ]
    body = json.dumps(items).encode()
    response = client.post("/v1/callbacks/sendgrid", content=body, headers=sendgrid_headers(body))
    assert response.status_code == 422
    locs = [(p["loc"], p["msg"][:30]) for p in response.json()["detail"]]
    assert locs == [
        (["body", 1, "event"], "unknown SendGrid event 'bogus'"),
        (["body", 2, "email"], "missing required value"),
        (["body", 2, "timestamp"], "missing required value"),
        (["body", 3, "email"], "not a valid e-mail address: An"),
        (["body", 4, "event"], "unknown SendGrid event ['open'"),
        (["body", 5, "item"], "expected a JSON object"),
    ]
    assert stored(engine) == []


def test_sendgrid_for_an_unknown_recipient_is_refused_whole(
    client: TestClient, engine: Engine
) -> None:
    body = json.dumps([sg("click", 0), sg("click", 1, "nobody@example.org")]).encode()
    response = client.post("/v1/callbacks/sendgrid", content=body, headers=sendgrid_headers(body))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", 1, "email"]
    assert "nobody@example.org" in response.json()["detail"][0]["msg"]
    assert stored(engine) == []


@SQLITE_ONLY
def test_sendgrid_that_is_not_an_array_is_refused(client: TestClient) -> None:
    body = json.dumps(sg("click", 0)).encode()
    response = client.post("/v1/callbacks/sendgrid", content=body, headers=sendgrid_headers(body))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "body"]


# --- Mailgun -------------------------------------------------------------------------------------


def mg(event: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "recipient": "ana@example.org",
        "timestamp": 1772445600.25,
        "id": event_id,
        **extra,
    }


def test_mailgun_events_are_verified_mapped_and_deduplicated(
    client: TestClient, engine: Engine
) -> None:
    assert client.post("/v1/callbacks/mailgun", json=mailgun_body(mg("clicked", "e1"))).json() == {
        "accepted": 1,
        "duplicates": 0,
        "ignored": 0,
        "suppressed": 0,
        "revoked": 0,
    }
    failed = mg("failed", "e2", severity="permanent")
    assert client.post("/v1/callbacks/mailgun", json=mailgun_body(failed)).json()["accepted"] == 1
    temporary = mg("failed", "e3", severity="temporary")
    assert client.post("/v1/callbacks/mailgun", json=mailgun_body(temporary)).json() == {
        "accepted": 0,
        "duplicates": 0,
        "ignored": 1,
        "suppressed": 0,
        "revoked": 0,
    }
    again = client.post("/v1/callbacks/mailgun", json=mailgun_body(mg("clicked", "e1")))
    assert again.json()["duplicates"] == 1
    assert [row[:4] for row in stored(engine)] == [
        ("clicked", "email", "mailgun", "e1"),
        ("bounced", "email", "mailgun", "e2"),
    ]
    assert stored(engine)[0][4] == datetime.fromtimestamp(1772445600.25, UTC)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (mailgun_body(mg("clicked", "e1"), key="wrong key"), "does not match"),
        (signed_then_redated(mg("clicked", "e1")), "does not match"),
        ({"event-data": mg("clicked", "e1")}, "no signature"),
    ],
    ids=["wrong key", "timestamp changed", "unsigned"],
)
def test_mailgun_without_a_valid_signature_is_refused(
    client: TestClient, engine: Engine, body: Any, fragment: str
) -> None:
    response = client.post("/v1/callbacks/mailgun", json=body)
    assert response.status_code == 401
    assert fragment in response.json()["detail"]
    assert stored(engine) == []


@SQLITE_ONLY
def test_mailgun_replayed_after_the_tolerance_is_refused(client: TestClient) -> None:
    old = str(int(STAMP) - 301)
    response = client.post(
        "/v1/callbacks/mailgun", json=mailgun_body(mg("clicked", "e1"), timestamp=old)
    )
    assert response.status_code == 401
    assert "more than 300 s" in response.json()["detail"]


@SQLITE_ONLY
def test_mailgun_event_problems_name_the_field(client: TestClient) -> None:
    event = mg("teleported", "e1")
    del event["recipient"]
    event["id"] = {"not": "text"}
    response = client.post("/v1/callbacks/mailgun", json=mailgun_body(event))
    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["detail"]] == [
        ["body", "event-data.recipient"],
        ["body", "event-data.id"],
        ["body", "event-data.event"],
    ]


# --- Twilio --------------------------------------------------------------------------------------


def tw(status: str, sid: str = "SM1") -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "To": "+33612345678", "AccountSid": "AC1"}


def test_twilio_statuses_are_verified_mapped_and_deduplicated(
    client: TestClient, engine: Engine
) -> None:
    for status, expected in [("sending", 0), ("delivered", 1), ("delivered", 0), ("failed", 1)]:
        response = twilio_post(client, tw(status, "SM1" if status != "failed" else "SM2"))
        assert response.status_code == 200
        assert response.json()["accepted"] == expected
    assert stored(engine) == [
        ("delivered", "sms", "twilio", "SM1/delivered", NOW),
        ("bounced", "sms", "twilio", "SM2/failed", NOW),
    ]


@SQLITE_ONLY
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "AAAA"}],
    ids=["unsigned", "wrong signature"],
)
def test_twilio_without_a_valid_signature_is_refused(
    client: TestClient, engine: Engine, headers: dict[str, str]
) -> None:
    response = client.post(
        "/v1/callbacks/twilio",
        content=urlencode(tw("delivered")).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    assert response.status_code == 401
    assert stored(engine) == []


@SQLITE_ONLY
def test_twilio_signed_with_another_token_is_refused(client: TestClient) -> None:
    assert twilio_post(client, tw("delivered"), token="other").status_code == 401


def test_twilio_for_an_unknown_number_is_refused(client: TestClient, engine: Engine) -> None:
    response = twilio_post(client, {**tw("delivered"), "To": "+33700000000"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", 0, "phone"]
    assert stored(engine) == []


# --- configuration and mapping tables ------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("path", "variable"),
    [
        ("/v1/callbacks/sendgrid", "TUMMLER_SENDGRID_VERIFICATION_KEY"),
        ("/v1/callbacks/mailgun", "TUMMLER_MAILGUN_SIGNING_KEY"),
        ("/v1/callbacks/twilio", "TUMMLER_TWILIO_AUTH_TOKEN"),
    ],
)
def test_a_provider_without_its_secret_is_refused_with_503(
    engine: Engine, tmp_path: Path, path: str, variable: str
) -> None:
    with _app(engine, tmp_path, ApiSettings()) as client:
        response = client.post(path, content=b"[]")
    assert response.status_code == 503
    assert variable in response.json()["detail"]


@pytest.mark.parametrize("table", [SENDGRID_EVENTS, MAILGUN_EVENTS, TWILIO_STATUSES])
def test_provider_tables_map_onto_event_types_and_never_onto_a_reward_by_accident(
    table: dict[str, EventType | None],
) -> None:
    mapped = {kind for kind in table.values() if kind is not None}
    assert mapped <= set(EventType)
    assert EventType.CONVERTED not in mapped  # providers never see a purchase
