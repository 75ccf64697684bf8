"""Hostile input to the HTTP API: no key, bodies too large, non-finite numbers, huge invalid values.

Some checks call the ASGI app directly with a ``receive`` that counts the body chunks the app pulls,
because "refused before the body is read" is about what the app does, not about what a client sees.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from provider_signing import (
    MAILGUN_KEY,
    mailgun_body,
    provider_settings,
    twilio_post,
    workspace_settings,
)
from tummler.api import ApiSettings, Role, create_app, hash_api_key, load_api_settings
from tummler.api.config import DEFAULT_MAX_BODY_BYTES
from tummler.api.schemas import EventBatch
from tummler.core.clock import FrozenClock
from tummler.core.errors import ConfigError
from tummler.store.database import connect, session_scope
from tummler.store.models import ChannelIdentity, Contact

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LIMIT = 1000


@pytest.fixture
def engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """One SQLite store: nothing here reaches the store's backend-specific code."""
    shutil.copyfile(sqlite_template, tmp_path / "tummler.db")
    engine = connect(f"sqlite:///{tmp_path / 'tummler.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> FastAPI:
    with session_scope(engine) as session:
        session.add(Contact(external_id="c1", created_at=NOW, updated_at=NOW))
    api_settings = ApiSettings(
        api_keys={hash_api_key("k"): Role.PARTNER},
        mailgun_signing_key=MAILGUN_KEY,
        sendgrid_verification_key="AAAA",
        max_body_bytes=LIMIT,
    )
    return create_app(
        workspace_settings(tmp_path), engine, api_settings=api_settings, clock=FrozenClock(NOW)
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    chunks_read: int


def call(
    app: FastAPI, method: str, path: str, headers: dict[str, str], chunks: list[bytes]
) -> Answer:
    """One request straight to the ASGI app; counts how many body chunks the app pulled."""
    read = 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {
                "type": "http.request",
                "body": chunks[read - 1],
                "more_body": read < len(chunks),
            }
        await asyncio.sleep(3600)  # a client that has sent everything waits for the answer
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=10))
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], body, read)


JSON = {"Content-Type": "application/json"}
EVENT = {"contact": "c1", "type": "clicked", "at": "2026-03-01T10:00:00Z"}
#: 100 chunks of a valid-looking JSON array of events, sent without Content-Length (chunked).
MANY_CHUNKS = (
    [b"[" + b",".join([json.dumps(EVENT).encode()] * 20)]
    + [b"," + b",".join([json.dumps(EVENT).encode()] * 20) for _ in range(98)]
    + [b"]"]
)


# --- the key first -------------------------------------------------------------------------------


def _keyed_operations(app: FastAPI) -> list[tuple[str, str]]:
    schema = app.openapi()
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "no API key"),
        ({"Authorization": "Bearer wrong"}, "unknown API key"),
        ({"X-API-Key": "wrong"}, "unknown API key"),
        ({"Authorization": "Basic azpr"}, "no API key"),
    ],
    ids=["no key", "unknown bearer", "unknown header key", "not a bearer"],
)
def test_every_keyed_route_refuses_a_caller_without_a_known_key_before_reading_the_body(
    app: FastAPI, headers: dict[str, str], fragment: str
) -> None:
    operations = _keyed_operations(app)
    assert ("POST", "/v1/events") in operations
    for method, path in operations:
        answer = call(app, method, path, JSON | headers, MANY_CHUNKS)
        assert (method, path, answer.status) == (method, path, 401)
        assert fragment in json.loads(answer.body)["detail"]
        assert answer.chunks_read == 0, f"{method} {path} read the body of an unknown caller"


def test_a_known_key_still_gets_its_body_read_and_stored(app: FastAPI) -> None:
    body = json.dumps([EVENT, {**EVENT, "type": "converted"}]).encode()
    answer = call(app, "POST", "/v1/events", JSON | {"X-API-Key": "k"}, [body])
    assert answer.status == 200
    assert json.loads(answer.body)["accepted"] == 2


# --- the size cap --------------------------------------------------------------------------------

KEY = {"X-API-Key": "k"}


@pytest.mark.parametrize(
    ("path", "headers", "chunks", "most_read"),
    [
        ("/v1/events", KEY | {"Content-Length": str(LIMIT + 1)}, [b"x" * (LIMIT + 1)], 0),
        ("/v1/events", KEY, [b"x" * 600] * 10, 2),
        ("/v1/events", KEY | {"Content-Length": "10"}, [b"x" * 600] * 10, 2),
        ("/v1/callbacks/mailgun", {"Content-Length": str(10 * LIMIT)}, [b"x" * 10 * LIMIT], 0),
        ("/v1/callbacks/mailgun", {}, [b"x" * 600] * 10, 2),
        ("/v1/callbacks/sendgrid", {}, [b"x" * 600] * 10, 2),
        ("/unsubscribe/token", {"Content-Length": str(LIMIT + 1)}, [b"x" * (LIMIT + 1)], 0),
    ],
    ids=[
        "declared too long",
        "chunked",
        "declared short, sent long",
        "callback declared too long",
        "callback chunked",
        "signed callback chunked",
        "unsubscribe declared too long",
    ],
)
def test_a_body_over_the_limit_is_refused_with_413_and_read_no_further(
    app: FastAPI, path: str, headers: dict[str, str], chunks: list[bytes], most_read: int
) -> None:
    answer = call(app, "POST", path, JSON | headers, chunks)
    assert answer.status == 413
    detail = json.loads(answer.body)["detail"]
    assert f"{LIMIT} bytes" in detail
    assert "TUMMLER_API_MAX_BODY_BYTES" in detail
    assert answer.chunks_read <= most_read


