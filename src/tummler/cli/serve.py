"""`tummler serve`: run the HTTP API (events in, provider callbacks) on the workspace's store.

The app is handed to uvicorn as an import string (``tummler.api:app_from_environment``) with the
workspace in ``TUMMLER_WORKSPACE``, so that several worker processes can each build their own app and
store connections — and so that the CLI does not import the API layer. The API's settings, the store
and the port are checked before the banner is printed, so that a malformed ``TUMMLER_API_KEYS`` or a
busy port is an error naming it rather than a banner and then a traceback from the worker.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
from typing import Annotated

import typer

from tummler.cli.context import console, state
from tummler.core.errors import ConfigError, MissingDependencyError

__all__ = ["serve"]

_FACTORY = "tummler.api:app_from_environment"
#: What the API needs of the ``api`` extra (module → package), checked before the banner: the app
#: is built in uvicorn's worker, where a missing one would be a traceback after it.
_API_EXTRA = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "swagger_ui_bundle": "swagger-ui-bundle-v2",
}


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

    API keys come from TUMMLER_API_KEYS (a JSON object of sha256 hex digest → role) or api_keys in
    tummler.toml; provider secrets from TUMMLER_SENDGRID_VERIFICATION_KEY,
    TUMMLER_MAILGUN_SIGNING_KEY and TUMMLER_TWILIO_AUTH_TOKEN.
    """
    for module, package in _API_EXTRA.items():
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(package, "api")
    import uvicorn

    cli = state(ctx)
    settings = cli.settings
    settings.api()  # a malformed API setting is refused here, with its name, not in the worker
    cli.engine  # noqa: B018 - opening the store here refuses a missing or outdated one before serving
    _refuse_a_port_in_use(host, port)
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


def _refuse_a_port_in_use(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will, and let go: a port that cannot be had is named now.

    Raises
    ------
    ConfigError
        When the address cannot be bound (in use, not this machine's, or a privileged port).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            hint = (
                f"port {port} is in use (another tummler serve?)"
                if exc.errno == errno.EADDRINUSE
                else f"{exc.strerror or exc}"
            )
            raise ConfigError(
                f"cannot listen on {host}:{port}: {hint}; choose another port with --port "
                "(or another address with --host)"
            ) from None
