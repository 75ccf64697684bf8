"""Engines, sessions and migrations for the store (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Engine,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tummler.core.errors import MissingDependencyError, StoreError
from tummler.core.settings import mask_url

__all__ = [
    "conflict_insert",
    "connect",
    "current_revision",
    "head_revision",
    "is_postgres",
    "masked_url",
    "one_of",
    "session_scope",
    "upgrade",
]

_MIGRATIONS = Path(__file__).with_name("migrations")


def connect(url: str, **engine_options: Any) -> Engine:
    """Return an engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    Raises
    ------
    StoreError
        When the URL cannot be parsed.
    MissingDependencyError
        When the URL names PostgreSQL and psycopg is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise MissingDependencyError("psycopg", "postgres")
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **engine_options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Deleted and overwritten content is zeroed, not left in free pages (builds differ in their
    # default): forgetting a person must take their bytes out of the file, and app.privacy then
    # checkpoints the write-ahead log.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def conflict_insert(table: Any, *, dialect: str) -> Any:
    """``INSERT`` into ``table`` that can say ``ON CONFLICT`` (``on_conflict_do_nothing`` /
    ``on_conflict_do_update``), for the store's ``dialect`` name (``postgresql`` or ``sqlite``)."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def one_of(target: Any, values: list[Any], *, dialect: str) -> Any:
    """``target`` is one of ``values`` (all ints or all texts), with one bound parameter whatever
    their number: an array on PostgreSQL, ``json_each`` on SQLite (whose parameter count is capped).
    """
    if dialect == "postgresql":
        if values and isinstance(values[0], str):
            return target == any_(literal(values, ARRAY(String())))
        return target == any_(literal(values, ARRAY(BigInteger())))
    rows = func.json_each(bindparam(None, json.dumps(values))).table_valued("value")
    return target.in_(select(rows.c.value))


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def masked_url(engine: Engine) -> str:
    """The engine's URL with any password hidden, for display (one rule: ``mask_url``)."""
    return mask_url(engine.url.render_as_string(hide_password=False))


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back when it raises."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the store's schema to ``revision`` (default: the newest)."""
    from alembic import command

    try:
        command.upgrade(_alembic_config(engine), revision)
    except OperationalError as exc:
        raise StoreError(f"cannot migrate {masked_url(engine)}: {exc.orig}") from exc


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, ``None`` when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise StoreError(f"cannot open {masked_url(engine)}: {exc.orig}") from exc


def head_revision() -> str:
    """The newest schema revision this version of tummler knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head
