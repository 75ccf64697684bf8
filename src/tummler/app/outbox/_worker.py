"""The worker: claims due deliveries, sends what it composes, and records each outcome.

:func:`run_outbox` is the service; see :mod:`tummler.app.outbox` for the whole protocol (claims,
the lease, the send-time checks, the outcomes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from tummler.app.outbox._compose import MessageComposer, SendContext, Verdict
from tummler.app.outbox._enqueue import lookup_campaign, waiting_marketing_emails
from tummler.app.outbox._leases import Leases
from tummler.app.outbox._report import DeliveryOutcome, OutboxReport
from tummler.app.outbox._rules import SET_PUBLIC_URL, SendRules, Unsubscribe, needs_unsubscribe
from tummler.core.clock import Clock
from tummler.core.errors import ConfigError, InputError, NotFoundError
from tummler.core.vocabulary import DeliveryStatus
from tummler.deliver import (
    Connector,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    mask_secrets,
)

__all__ = ["Connectors", "Worker", "run_outbox"]

logger = logging.getLogger("tummler.outbox")

#: Connector per channel kind (``"email"``) or channel id (``"newsletter"``, which wins).
Connectors = Mapping[str, Connector]

_PENDING = DeliveryStatus.PENDING.value
_FAILED = DeliveryStatus.FAILED.value
_UNKNOWN = DeliveryStatus.UNKNOWN.value


class Worker(MessageComposer):
    """Claims due deliveries, sends what it composes, and records each outcome."""

    def __init__(
        self,
        engine: Engine,
        connectors: Connectors,
        *,
        rules: SendRules,
        concurrency: int,
        clock: Clock,
        rng: np.random.Generator,
        max_attempts: int,
        base_delay: timedelta,
        max_delay: timedelta,
        unsubscribe: Unsubscribe | None,
        progress: Callable[[DeliveryOutcome], None] | None,
    ) -> None:
        super().__init__(engine, rules=rules, clock=clock, unsubscribe=unsubscribe)
        self.connectors = connectors
        self.rng = rng
        self.max_attempts = max_attempts
        self.base_delay = base_delay.total_seconds()
        self.max_delay = max_delay.total_seconds()
        self.progress = progress
        self.semaphore = asyncio.Semaphore(concurrency)
        self.leases = Leases(engine, clock)
        self.report = OutboxReport()

    # ------------------------------------------------------------------ routing

    def connector_for(self, channel: str) -> Connector | None:
        """The connector of a channel id, else of its kind; ``None`` when none carries it."""
        if channel in self.connectors:
            return self.connectors[channel]
        rule = self.rules.rule(channel)
        return None if rule is None else self.connectors.get(rule.kind.value)

    def served_channels(self) -> list[str]:
        """Channel names (ids and bare kinds) that have a connector: the only ones claimed."""
        names = set(self.connectors) | set(self.rules.channels)
        return sorted(name for name in names if self.connector_for(name) is not None)

    def resend_in_doubt(self, channel: str) -> bool:
        """Whether the channel's connector may send an in-doubt delivery again."""
        connector = self.connector_for(channel)
        return connector is not None and connector.resend_in_doubt

    # ------------------------------------------------------------------ before the first claim

    def refuse_without_unsubscribe(self, channels: Sequence[str], campaign_id: int | None) -> None:
        """Raise :class:`ConfigError` when marketing e-mail is waiting for a connector and there is
        no unsubscribe link to give it: before anything is sent, rather than one skip at a time.
        """
        if self.unsubscribe is not None:
            return
        emails = [
            name
            for name in channels
            if (rule := self.rules.rule(name)) is not None
            and needs_unsubscribe(rule.kind, transactional=False)
        ]
        if not emails:
            return
        marketing = waiting_marketing_emails(self.engine, emails, campaign_id)
        if not marketing:
            return
        named = ", ".join(f"{key} ({n})" for key, n in list(marketing.items())[:5])
        more = f" and {len(marketing) - 5} more" if len(marketing) > 5 else ""
        raise ConfigError(
            f"{sum(marketing.values())} marketing e-mails would go out without an unsubscribe "
            f"link (campaigns: {named}{more}); nothing was sent. To send them, {SET_PUBLIC_URL}. "
            "Only messages a campaign marks `message: category: transactional` may go without"
        )

    def recover(self, lease: timedelta, channels: Sequence[str], campaign_id: int | None) -> None:
        """Deliveries left ``sending`` by a dead worker: resend or hold, by connector."""
        self.report.recovered += self.leases.recover(
            lease,
            channels,
            campaign_id,
            resend_in_doubt=self.resend_in_doubt,
            max_attempts=self.max_attempts,
        )

    # ------------------------------------------------------------------ one delivery

    def finish(
        self,
        delivery_id: int,
        channel: str,
        values: dict[str, Any],
        reason: str | None,
        outcome: str | None = None,
    ) -> None:
        """Record an outcome (``outcome``, default the new status) if the delivery is still ours."""
        outcome = outcome or str(values["status"])
        if not self.leases.finish(delivery_id, values):
            logger.warning(
                "delivery %d was taken over by another worker; its outcome here (%s) is dropped",
                delivery_id,
                outcome,
            )
            return
        done = DeliveryOutcome(delivery_id, channel, outcome, reason)
        self.report.outcomes.append(done)
        if self.progress is not None:
            self.progress(done)

    def backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        """Exponential back-off with full jitter, at least the provider's ``Retry-After``."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
        delay = float(self.rng.uniform(0.0, ceiling)) if ceiling > 0 else 0.0
        if retry_after is not None:
            delay = max(delay, retry_after)
        return timedelta(seconds=delay)

    async def deliver(self, delivery_id: int) -> None:
        """Check, render, send and record one claimed delivery."""
        # The whole delivery runs under the semaphore, so that the send-time checks are made just
        # before the send, not when the batch was claimed (a rate limit may keep it waiting).
        async with self.semaphore:
            await self._deliver(delivery_id)

    async def _deliver(self, delivery_id: int) -> None:
        try:
            ctx = self.load(delivery_id)
        except NotFoundError:  # pragma: no cover - see load
            return
        channel = ctx.channel
        rule = self.rules.rule(channel)
        connector = self.connector_for(channel)
        if rule is None or connector is None:  # pragma: no cover - only served channels are claimed
            missing = f"no connector for channel {channel!r}"
            self.finish(delivery_id, channel, _status(_FAILED, missing), "no connector")
            return
        verdict = self.check(ctx, rule, self.clock.now())
        if verdict is not None:
            self._hold(delivery_id, ctx, verdict)
            return
        try:
            message = self.build(ctx, rule)
        except InputError as exc:
            reason = f"cannot render the message: {exc}"
            self.finish(delivery_id, channel, _status(_FAILED, reason), reason)
            return
        self.in_flight[ctx.contact_id] += 1
        try:
            if not self.leases.touch(delivery_id):
                return
            self.record(delivery_id, ctx, connector, await _send(connector, message))
        finally:
            self.in_flight[ctx.contact_id] -= 1

    def _hold(self, delivery_id: int, ctx: SendContext, verdict: Verdict) -> None:
        """A delivery the send-time checks stop: deferred (back to pending) or skipped."""
        if verdict.status == "deferred":
            values: dict[str, Any] = {
                "status": _PENDING,
                "scheduled_at": verdict.scheduled_at,
                "last_error": f"deferred: {verdict.reason}",
            }
        else:
            values = _status(verdict.status, verdict.reason)
        self.finish(delivery_id, ctx.channel, values, verdict.reason, outcome=verdict.status)
        logger.info("delivery %s %s: %s", ctx.key, verdict.status, verdict.reason)

    def record(
        self,
        delivery_id: int,
        ctx: SendContext,
        connector: Connector,
        result: SendResult | Exception,
    ) -> None:
        """Record what the connector answered: sent, failed, retry (or its end), or unknown."""
        channel = ctx.channel
        if isinstance(result, SendResult):
            sent = {
                "status": DeliveryStatus.SENT.value,
                "sent_at": self.clock.now(),
                "provider_message_id": result.provider_message_id[:255],
                "last_error": None,
            }
            self.finish(delivery_id, channel, sent, None)
        elif isinstance(result, PermanentSendError):
            self.finish(delivery_id, channel, _status(_FAILED, str(result)), result.reason)
        elif isinstance(result, TransientSendError):
            self._retry(delivery_id, ctx, connector, result)
        else:
            # A bug or a misconfiguration in the connector: the message may have gone out.
            text = mask_secrets(f"{type(result).__name__}: {result}")
            held = (
                f"unexpected error in connector {connector.name}: {text}; check it, then set the "
                "delivery to sent or back to pending"
            )
            self.finish(delivery_id, channel, _status(_UNKNOWN, held[:2000]), held)

    def _retry(
        self, delivery_id: int, ctx: SendContext, connector: Connector, error: TransientSendError
    ) -> None:
        """A transient failure: held when in doubt on a connector that cannot de-duplicate,
        given up after ``max_attempts``, else back to pending after the back-off."""
        reason = str(error)
        if error.in_doubt and not connector.resend_in_doubt:
            held = (
                f"{reason}; {connector.name} cannot de-duplicate a resend: check the "
                "provider and set it to sent, or back to pending"
            )
            self.finish(delivery_id, ctx.channel, _status(_UNKNOWN, held), held)
            return
        attempts = ctx.attempts + 1  # this one, counted by touch()
        if attempts >= self.max_attempts:
            status = _UNKNOWN if error.in_doubt else DeliveryStatus.DEAD.value
            final = f"gave up after {attempts} attempts: {reason}"
            self.finish(delivery_id, ctx.channel, _status(status, final), final)
            return
        at = self.clock.now() + self.backoff(attempts, error.retry_after)
        values = {"status": _PENDING, "scheduled_at": at, "last_error": reason}
        self.finish(delivery_id, ctx.channel, values, reason, outcome="retry")


def _status(status: str, last_error: str) -> dict[str, Any]:
    return {"status": status, "last_error": last_error}


async def _send(connector: Connector, message: OutboundMessage) -> SendResult | Exception:
    try:
        return await connector.send(message)
    except Exception as exc:  # every failure is recorded, none is lost
        return exc


async def run_outbox(
    engine: Engine,
    connectors: Mapping[str, Connector],
    *,
    clock: Clock,
    rng: np.random.Generator,
    concurrency: int = 8,
    max_attempts: int = 5,
    batch: int = 100,
    rules: SendRules | None = None,
    campaign: str | None = None,
    lease: timedelta = timedelta(minutes=5),
    base_delay: timedelta = timedelta(seconds=30),
    max_delay: timedelta = timedelta(hours=1),
    unsubscribe: Unsubscribe | None = None,
    progress: Callable[[DeliveryOutcome], None] | None = None,
) -> OutboxReport:
    """Work off every delivery that is due now, then return what happened.

    Claims batches until none is due: a retry scheduled later than now waits for the next run.
    See the module's docstring for claims, the lease, the send-time checks and the outcomes.

    Parameters
    ----------
    engine
        The store.
    connectors
        Connector per channel kind (``"email"``) or per channel id (``"newsletter"``, wins over
        its kind). Deliveries on channels without one are left pending.
    clock, rng
        "Now" (scheduling, leases, quiet hours) and the back-off jitter.
    concurrency
        Most sends in flight at once (each connector's own :class:`~tummler.deliver.TokenBucket`
        paces it further).
    max_attempts
        Attempts before a transiently failing delivery is ``dead``.
    batch
        Deliveries claimed per statement: larger batches claim less often, smaller ones hold
        fewer leases if the worker dies.
    rules
        The strategy's send-time rules (:meth:`SendRules.from_strategy`); default: consent only.
    campaign
        Work off only this campaign's deliveries.
    lease
        How long a ``sending`` delivery belongs to its worker; past it, it is recovered as in doubt.
        Must be longer than a connector's time-out.
    base_delay, max_delay
        The back-off's first ceiling and its cap.
    unsubscribe
        Gives e-mails their unsubscribe link and ``List-Unsubscribe`` headers. Without it, only
        transactional e-mail may be sent (see :class:`~tummler.strategy.MessageCategory`).
    progress
        Called with each delivery's outcome as it is recorded.

    Raises
    ------
    ConfigError
        On a non-positive ``concurrency``, ``max_attempts`` or ``batch``, or a negative delay;
        and, before anything is sent, when marketing e-mail is waiting for an e-mail connector
        and ``unsubscribe`` is ``None``.
    NotFoundError
        When ``campaign`` is not in the store.
    """
    _check_limits(concurrency, max_attempts, batch, lease, base_delay, max_delay)
    campaign_id = lookup_campaign(engine, campaign)
    worker = Worker(
        engine,
        connectors,
        rules=rules or SendRules(),
        concurrency=concurrency,
        clock=clock,
        rng=rng,
        max_attempts=max_attempts,
        base_delay=base_delay,
        max_delay=max_delay,
        unsubscribe=unsubscribe,
        progress=progress,
    )
    await _work_off(worker, lease, batch, campaign_id)
    return worker.report


def _check_limits(
    concurrency: int,
    max_attempts: int,
    batch: int,
    lease: timedelta,
    base_delay: timedelta,
    max_delay: timedelta,
) -> None:
    """Refuse a count below 1 or a negative delay before anything is claimed."""
    for name, value in (
        ("concurrency", concurrency),
        ("max_attempts", max_attempts),
        ("batch", batch),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value!r}")
    for name, delay in (("lease", lease), ("base_delay", base_delay), ("max_delay", max_delay)):
        if delay < timedelta(0):
            raise ConfigError(f"{name} must not be negative, got {delay}")


async def _work_off(worker: Worker, lease: timedelta, batch: int, campaign_id: int | None) -> None:
    """Recover stale claims on the served channels, then claim and deliver batches until none is due.

    Nothing is claimed when no connector serves a channel, or (refused) when marketing e-mail
    waits without unsubscribe links.
    """
    channels = worker.served_channels()
    if not channels:
        return
    worker.refuse_without_unsubscribe(channels, campaign_id)
    worker.recover(lease, channels, campaign_id)
    while True:
        claimed = worker.leases.claim(batch, channels, campaign_id)
        if not claimed:
            break
        await asyncio.gather(*(worker.deliver(i) for i in claimed))
