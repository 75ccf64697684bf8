"""Delivery failures that carry the provider's reason.

The outbox decides what to do with a failure by its class alone::

    DeliveryError                   (tummler.core.errors)
    ├── TransientDeliveryError      retry later, with back-off
    │   └── TransientSendError      + connector, reason, status, retry_after
    └── PermanentDeliveryError      record as failed with the reason, never retry
        └── PermanentSendError      + connector, reason, status

Connectors raise only the two ``*SendError`` classes; callers may catch the core classes.
"""

from __future__ import annotations

from tummler.core.errors import PermanentDeliveryError, TransientDeliveryError

__all__ = ["PermanentSendError", "TransientSendError"]

_REASON_LIMIT = 500


def _clip(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…"


class TransientSendError(TransientDeliveryError):
    """A failure worth retrying: time-out, refused or dropped connection, 5xx, 429.

    Attributes
    ----------
    connector
        The connector that failed (``smtp``, ``webhook``...).
    reason
        The provider's reason, one line, secrets masked.
    status
        The provider's status code (HTTP or SMTP), when there was one.
    retry_after
        Seconds the provider asked to wait (``Retry-After``), when it said.
    in_doubt
        The request was (at least partly) sent before the failure, so the provider may have
        accepted the message: a read time-out or a connection dropped mid-message. A retry is
        harmless where the provider de-duplicates (``Idempotency-Key``, a stable Message-ID); the
        outbox may choose to hold such a delivery as ``unknown`` where it does not.
    """

    def __init__(
        self,
        connector: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        in_doubt: bool = False,
    ) -> None:
        self.connector = connector
        self.reason = _clip(reason)
        self.status = status
        self.retry_after = retry_after
        self.in_doubt = in_doubt
        code = f" ({status})" if status is not None else ""
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else "; retry later"
        doubt = " (the provider may have accepted it)" if in_doubt else ""
        super().__init__(f"{connector}: temporary failure{code}: {self.reason}{doubt}{wait}")


class PermanentSendError(PermanentDeliveryError):
    """A failure that retrying will not fix: a 4xx, an invalid address, rejected content.

    Attributes
    ----------
    connector
        The connector that failed.
    reason
        The provider's (or the connector's own) reason, one line, secrets masked.
    status
        The provider's status code, when there was one.
    """

    def __init__(self, connector: str, reason: str, *, status: int | None = None) -> None:
        self.connector = connector
        self.reason = _clip(reason)
        self.status = status
        code = f" ({status})" if status is not None else ""
        super().__init__(f"{connector}: rejected{code}: {self.reason}; do not retry")
