"""One message: read what it needs from the store, check it against the rules, render it.

:class:`MessageComposer` is shared by the worker, which sends what it composes, and by the dry run
(:func:`tummler.app.dry_run.dry_run_outbox`), which writes it to a file: so a dry run shows what a
send would do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, select

from tummler.app.consent import ConsentState, consent_names, current_consent
from tummler.app.outbox._enqueue import idempotency_key
from tummler.app.outbox._rules import (
    SET_PUBLIC_URL,
    ChannelRule,
    SendRules,
    Unsubscribe,
    is_transactional,
    message_attributes,
    needs_unsubscribe,
    quiet_until_utc,
)
from tummler.app.rendering import contact_fields, render_variant
from tummler.app.unsubscribe import make_unsubscribe_token, unsubscribe_url
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import InputError, NotFoundError
from tummler.core.vocabulary import ChannelKind, DeliveryStatus
from tummler.decide import Override, active_overrides
from tummler.deliver import OutboundMessage, Publicity
from tummler.store import models
from tummler.strategy import Urgency

__all__ = ["MessageComposer", "SendContext", "Verdict"]

_SKIPPED = DeliveryStatus.SKIPPED.value


@dataclass(frozen=True, slots=True)
class _Template:
    """A variant's templates, as read with the delivery."""

    channel: str
    key: str
    subject: str | None
    headline: str | None
    body: str


@dataclass(frozen=True, slots=True)
class SendContext:
    """Everything one send needs, read in one transaction.

    ``delivery_id`` is ``None`` for a decision a dry run renders before it was enqueued.
    """

    delivery_id: int | None
    key: str
    channel: str
    attempts: int
    scheduled_at: datetime
    contact_id: int
    external_id: str
    forgotten: bool
    time_zone: str
    attributes: Mapping[str, Any]
    locale: str | None
    stage: str | None
    campaign_key: str
    campaign_ends: datetime | None
    critical: bool
    transactional: bool
    variant: _Template | None
    address: str | None
    consent: ConsentState
    sent_in_window: int
    sent_on_channel: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a delivery does not go out now: ``skipped``, or ``deferred`` to ``scheduled_at``."""

    status: str
    reason: str
    scheduled_at: datetime | None = None


def _row_statement(*, planned: bool) -> Any:
    """The joined row one send reads: by ``delivery_id``, or (``planned``) by ``decision_id``
    for a dry run, with the delivery's columns ``NULL`` when the decision is not enqueued yet."""
    d, dec, c, camp, v = (
        models.Delivery,
        models.Decision,
        models.Contact,
        models.Campaign,
        models.Variant,
    )
    columns = select(
        d.id,
        d.idempotency_key,
        dec.channel,
        d.attempts,
        d.scheduled_at,
        dec.send_at,
        c.id.label("contact_id"),
        c.external_id,
        c.forgotten_at,
        c.time_zone,
        c.attributes,
        c.locale,
        c.stage,
        camp.key.label("campaign_key"),
        camp.ends_at,
        camp.definition,
        v.id.label("variant_id"),
        v.channel.label("variant_channel"),
        v.key.label("variant_key"),
        v.subject,
        v.headline,
        v.body,
    )
    if planned:
        joined = columns.select_from(dec).outerjoin(d, d.decision_id == dec.id)
        key = dec.id == bindparam("decision_id")
    else:
        joined = columns.select_from(d).join(dec, dec.id == d.decision_id)
        key = d.id == bindparam("delivery_id")
    return (
        joined.join(c, c.id == dec.contact_id)
        .join(camp, camp.id == dec.campaign_id)
        .outerjoin(v, v.id == dec.variant_id)
        .where(key)
    )


# The reads of every send, built once (bound by name at each execution).
_LOAD_ROW = _row_statement(planned=False)
_LOAD_PLANNED = _row_statement(planned=True)
_LOAD_IDENTITIES = (
    select(models.ChannelIdentity.channel, models.ChannelIdentity.address)
    .where(
        models.ChannelIdentity.contact_id == bindparam("contact_id"),
        models.ChannelIdentity.channel.in_(bindparam("names", expanding=True)),
    )
    .order_by(models.ChannelIdentity.id)
)


