"""A cap on the size of request bodies, enforced as the bytes arrive: a pure ASGI middleware.

uvicorn does not limit a body, and FastAPI reads a JSON body whole before it runs a route, so without
a cap any client could make the server hold as many bytes as it cares to send. The declared
``Content-Length`` is checked before the application runs; the bytes are then counted as the
application pulls them, which also covers a chunked body that declares no length (or a wrong one).
Either way the answer is 413, names the limit and its setting, and the rest of the body is never read.

Recent FastAPI has a ``max_body_size`` of its own, but not the versions this package supports, and it
refuses a declared length only when the answer starts: a route that reads no body (``POST
/unsubscribe/...``) would already have acted.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit"]


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once the bytes read pass the cap.

    An ``HTTPException``, so that FastAPI, which turns other errors met while reading a body into a 400,
    lets it through to the exception handlers, which answer 413.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            _too_large(max_bytes),
            headers={"Connection": "close"},
        )


def _too_large(max_bytes: int) -> str:
    """What a refused caller is told: the limit, and what to do."""
    return (
        f"request body larger than {max_bytes} bytes: send less per request (split a batch of "
        "events), or raise TUMMLER_API_MAX_BODY_BYTES"
    )


class BodySizeLimit:
    """Refuse, with 413, any HTTP request whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Closing the connection is what stops the client: the unread body can't be skipped.
        answer = JSONResponse(
            {"detail": _too_large(self.max_bytes)},
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            headers={"Connection": "close"},
        )
        await answer(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length; ``None`` when absent or not a number (the server refuses those itself)."""
    value = Headers(scope=scope).get("content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
