"""Claims, the lease and crash recovery: the deliveries' states in the store, as one worker moves them.

A claim is one atomic ``UPDATE ... WHERE id IN (SELECT ... LIMIT batch) RETURNING id`` (on PostgreSQL
the sub-select is ``FOR UPDATE SKIP LOCKED``). Status ``sending`` plus ``updated_at`` *is* the lease;
:meth:`Leases.touch` renews it and marks the delivery in flight just before the hand-over, and every
later write is a compare-and-set on ``status='sending'``, so that a worker never overwrites a delivery
another worker took over.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from tummler.app.outbox._enqueue import in_campaign
from tummler.core.clock import Clock
from tummler.core.vocabulary import DeliveryStatus
from tummler.store import models
from tummler.store.database import is_postgres

__all__ = ["IN_FLIGHT", "Leases"]

logger = logging.getLogger("tummler.outbox")

_PENDING = DeliveryStatus.PENDING.value
_SENDING = DeliveryStatus.SENDING.value
#: ``last_error`` of a delivery being handed over: what tells recovery "in doubt" from "only claimed".
IN_FLIGHT = "in flight: handed to the connector at "


@functools.cache
def _finish_statement(columns: frozenset[str]) -> Any:
    """The compare-and-set that records an outcome, built once per set of columns written."""
    table = models.Delivery.__table__
    return (
        update(models.Delivery)
        .where(models.Delivery.id == bindparam("p_id"), models.Delivery.status == _SENDING)
        .values({name: bindparam(f"p_{name}", type_=table.c[name].type) for name in columns})
    )


_TOUCH = (
    update(models.Delivery)
    .where(models.Delivery.id == bindparam("p_id"), models.Delivery.status == _SENDING)
    .values(
        updated_at=bindparam("p_now", type_=models.Delivery.updated_at.type),
        attempts=models.Delivery.attempts + 1,
        last_error=bindparam("p_mark"),
    )
)


#: What recovery writes for an in-doubt delivery that is sent again.
_RESENDING = (
    "in doubt: the worker stopped during the send; to be sent again with the same idempotency "
    "key / Message-ID"
)


class Leases:
    """One worker's claims on the ``deliveries`` table: claim, touch, finish, recover.

    Parameters
    ----------
    engine, clock
        The store and "now" (the lease's time).
    """

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.postgres = is_postgres(engine)

    def claim(self, batch: int, channels: Sequence[str], campaign_id: int | None) -> list[int]:
        """Take up to ``batch`` due ``pending`` deliveries on ``channels``: they become ours."""
        now = self.clock.now()
        due = in_campaign(
            select(models.Delivery.id)
            .where(
                models.Delivery.status == _PENDING,
                models.Delivery.scheduled_at <= now,
                models.Delivery.channel.in_(channels),
            )
            .order_by(models.Delivery.scheduled_at, models.Delivery.id)
            .limit(batch),
            campaign_id,
        )
        if self.postgres:
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(models.Delivery)
            .where(
                models.Delivery.id.in_(due.scalar_subquery()), models.Delivery.status == _PENDING
            )
            .values(status=_SENDING, updated_at=now)
            .returning(models.Delivery.id)
        )
        with self.engine.begin() as connection:
            return sorted(int(i) for i in connection.execute(statement).scalars())

    def touch(self, delivery_id: int) -> bool:
        """Renew the lease and mark the delivery in flight, counting the attempt, just before
        the hand-over; ``False`` when it is no longer ours."""
        now = self.clock.now()
        with self.engine.begin() as connection:
            result = connection.execute(
                _TOUCH,
                {"p_id": delivery_id, "p_now": now, "p_mark": f"{IN_FLIGHT}{now.isoformat()}"},
            )
            return bool(result.rowcount)

    def finish(self, delivery_id: int, values: dict[str, Any]) -> bool:
        """Write a delivery's outcome if it is still ours; ``False`` when another worker took it
        over (then nothing is written)."""
        values = {**values, "updated_at": self.clock.now()}
        statement = _finish_statement(frozenset(values))
        with self.engine.begin() as connection:
            result = connection.execute(
                statement, {"p_id": delivery_id, **{f"p_{k}": v for k, v in values.items()}}
            )
        return bool(result.rowcount)

    def recover(
        self,
        lease: timedelta,
        channels: Sequence[str],
        campaign_id: int | None,
        *,
        resend_in_doubt: Callable[[str], bool],
        max_attempts: int,
    ) -> int:
        """Deliveries left ``sending`` past ``lease`` by a dead worker: back to ``pending`` when
        only claimed; in doubt, resent or held as ``unknown`` as the channel's connector says
        (``resend_in_doubt``). Returns how many were recovered."""
        now = self.clock.now()
        cutoff = now - lease
        query = in_campaign(
            select(
                models.Delivery.id,
                models.Delivery.channel,
                models.Delivery.attempts,
                models.Delivery.last_error,
            ).where(
                models.Delivery.status == _SENDING,
                models.Delivery.updated_at < cutoff,
                models.Delivery.channel.in_(channels),
            ),
            campaign_id,
        )
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        recovered = 0
        with self.engine.begin() as connection:
            for row in connection.execute(query).all():
                in_doubt = (row.last_error or "").startswith(IN_FLIGHT)
                resendable = resend_in_doubt(row.channel)
                values, fate = _recovery(in_doubt, resendable, row.attempts, max_attempts, now)
                result = connection.execute(
                    update(models.Delivery)
                    .where(
                        models.Delivery.id == row.id,
                        models.Delivery.status == _SENDING,
                        models.Delivery.updated_at < cutoff,
                    )
                    .values(updated_at=now, **values)
                )
                if result.rowcount:
                    recovered += 1
                    logger.warning(
                        "delivery %d was left sending by a stopped worker: %s", row.id, fate
                    )
        return recovered


def _recovery(
    in_doubt: bool, resendable: bool, attempts: int, max_attempts: int, now: Any
) -> tuple[dict[str, Any], str]:
    """What a recovered delivery becomes, and the words for the log."""
    if not in_doubt:
        # claimed, never handed over: nothing can have gone out
        return {"status": _PENDING}, "not yet handed over, back to pending"
    if resendable and attempts < max_attempts:
        return {
            "status": _PENDING,
            "scheduled_at": now,
            "last_error": _RESENDING,
        }, "in doubt, resending"
    why = (
        f"it had used all {max_attempts} attempts"
        if resendable
        else "this connector cannot de-duplicate a resend"
    )
    return {
        "status": DeliveryStatus.UNKNOWN.value,
        "last_error": f"in doubt: the worker stopped during the send and {why}; "
        "check the provider and set it to sent, or back to pending",
    }, "in doubt, held as unknown"
