"""Shared fixtures: every store test runs on SQLite and on PostgreSQL through the ``engine`` fixture.

PostgreSQL tests start one throwaway server per test session and give each test a fresh database
cloned from a migrated template. Without the server binaries they skip with a message saying how to
install them — except in CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from browser import LoggingHandler
from tummler.app.workspace import init_workspace
from tummler.core.errors import ConfigError
from tummler.store.database import connect, upgrade
from tummler.store.throwaway import ThrowawayPostgres, find_postgres_bindir

DATA_DIR = Path(
    os.environ.get("TUMMLER_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "data")
)
_TEMPLATE_DB = "tummler_template"
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    if find_postgres_bindir() is None:
        message = "PostgreSQL not installed: `apt-get install postgresql` to run these tests"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        server = ThrowawayPostgres().start()
    except ConfigError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL could not start: {exc}")
    admin = connect(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {_TEMPLATE_DB}"))
    template = connect(server.url(_TEMPLATE_DB))
    upgrade(template)
    template.dispose()
    admin.dispose()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = connect(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _postgres_engine(server: ThrowawayPostgres) -> Engine:
    name = f"tummler_test_{os.getpid()}_{next(_database_numbers)}"
    admin = connect(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE_DB}"))
    admin.dispose()
    return connect(server.url(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The URL of a freshly migrated, empty store on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "tummler.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    server: ThrowawayPostgres = request.getfixturevalue("postgres_server")
    engine = _postgres_engine(server)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated, empty store; every store test runs once per backend."""
    engine = connect(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def data_dir() -> Path:
    """The real public data sets beside the checkout; tests that need them skip when absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR}: set TUMMLER_DATA_DIR to ../shared/data")
    return DATA_DIR


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace, as ``tummler init`` makes it: settings, the example strategy and
    campaigns, a migrated and empty SQLite store."""
    directory = tmp_path / "ws"
    init_workspace(directory)
    return directory


# ------------------------------------------------------------- a real browser (tests/browser.py)


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: apt-get install -y chromium")
        pytest.skip("chromium not found: apt-get install -y chromium to open the HTML report")
    return found


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback web server over ``tmp_path/site`` that records every path asked for."""
    site = tmp_path / "site"
    site.mkdir()
    requests: list[str] = []
    handler: type[LoggingHandler] = type("Handler", (LoggingHandler,), {"requests": requests})

    def factory(*args: Any) -> LoggingHandler:
        return handler(*args, directory=str(site))

    server = ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
