"""The FastAPI application: one factory, routers per resource, a cap on bodies, errors as answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

import tummler
from tummler.api.docs import add_docs
from tummler.api.errors import add_error_handlers
from tummler.api.limits import BodySizeLimit
from tummler.api.routes import callbacks, events, health, unsubscribe
from tummler.app.workspace import open_store
from tummler.core.api_settings import ApiSettings
from tummler.core.clock import Clock, SystemClock
from tummler.core.settings import Settings, load_settings

__all__ = ["app_from_environment", "create_app"]


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    api_settings: ApiSettings | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the HTTP API for a workspace's store.

    Parameters
    ----------
    settings
        The workspace's settings (its store, its environment).
    engine
        The store to use; default: the workspace's store (refused when missing or not migrated),
        closed with the app.
    api_settings
        Keys and provider secrets, already checked; default: ``settings.api()``, the API's part of
        the workspace's settings.
    clock
        "Now", for signed timestamps and events without a time (default: the wall clock).

    Raises
    ------
    ConfigError
        When the API's settings are invalid (``invalid API settings: ...``); in production, when
        no API key is configured (every event route would answer 401).
    """
    api_settings = (
        settings.api() if api_settings is None else settings.refuse_unsafe_api(api_settings)
    )
    owned = engine is None
    store = engine if engine is not None else open_store(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            store.dispose()

    app = FastAPI(
        title="tummler",
        version=tummler.__version__,
        description="tummler's HTTP API: events in (generic JSON and provider webhooks), health.",
        lifespan=lifespan,
        docs_url=None,  # served by add_docs from the installed package, not from a CDN
        redoc_url=None,  # ReDoc has no offline assets here: /docs is the documentation page
    )
    app.state.engine = store
    app.state.settings = settings
    app.state.api_settings = api_settings
    app.state.clock = clock if clock is not None else SystemClock()
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(callbacks.router)
    app.include_router(unsubscribe.router)
    add_docs(app)
    add_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=api_settings.max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """The app for the workspace in ``TUMMLER_WORKSPACE``: uvicorn's factory for ``tummler serve``."""
    return create_app(load_settings())
