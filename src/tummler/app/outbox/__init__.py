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

**In doubt, per connector** (each connector's
:attr:`~tummler.deliver.Connector.resend_in_doubt`):

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
(other)      unknown   a connector that does not say otherwise makes no promise
============ ========= ================================================================

**At send time** the worker checks again, against the store as it is *now*:

- consent: the latest consent event of the contact for the delivery's channel id or its kind
  (whichever is latest wins, so a revoke on ``email`` also stops the ``newsletter`` channel). A
  revoke recorded between plan and send wins: the delivery is ``skipped`` with the revoke's source;
- quiet hours in the contact's time zone (the planner's rule, :func:`tummler.decide.quiet_until`):
  the delivery is deferred to the end of the quiet hours (it stays ``pending``; no attempt is
  counted), or skipped when that is after the campaign's end;
- the fatigue cap: ``sent`` deliveries to the contact in the window, across every channel and
  campaign, plus those this worker has in flight for the same contact; at the cap, ``skipped``;
- the channel's frequency cap, the same way on its own channel.

A critical message skips the checks its strategy lets it override (never consent), with the same
:class:`tummler.decide.Override` vocabulary as the planner.

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

The jobs, one module each: ``_enqueue`` (decisions become deliveries; what is due), ``_rules`` (the
strategy's send-time rules, unsubscribe links), ``_compose`` (read, check and render one message),
``_leases`` (claims, the lease, crash recovery), ``_worker`` (send and record; :func:`run_outbox`),
``_report`` (what a run did), ``_listing`` (what is in the outbox).
"""

from tummler.app.outbox._compose import MessageComposer
from tummler.app.outbox._enqueue import (
    EnqueueReport,
    count_due,
    enqueue,
    enqueue_planned,
    idempotency_key,
    lookup_campaign,
)
from tummler.app.outbox._leases import IN_FLIGHT
from tummler.app.outbox._listing import DeliveryListing, DeliveryRow, list_deliveries
from tummler.app.outbox._report import DeliveryOutcome, OutboxReport
from tummler.app.outbox._rules import (
    PLACEHOLDER_PUBLIC_URL,
    ChannelRule,
    SendRules,
    Unsubscribe,
    needs_unsubscribe,
)
from tummler.app.outbox._worker import Connectors, run_outbox

__all__ = [
    "IN_FLIGHT",
    "PLACEHOLDER_PUBLIC_URL",
    "ChannelRule",
    "Connectors",
    "DeliveryListing",
    "DeliveryOutcome",
    "DeliveryRow",
    "EnqueueReport",
    "MessageComposer",
    "OutboxReport",
    "SendRules",
    "Unsubscribe",
    "count_due",
    "enqueue",
    "enqueue_planned",
    "idempotency_key",
    "list_deliveries",
    "lookup_campaign",
    "needs_unsubscribe",
    "run_outbox",
]