def test_a_body_of_exactly_the_limit_is_accepted(client: TestClient) -> None:
    body = json.dumps(EVENT).encode()
    padded = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(padded) == LIMIT
    response = client.post("/v1/events", content=padded, headers=JSON | KEY)
    assert response.status_code == 200
    too_long = client.post("/v1/events", content=padded + b" ", headers=JSON | KEY)
    assert too_long.status_code == 413


def test_the_default_limit_holds_a_full_batch_of_typical_events() -> None:
    def typical(number: int) -> dict[str, Any]:
        return {
            "email": f"customer.{number:05d}@example.org",
            "type": "converted",
            "channel": "email",
            "value": 42.5,
            "at": "2026-03-01T10:00:00Z",
            "provider_event_id": f"shop-order-{number:08d}",
        }

    full = [typical(number) for number in range(10_000)]
    assert len(EventBatch.model_validate(full).root) == 10_000
    with pytest.raises(ValidationError, match="at most 10000 items"):
        EventBatch.model_validate([*full, typical(10_000)])
    assert len(json.dumps(full).encode()) < DEFAULT_MAX_BODY_BYTES


def test_the_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUMMLER_API_MAX_BODY_BYTES", "65536")
    assert load_api_settings().max_body_bytes == 65536
    monkeypatch.delenv("TUMMLER_API_MAX_BODY_BYTES")
    assert load_api_settings().max_body_bytes == 2 * 1024 * 1024


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_limit_that_is_not_a_positive_number_of_bytes_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TUMMLER_API_MAX_BODY_BYTES", value)
    with pytest.raises(ConfigError, match="TUMMLER_API_MAX_BODY_BYTES"):
        load_api_settings()


# --- what a 422 quotes back ----------------------------------------------------------------------


