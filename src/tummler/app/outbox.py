"""The outbox: decisions become deliveries, and a worker hands them to connectors exactly once.

**Enqueue.** :func:`enqueue` turns every decision of a campaign that has a channel and is not held
out into one ``deliveries`` row whose ``idempotency_key`` is ``"<campaign>:<contact id>:<channel>"``.
The key is unique in the schema and rows are inserted with ``INSERT ... ON CONFLICT DO NOTHING``, so
enqueueing twice (or from two processes at once) never makes a second delivery.

**Claim, and the lease.** :func:`run_outbox` claims due ``pending`` deliveries in batches with one
atomic statement: ``UPDATE deliveries SET status='sending', updated_at=now WHERE id IN (SELECT ...
LIMIT batch) RETURNING id`` — on PostgreSQL the sub-select is ``FOR UPDATE SKIP LOCKED``, so
concurrent workers take disjoint batches without waiting; on SQLite the statement runs in SQLite's
single writer transaction, which serialises workers. The schema has no lease column: status
``sending`` plus ``updated_at`` *is* the lease. Just before the hand-over the worker renews it and
marks the delivery as in flight (``attempts + 1``, ``last_error = "in flight: ..."``); every later
write is a compare-and-set on ``status='sending'``, so a worker never overwrites a delivery another
worker took over.

**Crash recovery.** A delivery still ``sending`` whose ``updated_at`` is older than ``lease`` belongs
to a worker that died (SIGKILL, power loss). If it was only claimed (no in-flight mark), nothing
was handed over: it goes back to ``pending``. If it was in flight, the provider may or may not have
accepted it: it is treated exactly like a transient error with ``in_doubt`` set, by the
per-connector policy below.

**In doubt, per connector** (:data:`RESEND_WHEN_IN_DOUBT`):

============ ========= ================================================================
connector    in doubt  why
============ ========= ================================================================
smtp         resend    same bytes, same ``Message-ID`` (derived from the key): receivers
                       that de-duplicate on Message-ID drop the copy. SMTP has no
                       idempotency key, so the messages in flight at the instant of a
                       crash (at most ``concurrency``) may arrive twice at receivers
                       that do not — never any other message.
webhook      resend    the ``Idempotency-Key`` header carries the delivery's key
sms          resend    the provider de-duplicates on the idempotency key
mastodon     resend    Mastodon honours ``Idempotency-Key`` on ``POST /statuses``
file         resend    a dry run: a repeated line carries the same key
bluesky      unknown   atproto has no idempotency key: a person checks the account and
                       sets the delivery to sent or pending
(other)      unknown   a connector the outbox does not know makes no promise
============ ========= ================================================================

**At send time** the worker checks again, against the store as it is *now*:

- consent: the latest consent event of the contact for the delivery's channel id or its kind
  (whichever is latest wins, so a revoke on ``email`` also stops the ``newsletter`` channel). A
  revoke recorded between plan and send wins: the delivery is ``skipped`` with the revoke's source;
- quiet hours in the contact's time zone: the delivery is deferred to the end of the quiet hours
  (it stays ``pending``; no attempt is counted), or skipped when that is after the campaign's end;
- the fatigue cap: ``sent`` deliveries to the contact in the window, across every channel and
  campaign, plus those this worker has in flight for the same contact; at the cap, ``skipped``;
- the channel's frequency cap, the same way on its own channel.

A critical message skips the checks its strategy lets it override (never consent).

**Unsubscribe links.** Every e-mail gets a signed unsubscribe link and RFC 8058 one-click
``List-Unsubscribe`` headers from :class:`Unsubscribe` (the HTTP app's public URL). Without one,
marketing e-mail must not go out: :func:`run_outbox` refuses, before it sends anything, while
marketing e-mail waits for an e-mail connector; only messages a campaign marks
``category: transactional`` may go without (consent is checked for them all the same).

**Outcomes.** Accepted → ``sent`` with the provider's id. :class:`PermanentSendError` → ``failed``
with the provider's reason. :class:`TransientSendError` → back to ``pending`` with ``scheduled_at``
moved by exponential back-off with full jitter (``uniform(0, min(max_delay, base_delay * 2**(n-1)))``,
at least the provider's ``Retry-After``), ``dead`` after ``max_attempts``; in doubt, the policy
above. Anything else a connector raises is a bug or a misconfiguration: ``unknown``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import SecretStr
from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tummler.app.consent import ConsentState, consent_names, current_consent
from tummler.app.rendering import contact_fields, render_variant
from tummler.app.unsubscribe import make_unsubscribe_token, unsubscribe_url
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import ConfigError, InputError, NotFoundError
from tummler.core.vocabulary import ChannelKind, DeliveryStatus
from tummler.deliver import (
    Connector,
    OutboundMessage,
    PermanentSendError,
    Publicity,
    SendResult,
    TransientSendError,
    mask_secrets,
)
from tummler.store import models
from tummler.store.database import is_postgres, session_scope
from tummler.strategy import MessageCategory, Strategy, Urgency

__all__ = [
    "IN_FLIGHT",
    "PLACEHOLDER_PUBLIC_URL",
    "RESEND_WHEN_IN_DOUBT",
    "ChannelRule",
    "Connectors",
    "DeliveryOutcome",
    "EnqueueReport",
    "MessageComposer",
    "OutboxReport",
    "SendRules",
    "Unsubscribe",
    "count_due",
    "enqueue",
    "idempotency_key",
    "lookup_campaign",
    "needs_unsubscribe",
    "run_outbox",
]

logger = logging.getLogger("tummler.outbox")

#: Connector per channel kind (``"email"``) or channel id (``"newsletter"``, which wins).
Connectors = Mapping[str, Connector]

#: Whether an in-doubt delivery is sent again (``True``) or held as ``unknown``, per connector name.
RESEND_WHEN_IN_DOUBT: Mapping[str, bool] = {
    "smtp": True,
    "webhook": True,
    "sms": True,
    "mastodon": True,
    "file": True,
    "bluesky": False,
}

_PENDING = DeliveryStatus.PENDING.value
_SENDING = DeliveryStatus.SENDING.value
#: ``last_error`` of a delivery being handed over: what tells recovery "in doubt" from "only claimed".
IN_FLIGHT = "in flight: handed to the connector at "
_INSERT_CHUNK = 500


def idempotency_key(campaign_key: str, contact_id: int, channel: str) -> str:
    """The delivery's key: one message per campaign, contact and channel, ever.

    The contact is named by its internal id, so the key (which travels to providers as a header
    and into Message-IDs) carries no personal data.

    >>> idempotency_key("spring-sale", 42, "email")
    'spring-sale:42:email'
    """
    return f"{campaign_key}:{contact_id}:{channel}"


# ------------------------------------------------------------------------------------------ enqueue


@dataclass(frozen=True, slots=True)
class EnqueueReport:
    """What :func:`enqueue` did for one campaign.

    Attributes
    ----------
    campaign
        The campaign's key.
    decisions
        Decisions to send (with a channel, not held out).
    created
        Deliveries created by this call.
    existing
        Deliveries that were already there (an earlier enqueue): left as they were.
    """

    campaign: str
    decisions: int
    created: int
    existing: int


def enqueue(engine: Engine, campaign_key: str, *, clock: Clock) -> EnqueueReport:
    """Create one pending delivery per decision of ``campaign_key`` that sends something.

    A delivery is due at its decision's ``send_at`` (now when it has none). Holdout decisions and
    *no send* decisions get none. Running it again creates only what is missing.

    Raises
    ------
    NotFoundError
        When no campaign has that key (plan it first with ``tummler plan``).
    """
    now = clock.now()
    with session_scope(engine) as session:
        campaign_id = session.scalar(
            select(models.Campaign.id).where(models.Campaign.key == campaign_key)
        )
        if campaign_id is None:
            raise NotFoundError(
                f"no campaign {campaign_key!r} in the store; plan it first with "
                f"`tummler plan {campaign_key}`"
            )
        rows = session.execute(
            select(
                models.Decision.id,
                models.Decision.contact_id,
                models.Decision.channel,
                models.Decision.send_at,
            )
            .where(
                models.Decision.campaign_id == campaign_id,
                models.Decision.channel.is_not(None),
                models.Decision.holdout.is_(False),
            )
            .order_by(models.Decision.id)
        ).all()
        records = [
            {
                "decision_id": row.id,
                "idempotency_key": idempotency_key(campaign_key, row.contact_id, row.channel),
                "channel": row.channel,
                "status": _PENDING,
                "attempts": 0,
                "scheduled_at": ensure_utc(row.send_at) if row.send_at is not None else now,
                "updated_at": now,
            }
            for row in rows
        ]
        before = _count_campaign_deliveries(session, campaign_id)
        dialect = postgresql if is_postgres(engine) else sqlite
        for start in range(0, len(records), _INSERT_CHUNK):
            statement = dialect.insert(models.Delivery).on_conflict_do_nothing(
                index_elements=["idempotency_key"]
            )
            session.execute(statement, records[start : start + _INSERT_CHUNK])
        after = _count_campaign_deliveries(session, campaign_id)
    created = after - before
    logger.info("enqueued %d deliveries for campaign %s", created, campaign_key)
    return EnqueueReport(campaign_key, len(records), created, len(records) - created)


def _count_campaign_deliveries(session: Any, campaign_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(models.Delivery.id))
            .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
            .where(models.Decision.campaign_id == campaign_id)
        )
        or 0
    )


# ------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """What the worker needs to know about one channel of the strategy.

    Attributes
    ----------
    kind
        The channel's kind: picks the connector and the consent/identity names.
    public
        A public post (no recipient needed) or a private message.
    quiet_hours
        ``(start, end)`` local times with no sends (may wrap midnight), or ``None``.
    frequency_cap
        ``(count, window)``: at most ``count`` sends on this channel per ``window``, or ``None``.
    consent_required
        Whether a granted consent is needed (a public post may not need one).
    """

    kind: ChannelKind
    public: bool = False
    quiet_hours: tuple[time, time] | None = None
    frequency_cap: tuple[int, timedelta] | None = None
    consent_required: bool = True


@dataclass(frozen=True, slots=True)
class SendRules:
    """The strategy's rules the worker re-checks at send time.

    Build it with :meth:`from_strategy`; the default (no strategy) knows each channel only by its
    kind (``email``...) and checks consent only.
    """

    channels: Mapping[str, ChannelRule] = field(default_factory=dict)
    fatigue_window: timedelta | None = None
    fatigue_cap: int | None = None
    critical_overrides: frozenset[str] = frozenset()

    @classmethod
    def from_strategy(cls, strategy: Strategy) -> SendRules:
        """The channels' quiet hours and caps, the shared fatigue cap and the critical overrides."""
        channels = {
            channel.id: ChannelRule(
                kind=channel.kind,
                public=channel.public,
                quiet_hours=None
                if channel.quiet_hours is None
                else (channel.quiet_hours.start, channel.quiet_hours.end),
                frequency_cap=None
                if channel.frequency_cap is None
                else (channel.frequency_cap.count, channel.frequency_cap.window),
                consent_required=channel.consent_required,
            )
            for channel in strategy.channels
        }
        policy = strategy.lever_policy
        return cls(
            channels=channels,
            fatigue_window=policy.fatigue.window,
            fatigue_cap=policy.fatigue.cap,
            critical_overrides=frozenset(str(o) for o in policy.critical_overrides),
        )

    def rule(self, channel: str) -> ChannelRule | None:
        """The rule for a delivery's channel id; a bare kind (``email``) gets a default rule."""
        found = self.channels.get(channel)
        if found is not None:
            return found
        try:
            return ChannelRule(kind=ChannelKind(channel))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """How e-mails get their unsubscribe link: the HTTP app's public URL and the signing key.

    Raises
    ------
    ConfigError
        When ``base_url`` is not an http(s) URL with a host.
    """

    base_url: str
    key: SecretStr

    def __post_init__(self) -> None:
        unsubscribe_url(self.base_url, "")  # refuses a base URL no link can be made from


