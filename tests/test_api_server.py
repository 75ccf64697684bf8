"""The API behind a real HTTP server: uvicorn on a free local port, a real request over TCP."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from tummler.api import ApiSettings, Role, app_from_environment, create_app, hash_api_key
from tummler.cli.context import CLIState
from tummler.cli.serve import serve
from tummler.core.errors import ConfigError
from tummler.core.settings import Settings
from tummler.store.database import session_scope
from tummler.store.models import Contact, Event

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STARTUP_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _post(url: str, body: object, key: str | None) -> tuple[int, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {key}"} if key else {}),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_a_real_http_post_is_stored_through_uvicorn(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        session.add(Contact(external_id="c1", created_at=NOW, updated_at=NOW))
    app = create_app(
        Settings(workspace=tmp_path),
        engine,
        api_settings=ApiSettings(api_keys={hash_api_key("k"): Role.PARTNER}),
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during startup"
            assert time.monotonic() < deadline, f"uvicorn did not start in {STARTUP_TIMEOUT_S} s"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        event = {"contact": "c1", "type": "converted", "value": 12.5, "at": "2026-03-01T10:00:00Z"}
        assert _post(f"{base}/v1/events", event, key=None)[0] == 401
        status, body = _post(f"{base}/v1/events", event, key="k")
        assert (status, body) == (
            200,
            {"accepted": 1, "duplicates": 0, "ignored": 0, "suppressed": 0, "revoked": 0},
        )
        with urllib.request.urlopen(f"{base}/v1/health", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
    assert not thread.is_alive(), "uvicorn did not shut down"
    with session_scope(engine) as session:
        [(kind, value)] = session.execute(select(Event.type, Event.value)).all()
    assert (kind, value) == ("converted", 12.5)


def test_the_serve_factory_opens_the_workspace_in_the_environment(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "tummler.db")
    monkeypatch.setenv("TUMMLER_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TUMMLER_DATABASE_URL", raising=False)
    monkeypatch.delenv("TUMMLER_API_KEYS", raising=False)
    with TestClient(app_from_environment()) as client:
        assert client.get("/v1/health").json()["database"] == "ok"
        assert client.post("/v1/events", json={}).status_code == 401


def test_the_serve_factory_refuses_a_folder_without_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUMMLER_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TUMMLER_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="no tummler workspace"):
        app_from_environment()


def test_tummler_serve_refuses_a_folder_without_a_store_before_listening(tmp_path: Path) -> None:
    cli = typer.Typer()

    @cli.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = CLIState(workspace=tmp_path)

    cli.command()(serve)
    result = CliRunner().invoke(cli, ["serve", "--port", str(_free_port())])
    assert isinstance(result.exception, ConfigError)
    assert "no tummler workspace" in str(result.exception)
