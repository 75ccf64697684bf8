"""Credentials stay secret: they come in as ``SecretStr`` and never reach a log line.

Connectors take their credentials as :class:`pydantic.SecretStr` (whose repr is masked) and
register the plain values here when they are built. :class:`SecretMaskingFilter`, put on a logging
handler, then masks every registered value in every record that handler emits, whichever library
logged it; :func:`mask_secrets` does the same for the reasons connectors put into errors.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable

from pydantic import SecretStr

from tummler.core.errors import ConfigError

__all__ = ["SecretMaskingFilter", "mask_secrets", "register_secret", "secret_from_env"]

MASK = "********"
#: Shorter values would mask ordinary words; no real credential is this short.
_MIN_SECRET_LENGTH = 4
_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(secret: SecretStr | None) -> None:
    """Remember a credential's value so that :class:`SecretMaskingFilter` masks it."""
    if secret is None:
        return
    value = secret.get_secret_value()
    if len(value) >= _MIN_SECRET_LENGTH:
        with _registered_lock:
            _registered.add(value)


def mask_secrets(text: str, secrets: Iterable[str] | None = None) -> str:
    """Replace each secret in ``text`` with ``********`` (default: every registered secret).

    Providers sometimes echo what they were sent (a token in an error page, a key in a URL); every
    reason a connector records goes through this before it reaches an error, a log or the store.

    >>> mask_secrets("bad token s3cr3t", ["s3cr3t"])
    'bad token ********'
    """
    if secrets is None:
        with _registered_lock:
            secrets = sorted(_registered, key=len, reverse=True)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class SecretMaskingFilter(logging.Filter):
    """A logging filter that masks every registered credential in a record's message.

    Put it on the handlers (not the loggers: a logger's filters do not see records that propagate
    from its children)::

        handler.addFilter(SecretMaskingFilter())

    The record's message is rendered once, masked, and stored back without arguments, so later
    formatting cannot reintroduce the value; exception text is masked the same way.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            masked_text = mask_secrets(text)
            if masked_text != text:
                record.exc_info = None
                record.exc_text = masked_text
        return True


def secret_from_env(variable: str) -> SecretStr:
    """Read a credential from the environment, e.g. ``TUMMLER_SMTP_PASSWORD``.

    Raises
    ------
    ConfigError
        When the variable is unset or empty; the message names it.
    """
    value = os.environ.get(variable, "")
    if not value:
        raise ConfigError(f"environment variable {variable} is not set; set it to the credential")
    secret = SecretStr(value)
    register_secret(secret)
    return secret
