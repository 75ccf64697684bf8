"""Typed dependencies: the engine that routes hand to services, the settings, the clock, the consent
rules and the caller's role. Routes never query the store themselves: they call services in ``app``.

Routes declare what they need as annotated parameters (``engine: EngineDep``); tests build the app with
their own engine and clock through :func:`tummler.api.create_app` instead of overriding dependencies.
A route that needs an API key is also a :class:`KeyFirstRoute`, so that the key is checked before the
body is read.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from tummler.api.config import ApiSettings, Role, hash_api_key
from tummler.app.strategy import ConsentRules, consent_rules
from tummler.core.clock import Clock
from tummler.core.settings import Settings

__all__ = [
    "ApiSettingsDep",
    "ClockDep",
    "ConsentRulesDep",
    "EngineDep",
    "KeyFirstRoute",
    "Principal",
    "SettingsDep",
    "require_role",
]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _api_settings(request: Request) -> ApiSettings:
    api_settings: ApiSettings = request.app.state.api_settings
    return api_settings


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def _consent_rules(request: Request) -> ConsentRules:
    # read at each request: the strategy file may change while the server runs (parsing is cached)
    return consent_rules(_settings(request).workspace)


EngineDep = Annotated[Engine, Depends(_engine)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ApiSettingsDep = Annotated[ApiSettings, Depends(_api_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
ConsentRulesDep = Annotated[ConsentRules, Depends(_consent_rules)]


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key.")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the role of their key and a short, non-secret id of it for logs."""

    role: Role
    key_id: str


def _principal(
    api_settings: ApiSettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    key = bearer.credentials if bearer is not None else header_key
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "no API key: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hash_api_key(key)
    for known, role in api_settings.api_keys.items():
        if hmac.compare_digest(known, digest):
            return Principal(role=role, key_id=digest[:8])
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "unknown API key: check it, or ask an admin to add its hash to TUMMLER_API_KEYS",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _authenticate(request: Request) -> Principal:
    """The caller, from the request's headers alone (the same checks as the dependency)."""
    return _principal(
        _api_settings(request), await _bearer(request), await _api_key_header(request)
    )


class KeyFirstRoute(APIRoute):
    """A route that refuses a caller without a known API key before reading a byte of the body.

    FastAPI reads and parses a route's body before it runs the route's dependencies, so the key check of
    :func:`require_role` alone would come after an unknown caller's body had been read and parsed. The
    role is still checked by the dependency, once the body is read.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        read_body_and_run = super().get_route_handler()

        async def key_first(request: Request) -> Response:
            await _authenticate(request)
            return await read_body_and_run(request)

        return key_first


def require_role(*roles: Role) -> Callable[..., Principal]:
    """A dependency that lets through a caller whose key has one of ``roles`` (403 otherwise)."""
    allowed = frozenset(roles)
    listing = ", ".join(sorted(role.value for role in allowed))

    def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a key with role {principal.role.value!r} may not do this; it needs one of: "
                f"{listing}",
            )
        return principal

    return check
