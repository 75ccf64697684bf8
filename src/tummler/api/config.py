"""The API's own settings: who may call it, and the secrets that verify provider callbacks.

The store has no table for API keys, on purpose: keys are configuration, not data. They are given, hashed,
in the environment::

    TUMMLER_API_KEYS='{"<sha256 hex of the key>": "marketer", "<sha256 hex>": "partner"}'

so the process never holds a key in clear, and rotating one is a deployment change. Make the hash of a
new key with :func:`hash_api_key` (``python -c "from tummler.api import hash_api_key; print(hash_api_key('...'))"``).

Provider secrets come from ``TUMMLER_SENDGRID_VERIFICATION_KEY`` (the Signed Event Webhook's public key,
base64), ``TUMMLER_MAILGUN_SIGNING_KEY`` and ``TUMMLER_TWILIO_AUTH_TOKEN``; a provider without its secret
is refused (503) rather than trusted.

``TUMMLER_API_MAX_BODY_BYTES`` caps the size of any request body (2 MiB by default: a full batch of
10,000 typical events is about 1.4 MB); a larger one is refused with 413 before it is read.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tummler.core.errors import ConfigError

__all__ = ["ApiSettings", "Role", "hash_api_key", "load_api_settings"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

#: Room for a full batch of 10,000 typical events (about 1.4 MB), not much more: every byte of a
#: body is held in memory, and provider callbacks are read before their signature can be checked.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024


class Role(StrEnum):
    """What a key may do. ``analyst`` reads; ``partner`` reports events; the others manage."""

    ADMIN = "admin"
    MARKETER = "marketer"
    ANALYST = "analyst"
    PARTNER = "partner"


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is configured in ``TUMMLER_API_KEYS``.

    >>> hash_api_key("secret")[:16]
    '2bb80d537b1da3e3'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiSettings(BaseSettings):
    """Settings of the HTTP API, read from ``TUMMLER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TUMMLER_", extra="ignore", populate_by_name=True)

    api_keys: dict[str, Role] = Field(
        default_factory=dict,
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
        validation_alias="TUMMLER_API_MAX_BODY_BYTES",
        description="The largest request body, in bytes (TUMMLER_API_MAX_BODY_BYTES); a larger one "
        "is refused with 413 before it is read.",
    )

    @field_validator("api_keys")
    @classmethod
    def _hashed(cls, value: dict[str, Role]) -> dict[str, Role]:
        for digest in value:
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError(
                    f"TUMMLER_API_KEYS: {digest[:8]!r}... is not a lower-case SHA-256 hex digest; "
                    "store hash_api_key(key), never the key itself"
                )
        return value


def load_api_settings() -> ApiSettings:
    """Read the API's settings from the environment.

    Raises
    ------
    ConfigError
        When a ``TUMMLER_*`` variable of the API holds a value it cannot use (e.g. ``TUMMLER_API_KEYS``
        that is not a JSON object of SHA-256 digest → role).
    """
    try:
        return ApiSettings()
    except ValueError as exc:  # pydantic's ValidationError and pydantic-settings' SettingsError
        raise ConfigError(f"invalid API settings: {exc}") from exc
