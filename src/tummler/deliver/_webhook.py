"""A generic signed webhook: POST the message as JSON to any URL the brand runs or rents."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import SecretStr

from tummler.core.clock import Clock, SystemClock
from tummler.core.vocabulary import ChannelKind
from tummler.deliver._base import check_http_url, check_positive, check_secret
from tummler.deliver._http import HttpPostConnector, import_httpx
from tummler.deliver._message import OutboundMessage, SendResult
from tummler.deliver._rate import TokenBucket

if TYPE_CHECKING:
    import httpx

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookConnector",
    "sign_webhook",
    "verify_webhook",
]

SIGNATURE_HEADER = "X-Tummler-Signature"
TIMESTAMP_HEADER = "X-Tummler-Timestamp"


def sign_webhook(secret: SecretStr, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``v1=`` and HMAC-SHA256 of ``"{timestamp}." + body``.

    Signing the timestamp with the body lets a receiver refuse a replayed request: it checks the
    signature, then that the timestamp is recent.

    >>> sign_webhook(SecretStr("key"), 1700000000, b'{"a":1}')[:11]
    'v1=a438e398'
    """
    mac = hmac.new(secret.get_secret_value().encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(f"{timestamp}.".encode("ascii"))
    mac.update(body)
    return f"v1={mac.hexdigest()}"


def verify_webhook(
    secret: SecretStr,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """Whether a received webhook is signed with ``secret`` and is at most ``tolerance`` s old.

    For receivers written in Python (and for tummler's own tests); the comparison takes constant
    time so that it leaks nothing about the expected signature.
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign_webhook(secret, sent_at, body), signature)


class WebhookConnector(HttpPostConnector):
    """POSTs each message as JSON, signed, with an ``Idempotency-Key`` header.

    The body is ``{"idempotency_key", "message_id", "channel", "to", "subject", "text", "html",
    "publicity", "metadata", "headers"}``. The request carries ``Idempotency-Key`` (the delivery's
    key: a receiver that remembers it makes retries harmless), ``X-Tummler-Timestamp`` (Unix
    seconds, from the clock) and ``X-Tummler-Signature`` (see :func:`sign_webhook`). A 2xx answer
    is acceptance; its JSON ``id``, if any, is the provider's message id (else the idempotency key).

    Parameters
    ----------
    url
        Where to POST (http or https).
    secret
        The shared signing key.
    timeout
        Seconds for connecting and for each read and write.
    clock
        Where "now" comes from (signature timestamps, ``Retry-After`` dates).
    rate_limit
        Optional pacing, see :class:`TokenBucket`.
    transport
        An httpx transport, for callers that need one (proxies, tests of their own).
    """

    name: ClassVar[str] = "webhook"
    #: In doubt, resend: the ``Idempotency-Key`` header carries the delivery's key.
    resend_in_doubt: ClassVar[bool] = True
    channels: ClassVar[frozenset[ChannelKind]] = frozenset({ChannelKind.WEBHOOK})

    def __init__(
        self,
        *,
        url: str,
        secret: SecretStr,
        timeout: float = 10.0,
        clock: Clock | None = None,
        rate_limit: TokenBucket | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(rate_limit=rate_limit)
        httpx_module = import_httpx("webhook")
        check_http_url("webhook url", url)
        check_secret("webhook secret", secret)
        self.url = url
        self._secret = secret
        self._keep_secret(secret)
        self._clock = clock or SystemClock()
        self._client: httpx.AsyncClient = httpx_module.AsyncClient(
            timeout=check_positive("timeout", timeout), transport=transport
        )

    def _describe(self) -> str:
        return f"url={self.url!r}"

    async def _send(self, message: OutboundMessage) -> SendResult:
        body = json.dumps(_payload(message), ensure_ascii=False, sort_keys=True).encode("utf-8")
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign_webhook(self._secret, timestamp, body),
        }
        return await self._post(message, content=body, headers=headers)


def _payload(message: OutboundMessage) -> dict[str, Any]:
    return {
        "idempotency_key": message.idempotency_key,
        "message_id": message.message_id,
        "channel": str(message.channel),
        "to": message.to,
        "subject": message.subject,
        "text": message.body_text,
        "html": message.body_html,
        "publicity": str(message.publicity),
        "metadata": dict(message.metadata),
        "headers": dict(message.headers),
    }
