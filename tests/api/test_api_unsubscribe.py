"""The unsubscribe link: GET asks, POST (one-click, RFC 8058) records a revoked consent, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tummler.api import ApiSettings, create_app
from tummler.app.unsubscribe import make_unsubscribe_token, unsubscribe_key
from tummler.core.clock import FrozenClock
from tummler.core.settings import Settings
from tummler.store.database import session_scope
from tummler.store.models import ConsentEvent, Contact

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def setup(engine: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, str, int]]:
    with session_scope(engine) as session:
        contact = Contact(external_id="c1", created_at=NOW, updated_at=NOW)
        session.add(contact)
        session.flush()
        session.add(
            ConsentEvent(
                contact_id=contact.id,
                channel="email",
                status="granted",
                source="signup",
                at=NOW,
                recorded_at=NOW,
            )
        )
        contact_id = contact.id
    settings = Settings(workspace=tmp_path)
    token = make_unsubscribe_token(contact_id, "email", key=unsubscribe_key(settings))
    app = create_app(settings, engine, api_settings=ApiSettings(), clock=FrozenClock(NOW))
    with TestClient(app) as client:
        yield client, token, contact_id


def consent_log(engine: Engine, contact_id: int) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(ConsentEvent.status, ConsentEvent.source)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(ConsentEvent.id)
        )
        return [(status, source) for status, source in rows]


def test_get_asks_and_changes_nothing(engine: Engine, setup: tuple[TestClient, str, int]) -> None:
    client, token, contact_id = setup
    response = client.get(f"/unsubscribe/{token}")
    assert response.status_code == 200
    assert "Stop receiving email messages" in response.text
    assert consent_log(engine, contact_id) == [("granted", "signup")]


def test_post_revokes_once(engine: Engine, setup: tuple[TestClient, str, int]) -> None:
    client, token, contact_id = setup
    assert client.post(f"/unsubscribe/{token}").status_code == 200
    assert client.post(f"/unsubscribe/{token}").status_code == 200
    assert consent_log(engine, contact_id) == [
        ("granted", "signup"),
        ("revoked", "unsubscribe-link"),
    ]


def test_a_forged_token_is_refused(engine: Engine, setup: tuple[TestClient, str, int]) -> None:
    client, token, contact_id = setup
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/unsubscribe/{forged}").status_code == 400
    assert client.post(f"/unsubscribe/{forged}").status_code == 400
    assert consent_log(engine, contact_id) == [("granted", "signup")]