#: The base URL a dry run gives unsubscribe links when no public URL is set: ``.invalid`` never
#: resolves (RFC 2606), and the name says what is missing.
PLACEHOLDER_PUBLIC_URL = "https://public-url-not-set.invalid"

#: What to do when marketing e-mail has no unsubscribe link.
_SET_URL = (
    "give the outbox the public URL of the HTTP app (`tummler serve`) that unsubscribe links "
    "point to: `tummler send --public-url https://...`, TUMMLER_PUBLIC_URL or public_url in "
    "tummler.toml"
)


def _message_attributes(definition: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The ``message:`` attributes of a stored campaign definition (``{}`` when it has none)."""
    found = (definition or {}).get("message")
    return found if isinstance(found, Mapping) else {}


def _is_transactional(definition: Mapping[str, Any] | None) -> bool:
    category = _message_attributes(definition).get("category")
    return bool(category == MessageCategory.TRANSACTIONAL.value)


def needs_unsubscribe(kind: ChannelKind, *, transactional: bool) -> bool:
    """Marketing e-mail must carry an unsubscribe link and the one-click headers (RFC 8058);
    a transactional message (a receipt, a password reset) may go without.

    >>> needs_unsubscribe(ChannelKind.EMAIL, transactional=False)
    True
    >>> needs_unsubscribe(ChannelKind.EMAIL, transactional=True)
    False
    >>> needs_unsubscribe(ChannelKind.SMS, transactional=False)
    False
    """
    return kind is ChannelKind.EMAIL and not transactional


# ------------------------------------------------------------------------------------------ report


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one claimed delivery in this run.

    ``status`` is the delivery's new status, or ``"retry"`` / ``"deferred"`` when it went back to
    ``pending`` for a later attempt (back-off) or after the quiet hours.
    """

    delivery_id: int
    channel: str
    status: str
    reason: str | None = None


@dataclass
class OutboxReport:
    """What :func:`run_outbox` did: one outcome per claimed delivery, and the crash recoveries."""

    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    recovered: int = 0

    @property
    def counts(self) -> Counter[str]:
        """Outcomes by status (``sent``, ``failed``, ``retry``...)."""
        return Counter(o.status for o in self.outcomes)

    @property
    def by_channel(self) -> dict[str, Counter[str]]:
        """Outcomes by channel and status, for the summary table."""
        table: dict[str, Counter[str]] = {}
        for outcome in self.outcomes:
            table.setdefault(outcome.channel, Counter())[outcome.status] += 1
        return table


# ------------------------------------------------------------------------------------------ worker


@dataclass(frozen=True, slots=True)
class _Template:
    """A variant's templates, as read with the delivery."""

    channel: str
    key: str
    subject: str | None
    headline: str | None
    body: str


@dataclass(frozen=True, slots=True)
class _Context:
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
class _Verdict:
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

    def load(self, delivery_id: int) -> _Context:
        """Read what the send of a claimed delivery needs (see :meth:`_read`)."""
        return self._read(_LOAD_ROW, {"delivery_id": delivery_id}, f"delivery {delivery_id}")

    def load_planned(self, decision_id: int) -> _Context:
        """Read what the send of a decision would need, enqueued or not (for a dry run)."""
        return self._read(_LOAD_PLANNED, {"decision_id": decision_id}, f"decision {decision_id}")

    def _read(self, statement: Any, params: dict[str, int], what: str) -> _Context:
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
        message = _message_attributes(row.definition)
        template = (
            None
            if row.variant_id is None
            else _Template(
                row.variant_channel, row.variant_key, row.subject, row.headline, row.body
            )
        )
        scheduled = row.scheduled_at if row.scheduled_at is not None else row.send_at
        return _Context(
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
            transactional=_is_transactional(row.definition),
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

    def check(self, ctx: _Context, rule: ChannelRule, at: datetime) -> _Verdict | None:
        """Why this delivery must not go out at ``at`` (``None``: it may).

        ``at`` is now for a send; a dry run asks about the delivery's slot. Everything but the
        quiet hours is read from the store as it is now.
        """
        skipped = DeliveryStatus.SKIPPED.value
        if ctx.forgotten:
            return _Verdict(skipped, "the contact was forgotten (erased) after planning")
        if rule.consent_required:
            if ctx.consent.status is None:
                return _Verdict(skipped, f"no consent recorded for {ctx.channel} at send time")
            if not ctx.consent.granted:
                return _Verdict(
                    skipped, f"consent revoked before the send (source: {ctx.consent.source})"
                )
        if not rule.public and not ctx.address:
            return _Verdict(skipped, f"the contact has no address on {ctx.channel} any more")
        if self.unsubscribe is None and needs_unsubscribe(
            rule.kind, transactional=ctx.transactional
        ):
            # run_outbox refuses this up front; a delivery enqueued since must not slip through
            return _Verdict(skipped, f"a marketing e-mail without an unsubscribe link: {_SET_URL}")
        overrides = self.rules.critical_overrides if ctx.critical else frozenset()
        if rule.quiet_hours is not None and "quiet_hours" not in overrides:
            until = _quiet_until(at, ctx.time_zone, *rule.quiet_hours)
            if until is not None:
                ends = ctx.campaign_ends
                if ends is not None and until > ensure_utc(ends):
                    return _Verdict(
                        skipped,
                        "quiet hours in the contact's time zone last past the campaign's end",
                    )
                return _Verdict("deferred", "quiet hours in the contact's time zone", until)
        cap = self.rules.fatigue_cap
        if cap is not None and "fatigue" not in overrides:
            sent = ctx.sent_in_window + self.in_flight[ctx.contact_id]
            if sent >= cap:
                return _Verdict(
                    skipped,
                    f"fatigue cap reached at send time: {sent} sends in the last "
                    f"{self.rules.fatigue_window} (cap {cap})",
                )
        if rule.frequency_cap is not None and "frequency_cap" not in overrides:
            count, window = rule.frequency_cap
            if ctx.sent_on_channel >= count:
                return _Verdict(
                    skipped,
                    f"frequency cap of {ctx.channel} reached at send time: {ctx.sent_on_channel} "
                    f"sends in the last {window} (cap {count})",
                )
        return None

    def build(self, ctx: _Context, rule: ChannelRule) -> OutboundMessage:
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


class _Worker(MessageComposer):
    """Claims due deliveries, sends what it composes, and records each outcome."""

    def __init__(
        self,
        engine: Engine,
        connectors: Mapping[str, Connector],
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
        self.postgres = is_postgres(engine)
        self.report = OutboxReport()

    # ------------------------------------------------------------------ routing

    def connector_for(self, channel: str) -> Connector | None:
        if channel in self.connectors:
            return self.connectors[channel]
        rule = self.rules.rule(channel)
        return None if rule is None else self.connectors.get(rule.kind.value)

    def served_channels(self) -> list[str]:
        """Channel names (ids and bare kinds) that have a connector: the only ones claimed."""
        names = set(self.connectors) | set(self.rules.channels)
        return sorted(name for name in names if self.connector_for(name) is not None)

    def resend_in_doubt(self, channel: str) -> bool:
        connector = self.connector_for(channel)
        return connector is not None and RESEND_WHEN_IN_DOUBT.get(connector.name, False)

    # ------------------------------------------------------------------ claim & recover

    def _scoped(self, query: Any, campaign_id: int | None) -> Any:
        if campaign_id is None:
            return query
        return query.where(
            models.Delivery.decision_id.in_(
                select(models.Decision.id).where(models.Decision.campaign_id == campaign_id)
            )
        )

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
        waiting = self._scoped(
            select(models.Decision.campaign_id, func.count(models.Delivery.id).label("n"))
            .join(models.Decision, models.Decision.id == models.Delivery.decision_id)
            .where(
                models.Delivery.status.in_([_PENDING, _SENDING]),
                models.Delivery.channel.in_(emails),
            )
            .group_by(models.Decision.campaign_id),
            campaign_id,
        ).subquery()
        query = (
            select(models.Campaign.key, models.Campaign.definition, waiting.c.n)
            .join(waiting, waiting.c.campaign_id == models.Campaign.id)
            .order_by(models.Campaign.key)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        marketing = {row.key: int(row.n) for row in rows if not _is_transactional(row.definition)}
        if not marketing:
            return
        named = ", ".join(f"{key} ({n})" for key, n in list(marketing.items())[:5])
        more = f" and {len(marketing) - 5} more" if len(marketing) > 5 else ""
        raise ConfigError(
            f"{sum(marketing.values())} marketing e-mails would go out without an unsubscribe "
            f"link (campaigns: {named}{more}); nothing was sent. To send them, {_SET_URL}. Only "
            "messages a campaign marks `message: category: transactional` may go without"
        )

    def recover(self, lease: timedelta, channels: Sequence[str], campaign_id: int | None) -> None:
        """Deliveries left ``sending`` by a dead worker: resend or hold, by connector."""
        now = self.clock.now()
        cutoff = now - lease
        query = self._scoped(
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
        with self.engine.begin() as connection:
            for row in connection.execute(query).all():
                in_doubt = (row.last_error or "").startswith(IN_FLIGHT)
                resend = self.resend_in_doubt(row.channel) and row.attempts < self.max_attempts
                if not in_doubt:
                    # claimed, never handed over: nothing can have gone out
                    values: dict[str, Any] = {"status": _PENDING}
                elif resend:
                    values = {
                        "status": _PENDING,
                        "scheduled_at": now,
                        "last_error": "in doubt: the worker stopped during the send; to be sent "
                        "again with the same idempotency key / Message-ID",
                    }
                else:
                    why = (
                        f"it had used all {self.max_attempts} attempts"
                        if self.resend_in_doubt(row.channel)
                        else "this connector cannot de-duplicate a resend"
                    )
                    values = {
                        "status": DeliveryStatus.UNKNOWN.value,
                        "last_error": f"in doubt: the worker stopped during the send and {why}; "
                        "check the provider and set it to sent, or back to pending",
                    }
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
                    self.report.recovered += 1
                    logger.warning(
                        "delivery %d was left sending by a stopped worker: %s",
                        row.id,
                        "not yet handed over, back to pending"
                        if not in_doubt
                        else "in doubt, resending"
                        if resend
                        else "in doubt, held as unknown",
                    )

    def claim(self, batch: int, channels: Sequence[str], campaign_id: int | None) -> list[int]:
        now = self.clock.now()
        due = self._scoped(
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

    def finish(
        self,
        delivery_id: int,
        channel: str,
        values: dict[str, Any],
        outcome: str,
        reason: str | None,
    ) -> None:
        values = {**values, "updated_at": self.clock.now()}
        statement = _finish_statement(frozenset(values))
        with self.engine.begin() as connection:
            result = connection.execute(
                statement, {"p_id": delivery_id, **{f"p_{k}": v for k, v in values.items()}}
            )
        if not result.rowcount:
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
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
        delay = float(self.rng.uniform(0.0, ceiling)) if ceiling > 0 else 0.0
        if retry_after is not None:
            delay = max(delay, retry_after)
        return timedelta(seconds=delay)

    async def deliver(self, delivery_id: int) -> None:
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
            self.finish(
                delivery_id,
                channel,
                {
                    "status": DeliveryStatus.FAILED.value,
                    "last_error": f"no connector for channel {channel!r}",
                },
                DeliveryStatus.FAILED.value,
                "no connector",
            )
            return
        verdict = self.check(ctx, rule, self.clock.now())
        if verdict is not None:
            if verdict.status == "deferred":
                values: dict[str, Any] = {
                    "status": _PENDING,
                    "scheduled_at": verdict.scheduled_at,
                    "last_error": f"deferred: {verdict.reason}",
                }
            else:
                values = {"status": verdict.status, "last_error": verdict.reason}
            self.finish(delivery_id, channel, values, verdict.status, verdict.reason)
            logger.info("delivery %s %s: %s", ctx.key, verdict.status, verdict.reason)
            return
        try:
            message = self.build(ctx, rule)
        except InputError as exc:
            reason = f"cannot render the message: {exc}"
            self.finish(
                delivery_id,
                channel,
                {"status": DeliveryStatus.FAILED.value, "last_error": reason},
                DeliveryStatus.FAILED.value,
                reason,
            )
            return
        self.in_flight[ctx.contact_id] += 1
        try:
            if not self.touch(delivery_id):
                return
            self.record(delivery_id, ctx, connector, await self._send(connector, message))
        finally:
            self.in_flight[ctx.contact_id] -= 1

    @staticmethod
    async def _send(connector: Connector, message: OutboundMessage) -> SendResult | Exception:
        try:
            return await connector.send(message)
        except Exception as exc:  # every failure is recorded, none is lost
            return exc

    def record(
        self,
        delivery_id: int,
        ctx: _Context,
        connector: Connector,
        result: SendResult | Exception,
    ) -> None:
        channel = ctx.channel
        if isinstance(result, SendResult):
            self.finish(
                delivery_id,
                channel,
                {
                    "status": DeliveryStatus.SENT.value,
                    "sent_at": self.clock.now(),
                    "provider_message_id": result.provider_message_id[:255],
                    "last_error": None,
                },
                DeliveryStatus.SENT.value,
                None,
            )
            return
        if isinstance(result, PermanentSendError):
            self.finish(
                delivery_id,
                channel,
                {"status": DeliveryStatus.FAILED.value, "last_error": str(result)},
                DeliveryStatus.FAILED.value,
                result.reason,
            )
            return
        if isinstance(result, TransientSendError):
            reason = str(result)
            if result.in_doubt and not RESEND_WHEN_IN_DOUBT.get(connector.name, False):
                held = (
                    f"{reason}; {connector.name} cannot de-duplicate a resend: check the "
                    "provider and set it to sent, or back to pending"
                )
                self.finish(
                    delivery_id,
                    channel,
                    {"status": DeliveryStatus.UNKNOWN.value, "last_error": held},
                    DeliveryStatus.UNKNOWN.value,
                    held,
                )
                return
            attempts = ctx.attempts + 1  # this one, counted by touch()
            if attempts >= self.max_attempts:
                status = DeliveryStatus.UNKNOWN if result.in_doubt else DeliveryStatus.DEAD
                final = f"gave up after {attempts} attempts: {reason}"
                self.finish(
                    delivery_id,
                    channel,
                    {"status": status.value, "last_error": final},
                    status.value,
                    final,
                )
                return
            at = self.clock.now() + self.backoff(attempts, result.retry_after)
            self.finish(
                delivery_id,
                channel,
                {"status": _PENDING, "scheduled_at": at, "last_error": reason},
                "retry",
                reason,
            )
            return
        # A bug or a misconfiguration in the connector: the message may have gone out.
        text = mask_secrets(f"{type(result).__name__}: {result}")
        held = (
            f"unexpected error in connector {connector.name}: {text}; check it, then set the "
            "delivery to sent or back to pending"
        )
        self.finish(
            delivery_id,
            channel,
            {"status": DeliveryStatus.UNKNOWN.value, "last_error": held[:2000]},
            DeliveryStatus.UNKNOWN.value,
            held,
        )


def _quiet_until(now: datetime, zone: str, start: time, end: time) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC) in ``zone``, or ``None`` outside them."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    first, last = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    if first == last:
        return None
    quiet = first <= minute < last if first < last else minute >= first or minute < last
    if not quiet:
        return None
    ending = datetime.combine(local.date(), end, tzinfo=tz)
    if ending <= local:
        ending = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=tz)
    return ensure_utc(ending)


def lookup_campaign(engine: Engine, campaign_key: str | None) -> int | None:
    """The id of the campaign with key ``campaign_key`` (``None`` for ``None``: every campaign).

    Raises
    ------
    NotFoundError
        When no campaign has that key.
    """
    if campaign_key is None:
        return None
    with engine.connect() as connection:
        found = connection.scalar(
            select(models.Campaign.id).where(models.Campaign.key == campaign_key)
        )
    if found is None:
        raise NotFoundError(f"no campaign {campaign_key!r} in the store; check its key")
    return int(found)


def count_due(
    engine: Engine,
    *,
    clock: Clock,
    campaign_key: str | None = None,
    channels: Sequence[str] | None = None,
) -> int:
    """Pending deliveries due now (for a progress bar's total)."""
    campaign_id = lookup_campaign(engine, campaign_key)
    query = select(func.count(models.Delivery.id)).where(
        models.Delivery.status == _PENDING, models.Delivery.scheduled_at <= clock.now()
    )
    if channels is not None:
        query = query.where(models.Delivery.channel.in_(channels))
    if campaign_id is not None:
        query = query.where(
            models.Delivery.decision_id.in_(
                select(models.Decision.id).where(models.Decision.campaign_id == campaign_id)
            )
        )
    with engine.connect() as connection:
        return int(connection.scalar(query) or 0)


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
    campaign_id = lookup_campaign(engine, campaign)
    worker = _Worker(
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
    channels = worker.served_channels()
    if not channels:
        return worker.report
    worker.refuse_without_unsubscribe(channels, campaign_id)
    worker.recover(lease, channels, campaign_id)
    while True:
        claimed = worker.claim(batch, channels, campaign_id)
        if not claimed:
            break
        await asyncio.gather(*(worker.deliver(i) for i in claimed))
    return worker.report
