"""A loopback SMTP server for ``tummler demo --smtp``: the demo's e-mails go over real SMTP.

It listens on 127.0.0.1 only, accepts every message, and keeps the Message-ID and recipients of
each, so the demo can say how many e-mails it received (and a test can check them). Nothing is
relayed anywhere. It needs ``aiosmtpd`` (``pip install 'tummler[email]'``).
"""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tummler.core.errors import MissingDependencyError
from tummler.core.network import free_loopback_port

__all__ = ["LoopbackSmtp", "ReceivedMail"]


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One accepted message: its Message-ID, envelope recipients and subject."""

    message_id: str
    recipients: tuple[str, ...]
    subject: str


@dataclass
class _Inbox:
    mails: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        mail = ReceivedMail(
            message_id=str(parsed.get("Message-ID", "")),
            recipients=tuple(envelope.rcpt_tos),
            subject=str(parsed.get("Subject", "")),
        )
        with self.inbox.lock:
            self.inbox.mails.append(mail)
            number = len(self.inbox.mails)
        return f"250 2.0.0 OK queued as demo{number}"


class LoopbackSmtp:
    """An SMTP server on ``127.0.0.1`` that accepts and keeps every message (use it as a context).

    Raises
    ------
    MissingDependencyError
        When aiosmtpd is not installed.
    """

    def __init__(self) -> None:
        try:
            from aiosmtpd.controller import Controller
        except ImportError:  # pragma: no cover - aiosmtpd is a test dependency too
            raise MissingDependencyError("aiosmtpd", "email") from None
        self._inbox = _Inbox()
        self.host = "127.0.0.1"
        self.port = free_loopback_port()
        self._controller = Controller(
            _Handler(self._inbox),
            hostname=self.host,
            port=self.port,
            server_hostname="demo.loopback",
            ready_timeout=5.0,
        )

    @property
    def received(self) -> list[ReceivedMail]:
        """The messages accepted so far, in order."""
        with self._inbox.lock:
            return list(self._inbox.mails)

    def start(self) -> LoopbackSmtp:
        """Start listening (returns when the server is ready)."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()

    def __enter__(self) -> LoopbackSmtp:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
