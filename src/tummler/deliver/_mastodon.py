"""Mastodon (Mastodon.py): a public status, or a direct message to one handle."""

from __future__ import annotations

import asyncio
import re
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import SecretStr

from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import MissingDependencyError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver._base import Connector, check_http_url, check_positive, check_secret
from tummler.deliver._failures import PermanentSendError, TransientSendError
from tummler.deliver._http import parse_retry_after
from tummler.deliver._message import OutboundMessage, Publicity, SendResult
from tummler.deliver._rate import TokenBucket

if TYPE_CHECKING:
    import requests

__all__ = ["MastodonConnector"]

_HANDLE = re.compile(
    r"@?(?P<user>[A-Za-z0-9_]+)(?:@(?P<domain>[A-Za-z0-9.-]+\.[A-Za-z]{2,}|localhost))?"
)


def _import_mastodon() -> ModuleType:
    try:
        import mastodon
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("Mastodon.py", "social") from exc
    return mastodon


class MastodonConnector(Connector):
    """Posts to Mastodon as the brand's account.

    A :attr:`~tummler.deliver.Publicity.PUBLIC` message becomes a public status (a broadcast: the
    recipient is not mentioned); a private one becomes a direct message (``visibility="direct"``,
    starting with the recipient's handle, which is how Mastodon addresses it). Every status is
    posted with the delivery's idempotency key as ``Idempotency-Key``: Mastodon keeps one status
    per key for an hour, so a retry after a dropped connection does not post twice.

    Mastodon.py is synchronous; each call runs in a worker thread. Its own rate-limit waiting is
    off (``ratelimit_method="throw"``): a 429 becomes a transient error with the server's
    ``Retry-After`` so that the outbox, not a sleeping thread, decides when to retry.

    Parameters
    ----------
    api_base_url
        The instance, e.g. ``https://mastodon.social``.
    access_token
        An access token with the ``write:statuses`` scope.
    timeout
        Seconds for each request.
    clock, rate_limit
        As for the other connectors.
    """

    name: ClassVar[str] = "mastodon"
    #: In doubt, resend: Mastodon honours ``Idempotency-Key`` on ``POST /statuses``.
    resend_in_doubt: ClassVar[bool] = True
    channels: ClassVar[frozenset[ChannelKind]] = frozenset({ChannelKind.MASTODON})

    def __init__(
        self,
        *,
        api_base_url: str,
        access_token: SecretStr,
        timeout: float = 10.0,
        clock: Clock | None = None,
        rate_limit: TokenBucket | None = None,
    ) -> None:
        super().__init__(rate_limit=rate_limit)
        module = _import_mastodon()
        import requests

        check_http_url("Mastodon api_base_url", api_base_url, "https://mastodon.social")
        check_secret("Mastodon access_token", access_token)
        self.api_base_url = api_base_url.rstrip("/")
        self._keep_secret(access_token)
        self._clock = clock or SystemClock()
        self._errors = module
        self._last = threading.local()
        session = requests.Session()
        session.hooks["response"].append(self._remember_response)
        self._api: Any = module.Mastodon(
            access_token=access_token.get_secret_value(),
            api_base_url=self.api_base_url,
            ratelimit_method="throw",
            request_timeout=check_positive("timeout", timeout),
            version_check_mode="none",
            session=session,
        )
        self._session = session

    def _describe(self) -> str:
        return f"api_base_url={self.api_base_url!r}"

    def _remember_response(
        self, response: requests.Response, *args: object, **kwargs: object
    ) -> None:
        # Mastodon.py's rate-limit error drops the response; keep its headers for Retry-After.
        self._last.headers = dict(response.headers)

    async def _send(self, message: OutboundMessage) -> SendResult:
        if message.publicity is Publicity.PUBLIC:
            text, visibility = message.body_text, "public"
        else:
            match = _HANDLE.fullmatch(message.to.strip())
            if match is None:
                raise PermanentSendError(
                    self.name,
                    f"recipient {message.to!r} is not a Mastodon handle; use @user@instance",
                )
            handle = match["user"] + (f"@{match['domain']}" if match["domain"] else "")
            text, visibility = f"@{handle} {message.body_text}", "direct"
        status = await asyncio.to_thread(self._post, text, visibility, message.idempotency_key)
        details = {"visibility": visibility}
        url = status.get("url") or status.get("uri")
        if url:
            details["url"] = str(url)
        return SendResult(self.name, str(status["id"]), details)

    def _post(self, text: str, visibility: str, idempotency_key: str) -> Any:
        errors = self._errors
        self._last.headers = {}
        try:
            return self._api.status_post(
                text, visibility=visibility, idempotency_key=idempotency_key
            )
        except errors.MastodonRatelimitError as exc:
            headers = {key.lower(): value for key, value in self._last.headers.items()}
            retry_after = parse_retry_after(headers.get("retry-after"), self._clock.now())
            raise TransientSendError(
                self.name,
                f"rate limited: {self._mask(str(exc))}",
                status=429,
                retry_after=retry_after,
            ) from None
        except errors.MastodonNetworkError as exc:
            # The Idempotency-Key makes a retry harmless either way; in_doubt tells the outbox
            # whether the request may have reached the instance at all.
            raise TransientSendError(
                self.name,
                f"network failure: {self._mask(str(exc))}",
                in_doubt=not _never_connected(exc),
            ) from None
        except errors.MastodonServerError as exc:
            status, reason = _api_error(exc)
            raise TransientSendError(self.name, self._mask(reason), status=status) from None
        except errors.MastodonAPIError as exc:
            status, reason = _api_error(exc)
            if status == 401:
                reason += " (check the access token and its write:statuses scope)"
            raise PermanentSendError(self.name, self._mask(reason), status=status) from None
        except errors.MastodonIllegalArgumentError as exc:
            raise PermanentSendError(self.name, self._mask(str(exc))) from None

    async def aclose(self) -> None:
        self._session.close()


def _api_error(exc: Exception) -> tuple[int | None, str]:
    """Status and reason from Mastodon.py's ``(text, status, phrase, error)`` arguments."""
    args = exc.args
    if len(args) >= 4 and isinstance(args[1], int):
        error = args[3] if args[3] else args[2]
        return args[1], f"{args[1]} {args[2]}: {error}"
    return None, str(exc)


def _never_connected(exc: BaseException) -> bool:
    """Whether Mastodon.py's network error hides a failure to connect (nothing was sent)."""
    import requests
    import urllib3

    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", cause.args[0])
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False
