"""Bluesky (atproto): a public post, or a direct message through Bluesky chat."""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import Any, ClassVar

from pydantic import SecretStr

from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import ConfigError, MissingDependencyError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver._base import Connector, check_http_url, check_positive, check_secret
from tummler.deliver._failures import PermanentSendError, TransientSendError
from tummler.deliver._http import classify_transport_error, parse_retry_after
from tummler.deliver._message import OutboundMessage, Publicity, SendResult
from tummler.deliver._rate import TokenBucket

__all__ = ["BlueskyConnector"]


def _import_atproto() -> ModuleType:
    # import_module: atproto ships no type information, and the connector needs none from it.
    try:
        return importlib.import_module("atproto_client")
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("atproto", "social") from exc


class BlueskyConnector(Connector):
    """Posts to Bluesky as the brand's account, or writes to one person in Bluesky chat.

    A :attr:`~tummler.deliver.Publicity.PUBLIC` message becomes a post
    (``com.atproto.repo.createRecord`` of an ``app.bsky.feed.post``); a private one becomes a chat
    message: the handle is resolved to a DID, the one-to-one conversation is found or opened
    (``chat.bsky.convo.getConvoForMembers``) and the message sent (``chat.bsky.convo.sendMessage``),
    through the PDS with the ``atproto-proxy`` header for Bluesky's chat service. The provider's
    message id is the post's AT URI or the chat message's id.

    The connector logs in (``com.atproto.server.createSession``, then ``getSession`` for its DID)
    on its first send with an app password, and keeps the session; the client refreshes it when it
    nears expiry.

    **No idempotency key.** Neither endpoint de-duplicates retries, so a connection dropped after
    the request went out raises :class:`~tummler.deliver.TransientSendError` with ``in_doubt``: the
    outbox should hold such a delivery as ``unknown`` rather than post twice.

    Parameters
    ----------
    identifier
        The account's handle (``brand.bsky.social``) or DID.
    app_password
        An app password for it (Settings → App passwords), never the account password.
    service_url
        The account's PDS or the entryway, default ``https://bsky.social``.
    timeout
        Seconds for each request.
    clock, rate_limit
        As for the other connectors.
    """

    name: ClassVar[str] = "bluesky"
    #: atproto has no idempotency key: a person checks the account and sets an in-doubt
    #: delivery to sent or pending.
    resend_in_doubt: ClassVar[bool] = False
    channels: ClassVar[frozenset[ChannelKind]] = frozenset({ChannelKind.BLUESKY})

    def __init__(
        self,
        *,
        identifier: str,
        app_password: SecretStr,
        service_url: str = "https://bsky.social",
        timeout: float = 10.0,
        clock: Clock | None = None,
        rate_limit: TokenBucket | None = None,
    ) -> None:
        super().__init__(rate_limit=rate_limit)
        self._atproto = _import_atproto()
        check_http_url("Bluesky service_url", service_url, "https://bsky.social")
        if not identifier.strip():
            raise ConfigError("Bluesky identifier is empty; give the account's handle or DID")
        check_secret("Bluesky app_password", app_password)
        self.identifier = identifier
        self.service_url = service_url.rstrip("/")
        self._app_password = app_password
        self._keep_secret(app_password)
        self._timeout = check_positive("timeout", timeout)
        self._clock = clock or SystemClock()
        self._client: Any = None
        self._chat: Any = None
        self._did: str | None = None
        self._login_lock = asyncio.Lock()

    def _describe(self) -> str:
        return f"identifier={self.identifier!r}, service_url={self.service_url!r}"

    async def _send(self, message: OutboundMessage) -> SendResult:
        try:
            client = await self._logged_in()
            if message.publicity is Publicity.PUBLIC:
                post = await client.send_post(message.body_text, profile_identify=self._did)
                return SendResult(self.name, str(post.uri), {"cid": str(post.cid)})
            return await self._direct_message(message)
        except self._atproto.exceptions.AtProtocolError as exc:
            raise self._classify(exc) from None
        except Exception as exc:
            # atproto passes some transport failures through untranslated (a dropped connection).
            import httpx

            if isinstance(exc, httpx.TransportError):
                raise classify_transport_error(self.name, exc, mask=self._mask) from None
            raise

    async def _logged_in(self) -> Any:
        async with self._login_lock:
            if self._client is None:
                atproto = self._atproto
                client = atproto.AsyncClient(
                    base_url=self.service_url,
                    request=atproto.request.AsyncRequest(timeout=self._timeout),
                )
                await client.login(
                    self.identifier,
                    self._app_password.get_secret_value(),
                    fetch_bsky_profile=False,
                )
                session = await client.com.atproto.server.get_session()
                self._did = str(session.did)
                self._chat = client.with_bsky_chat_proxy()
                self._client = client
            return self._client

    async def _direct_message(self, message: OutboundMessage) -> SendResult:
        models = self._atproto.models
        handle = message.to.strip().lstrip("@")
        if handle.startswith("did:"):
            did = handle
        else:
            resolved = await self._client.com.atproto.identity.resolve_handle(
                models.ComAtprotoIdentityResolveHandle.Params(handle=handle)
            )
            did = str(resolved.did)
        convo = await self._chat.chat.bsky.convo.get_convo_for_members(
            models.ChatBskyConvoGetConvoForMembers.Params(members=[did])
        )
        sent = await self._chat.chat.bsky.convo.send_message(
            models.ChatBskyConvoSendMessage.Data(
                convo_id=convo.convo.id,
                message=models.ChatBskyConvoDefs.MessageInput(text=message.body_text),
            )
        )
        return SendResult(self.name, str(sent.id), {"convo_id": str(convo.convo.id)})

    async def aclose(self) -> None:
        for client in (self._chat, self._client):
            if client is not None:
                await client.request.close()
        self._client = self._chat = None

    def _classify(self, exc: Exception) -> PermanentSendError | TransientSendError:
        errors = self._atproto.exceptions
        response = getattr(exc, "response", None)
        status: int | None = getattr(response, "status_code", None)
        reason = self._mask(str(exc) or type(exc).__name__)
        if isinstance(exc, errors.RequestErrorBase) and response is None:
            # Before any answer: the cause says whether the request went out.
            import httpx

            cause = exc.__cause__
            not_sent = isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout)
            detail = self._mask(str(cause) or type(cause).__name__) if cause else reason
            return TransientSendError(
                self.name, f"network failure: {detail}", in_doubt=not not_sent
            )
        if response is not None and status is not None and (status >= 500 or status in {408, 429}):
            headers = {key.lower(): str(value) for key, value in response.headers.items()}
            retry_after = parse_retry_after(headers.get("retry-after"), self._clock.now())
            return TransientSendError(self.name, reason, status=status, retry_after=retry_after)
        if status == 401:
            reason += " (check the identifier and app password)"
        return PermanentSendError(self.name, reason, status=status)
