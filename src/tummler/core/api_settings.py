"""The HTTP API's part of the settings, checked when the API is built and not before.

:class:`~tummler.core.settings.Settings` holds the API's settings as they were given (in
``tummler.toml`` or ``TUMMLER_*`` variables) and :meth:`~tummler.core.settings.Settings.api` turns
them into an :class:`ApiSettings` through :func:`read_api_settings`. So a malformed
``TUMMLER_API_KEYS`` stops ``tummler serve``, with a message naming it, and no other command: a
command that does not serve the API has no use for its keys.

API keys are configured hashed (SHA-256 hex digest → :class:`Role`), so that the process never holds
a key in clear; rotating one is a deployment change. Messages never quote a key or a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tummler.core.errors import ConfigError

__all__ = [
    "API_SETTING_NAMES",
    "DEFAULT_MAX_BODY_BYTES",
    "ApiSettings",
    "Role",
    "read_api_settings",
]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

#: Room for a full batch of 10,000 typical events (about 1.4 MB), not much more: every byte of a
#: body is held in memory, and provider callbacks are read before their signature can be checked.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

#: Each :class:`ApiSettings` field → the name of its setting in ``Settings`` and ``tummler.toml``
#: (the environment variable is ``TUMMLER_`` and the name in capitals).
API_SETTING_NAMES: Mapping[str, str] = {
    "api_keys": "api_keys",
    "sendgrid_verification_key": "sendgrid_verification_key",
    "mailgun_signing_key": "mailgun_signing_key",
    "twilio_auth_token": "twilio_auth_token",
    "signature_tolerance_s": "signature_tolerance_s",
    "max_body_bytes": "api_max_body_bytes",
}

_KEYS_HINT = (
    "set it to a JSON object (a table in tummler.toml) of "
    '{"<sha256 hex of a key>": "<role>"} '
    "(make a digest with tummler.api.hash_api_key)"
)


class Role(StrEnum):
    """What a key may do. ``analyst`` reads; ``partner`` reports events; the others manage."""

    ADMIN = "admin"
    MARKETER = "marketer"
    ANALYST = "analyst"
    PARTNER = "partner"


class ApiSettings(BaseModel):
    """Settings of the HTTP API, checked: who may call it, the secrets that verify provider
    callbacks, and the cap on request bodies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: dict[str, Role] = Field(
        default_factory=dict,
        repr=False,
        description="SHA-256 hex digest of each API key → its role (JSON in TUMMLER_API_KEYS).",
    )
    sendgrid_verification_key: SecretStr | None = Field(
        default=None,
        description="SendGrid Signed Event Webhook verification key (base64 DER public key).",
    )
    mailgun_signing_key: SecretStr | None = Field(
        default=None, description="Mailgun HTTP webhook signing key."
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Twilio auth token (signs status callbacks)."
    )
    signature_tolerance_s: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="How old (in seconds) a signed callback's timestamp may be; older ones are "
        "refused as replays.",
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1,
        description="The largest request body, in bytes (TUMMLER_API_MAX_BODY_BYTES); a larger one "
        "is refused with 413 before it is read.",
    )

    @field_validator("api_keys")
    @classmethod
    def _hashed(cls, value: dict[str, Role]) -> dict[str, Role]:
        if not all(_SHA256_HEX.fullmatch(digest) for digest in value):
            raise ValueError(
                "a key is not a lower-case SHA-256 hex digest; store hash_api_key(key), "
                "never the key itself"
            )
        return value


def read_api_settings(given: Mapping[str, object]) -> ApiSettings:
    """Check the API's settings as they were given, by :class:`ApiSettings` field name.

    ``None`` means "not set" (the default applies); ``api_keys`` may be JSON text (as an environment
    variable gives it) or a table (as ``tummler.toml`` does).

    Raises
    ------
    ConfigError
        ``invalid API settings: ...``, naming each variable that holds a value the API cannot use
        and what to do, without quoting the value (it may be a secret).
    """
    values = {field: value for field, value in given.items() if value is not None}
    if isinstance(values.get("api_keys"), str):
        values["api_keys"] = _keys_from_json(str(values["api_keys"]))
    try:
        return ApiSettings.model_validate(values)
    except ValidationError as exc:
        problems = dict.fromkeys(_problem(error["loc"], error["msg"]) for error in exc.errors())
        raise ConfigError(f"invalid API settings: {'; '.join(problems)}") from None


def _keys_from_json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigError(
            f"invalid API settings: {_named('api_keys')} is not JSON; {_KEYS_HINT}"
        ) from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One problem, by variable: the location's first part only, since the rest may be a key."""
    field = str(loc[0]) if loc else ""
    message = message.removeprefix("Value error, ")
    if field == "api_keys":
        return f"{_named(field)}: {message}; {_KEYS_HINT}"
    return f"{_named(field)}: {message}"


def _named(field: str) -> str:
    """``TUMMLER_API_MAX_BODY_BYTES (api_max_body_bytes)``: how a person set ``field``."""
    setting = API_SETTING_NAMES.get(field, field)
    return f"TUMMLER_{setting.upper()} ({setting})"
