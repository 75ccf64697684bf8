"""`tummler serve`: run the HTTP API (events in, provider callbacks) on the workspace's store.

The app is handed to uvicorn as an import string (``tummler.api:app_from_environment``) with the
workspace in ``TUMMLER_WORKSPACE``, so that several worker processes can each build their own app and
store connections — and so that the CLI does not import the API layer.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Annotated

import typer

from tummler.cli.context import console, state
from tummler.core.errors import MissingDependencyError

__all__ = ["serve"]

_FACTORY = "tummler.api:app_from_environment"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 to accept other machines.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each opens its own store connections).")
    ] = 1,
) -> None:
    """Serve the HTTP API: POST /v1/events, provider callbacks, GET /v1/health, /docs.

    API keys come from TUMMLER_API_KEYS (a JSON object of sha256 hex digest → role); provider
    secrets from TUMMLER_SENDGRID_VERIFICATION_KEY, TUMMLER_MAILGUN_SIGNING_KEY and
    TUMMLER_TWILIO_AUTH_TOKEN.
    """
    for package in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(package) is None:
            raise MissingDependencyError(package, "api")
    import uvicorn

    cli = state(ctx)
    settings = cli.settings
    cli.engine  # noqa: B018 - opening the store here refuses a missing or outdated one before serving
    os.environ["TUMMLER_WORKSPACE"] = str(settings.workspace.resolve())
    console.print(f"tummler API on http://{host}:{port} (docs at /docs)", highlight=False)
    uvicorn.run(
        _FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )
