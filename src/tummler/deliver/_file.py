"""A file sink for dry runs: every message becomes one JSON line, nothing leaves the machine."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import ConfigError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver._base import Connector
from tummler.deliver._failures import TransientSendError
from tummler.deliver._message import OutboundMessage, SendResult
from tummler.deliver._rate import TokenBucket

__all__ = ["FileSinkConnector"]


class FileSinkConnector(Connector):
    """Appends each message to a JSONL file instead of sending it (``tummler send --dry-run``,
    and the demo's simulated sends).

    It carries every channel, so a whole campaign can be rehearsed and its output read, diffed or
    loaded into pandas. Each line is one message with every field and the time it was written;
    the line is flushed and fsynced before :meth:`send` returns, so what the outbox records as sent
    is on disk. The provider message id is the idempotency key, so that reruns of the same plan
    give comparable files.

    Parameters
    ----------
    path
        The JSONL file; created with its folder if missing, appended to otherwise.
    clock
        Where the ``written_at`` time comes from.
    rate_limit
        Optional pacing (to rehearse a provider's limit).
    """

    name: ClassVar[str] = "file"
    #: In doubt, resend: a dry run: a repeated line carries the same key.
    resend_in_doubt: ClassVar[bool] = True
    channels: ClassVar[frozenset[ChannelKind]] = frozenset(ChannelKind)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        rate_limit: TokenBucket | None = None,
    ) -> None:
        super().__init__(rate_limit=rate_limit)
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise ConfigError(f"file sink path {self.path} exists and is not a file")
        self._clock = clock or SystemClock()
        self._lock = asyncio.Lock()

    def _describe(self) -> str:
        return f"path={str(self.path)!r}"

    async def _send(self, message: OutboundMessage) -> SendResult:
        line = json.dumps(self._record(message), ensure_ascii=False, sort_keys=True) + "\n"
        async with self._lock:
            try:
                await asyncio.to_thread(self._append, line)
            except OSError as exc:
                # A full disk or a permission change may pass; the message was not written.
                raise TransientSendError(self.name, f"could not write {self.path}: {exc}") from None
        return SendResult(self.name, message.idempotency_key, {"path": str(self.path)})

    def _record(self, message: OutboundMessage) -> dict[str, Any]:
        return {
            "written_at": self._clock.now().isoformat(),
            "channel": str(message.channel),
            "to": message.to,
            "subject": message.subject,
            "body_text": message.body_text,
            "body_html": message.body_html,
            "headers": dict(message.headers),
            "idempotency_key": message.idempotency_key,
            "message_id": message.message_id,
            "publicity": str(message.publicity),
            "unsubscribe_url": message.unsubscribe_url,
            "metadata": dict(message.metadata),
        }

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