class MessageComposer:
    """Reads what one message needs, checks it against the rules and renders it.

    The worker sends what it composes; a dry run (:func:`tummler.app.dry_run.dry_run_outbox`)
    writes it to a file. Both ask this class, so that a dry run shows what a send would do.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        rules: SendRules,
        clock: Clock,
        unsubscribe: Unsubscribe | None,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.clock = clock
        self.unsubscribe = unsubscribe
        # Sends this worker has in flight per contact: the fatigue check counts them as sent.
        self.in_flight: Counter[int] = Counter()

    def load(self, delivery_id: int) -> SendContext:
        """Read what the send of a claimed delivery needs (see :meth:`_read`)."""
        return self._read(_LOAD_ROW, {"delivery_id": delivery_id}, f"delivery {delivery_id}")

    def load_planned(self, decision_id: int) -> SendContext:
        """Read what the send of a decision would need, enqueued or not (for a dry run)."""
        return self._read(_LOAD_PLANNED, {"decision_id": decision_id}, f"decision {decision_id}")

    def _read(self, statement: Any, params: dict[str, int], what: str) -> SendContext:
        """One short transaction: one joined row, then the contact's identities, latest consent
        and recent sends, as the store holds them now."""
        now = self.clock.now()
        with self.engine.connect() as connection:
            row = connection.execute(statement, params).first()
            if row is None:  # pragma: no cover - deleted under our feet (contact erased)
                raise NotFoundError(f"{what} disappeared while it was being sent")
            rule = self.rules.rule(row.channel)
            names = list(consent_names(row.channel, rule.kind.value)) if rule else [row.channel]
            identities = connection.execute(
                _LOAD_IDENTITIES, {"contact_id": row.contact_id, "names": names}
            ).all()
            by_name = {i.channel: i.address for i in reversed(identities)}
            address = next((by_name[n] for n in names if n in by_name), None)
            consent = current_consent(connection, contact_id=row.contact_id, names=names, now=now)
            sent_in_window = 0
            if self.rules.fatigue_window is not None:
                sent_in_window = self._sent_since(
                    connection, row.contact_id, now - self.rules.fatigue_window, row.id, None
                )
            sent_on_channel = 0
            if rule is not None and rule.frequency_cap is not None:
                sent_on_channel = self._sent_since(
                    connection, row.contact_id, now - rule.frequency_cap[1], row.id, row.channel
                )
        message = message_attributes(row.definition)
        template = (
            None
            if row.variant_id is None
            else _Template(
                row.variant_channel, row.variant_key, row.subject, row.headline, row.body
            )
        )
        scheduled = row.scheduled_at if row.scheduled_at is not None else row.send_at
        return SendContext(
            delivery_id=row.id,
            key=row.idempotency_key
            or idempotency_key(row.campaign_key, row.contact_id, row.channel),
            channel=row.channel,
            attempts=row.attempts or 0,
            scheduled_at=now if scheduled is None else ensure_utc(scheduled),
            contact_id=row.contact_id,
            external_id=row.external_id,
            forgotten=row.forgotten_at is not None,
            time_zone=row.time_zone or "UTC",
            attributes=dict(row.attributes or {}),
            locale=row.locale,
            stage=row.stage,
            campaign_key=row.campaign_key,
            campaign_ends=row.ends_at,
            critical=message.get("urgency") == Urgency.CRITICAL.value,
            transactional=is_transactional(row.definition),
            variant=template,
            address=address,
            consent=consent,
            sent_in_window=sent_in_window,
            sent_on_channel=sent_on_channel,
        )

    @staticmethod
    def _sent_since(
        session: Any, contact_id: int, since: datetime, exclude: int | None, channel: str | None
    ) -> int:
        # Through the contact's decisions (indexed by contact), then their deliveries (indexed by
        # decision). ``status || ''`` keeps SQLite, which has no statistics to go by, from
        # walking every sent delivery through the status index instead.
        decisions = select(models.Decision.id).where(models.Decision.contact_id == contact_id)
        query = select(func.count(models.Delivery.id)).where(
            models.Delivery.decision_id.in_(decisions.scalar_subquery()),
            models.Delivery.status.concat("") == DeliveryStatus.SENT.value,
            models.Delivery.sent_at >= since,
        )
        if exclude is not None:
            query = query.where(models.Delivery.id != exclude)
        if channel is not None:
            query = query.where(models.Delivery.channel == channel)
        return int(session.scalar(query) or 0)

    def check(self, ctx: SendContext, rule: ChannelRule, at: datetime) -> Verdict | None:
        """Why this delivery must not go out at ``at`` (``None``: it may).

        ``at`` is now for a send; a dry run asks about the delivery's slot. Everything but the
        quiet hours is read from the store as it is now. A critical message skips the rules its
        strategy lets it override (:func:`tummler.decide.active_overrides`), never consent.
        """
        overrides = active_overrides(ctx.critical, self.rules.critical_overrides)
        return (
            self._refusal(ctx, rule)
            or self._quiet(ctx, rule, at, overrides)
            or self._capped(ctx, rule, overrides)
        )

    def _refusal(self, ctx: SendContext, rule: ChannelRule) -> Verdict | None:
        """No send without the contact, its consent, an address and (marketing e-mail) a link."""
        if ctx.forgotten:
            return Verdict(_SKIPPED, "the contact was forgotten (erased) after planning")
        if rule.consent_required:
            if ctx.consent.status is None:
                return Verdict(_SKIPPED, f"no consent recorded for {ctx.channel} at send time")
            if not ctx.consent.granted:
                return Verdict(
                    _SKIPPED, f"consent revoked before the send (source: {ctx.consent.source})"
                )
        if not rule.public and not ctx.address:
            return Verdict(_SKIPPED, f"the contact has no address on {ctx.channel} any more")
        if self.unsubscribe is None and needs_unsubscribe(
            rule.kind, transactional=ctx.transactional
        ):
            # run_outbox refuses this up front; a delivery enqueued since must not slip through
            return Verdict(
                _SKIPPED, f"a marketing e-mail without an unsubscribe link: {SET_PUBLIC_URL}"
            )
        return None

    @staticmethod
    def _quiet(
        ctx: SendContext, rule: ChannelRule, at: datetime, overrides: frozenset[Override]
    ) -> Verdict | None:
        """Deferred to the end of the quiet hours, or skipped when they outlast the campaign."""
        if rule.quiet_hours is None or Override.QUIET_HOURS in overrides:
            return None
        until = quiet_until_utc(at, ctx.time_zone, rule.quiet_hours)
        if until is None:
            return None
        ends = ctx.campaign_ends
        if ends is not None and until > ensure_utc(ends):
            return Verdict(
                _SKIPPED, "quiet hours in the contact's time zone last past the campaign's end"
            )
        return Verdict("deferred", "quiet hours in the contact's time zone", until)

    def _capped(
        self, ctx: SendContext, rule: ChannelRule, overrides: frozenset[Override]
    ) -> Verdict | None:
        """Skipped at the fatigue cap (sends in flight count) or the channel's frequency cap."""
        cap = self.rules.fatigue_cap
        if cap is not None and Override.FATIGUE not in overrides:
            sent = ctx.sent_in_window + self.in_flight[ctx.contact_id]
            if sent >= cap:
                return Verdict(
                    _SKIPPED,
                    f"fatigue cap reached at send time: {sent} sends in the last "
                    f"{self.rules.fatigue_window} (cap {cap})",
                )
        if rule.frequency_cap is not None and Override.FREQUENCY_CAP not in overrides:
            count, window = rule.frequency_cap
            if ctx.sent_on_channel >= count:
                return Verdict(
                    _SKIPPED,
                    f"frequency cap of {ctx.channel} reached at send time: {ctx.sent_on_channel} "
                    f"sends in the last {window} (cap {count})",
                )
        return None

    def build(self, ctx: SendContext, rule: ChannelRule) -> OutboundMessage:
        """Render the variant into the message; :class:`InputError` when it cannot."""
        if ctx.variant is None:
            raise InputError(
                "the decision has no variant; plan the campaign again", field="variant_id"
            )
        link = None
        if self.unsubscribe is not None and rule.kind is ChannelKind.EMAIL:
            token = make_unsubscribe_token(
                ctx.contact_id, rule.kind.value, key=self.unsubscribe.key
            )
            link = unsubscribe_url(self.unsubscribe.base_url, token)
        fields = contact_fields(
            external_id=ctx.external_id,
            attributes=ctx.attributes,
            locale=ctx.locale,
            time_zone=ctx.time_zone,
            stage=ctx.stage,
            unsubscribe_url=link,
        )
        variant = ctx.variant
        rendered = render_variant(
            subject=variant.subject,
            headline=variant.headline,
            body=variant.body,
            fields=fields,
            name=f"{ctx.campaign_key}/{variant.channel}/{variant.key}",
        )
        body = rendered.body
        if rendered.headline and rule.kind is not ChannelKind.EMAIL:
            body = f"{rendered.headline}\n\n{body}"
        return OutboundMessage(
            channel=rule.kind,
            to=ctx.address or "",
            body_text=body,
            idempotency_key=ctx.key,
            subject=rendered.subject,
            publicity=Publicity.PUBLIC if rule.public else Publicity.PRIVATE,
            unsubscribe_url=link,
            metadata={"campaign": ctx.campaign_key}
            if ctx.delivery_id is None
            else {"campaign": ctx.campaign_key, "delivery": str(ctx.delivery_id)},
        )
