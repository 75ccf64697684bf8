"""A forgotten person stays forgotten: every way in refuses their identifiers, as *suppressed*.

The example brand is imported, one person is forgotten, and then everything that could bring them
back is tried for real: the same six files again, a contacts file that knows them under a new id,
the events API, a signed provider webhook, an SMS from their phone. The store must not change, the
reports must count what was suppressed, and the list itself must hold no identifier.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, text

from example_files import ExampleFiles, write_example_data
from provider_signing import provider_settings, sendgrid_headers, twilio_post, workspace_settings
from tummler.api import Role, create_app, hash_api_key
from tummler.app.ingest import import_file
from tummler.app.privacy import find_contact, forget_person, person_record
from tummler.app.suppression import Suppressions, external_id_key, identity_key
from tummler.core.clock import FrozenClock
from tummler.core.errors import NotFoundError, StoreError
from tummler.core.randomness import make_rng
from tummler.store.database import session_scope
from tummler.store.models import Base, Contact, StoreSecret, Suppression

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # the signing time of provider_signing
KEY = "marketer-key"
#: Tables whose whole content must not move when a forgotten person's files come back.
TABLES = (
    "contacts",
    "contact_changes",
    "channel_identities",
    "consent_events",
    "events",
    "social_edges",
    "mentions",
    "suppressions",
)


def _import_all(engine: Engine, files: ExampleFiles, at: datetime) -> dict[str, Any]:
    return {
        kind: import_file(engine, kind, path, clock=FrozenClock(at))
        for kind, path in files.in_import_order()
    }


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            name: [
                tuple(row)
                for row in connection.execute(
                    select(Base.metadata.tables[name]).order_by(text("1"))
                )
            ]
            for name in TABLES
        }


def _external_ids() -> list[str]:
    return [f"cust-{i:05d}" for i in range(1, 41)]


def _identities_of(files: ExampleFiles, external_id: str) -> list[tuple[str, str]]:
    with files.identities.open(encoding="utf-8") as handle:
        return [
            (row["channel"], row["address"])
            for row in csv.DictReader(handle)
            if row["contact_external_id"] == external_id
        ]


@pytest.fixture
def forgotten(engine: Engine, tmp_path: Path) -> tuple[ExampleFiles, str]:
    """The example brand imported, then the first person with e-mail, phone and Mastodon
    forgotten; yields the files and that person's old external id."""
    files = write_example_data(tmp_path / "data", contacts=40)
    _import_all(engine, files, NOW - timedelta(days=1))
    person = next(
        i
        for i in _external_ids()
        if {c for c, _ in _identities_of(files, i)} == {"email", "sms", "mastodon"}
    )
    forget_person(engine, person=person, actor="dpo", clock=FrozenClock(NOW), rng=make_rng(1))
    return files, person


def test_re_importing_every_file_after_a_forget_changes_nothing(
    engine: Engine, forgotten: tuple[ExampleFiles, str]
) -> None:
    files, person = forgotten
    before = _snapshot(engine)
    reports = _import_all(engine, files, NOW + timedelta(hours=1))
    assert _snapshot(engine) == before
    # the person's own rows were refused as suppressed, not rejected, and not written anywhere
    assert reports["contacts"].suppressed == 1
    assert reports["identities"].suppressed == len(_identities_of(files, person))
    assert reports["consent"].suppressed >= 1
    for report in reports.values():
        assert report.rejected == 0
        assert report.rows_read == report.accepted + report.rejected + report.suppressed
        assert report.rejects_path is None


def test_a_contacts_file_that_knows_them_under_a_new_id_is_suppressed_too(
    engine: Engine, forgotten: tuple[ExampleFiles, str], tmp_path: Path
) -> None:
    files, person = forgotten
    email = dict(_identities_of(files, person))["email"]
    path = tmp_path / "crm.csv"
    path.write_text(
        f"external_id,email,phone\nnew-crm-id,{email.upper()},\nsomeone-new,new@example.org,\n"
    )
    report = import_file(engine, "contacts", path, clock=FrozenClock(NOW))
    assert (report.accepted, report.suppressed, report.rejected) == (1, 1, 0)
    with session_scope(engine) as session:
        ids = set(session.scalars(select(Contact.external_id)))
    assert "someone-new" in ids
    assert "new-crm-id" not in ids


