"""Workspaces: ``tummler init`` makes one, ``tummler status`` describes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from tummler.core.errors import ConfigError
from tummler.core.settings import SETTINGS_FILE, Settings, load_settings, mask_url
from tummler.store import models
from tummler.store.database import connect, current_revision, head_revision, upgrade

__all__ = [
    "StoreStatus",
    "init_workspace",
    "open_store",
    "store_reachable",
    "store_status",
    "upgrade_store",
]

_SETTINGS_TEMPLATE = """\
# tummler workspace settings. Environment variables TUMMLER_<NAME> override each value.

# The store. Default: SQLite in this directory (tummler.db). For PostgreSQL:
# database_url = "postgresql+psycopg://user@localhost/tummler"

# development or production (production refuses unsafe defaults).
environment = "development"

log_level = "WARNING"

# Rows committed per import batch.
import_batch_size = 10000
"""

#: Tables counted by ``tummler status``, in the order they are shown.
COUNTED_TABLES: tuple[type[models.Base], ...] = (
    models.Contact,
    models.ChannelIdentity,
    models.ConsentEvent,
    models.SocialEdge,
    models.Event,
    models.Mention,
    models.Campaign,
    models.Decision,
    models.Delivery,
    models.PolicyVersion,
)


def init_workspace(directory: Path) -> Settings:
    """Make ``directory`` a workspace: settings file, example strategy and campaigns, migrated SQLite
    database (WAL).

    Existing files are kept, so running it twice is harmless. Returns the workspace's settings.
    """
    directory.mkdir(parents=True, exist_ok=True)
    settings_file = directory / SETTINGS_FILE
    if not settings_file.exists():
        settings_file.write_text(_SETTINGS_TEMPLATE, encoding="utf-8")
    from tummler.app.strategy import write_example_strategy

    write_example_strategy(directory)
    settings = load_settings(directory)
    upgrade_store(settings)
    return settings


def upgrade_store(settings: Settings) -> None:
    """Migrate the workspace's store to this version's schema (``tummler db upgrade``); a store
    that is already there is left as it is."""
    engine = connect(settings.resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def open_store(settings: Settings) -> Engine:
    """An engine on the workspace's store, refusing one that is not migrated to this version."""
    if settings.database_url is None and not settings.default_sqlite_path.exists():
        raise ConfigError(
            f"no tummler workspace at {settings.workspace}: run `tummler init {settings.workspace}` "
            "or pass --workspace"
        )
    engine = connect(settings.resolved_database_url)
    revision = current_revision(engine)
    if revision != head_revision():
        engine.dispose()
        if revision is None:
            raise ConfigError(
                f"no tummler store at {settings.masked_database_url}: "
                f"run `tummler init {settings.workspace}` (or `tummler db upgrade`)"
            )
        raise ConfigError(
            f"the store is at schema {revision}, this tummler needs {head_revision()}: "
            "run `tummler db upgrade`"
        )
    return engine


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What ``tummler status`` shows."""

    database: str
    backend: str
    revision: str | None
    head: str
    counts: dict[str, int]


def store_status(engine: Engine) -> StoreStatus:
    """Row counts per table, the database (password hidden) and the schema version."""
    revision = current_revision(engine)
    counts: dict[str, int] = {}
    if revision is not None:
        with engine.connect() as connection:
            for model in COUNTED_TABLES:
                name = model.__tablename__
                counts[name] = connection.scalar(select(func.count()).select_from(model)) or 0
    return StoreStatus(
        database=mask_url(engine.url.render_as_string(hide_password=False)),
        backend=engine.dialect.name,
        revision=revision,
        head=head_revision(),
        counts=counts,
    )


def store_reachable(engine: Engine) -> bool:
    """Whether the store answers a trivial query now (the API's health check)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True
