"""The ways in by which a person withdraws consent, driven for real against an example brand.

:func:`open_brand` makes the example workspace (`tummler init`) with two one-channel campaigns and
reachable people, and serves the HTTP app; each ``via_*`` function withdraws one person's consent
on one channel the way a real caller would: ``POST /v1/events``, a signed SendGrid or Mailgun
webhook, an SMS ``STOP`` to Twilio's message webhook, an imported events file, an unsubscribe link.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from provider_signing import (
    mailgun_body,
    provider_settings,
    sendgrid_headers,
    twilio_post,
    workspace_settings,
)
from seeding import add_reachable
from tummler.api import Role, create_app, hash_api_key
from tummler.app.consent import ConsentState, consent_names, current_consent
from tummler.app.ingest import import_file
from tummler.app.strategy import consent_rules
from tummler.app.unsubscribe import make_unsubscribe_token, unsubscribe_key
from tummler.app.workspace import init_workspace
from tummler.core.clock import FrozenClock
from tummler.core.settings import Settings
from tummler.store.database import session_scope

DAY = timedelta(days=1)
#: The API key the brand's app accepts (role marketer).
KEY = "marketer-key"


@dataclass(frozen=True)
class Person:
    external_id: str
    id: int
    email: str
    phone: str


@dataclass
class Brand:
    """The example workspace with two one-channel campaigns, reachable people, and the HTTP app
    on ``clock`` (every way in reads "now" from it)."""

    engine: Engine
    workspace: Path
    client: TestClient
    people: list[Person]
    clock: FrozenClock


def _campaign(channel: str) -> str:
    """A campaign of the example strategy on one channel, so each test knows the channel."""
    body = (
        '    - id: a\n      subject: "{{ first_name }}, fresh roast"\n      body: Fresh coffee.\n'
        if channel == "email"
        else '    - id: a\n      body: "{{ first_name }}, fresh coffee."\n'
    )
    return (
        f"id: trust-{channel}\nobjective: repeat-purchase\npillar: freshness\n"
        f"audience: active-customers\nchannels: [{channel}]\nvariants:\n  {channel}:\n{body}"
        "holdout_share: 0.05\n"
    )


@contextmanager
def open_brand(engine: Engine, root: Path, clock: FrozenClock, people: int = 24) -> Iterator[Brand]:
    """Make the brand in ``root`` on ``engine`` and serve its HTTP app for the block."""
    workspace = root / "ws"
    init_workspace(workspace)
    for channel in ("email", "sms"):
        (workspace / "campaigns" / f"trust-{channel}.yaml").write_text(_campaign(channel))
    now = clock.now()
    seeded = []
    with session_scope(engine) as session:
        for i in range(people):
            email, phone = f"p{i}@example.org", f"+4915100000{i:02d}"
            contact_id = add_reachable(
                session,
                f"p{i}",
                {"email": email, "sms": phone},
                now=now,
                clicked_ago=(1 + i % 5) * DAY,
            )
            seeded.append(Person(f"p{i}", contact_id, email, phone))
    api_settings = provider_settings(api_keys={hash_api_key(KEY): Role.MARKETER})
    app = create_app(workspace_settings(workspace), engine, api_settings=api_settings, clock=clock)
    with TestClient(app) as client:
        yield Brand(engine, workspace, client, seeded, clock)


# --- the ways in -----------------------------------------------------------------------------------


def _ok(response: Any) -> None:
    assert response.status_code == 200, response.text


def via_api(brand: Brand, person: Person, channel: str, kind: str = "unsubscribed") -> None:
    body = {
        "contact": person.external_id,
        "type": kind,
        "channel": channel,
        "at": _iso(_earlier(brand)),
    }
    _ok(brand.client.post("/v1/events", json=body, headers={"Authorization": f"Bearer {KEY}"}))


def via_sendgrid(brand: Brand, person: Person, channel: str, kind: str = "unsubscribe") -> None:
    assert channel == "email"
    item = {
        "email": person.email,
        "event": kind,
        "timestamp": int(_earlier(brand).timestamp()),
        "sg_event_id": f"sg-{person.external_id}-{kind}",
    }
    body = json.dumps([item]).encode()
    headers = sendgrid_headers(body, timestamp=_stamp(brand))
    _ok(brand.client.post("/v1/callbacks/sendgrid", content=body, headers=headers))


def via_mailgun(brand: Brand, person: Person, channel: str) -> None:
    assert channel == "email"
    event = {
        "event": "unsubscribed",
        "recipient": person.email,
        "timestamp": _earlier(brand).timestamp(),
        "id": f"mg-{person.external_id}",
    }
    _ok(
        brand.client.post(
            "/v1/callbacks/mailgun", json=mailgun_body(event, timestamp=_stamp(brand))
        )
    )


def via_sms_stop(brand: Brand, person: Person, channel: str) -> None:
    assert channel == "sms"
    params = {
        "MessageSid": f"SM{person.id}-{_stamp(brand)}",
        "From": person.phone,
        "To": "+15550100",
        "Body": "Stop",
    }
    response = twilio_post(brand.client, params, path="/v1/callbacks/twilio/messages")
    _ok(response)
    assert response.headers["content-type"].startswith("text/xml")


def via_import(brand: Brand, person: Person, channel: str, kind: str = "unsubscribed") -> None:
    at = _earlier(brand)
    path = brand.workspace / f"events-{person.external_id}-{at:%Y%m%d%H%M%S}.csv"
    path.write_text(
        f"contact_external_id,type,at,channel\n{person.external_id},{kind},{_iso(at)},{channel}\n"
    )
    report = import_file(
        brand.engine,
        "events",
        path,
        clock=brand.clock,
        on_complaint=consent_rules(brand.workspace).on_complaint,
    )
    assert (report.accepted + report.suppressed, report.rejected) == (1, 0)


def via_link(brand: Brand, person: Person, channel: str) -> None:
    key = unsubscribe_key(Settings(workspace=brand.workspace))
    token = make_unsubscribe_token(person.id, channel, key=key)
    _ok(brand.client.post(f"/unsubscribe/{token}"))


WAYS: dict[str, tuple[Callable[[Brand, Person, str], None], str]] = {
    "api": (via_api, "email"),
    "api-sms": (via_api, "sms"),
    "sendgrid": (via_sendgrid, "email"),
    "mailgun": (via_mailgun, "email"),
    "sms-stop": (via_sms_stop, "sms"),
    "import": (via_import, "email"),
    "link": (via_link, "email"),
}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _earlier(brand: Brand) -> datetime:
    """When the person acted: a little before the report reaches tummler."""
    return brand.clock.now() - timedelta(minutes=5)


def _stamp(brand: Brand) -> str:
    """A provider's signing time: now, within every signature's tolerance."""
    return str(int(brand.clock.now().timestamp()))


def consent_of(brand: Brand, person: Person, channel: str) -> ConsentState:
    """The person's consent for ``channel`` now, as the outbox checks it."""
    with brand.engine.connect() as connection:
        return current_consent(
            connection,
            contact_id=person.id,
            names=consent_names(channel, channel),
            now=brand.clock.now(),
        )
