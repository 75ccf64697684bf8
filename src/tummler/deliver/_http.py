"""What webhook- and API-based connectors share: importing httpx and reading a provider's answer."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tummler.core.errors import DeliveryError, MissingDependencyError
from tummler.deliver._base import Connector
from tummler.deliver._failures import PermanentSendError, TransientSendError
from tummler.deliver._message import OutboundMessage, SendResult

if TYPE_CHECKING:
    import httpx

    from tummler.core.clock import Clock

__all__ = [
    "HttpPostConnector",
    "classify_response",
    "classify_transport_error",
    "import_httpx",
    "parse_retry_after",
    "provider_id",
    "provider_reason",
]

#: 4xx answers that mean "not now" rather than "never": request time-out, too early, too many.
_TRANSIENT_CLIENT_ERRORS = frozenset({408, 425, 429})


def import_httpx(extra: str) -> ModuleType:
    """Import httpx, or say which extra installs it."""
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("httpx", extra) from exc
    return httpx


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    >>> from datetime import datetime, UTC
    >>> now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    >>> parse_retry_after("7", now), parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now)
    (7.0, 30.0)
    >>> parse_retry_after("soon", now) is None
    True
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def provider_reason(status: int, phrase: str, body: str, content_type: str) -> str:
    """The provider's own words for a failure: a JSON error field, else the start of the body."""
    text = body.strip()
    if "json" in content_type.lower() and text:
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            for key in ("error_description", "error", "message", "detail", "reason"):
                value = payload.get(key)
                if isinstance(value, str) and value:
                    return f"{status} {phrase}: {value}"
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return f"{status} {phrase}: {value['message']}"
    if text:
        return f"{status} {phrase}: {text[:300]}"
    return f"{status} {phrase}"


def classify_response(
    connector: str, response: httpx.Response, *, now: datetime, mask: Callable[[str], str]
) -> DeliveryError:
    """The error a non-2xx answer stands for: 5xx, 408, 425 and 429 are transient, other 4xx not."""
    status = response.status_code
    reason = mask(
        provider_reason(
            status,
            response.reason_phrase,
            response.text,
            response.headers.get("content-type", ""),
        )
    )
    if status >= 500 or status in _TRANSIENT_CLIENT_ERRORS:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        return TransientSendError(connector, reason, status=status, retry_after=retry_after)
    if status == 401:
        reason += " (check the connector's credentials)"
    return PermanentSendError(connector, reason, status=status)


def classify_transport_error(
    connector: str, exc: Exception, *, mask: Callable[[str], str]
) -> TransientSendError:
    """A failure before an answer arrived: refused, timed out, dropped. Always worth a retry.

    A dropped connection may come after the provider acted on the request; the connectors that
    use this send an ``Idempotency-Key`` so that the provider can drop the retry's duplicate.
    """
    import httpx

    detail = mask(str(exc)) or type(exc).__name__
    in_doubt = True
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        what, in_doubt = "connecting timed out", False
    elif isinstance(exc, httpx.TimeoutException):
        what = "timed out waiting for the provider"
    elif isinstance(exc, httpx.ConnectError):
        what, in_doubt = "could not connect", False
    elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        what = "the connection dropped before an answer"
    else:
        what = "transport error"
    return TransientSendError(connector, f"{what}: {detail}", in_doubt=in_doubt)


def provider_id(response: httpx.Response) -> str | None:
    """The provider's id from a JSON answer (``id``, ``message_id`` or ``sid``), if it gave one."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        payload = response.json()
    except ValueError:
        return None
    if isinstance(payload, dict):
        for key in ("id", "message_id", "sid"):
            value = payload.get(key)
            if isinstance(value, str | int) and str(value):
                return str(value)
    return None


class HttpPostConnector(Connector):
    """A connector that sends each message as one HTTP POST to ``url`` (webhook, SMS provider).

    What those connectors share once they have built the request: the POST, the failure it may
    stand for, the provider's id, and closing the client. Their constructors set ``url``,
    ``_client`` and ``_clock``.
    """

    url: str
    _client: httpx.AsyncClient
    _clock: Clock

    async def _post(self, message: OutboundMessage, **request: Any) -> SendResult:
        """POST ``request`` (body and headers, as for ``httpx.AsyncClient.post``) and read the answer.

        An answer without an id is accepted under the idempotency key: callbacks need some id to
        refer to, and the key is the next best.
        """
        try:
            response = await self._client.post(self.url, **request)
        except Exception as exc:
            import httpx

            if isinstance(exc, httpx.TransportError):
                raise classify_transport_error(self.name, exc, mask=self._mask) from None
            raise
        if not response.is_success:
            raise classify_response(
                self.name, response, now=self._clock.now(), mask=self._mask
            ) from None
        accepted_as = provider_id(response) or message.idempotency_key
        return SendResult(self.name, accepted_as, {"status": str(response.status_code)})

    async def aclose(self) -> None:
        await self._client.aclose()
