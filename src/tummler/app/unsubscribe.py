"""Unsubscribe links: signed tokens, ``List-Unsubscribe`` URLs, and honouring them.

Every e-mail carries a link (and RFC 8058 ``List-Unsubscribe`` headers) whose token names the
contact and the channel, signed with HMAC-SHA256 under ``settings.secret_key``. A token cannot be
forged or moved to another person or channel without the key, and needs no database row: it stays
valid as long as the key does. It names the contact by its internal id, never an address, so a
forwarded e-mail leaks nothing about its recipient.

Outside development the key must be set (``Settings`` refuses to start in production without it);
in development a fixed key is used so that links work out of the box — they are then forgeable by
anyone who reads this file, which is why it is refused in production.

Honouring a link (:func:`honour_unsubscribe`) appends a ``revoked`` consent event with source
``unsubscribe-link``. It is idempotent: mailbox providers may POST the one-click URL more than once,
and a contact whose consent is already revoked gets no second event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote

from pydantic import SecretStr
from sqlalchemy import Engine

from tummler.app.consent import Revocation, current_consent, write_revocations
from tummler.core.clock import Clock
from tummler.core.errors import ConfigError, InputError, NotFoundError
from tummler.core.settings import Environment, Settings, public_base_url
from tummler.core.vocabulary import ConsentStatus
from tummler.store import models
from tummler.store.database import session_scope

__all__ = [
    "DEVELOPMENT_KEY",
    "UNSUBSCRIBE_SOURCE",
    "UnsubscribeResult",
    "honour_unsubscribe",
    "make_unsubscribe_token",
    "read_unsubscribe_token",
    "unsubscribe_key",
    "unsubscribe_url",
]

#: The ``source`` of the consent events this module writes.
UNSUBSCRIBE_SOURCE = "unsubscribe-link"
#: Used only when ``environment`` is development and no ``secret_key`` is set.
DEVELOPMENT_KEY = SecretStr("tummler-development-key-never-use-in-production")
_SIGNATURE_CHARS = 32
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TOKEN = re.compile(r"^(\d{1,19})\.([a-z0-9][a-z0-9_-]{0,63})\.([A-Za-z0-9_-]{32})$")


def unsubscribe_key(settings: Settings) -> SecretStr:
    """The key that signs unsubscribe links: ``settings.secret_key``, or in development a fixed one.

    Raises
    ------
    ConfigError
        Outside development without ``TUMMLER_SECRET_KEY`` (settings normally refuse that first).
    """
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key
    if settings.environment is Environment.DEVELOPMENT:
        return DEVELOPMENT_KEY
    raise ConfigError(
        "TUMMLER_SECRET_KEY is not set; set it to a long random string (it signs unsubscribe links)"
    )


def _signature(contact_id: int, channel: str, key: SecretStr) -> str:
    mac = hmac.new(
        key.get_secret_value().encode("utf-8"),
        f"unsubscribe:{contact_id}:{channel}".encode(),
        hashlib.sha256,
    )
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii")[:_SIGNATURE_CHARS]


def make_unsubscribe_token(contact_id: int, channel: str, *, key: SecretStr) -> str:
    """A token for ``contact_id`` on ``channel``: ``"<id>.<channel>.<signature>"``, URL-safe.

    >>> make_unsubscribe_token(42, "email", key=SecretStr("k"))[:9]
    '42.email.'
    """
    if contact_id < 0:
        raise InputError(f"contact id must not be negative, got {contact_id!r}", field="contact_id")
    if not _CHANNEL.match(channel):
        raise InputError(
            f"channel {channel!r} is not a channel name (lower-case letters, digits, - and _)",
            field="channel",
        )
    return f"{contact_id}.{channel}.{_signature(contact_id, channel, key)}"


def read_unsubscribe_token(token: str, *, key: SecretStr) -> tuple[int, str]:
    """The ``(contact id, channel)`` a token names, once its signature is checked.

    Raises
    ------
    InputError
        When the token is malformed or its signature does not match (a forged, truncated or
        mistyped link); the message does not say which, to give a forger nothing to learn.
    """
    match = _TOKEN.match(token.strip())
    if match is not None:
        contact_id, channel = int(match.group(1)), match.group(2)
        expected = _signature(contact_id, channel, key)
        if hmac.compare_digest(expected, match.group(3)):
            return contact_id, channel
    raise InputError(
        "this unsubscribe link is not valid (it may be incomplete); use the link from the "
        "latest message, or contact the sender",
        field="token",
    )


def unsubscribe_url(base_url: str, token: str) -> str:
    """The link a message carries: ``{base_url}/unsubscribe/{token}``.

    ``base_url`` is where the HTTP app is reachable from the internet (``https://brand.example``);
    the same URL takes GET (a confirmation page) and POST (RFC 8058 one-click).

    >>> unsubscribe_url("https://brand.example/", "1.email.abc")
    'https://brand.example/unsubscribe/1.email.abc'
    """
    try:
        base = public_base_url(base_url, what="unsubscribe base URL")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return f"{base}/unsubscribe/{quote(token, safe='.-_')}"


@dataclass(frozen=True, slots=True)
class UnsubscribeResult:
    """What honouring a link did.

    Attributes
    ----------
    contact_id, channel
        Whom and where the link was for.
    recorded
        ``True`` when a ``revoked`` consent event was written; ``False`` when consent was already
        revoked (a repeated click or POST).
    """

    contact_id: int
    channel: str
    recorded: bool


def honour_unsubscribe(
    engine: Engine, token: str, *, key: SecretStr, clock: Clock
) -> UnsubscribeResult:
    """Revoke the consent a valid unsubscribe token names.

    Writes a ``revoked`` :class:`~tummler.store.models.ConsentEvent` with source
    ``unsubscribe-link`` at ``clock.now()``, unless the latest event for that contact and channel
    already revokes it. The outbox reads the latest event at send time, so a message that is
    planned but not yet sent is skipped from then on.

    Raises
    ------
    InputError
        When the token is not valid (see :func:`read_unsubscribe_token`).
    NotFoundError
        When the contact no longer exists (it was erased); nothing is left to unsubscribe.
    """
    contact_id, channel = read_unsubscribe_token(token, key=key)
    now = clock.now()
    with session_scope(engine) as session:
        contact = session.get(models.Contact, contact_id)
        if contact is None:
            raise NotFoundError(
                "the person this unsubscribe link was for is no longer in the store; "
                "nothing to unsubscribe"
            )
        if contact.forgotten_at is not None:  # erased: nothing is sent to them, nothing to write
            return UnsubscribeResult(contact_id, channel, recorded=False)
        connection = session.connection()
        # the rule the outbox checks: a revocation already in force needs no second one
        state = current_consent(connection, contact_id=contact_id, names=[channel], now=now)
        if state.status == ConsentStatus.REVOKED.value:
            return UnsubscribeResult(contact_id, channel, recorded=False)
        write_revocations(
            connection, [Revocation(contact_id, channel, UNSUBSCRIBE_SOURCE, now)], now=now
        )
    return UnsubscribeResult(contact_id, channel, recorded=True)
