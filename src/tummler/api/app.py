"""The FastAPI application: one factory, routers per resource, tummler's errors as HTTP answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

import tummler
from tummler.api.config import ApiSettings, load_api_settings
from tummler.api.routes import callbacks, events, health, unsubscribe
from tummler.app.callbacks import RejectedEventsError
from tummler.app.workspace import open_store
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import (
    ConfigError,
    InputError,
    NotFoundError,
    StoreError,
    TummlerError,
)
from tummler.core.settings import Environment, Settings, load_settings

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
        Keys and provider secrets; default: read from ``TUMMLER_*`` environment variables.
    clock
        "Now", for signed timestamps and events without a time (default: the wall clock).

    Raises
    ------
    ConfigError
        When the API's environment variables are invalid; in production, when no API key is
        configured (every event route would answer 401).
    """
    api_settings = api_settings if api_settings is not None else load_api_settings()
    if settings.environment is Environment.PRODUCTION and not api_settings.api_keys:
        raise ConfigError(
            "no API key configured: set TUMMLER_API_KEYS to a JSON object of "
            '{"<sha256 hex of a key>": "<role>"} (see tummler.api.hash_api_key)'
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
    )
    app.state.engine = store
    app.state.settings = settings
    app.state.api_settings = api_settings
    app.state.clock = clock if clock is not None else SystemClock()
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(callbacks.router)
    app.include_router(unsubscribe.router)
    app.add_exception_handler(TummlerError, _tummler_error)
    return app


def app_from_environment() -> FastAPI:
    """The app for the workspace in ``TUMMLER_WORKSPACE``: uvicorn's factory for ``tummler serve``."""
    return create_app(load_settings())


def _detail(loc: list[Any], message: str, kind: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": message}


async def _tummler_error(_request: Request, exc: Exception) -> JSONResponse:
    """tummler's errors in FastAPI's shape: ``{"detail": [{"loc", "msg", "type"}]}`` for input."""
    if isinstance(exc, RejectedEventsError):
        details = [
            _detail(
                ["body", p.field] if p.index is None else ["body", p.index, p.field],
                p.reason,
                p.code,
            )
            for p in exc.problems
        ]
        return JSONResponse({"detail": details}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    if isinstance(exc, InputError):
        loc = ["body"] if exc.field is None else ["body", exc.field]
        return JSONResponse(
            {"detail": [_detail(loc, exc.reason, "invalid")]},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    if isinstance(exc, NotFoundError):
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, StoreError):
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, ConfigError):
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)
