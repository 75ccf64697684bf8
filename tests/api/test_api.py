"""The HTTP API's generic events endpoint, health and OpenAPI schema, on both store backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tummler.api import ApiSettings, Role, create_app, hash_api_key, load_api_settings
from tummler.app.ingest.schemas import derived_event_id
from tummler.core.clock import FrozenClock
from tummler.core.errors import ConfigError
from tummler.core.settings import Environment, Settings
from tummler.store.database import session_scope
from tummler.store.models import ChannelIdentity, Contact, Event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

#: Checks made before the store is touched (authentication, validation) run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
KEYS = {"marketer-key": Role.MARKETER, "analyst-key": Role.ANALYST, "partner-key": Role.PARTNER}


def add_contact(engine: Engine, external_id: str, **identities: str) -> int:
    """A contact with identities given as channel=address (already normalized)."""
    with session_scope(engine) as session:
        contact = Contact(external_id=external_id, created_at=NOW, updated_at=NOW)
        session.add(contact)
        session.flush()
        for channel, address in identities.items():
            session.add(
                ChannelIdentity(
                    contact_id=contact.id, channel=channel, address=address, created_at=NOW
                )
            )
        return contact.id


def stored_events(engine: Engine) -> list[Event]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Event).order_by(Event.id)))


def event_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    add_contact(engine, "c1", email="ana@example.org", sms="+33612345678")
    add_contact(engine, "c2", email="bo@example.org")
    api_settings = ApiSettings(api_keys={hash_api_key(k): r for k, r in KEYS.items()})
    app = create_app(
        Settings(workspace=tmp_path), engine, api_settings=api_settings, clock=FrozenClock(NOW)
    )
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, body: Any, key: str | None = "marketer-key") -> Any:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return client.post("/v1/events", json=body, headers=headers)


CLICK = {"contact": "c1", "type": "clicked", "channel": "email", "at": "2026-03-01T10:00:00Z"}


def test_health_answers_ok_without_a_key(client: TestClient) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "version": "0.1.0"}


@SQLITE_ONLY
def test_the_openapi_schema_lists_every_route_and_the_event_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {
        "/v1/events",
        "/v1/health",
        "/v1/callbacks/sendgrid",
        "/v1/callbacks/mailgun",
        "/v1/callbacks/twilio",
    } <= set(schema["paths"])
    fields = schema["components"]["schemas"]["EventCreate"]["properties"]
    assert {"contact", "email", "phone", "type", "channel", "value", "at", "source"} <= set(fields)
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])


@SQLITE_ONLY
def test_the_docs_page_loads_everything_from_the_app_itself(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "://" not in page.text, "the page must work offline: no URL to another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3  # script, style sheet, icon
    for url in assets:
        asset = client.get(url)
        assert (url, asset.status_code) == (url, 200)
        assert len(asset.content) > 100
    assert "url: '/openapi.json'" in page.text
    assert client.get("/docs/assets/index.html").status_code == 404


def test_one_event_by_external_id_is_stored_as_sent(client: TestClient, engine: Engine) -> None:
    response = post(client, {**CLICK, "value": 2.5, "provider_event_id": "shop-1"})
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "ignored": 0,
        "suppressed": 0,
        "revoked": 0,
    }
    [event] = stored_events(engine)
    assert (event.type, event.channel, event.value, event.source, event.provider_event_id) == (
        "clicked",
        "email",
        2.5,
        "api",
        "shop-1",
    )
    assert event.at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert event.decision_id is None


def test_a_list_resolves_people_by_email_and_phone(client: TestClient, engine: Engine) -> None:
    body = [
        {"email": " Ana@Example.ORG ", "type": "converted", "value": 40, "at": 1772445600},
        {"phone": "+33 6 12 34 56 78", "type": "replied", "channel": "sms", "at": "2026-03-01"},
        {"contact": "c2", "type": "visited", "at": "2026-03-01T09:00:00+01:00"},
    ]
    response = post(client, body)
    assert response.json() == {
        "accepted": 3,
        "duplicates": 0,
        "ignored": 0,
        "suppressed": 0,
        "revoked": 0,
    }
    events = stored_events(engine)
    ids = _contact_ids(engine)
    assert [e.contact_id for e in events] == [ids["c1"], ids["c1"], ids["c2"]]
    assert events[0].at == datetime.fromtimestamp(1772445600, UTC)
    assert events[2].at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _contact_ids(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {c.external_id: c.id for c in session.scalars(select(Contact))}


def test_a_retried_request_stores_nothing_twice(client: TestClient, engine: Engine) -> None:
    body = [CLICK, {**CLICK, "type": "converted", "value": 10.0}]
    assert post(client, body).json() == {
        "accepted": 2,
        "duplicates": 0,
        "ignored": 0,
        "suppressed": 0,
        "revoked": 0,
    }
    assert post(client, body).json() == {
        "accepted": 0,
        "duplicates": 2,
        "ignored": 0,
        "suppressed": 0,
        "revoked": 0,
    }
    assert event_count(engine) == 2


def test_a_repeat_within_one_request_is_a_duplicate(client: TestClient, engine: Engine) -> None:
    body = [{**CLICK, "provider_event_id": "x"}, {**CLICK, "provider_event_id": "x"}]
    assert post(client, body).json() == {
        "accepted": 1,
        "duplicates": 1,
        "ignored": 0,
        "suppressed": 0,
        "revoked": 0,
    }
    assert event_count(engine) == 1


def test_an_event_without_id_gets_the_id_the_import_derives(
    client: TestClient, engine: Engine
) -> None:
    post(client, {"email": "ana@example.org", **{k: v for k, v in CLICK.items() if k != "contact"}})
    [event] = stored_events(engine)
    at = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert event.provider_event_id == derived_event_id("c1", "clicked", "email", at, None)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("headers", "status", "fragment"),
    [
        ({}, 401, "no API key"),
        ({"Authorization": "Bearer wrong"}, 401, "unknown API key"),
        ({"X-API-Key": "wrong"}, 401, "unknown API key"),
        ({"Authorization": "Bearer analyst-key"}, 403, "role 'analyst'"),
        ({"X-API-Key": "analyst-key"}, 403, "needs one of: admin, marketer, partner"),
    ],
)
def test_callers_without_a_writing_key_are_refused(
    client: TestClient, engine: Engine, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = client.post("/v1/events", json=CLICK, headers=headers)
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert event_count(engine) == 0
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


@SQLITE_ONLY
@pytest.mark.parametrize("headers", [{"X-API-Key": "partner-key"}, {"X-API-Key": "marketer-key"}])
def test_partner_and_marketer_keys_may_write(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/v1/events", json=CLICK, headers=headers).status_code == 200


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("bad", "field", "fragment"),
    [
        ({"type": "liked"}, "type", "Input should be"),
        ({"at": "yesterday"}, "at", "not an ISO 8601 timestamp"),
        ({"at": None}, "at", ""),
        ({"value": "NaN"}, "value", "finite"),
        ({"channel": "fax"}, "channel", "Input should be"),
        ({"email": "not-an-address", "contact": None}, "email", "not a valid e-mail address"),
        ({"email": "", "contact": None}, "email", "not a valid e-mail address"),
        ({"phone": "0612345678", "contact": None}, "phone", "country code"),
        ({"phone": "+3", "contact": None}, "phone", "not a"),
        ({"source": "x" * 65}, "source", "at most 64"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_a_malformed_item_is_named_by_index_and_field_and_nothing_is_stored(
    client: TestClient, engine: Engine, bad: dict[str, Any], field: str, fragment: str
) -> None:
    body = [CLICK, {**{**CLICK, "provider_event_id": "2"}, **bad}]
    response = post(client, body)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"][:3] == ["body", 1, field]
    assert fragment in problem["msg"]
    assert event_count(engine) == 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    "people",
    [{}, {"contact": "c1", "email": "ana@example.org"}],
    ids=["nobody", "two identities"],
)
def test_an_item_must_name_exactly_one_person(
    client: TestClient, engine: Engine, people: dict[str, str]
) -> None:
    item = {k: v for k, v in CLICK.items() if k != "contact"} | people
    response = post(client, [CLICK, item])
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", 1]
    assert "exactly one of contact" in problem["msg"]
    assert event_count(engine) == 0


def test_an_unknown_person_is_named_and_nothing_is_stored(
    client: TestClient, engine: Engine
) -> None:
    body = [
        CLICK,
        {"email": "who@example.org", "type": "clicked", "at": "2026-03-01"},
        {"contact": "c404", "type": "clicked", "at": "2026-03-01"},
    ]
    response = post(client, body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "unknown_contact",
            "loc": ["body", 1, "email"],
            "msg": "no contact with e-mail address 'who@example.org': import the contact "
            "(or its identity) first",
        },
        {
            "type": "unknown_contact",
            "loc": ["body", 2, "contact"],
            "msg": "no contact with external id 'c404': import the contact (or its identity) first",
        },
    ]
    assert event_count(engine) == 0


@SQLITE_ONLY
def test_a_forgotten_person_is_unknown(client: TestClient, engine: Engine) -> None:
    with session_scope(engine) as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == "c2")).one()
        contact.forgotten_at = NOW
    response = post(client, {**CLICK, "contact": "c2"})
    assert response.status_code == 422
    assert event_count(engine) == 0


@SQLITE_ONLY
def test_a_body_that_is_not_json_is_refused(client: TestClient, engine: Engine) -> None:
    response = client.post(
        "/v1/events",
        content=b"{not json",
        headers={"Authorization": "Bearer marketer-key", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert event_count(engine) == 0


@SQLITE_ONLY
def test_production_refuses_to_start_without_api_keys(tmp_path: Path, engine: Engine) -> None:
    settings = Settings(workspace=tmp_path, environment=Environment.PRODUCTION, secret_key="s" * 32)
    with pytest.raises(ConfigError, match="TUMMLER_API_KEYS"):
        create_app(settings, engine, api_settings=ApiSettings())


def test_keys_are_configured_hashed_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = hash_api_key("k")
    monkeypatch.setenv("TUMMLER_API_KEYS", f'{{"{digest}": "partner"}}')
    assert load_api_settings().api_keys == {digest: Role.PARTNER}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('{"plain-key": "admin"}', "not a lower-case SHA-256 hex digest"),
        (f'{{"{hash_api_key("k")}": "owner"}}', "api_keys"),
        ("{not json", "api_keys"),
    ],
)
def test_bad_api_key_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, fragment: str
) -> None:
    monkeypatch.setenv("TUMMLER_API_KEYS", value)
    with pytest.raises(ConfigError, match=fragment):
        load_api_settings()


def test_bad_api_key_settings_never_quote_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUMMLER_API_KEYS", '{"plain-secret-key": "admin"}')
    with pytest.raises(ConfigError) as raised:
        load_api_settings()
    message = str(raised.value)
    assert message.startswith("invalid API settings: TUMMLER_API_KEYS (api_keys)")
    assert "hash_api_key" in message
    assert "plain" not in message
    assert raised.value.__cause__ is None  # pydantic's error quotes its input: not chained


def test_the_api_settings_are_read_from_tummler_toml_like_every_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TUMMLER_API_KEYS", "TUMMLER_API_MAX_BODY_BYTES", "TUMMLER_SIGNATURE_TOLERANCE_S"):
        monkeypatch.delenv(name, raising=False)
    digest = hash_api_key("k")
    (tmp_path / "tummler.toml").write_text(
        "api_max_body_bytes = 65536\n"
        "signature_tolerance_s = 60\n"
        'mailgun_signing_key = "mailgun-secret"\n'
        f'[api_keys]\n"{digest}" = "marketer"\n'
    )
    settings = Settings(workspace=tmp_path)
    api = settings.api()
    assert api.api_keys == {digest: Role.MARKETER}
    assert (api.max_body_bytes, api.signature_tolerance_s) == (65536, 60)
    assert load_api_settings(settings) == api
    for shown in (repr(settings), repr(api), str(api)):
        assert digest not in shown
        assert "mailgun-secret" not in shown
    monkeypatch.setenv("TUMMLER_API_MAX_BODY_BYTES", "1024")  # the environment comes first
    assert Settings(workspace=tmp_path).api().max_body_bytes == 1024


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TUMMLER_API_KEYS", "{not json"),
        ("TUMMLER_API_MAX_BODY_BYTES", "lots"),
        ("TUMMLER_SIGNATURE_TOLERANCE_S", "0"),
    ],
)
def test_a_bad_api_setting_stops_the_api_not_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    settings = Settings(workspace=tmp_path)  # every other command reads its settings
    with pytest.raises(ConfigError, match=f"^invalid API settings: {variable}"):
        settings.api()