def test_a_looked_up_identifier_says_it_was_forgotten(
    engine: Engine, forgotten: tuple[ExampleFiles, str]
) -> None:
    files, person = forgotten
    phone = dict(_identities_of(files, person))["sms"]
    for who in (person, f"sms:{phone}", f"email:{person.upper()}@EXAMPLE.ORG"):
        with pytest.raises(NotFoundError, match="was forgotten"), session_scope(engine) as session:
            find_contact(session, person=who)
    with pytest.raises(NotFoundError, match="was forgotten"):
        person_record(engine, person=person)
    with pytest.raises(NotFoundError) as never_known:
        person_record(engine, person="cust-99999")
    assert "was forgotten" not in str(never_known.value)


@pytest.fixture
def client(engine: Engine, forgotten: tuple[ExampleFiles, str], tmp_path: Path) -> TestClient:
    settings = provider_settings(api_keys={hash_api_key(KEY): Role.MARKETER})
    app = create_app(workspace_settings(tmp_path), engine, api_settings=settings)
    app.state.clock = FrozenClock(NOW)
    return TestClient(app)


def test_the_api_and_provider_callbacks_count_a_forgotten_person_as_suppressed(
    engine: Engine, forgotten: tuple[ExampleFiles, str], client: TestClient
) -> None:
    files, person = forgotten
    identities = dict(_identities_of(files, person))
    before = _snapshot(engine)
    at = "2026-03-02T11:00:00Z"
    events = [
        {"contact": person, "type": "clicked", "channel": "email", "at": at},
        {"email": identities["email"], "type": "unsubscribed", "channel": "email", "at": at},
        {"phone": identities["sms"], "type": "replied", "channel": "sms", "at": at},
        {"contact": next(i for i in _external_ids() if i != person), "type": "clicked", "at": at},
    ]
    response = client.post("/v1/events", json=events, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "ignored": 0,
        "suppressed": 3,
        "revoked": 0,
    }

    body = json.dumps(
        [{"email": identities["email"], "event": "click", "timestamp": 1772445600}]
    ).encode()
    webhook = client.post("/v1/callbacks/sendgrid", content=body, headers=sendgrid_headers(body))
    assert webhook.status_code == 200, webhook.text
    assert webhook.json()["suppressed"] == 1

    stop = {"MessageSid": "SM77", "From": identities["sms"], "To": "+15550100", "Body": "STOP"}
    assert twilio_post(client, stop, path="/v1/callbacks/twilio/messages").status_code == 200

    after = _snapshot(engine)
    after["events"] = [row for row in after["events"] if row not in before["events"]]
    assert len(after["events"]) == 1  # the living contact's click, nothing else
    assert {k: v for k, v in after.items() if k != "events"} == {
        k: v for k, v in before.items() if k != "events"
    }


def test_the_list_holds_keyed_digests_and_no_identifier(
    engine: Engine, forgotten: tuple[ExampleFiles, str]
) -> None:
    files, person = forgotten
    keys = [external_id_key(person)] + [
        identity_key(c, a) for c, a in _identities_of(files, person)
    ]
    with engine.connect() as connection:
        rows = connection.execute(select(Suppression.digest, Suppression.kind)).all()
        assert Suppressions.load(connection).suppressed(connection, keys) == set(keys)
    stored = {digest for digest, _ in rows}
    assert len(stored) == len(keys)
    # not the plain SHA-256 that ad-tech data sets match people on
    assert not stored & {hashlib.sha256(key.encode()).hexdigest() for key in keys}
    dump = repr(rows).lower()
    for _, address in _identities_of(files, person):
        assert address.lower().lstrip("@") not in dump
    assert person not in dump


def test_losing_the_key_of_a_non_empty_list_is_refused_not_guessed(
    engine: Engine, forgotten: tuple[ExampleFiles, str], tmp_path: Path
) -> None:
    files, _ = forgotten
    with session_scope(engine) as session:
        session.execute(delete(StoreSecret))
    with pytest.raises(StoreError, match="restore the store_secrets row"):
        import_file(engine, "contacts", files.contacts, clock=FrozenClock(NOW))
