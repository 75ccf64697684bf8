"""The API's settings: who may call it, and the secrets that verify provider callbacks.

They are part of tummler's one :class:`~tummler.core.settings.Settings`, read like every other setting
(``tummler.toml``, then ``TUMMLER_*`` environment variables) and checked when the API is built
(:meth:`~tummler.core.settings.Settings.api`), so that a malformed one stops ``tummler serve`` and no
other command.

The store has no table for API keys, on purpose: keys are configuration, not data. They are given,
hashed::

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

from tummler.core.api_settings import DEFAULT_MAX_BODY_BYTES, ApiSettings, Role
from tummler.core.settings import Settings, load_settings

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ApiSettings", "Role", "hash_api_key", "load_api_settings"]


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is configured in ``TUMMLER_API_KEYS``.

    >>> hash_api_key("secret")[:16]
    '2bb80d537b1da3e3'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_api_settings(settings: Settings | None = None) -> ApiSettings:
    """The API's part of ``settings`` (default: the workspace's, :func:`load_settings`), checked.

    Raises
    ------
    ConfigError
        When an API setting holds a value the API cannot use (e.g. ``TUMMLER_API_KEYS`` that is not a
        JSON object of SHA-256 digest → role): ``invalid API settings: ...``, naming it; in
        production, when no API key is configured.
    """
    return (settings if settings is not None else load_settings()).api()