@pytest.fixture
def roomy(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The app with a large body limit, to send big invalid bodies."""
    api_settings = provider_settings(
        api_keys={hash_api_key("k"): Role.PARTNER}, max_body_bytes=50 * 1024 * 1024
    )
    app = create_app(
        workspace_settings(tmp_path), engine, api_settings=api_settings, clock=FrozenClock(NOW)
    )
    with TestClient(app) as test_client:
        yield test_client


def test_a_long_invalid_value_is_quoted_as_a_short_excerpt(roomy: TestClient) -> None:
    body = json.dumps({**EVENT, "contact": "x" * 1_000_000})
    response = roomy.post("/v1/events", content=body, headers=JSON | KEY)
    assert response.status_code == 422
    assert len(response.content) < 1000
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", 0, "contact"]
    assert problem["type"] == "string_too_long"
    assert "at most 255" in problem["msg"]
    assert problem["input"].startswith("xxxx")
    assert "1000000 characters" in problem["input"]


def test_a_short_invalid_value_is_quoted_whole(roomy: TestClient) -> None:
    response = roomy.post("/v1/events", json={**EVENT, "type": "liked"}, headers=KEY)
    [problem] = response.json()["detail"]
    assert (problem["loc"], problem["input"]) == (["body", 0, "type"], "liked")


def test_a_body_with_thousands_of_problems_lists_the_first_hundred(roomy: TestClient) -> None:
    bad = {**EVENT, "type": "liked", "source": "s" * 1000}
    response = roomy.post("/v1/events", json=[bad] * 5000, headers=KEY)
    assert response.status_code == 422
    assert len(response.content) < 50_000
    detail = response.json()["detail"]
    assert len(detail) == 101
    assert detail[0]["loc"] == ["body", 0, "type"]
    assert detail[-1]["type"] == "too_many_errors"
    assert "9900 more" in detail[-1]["msg"]


def test_a_refused_provider_value_is_quoted_as_a_short_excerpt(roomy: TestClient) -> None:
    event = {"event": "e" * 100_000, "recipient": "ana@example.org", "timestamp": 1, "id": "x"}
    response = roomy.post("/v1/callbacks/mailgun", json=mailgun_body(event))
    assert response.status_code == 422
    assert len(response.content) < 1000
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "event-data.event"]
    assert problem["msg"].startswith("unknown Mailgun event 'eeee")


# --- non-finite numbers --------------------------------------------------------------------------

BASE = '"contact": "c1", "type": "clicked", "at": "2026-03-01"'


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        (f'{{{BASE}, "value": NaN}}', "value", "finite"),
        (f'{{{BASE}, "value": Infinity}}', "value", "finite"),
        (f'{{{BASE}, "value": -Infinity}}', "value", "finite"),
        (f'{{{BASE}, "value": 1e999}}', "value", "finite"),
        ('{"contact": "c1", "type": "clicked", "at": 1e999}', "at", "finite"),
        ('{"contact": "c1", "type": "clicked", "at": NaN}', "at", "finite"),
        ('{"contact": NaN, "type": "clicked", "at": 0}', "contact", "string"),
        (f'[{{{BASE}}}, {{{BASE}, "value": NaN}}]', "value", "finite"),
    ],
    ids=["NaN", "Infinity", "-Infinity", "1e999", "at 1e999", "at NaN", "contact NaN", "second"],
)
def test_a_non_finite_number_is_a_422_naming_the_field(
    client: TestClient, raw: str, field: str, fragment: str
) -> None:
    response = client.post("/v1/events", content=raw, headers=JSON | KEY)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"][0] == "body"
    assert problem["loc"][-1] == field
    assert fragment in problem["msg"]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ('{"event-data": {"timestamp": NaN}, "signature": 1}', ["body", "event-data.timestamp"]),
        ('{"event-data": {"timestamp": 1e999}}', ["body", "event-data.timestamp"]),
        ('{"signature": {"timestamp": Infinity}}', ["body", "signature.timestamp"]),
        ('[{"email": "a@example.org", "timestamp": -Infinity}]', ["body", 0, "timestamp"]),
        ('{"event-data": {"timestamp": 1' + "0" * 5000 + "}}", ["body", "event-data.timestamp"]),
        ("[NaN]", ["body", 0, "item"]),
    ],
    ids=["NaN", "1e999", "Infinity in signature", "-Infinity in an array", "5000 digits", "bare"],
)
def test_a_provider_body_with_a_non_finite_number_is_a_422_naming_the_field(
    roomy: TestClient, raw: str, loc: list[Any]
) -> None:
    response = roomy.post("/v1/callbacks/mailgun", content=raw, headers=JSON)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc
    assert re.search("not a finite number|too many digits", problem["msg"])


# --- text that no store can hold -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "loc", "fragment"),
    [
        ('{"contact": "c\\u0000", "type": "clicked", "at": 0}', ["body", 0, "contact"], "NUL"),
        ('{"contact": "\\ud800", "type": "clicked", "at": 0}', ["body", 0, "contact"], "surrogate"),
        (f'{{{BASE}, "source": "a\\udfffb"}}', ["body", 0, "source"], "surrogate"),
        (f'{{{BASE}, "\\ud800": 1}}', ["body", 0], "unicode string"),
        (f'{{{BASE}, "type": "\\ud800"}}', ["body", 0, "type"], "surrogate"),
    ],
    ids=["NUL", "surrogate", "surrogate inside", "surrogate key", "surrogate enum"],
)
def test_text_with_a_nul_or_an_unpaired_surrogate_is_a_422_naming_the_field(
    client: TestClient, raw: str, loc: list[Any], fragment: str
) -> None:
    response = client.post("/v1/events", content=raw, headers=JSON | KEY)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc
    assert fragment in problem["msg"]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ('{"event-data": {"recipient": "a\\u0000@example.org"}}', ["body", "event-data.recipient"]),
        ('[{"email": "\\udc80@example.org"}]', ["body", 0, "email"]),
        ('{"signature": {"\\ud800": 1}}', ["body", "signature.\\ud800"]),
    ],
    ids=["NUL", "surrogate", "surrogate key"],
)
def test_a_provider_body_with_unstorable_text_is_a_422_naming_the_field(
    roomy: TestClient, raw: str, loc: list[Any]
) -> None:
    response = roomy.post("/v1/callbacks/mailgun", content=raw, headers=JSON)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc
    assert "cannot be stored" in problem["msg"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (
            "/v1/callbacks/twilio/messages",
            {"MessageSid": "SM1\x00", "From": "+33612345678", "Body": "hi"},
            "MessageSid",
        ),
        (
            "/v1/callbacks/twilio",
            {
                "MessageSid": "SM2",
                "MessageStatus": "failed",
                "To": "+33612345678",
                "ErrorCode": "\x00",
            },
            "ErrorCode",
        ),
    ],
    ids=["reply", "status"],
)
def test_a_twilio_form_field_with_a_nul_is_a_422_naming_the_field(
    roomy: TestClient, engine: Engine, path: str, params: dict[str, str], field: str
) -> None:
    with session_scope(engine) as session:
        contact = Contact(external_id="c2", created_at=NOW, updated_at=NOW)
        session.add(contact)
        session.flush()
        session.add(
            ChannelIdentity(
                contact_id=contact.id, channel="sms", address="+33612345678", created_at=NOW
            )
        )
    response = twilio_post(roomy, params, path=path)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", field]
    assert "cannot be stored" in problem["msg"]
