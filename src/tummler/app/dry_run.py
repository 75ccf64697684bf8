"""A dry run of the outbox: every planned message rendered to a file now, the store left as it was.

``tummler send --dry-run`` is how a brand reads what it is about to send before anything leaves
the machine. :func:`dry_run_outbox` takes every message a send has still to hand over — each
decision that sends something and is not held out, whose delivery is still ``pending`` or was not
enqueued yet — **whatever its slot**, and asks the same :class:`~tummler.app.outbox.MessageComposer`
the worker asks:

- the send-time checks read the store as it is now: the contact forgotten, consent, an address on
  the channel, the fatigue and frequency caps over what was really sent. A message they stop is
  ``skipped`` and not written;
- the quiet hours are about the moment of sending, so they are checked at the message's slot (now
  when the slot has passed). A message that falls in them is ``deferred``: written, with the time
  the send would hold it until;
- a message whose template does not render is ``failed``, with the reason.

Nothing is written to the store: no delivery is created, claimed or marked sent, so that a real
``tummler send`` later still sends every message. The messages go to a fresh JSONL file (one line
a message, :class:`~tummler.deliver.FileSinkConnector`'s format) that replaces the last dry run's
only once it is complete; with nothing to write, no file is made.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, or_, select

from tummler.app.outbox import (
    MessageComposer,
    SendRules,
    Unsubscribe,
    lookup_campaign,
    needs_unsubscribe,
)
from tummler.app.personal_files import remember_personal_file
from tummler.core.clock import Clock
from tummler.core.errors import InputError
from tummler.core.vocabulary import DeliveryStatus
from tummler.deliver import FileSinkConnector
from tummler.store import models

__all__ = ["DryRunReport", "RehearsedMessage", "dry_run_outbox", "planned_decisions"]

#: Statuses of a message that was written to the file.
WRITTEN = frozenset({"rendered", "deferred"})


@dataclass(frozen=True, slots=True)
class RehearsedMessage:
    """What the dry run did with one planned message.

    Attributes
    ----------
    campaign, channel
        The campaign's key and the channel id.
    contact_id
        The contact's internal id.
    status
        ``rendered`` (written; a send hands it over at ``due``), ``deferred`` (written; a send
        holds it for the quiet hours until ``due``), ``skipped`` (not written; a send-time check
        stops it) or ``failed`` (not written; it cannot be rendered).
    due
        When a send would hand it over: its slot, or now when the slot has passed.
    reason
        Why it was deferred, skipped or failed.
    marketing_email
        A marketing e-mail: a send refuses it without an unsubscribe link.
    """

    campaign: str
    channel: str
    contact_id: int
    status: str
    due: datetime
    reason: str | None = None
    marketing_email: bool = False


@dataclass
class DryRunReport:
    """What :func:`dry_run_outbox` rendered, deferred, skipped and failed, and the file it wrote.

    ``path`` is ``None`` when no message was written (and so no file made).
    """

    messages: list[RehearsedMessage] = field(default_factory=list)
    path: Path | None = None

    @property
    def written(self) -> list[RehearsedMessage]:
        """The messages written to the file (rendered or deferred)."""
        return [m for m in self.messages if m.status in WRITTEN]

    @property
    def by_channel(self) -> dict[str, Counter[str]]:
        """Messages by channel and status, for the summary table."""
        table: dict[str, Counter[str]] = {}
        for message in self.messages:
            table.setdefault(message.channel, Counter())[message.status] += 1
        return table

    @property
    def reasons(self) -> Counter[tuple[str, str]]:
        """``(status, reason)`` of the messages not written, with how many share it."""
        return Counter(
            (m.status, m.reason or "")
            for m in self.messages
            if m.status not in WRITTEN and m.reason is not None
        )

    @property
    def marketing_emails(self) -> int:
        """Marketing e-mails written: each needs a real unsubscribe link to be sent."""
        return sum(1 for m in self.written if m.marketing_email)


def planned_decisions(engine: Engine, campaign_key: str | None = None) -> list[int]:
    """The decisions a send has still to hand over, soonest slot first: with a channel, not held
    out, and either enqueued as a ``pending`` delivery or not enqueued yet (enqueueing makes each
    of these a delivery: a plan gives a contact at most one decision per campaign and channel).

    Raises
    ------
    NotFoundError
        When ``campaign_key`` is not in the store.
    """
    campaign_id = lookup_campaign(engine, campaign_key)
    dec, d = models.Decision, models.Delivery
    query = (
        select(dec.id)
        .outerjoin(d, d.decision_id == dec.id)
        .where(
            dec.channel.is_not(None),
            dec.holdout.is_(False),
            or_(d.id.is_(None), d.status == DeliveryStatus.PENDING.value),
        )
        .order_by(func.coalesce(d.scheduled_at, dec.send_at), dec.id)
    )
    if campaign_id is not None:
        query = query.where(dec.campaign_id == campaign_id)
    with engine.connect() as connection:
        return [int(i) for i in connection.scalars(query)]


async def dry_run_outbox(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    clock: Clock,
    unsubscribe: Unsubscribe,
    rules: SendRules | None = None,
    campaign: str | None = None,
) -> DryRunReport:
    """Render every planned message to the JSONL file ``path`` now, whatever its slot, and
    change nothing in the store (see the module's docstring).

    Parameters
    ----------
    engine
        The store, only read.
    path
        The file to write; replaced once the run is complete, left alone when nothing is written.
    clock
        "Now": which slots have passed, consent and caps as of when, the lines' ``written_at``.
    unsubscribe
        Gives e-mails their unsubscribe link, as a send would (a placeholder base URL such as
        :data:`~tummler.app.outbox.PLACEHOLDER_PUBLIC_URL` shows where the link goes).
    rules
        The strategy's send-time rules (:meth:`SendRules.from_strategy`); default: consent only.
    campaign
        Only this campaign's messages.

    Raises
    ------
    NotFoundError
        When ``campaign`` is not in the store.
    TransientSendError
        When the file cannot be written (nothing is left half-written at ``path``).
    """
    target = Path(path)
    partial = target.with_name(f"{target.name}.partial")
    composer = MessageComposer(
        engine, rules=rules or SendRules(), clock=clock, unsubscribe=unsubscribe
    )
    report = DryRunReport()
    decisions = planned_decisions(engine, campaign)
    partial.unlink(missing_ok=True)
    try:
        async with FileSinkConnector(partial, clock=clock) as sink:
            for decision_id in decisions:
                report.messages.append(await _rehearse(composer, sink, decision_id))
        if report.written:
            # recorded before it appears: forgetting a person must find every copy of them
            remember_personal_file(engine, target, "dry_run", now=clock.now())
            os.replace(partial, target)
            report.path = target
    except BaseException:  # the partial file holds personal data no record points to
        partial.unlink(missing_ok=True)
        raise
    return report


async def _rehearse(
    composer: MessageComposer, sink: FileSinkConnector, decision_id: int
) -> RehearsedMessage:
    """Check and render one planned message as a send would, and write it when a send would
    hand it over."""
    ctx = composer.load_planned(decision_id)
    due = max(ctx.scheduled_at, composer.clock.now())
    seen = RehearsedMessage(ctx.campaign_key, ctx.channel, ctx.contact_id, "rendered", due)
    rule = composer.rules.rule(ctx.channel)
    if rule is None:
        reason = f"no channel {ctx.channel!r} in the strategy: a send leaves it pending"
        return replace(seen, status="skipped", reason=reason)
    verdict = composer.check(ctx, rule, due)
    if verdict is not None:
        if verdict.status != "deferred" or verdict.scheduled_at is None:
            return replace(seen, status=verdict.status, reason=verdict.reason)
        seen = replace(seen, status="deferred", reason=verdict.reason, due=verdict.scheduled_at)
    try:
        message = composer.build(ctx, rule)
    except InputError as exc:
        return replace(seen, status="failed", reason=f"cannot render the message: {exc}")
    await sink.send(message)
    marketing = needs_unsubscribe(rule.kind, transactional=ctx.transactional)
    return replace(seen, marketing_email=marketing)
