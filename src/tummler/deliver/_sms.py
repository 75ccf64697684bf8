"""SMS through a generic HTTP provider API: a JSON POST with a bearer token."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from pydantic import SecretStr

from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import ConfigError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver._base import check_http_url, check_positive, check_secret
from tummler.deliver._failures import PermanentSendError
from tummler.deliver._http import HttpPostConnector, import_httpx
from tummler.deliver._message import OutboundMessage, SendResult
from tummler.deliver._rate import TokenBucket

if TYPE_CHECKING:
    import httpx

__all__ = ["SmsConnector", "is_e164"]

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: Concatenated SMS top out around ten parts; past that providers refuse or truncate.
_MAX_SMS_CHARACTERS = 1600


def is_e164(number: str) -> bool:
    """Whether ``number`` is an E.164 number that can exist (``+`` and 7 to 15 digits, a real plan).

    >>> is_e164("+14155552671"), is_e164("004915123456789"), is_e164("+999123")
    (True, False, False)
    """
    if not _E164.fullmatch(number):
        return False
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(parsed))


class SmsConnector(HttpPostConnector):
    """Sends an SMS by POSTing ``{"to", "from", "body", "reference", "metadata"}`` to a provider.

    Most SMS APIs have this shape; the request carries ``Authorization: Bearer <token>`` and
    ``Idempotency-Key`` (the delivery's key, which providers that support it use to drop
    duplicates; ``reference`` carries it too for those that only echo it in callbacks). The
    answer's JSON ``id`` (or ``message_id``, ``sid``) is the provider's message id.

    The recipient must be an E.164 number (``+`` and the country code): a number without a country
    cannot be routed reliably, and the error is permanent.

    Parameters
    ----------
    url
        The provider's send endpoint (http or https).
    token
        The API token, sent as a bearer token.
    sender
        The sender id or number the provider registered for the brand.
    timeout
        Seconds for connecting and for each read and write.
    clock, rate_limit, transport
        As for :class:`~tummler.deliver.WebhookConnector`.
    """

    name: ClassVar[str] = "sms"
    #: In doubt, resend: the provider de-duplicates on the idempotency key.
    resend_in_doubt: ClassVar[bool] = True
    channels: ClassVar[frozenset[ChannelKind]] = frozenset({ChannelKind.SMS})

    def __init__(
        self,
        *,
        url: str,
        token: SecretStr,
        sender: str,
        timeout: float = 10.0,
        clock: Clock | None = None,
        rate_limit: TokenBucket | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(rate_limit=rate_limit)
        httpx_module = import_httpx("sms")
        check_http_url("SMS provider url", url)
        check_secret("SMS provider token", token)
        if not sender.strip():
            raise ConfigError("SMS sender must be the sender id or number the provider registered")
        self.url = url
        self.sender = sender
        self._token = token
        self._keep_secret(token)
        self._clock = clock or SystemClock()
        self._client: httpx.AsyncClient = httpx_module.AsyncClient(
            timeout=check_positive("timeout", timeout), transport=transport
        )

    def _describe(self) -> str:
        return f"url={self.url!r}, sender={self.sender!r}"

    async def _send(self, message: OutboundMessage) -> SendResult:
        if not is_e164(message.to):
            raise PermanentSendError(
                self.name,
                f"recipient {message.to!r} is not an E.164 number; store it as + country code and "
                "number, e.g. +14155552671",
            )
        if not message.body_text.strip():
            raise PermanentSendError(self.name, "the SMS body is empty")
        if len(message.body_text) > _MAX_SMS_CHARACTERS:
            raise PermanentSendError(
                self.name,
                f"the SMS body has {len(message.body_text)} characters; keep it under "
                f"{_MAX_SMS_CHARACTERS}",
            )
        payload = {
            "to": message.to,
            "from": self.sender,
            "body": message.body_text,
            "reference": message.idempotency_key,
            "metadata": dict(message.metadata),
        }
        headers = {
            "Authorization": f"Bearer {self._token.get_secret_value()}",
            "Idempotency-Key": message.idempotency_key,
        }
        return await self._post(message, json=payload, headers=headers)
