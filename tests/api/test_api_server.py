"""The API behind a real HTTP server: uvicorn on a free local port, a real request over TCP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from select import select as ready

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from cli_app import cli_app
from tummler.api import ApiSettings, Role, app_from_environment, create_app, hash_api_key
from tummler.cli.main import app as cli_main
from tummler.cli.serve import serve
from tummler.core.errors import ConfigError, MissingDependencyError
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
    cli = cli_app(tmp_path, serve)
    result = CliRunner().invoke(cli, ["serve", "--port", str(_free_port())])
    assert isinstance(result.exception, ConfigError)
    assert "no tummler workspace" in str(result.exception)


@pytest.mark.parametrize(
    ("module", "package"),
    [("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("swagger_ui_bundle", "swagger-ui-bundle-v2")],
)
def test_tummler_serve_names_a_missing_package_of_the_api_extra_before_serving(
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    package: str,
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "tummler.db")
    monkeypatch.setenv("TUMMLER_WORKSPACE", str(tmp_path))  # restored after the test
    monkeypatch.setitem(sys.modules, module, None)  # how Python marks a module it cannot import
    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.append(args))
    cli = cli_app(tmp_path, serve)
    result = CliRunner().invoke(cli, ["serve", "--port", str(_free_port())])
    assert isinstance(result.exception, MissingDependencyError)
    assert str(result.exception).startswith(f"{package} is not installed")
    assert "pip install 'tummler[api]'" in str(result.exception)
    assert (served, "tummler API on" in result.output) == ([], False)


def test_tummler_serve_names_a_busy_port_before_printing_its_banner(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "tummler.db")
    monkeypatch.setenv("TUMMLER_WORKSPACE", str(tmp_path))  # restored after the test
    cli = cli_app(tmp_path, serve)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    message = str(result.exception)
    assert f"127.0.0.1:{port}" in message
    assert f"port {port} is in use" in message
    assert "--port" in message
    assert "tummler API on" not in result.output


BODY_BYTES = 100 * 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 200 * 1024
#: About 64 KiB of a JSON array of events: what a hostile client repeats.
PIECE = b'{"contact": "c1", "type": "clicked", "at": 0},' * 1400


def _memory_kib(pid: int, field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (resident at its peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _status(conn: socket.socket) -> int | None:
    """The status of the answer waiting on ``conn``; ``None`` when it was closed without one."""
    conn.setblocking(True)
    conn.settimeout(10)
    head = b""
    try:
        while b"\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                return None
            head += data
    except ConnectionResetError:
        return None
    return int(head.split(b" ", 2)[1])


def _stream_post(port: int, headers: dict[str, str], *, chunked: bool) -> tuple[int | None, int]:
    """POST ``BODY_BYTES`` to /v1/events as fast as the server takes them, watching for an answer.

    Returns the answer's status (``None``: the connection closed without one) and how many bytes of
    the body had been sent when the answer came (or the connection closed).
    """
    frame = b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE
    body_bytes = BODY_BYTES // len(PIECE) * len(frame)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(body_bytes)}
    head = "".join(
        f"{name}: {value}\r\n"
        for name, value in (
            {"Host": "127.0.0.1", "Content-Type": "application/json"} | framing | headers
        ).items()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"POST /v1/events HTTP/1.1\r\n{head}\r\n".encode())
        conn.setblocking(False)
        sent, pending = 0, memoryview(b"")
        while sent < body_bytes:
            readable, writable, _ = ready([conn], [conn], [], 30)
            assert readable or writable, "the server neither read the body nor answered in 30 s"
            if readable:
                break
            pending = pending or memoryview(frame)
            try:
                written = conn.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            pending, sent = pending[written:], sent + written
        return _status(conn), sent


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc")
def test_a_100_mb_body_is_refused_before_it_is_read_and_memory_stays_flat(
    tmp_path: Path, sqlite_template: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "tummler.db")
    port = _free_port()
    env = os.environ | {
        "TUMMLER_WORKSPACE": str(tmp_path),
        "TUMMLER_API_KEYS": json.dumps({hash_api_key("k"): "partner"}),
    }
    env.pop("TUMMLER_DATABASE_URL", None)
    command = "from tummler.cli.main import main; main()"
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-c", command, "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert server.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "tummler serve did not start"
                time.sleep(0.05)
        idle = _memory_kib(server.pid, "VmRSS")
        for headers, chunked, statuses in [
            ({}, False, {413}),
            ({}, True, {401}),
            ({"X-API-Key": "unknown"}, True, {401}),
            ({"X-API-Key": "k"}, True, {413}),
        ]:
            status, sent = _stream_post(port, headers, chunked=chunked)
            case = (headers, chunked, status)
            assert status in statuses, case
            assert sent < BODY_BYTES // 4, (case, sent)  # what socket buffers hold, no more
        peak = _memory_kib(server.pid, "VmHWM")
        assert peak - idle < RSS_GROWTH_LIMIT_KIB, f"idle {idle} KiB, peak {peak} KiB"
    finally:
        server.terminate()
        server.wait(timeout=STARTUP_TIMEOUT_S)


@pytest.mark.parametrize("value", ['{"plain-secret-key": "admin"}', "{not json"])
def test_a_malformed_api_key_setting_stops_serve_with_the_app_factorys_error_not_status(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "tummler.db")
    monkeypatch.delenv("TUMMLER_DATABASE_URL", raising=False)
    monkeypatch.setenv("TUMMLER_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("TUMMLER_API_KEYS", value)
    runner = CliRunner()

    served = runner.invoke(cli_main, ["serve", "--port", str(_free_port())])
    assert isinstance(served.exception, ConfigError)
    message = str(served.exception)
    assert message.startswith("invalid API settings: TUMMLER_API_KEYS")
    assert "tummler API on" not in served.output  # refused before the banner
    with pytest.raises(ConfigError) as built:
        app_from_environment()
    assert str(built.value) == message
    assert "plain" not in message

    status = runner.invoke(cli_main, ["status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["backend"] == "sqlite"
    assert "plain" not in status.output
