"""The one base class every connector implements."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import urlsplit

from pydantic import SecretStr

from tummler.core.errors import ConfigError, DeliveryError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver._failures import PermanentSendError
from tummler.deliver._message import OutboundMessage, SendResult
from tummler.deliver._rate import TokenBucket
from tummler.deliver._secrets import mask_secrets, register_secret

__all__ = ["Connector"]

logger = logging.getLogger("tummler.deliver")


class Connector(ABC):
    """Hands one message at a time to one provider.

    Subclasses implement :meth:`_send` and nothing else is required of them. :meth:`send` checks
    the channel, waits for the rate limiter, and logs the outcome (never the credentials, the body
    or the recipient's address: only the idempotency key, the Message-ID and the provider's id).

    A connector promises its callers (the outbox) exactly this:

    - it returns a :class:`SendResult` only when the provider accepted the message;
    - it raises :class:`~tummler.deliver.TransientSendError` when retrying may succeed, with
      ``in_doubt`` set when the request had (at least partly) gone out, so the provider may have
      accepted it (a read time-out, a connection dropped mid-message). Whether the outbox may
      retry an in-doubt delivery is the connector's own :attr:`resend_in_doubt`;
    - it raises :class:`~tummler.deliver.PermanentSendError` when retrying cannot help;
    - anything else it raises is a bug or a misconfiguration; the outbox must then treat the
      message as possibly sent (``unknown``).

    Parameters
    ----------
    rate_limit
        Paces this connector's sends; ``None`` sends as fast as the caller asks.
    """

    #: Short name used in results, errors and logs.
    name: ClassVar[str]
    #: The channels this connector can carry.
    channels: ClassVar[frozenset[ChannelKind]]
    #: Whether the outbox may send an in-doubt delivery again: ``True`` only where the provider
    #: de-duplicates a resend (an idempotency key, a stable Message-ID). A connector that makes
    #: no such promise keeps the default, and its in-doubt deliveries are held as ``unknown``.
    resend_in_doubt: ClassVar[bool] = False

    def __init__(self, *, rate_limit: TokenBucket | None = None) -> None:
        self.rate_limit = rate_limit
        self._secrets: tuple[str, ...] = ()

    def _keep_secret(self, *secrets: SecretStr | None) -> None:
        """Register credentials so that reasons and log lines mask them."""
        for secret in secrets:
            if secret is not None:
                register_secret(secret)
                self._secrets += (secret.get_secret_value(),)

    def _mask(self, text: str) -> str:
        return mask_secrets(text, self._secrets)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand ``message`` to the provider.

        Returns
        -------
        SendResult
            The provider's id for the message, once it accepted it.

        Raises
        ------
        TransientSendError
            Time-out, refused or dropped connection, 5xx, 429 (with ``retry_after``): retry later.
        PermanentSendError
            A 4xx, an invalid address, rejected content, a channel this connector does not carry.
        """
        if message.channel not in self.channels:
            carried = ", ".join(sorted(self.channels))
            raise PermanentSendError(
                self.name,
                f"channel {message.channel!r} is not carried by this connector (it carries {carried}); "
                "route the delivery to a connector for its channel",
            )
        if self.rate_limit is not None:
            await self.rate_limit.acquire()
        logger.debug(
            "%s: sending delivery %s (%s)", self.name, message.idempotency_key, message.channel
        )
        try:
            result = await self._send(message)
        except DeliveryError as exc:
            # The error's text carries the provider's reason with credentials masked.
            logger.warning("%s: delivery %s: %s", self.name, message.idempotency_key, exc)
            raise
        logger.info(
            "%s: delivery %s accepted as %s",
            self.name,
            message.idempotency_key,
            result.provider_message_id,
        )
        return result

    @abstractmethod
    async def _send(self, message: OutboundMessage) -> SendResult:
        """Hand the message over; raise the send errors described on the class."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing
        """Release connections; the default holds none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # Only what identifies the endpoint; credentials never appear here.
        return f"{type(self).__name__}({self._describe()})"

    def _describe(self) -> str:
        return ""


def check_positive(name: str, value: float) -> float:
    """Refuse a time-out or a size that is not a positive number, naming the argument."""
    if not value > 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_http_url(name: str, url: str, example: str = "") -> str:
    """Refuse an endpoint that is not an http(s) URL with a host, naming the argument."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        hint = f", e.g. {example}" if example else ""
        raise ConfigError(f"{name} {url!r} must be an http(s) URL with a host{hint}")
    return url


def check_secret(name: str, secret: SecretStr) -> SecretStr:
    """Refuse a credential that is not a non-empty ``SecretStr`` (plain strings end up in logs)."""
    if not isinstance(secret, SecretStr) or not secret.get_secret_value():
        raise ConfigError(f"{name} must be a non-empty SecretStr")
    return secret
