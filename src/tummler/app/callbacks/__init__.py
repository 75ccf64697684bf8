"""Events from outside, as they arrive: validate, resolve the person, store once.

Providers (SendGrid, Mailgun, Twilio) and a brand's own systems report what happened after a message:
delivered, opened, clicked, bounced, unsubscribed, complained, converted. This service turns each report
into an ``events`` row:

* **one transaction per request**: every item is checked and every person resolved before anything is
  written, so a request with one bad item stores nothing (the caller gets every problem at once, each
  with its item index and field);
* **once**: events are keyed by ``(source, provider_event_id)``; an event already stored, or repeated
  within the request, counts as a duplicate and is not written again — providers retry, and a retried
  webhook must change nothing. An event without a provider id gets the same derived id the file import
  gives it (:func:`tummler.app.ingest.schemas.derived_event_id`), so the API and the import agree;
* **a known person**: an event names its contact by external id, e-mail address or phone number; one
  that matches nobody is refused, naming the item and the value. One that names a forgotten person
  (:mod:`tummler.app.suppression`) is counted as *suppressed* and not stored: not an error, the
  store keeping its promise;
* **consent follows**: an ``unsubscribed`` or ``complained`` event appends the consent revocation it
  implies (:func:`tummler.app.consent.revocations`) in the same transaction, so the next plan and the
  outbox's check at send time already see it.

Provider event names map onto :class:`~tummler.core.vocabulary.EventType` through the tables below
(``None``: a report worth nothing to learning, counted as *ignored* and not stored).

SendGrid (Event Webhook ``event``):

===================  =============  ==============================================================
SendGrid             tummler        why
===================  =============  ==============================================================
processed            sent           accepted for delivery
delivered            delivered
open                 opened         stored, not a reward by default
click                clicked
bounce               bounced
dropped              bounced        never delivered (suppressed, invalid)
spamreport           complained
unsubscribe          unsubscribed
group_unsubscribe    unsubscribed   unsubscribed from the brand's group: the same signal
deferred             (ignored)      a retry is under way; the outcome comes later
group_resubscribe    (ignored)      consent is managed by the consent log, not by events
===================  =============  ==============================================================

Mailgun (``event-data.event``): ``accepted`` → sent, ``delivered`` → delivered, ``opened`` → opened,
``clicked`` → clicked, ``failed`` → bounced when ``severity`` is ``permanent`` (a ``temporary`` failure
is ignored: Mailgun retries), ``rejected`` → bounced, ``unsubscribed`` → unsubscribed, ``complained`` →
complained, ``stored`` → ignored.

Twilio (``MessageStatus`` of a status callback): ``sent`` → sent, ``delivered`` → delivered,
``undelivered`` and ``failed`` → bounced, ``read`` → opened; ``queued``, ``accepted``, ``scheduled``,
``sending``, ``canceled``, ``receiving`` and ``received`` are ignored. A message goes through several
statuses, so its event id is ``<MessageSid>/<MessageStatus>``; the callback carries no time, so the
event's time is when it arrived.

Twilio incoming messages (the number's "a message comes in" webhook, :func:`twilio_reply`): every
reply is a ``replied`` event from the sender (``From``); a reply that is one of the carriers'
opt-out keywords (:data:`SMS_STOP_WORDS`: ``STOP``, ``STOPALL``, ``UNSUBSCRIBE``, ``CANCEL``,
``END``, ``QUIT``, alone in the message, in any case — the single-word rule Twilio applies), or that
Twilio's Advanced Opt-Out marks ``OptOutType=STOP``, is also an ``unsubscribed`` event on ``sms``,
which revokes SMS consent at once. An opt-in keyword (``START``) does not grant consent: a grant
needs the brand's own record of it.

Deliveries. A report that carries the provider's message id (SendGrid ``sg_message_id`` without the
``.filter…`` suffix SendGrid appends, Mailgun ``message.headers.message-id``, Twilio ``MessageSid``, the
generic ``provider_message_id``) is matched to the outbox row whose ``provider_message_id`` holds it —
for SMTP, the Message-ID tummler set (:func:`tummler.deliver.stable_message_id`; angle brackets do not
matter). A matched event is stored against that delivery's decision and contact, so attribution needs no
guess; a report that matches no delivery falls back to its recipient address, as before. Where the
provider is authoritative the delivery's status follows, never backwards: a bounce (or drop) moves a
``sending``/``unknown``/``sent`` delivery to ``failed`` with the provider's reason; ``sent`` and
``delivered`` confirm a ``sending``/``unknown`` one as ``sent``; a ``failed``, ``dead`` or ``skipped``
delivery is never changed. Only a newly stored event moves a delivery, so a retried webhook changes
nothing.

Where each job lives: :mod:`~tummler.app.callbacks.events` holds the reported events and the
problems found in them, :mod:`~tummler.app.callbacks.providers` reads the providers' webhook
shapes, and :mod:`~tummler.app.callbacks.recording` stores the events.
"""

from tummler.app.callbacks.events import (
    EventProblem,
    IncomingEvent,
    RecordReport,
    RejectedEventsError,
)
from tummler.app.callbacks.providers import (
    MAILGUN_EVENTS,
    SENDGRID_EVENTS,
    SMS_STOP_WORDS,
    TWILIO_STATUSES,
    bare_message_id,
    mailgun_event,
    sendgrid_events,
    twilio_event,
    twilio_reply,
)
from tummler.app.callbacks.recording import record_events

__all__ = [
    "MAILGUN_EVENTS",
    "SENDGRID_EVENTS",
    "SMS_STOP_WORDS",
    "TWILIO_STATUSES",
    "EventProblem",
    "IncomingEvent",
    "RecordReport",
    "RejectedEventsError",
    "bare_message_id",
    "mailgun_event",
    "record_events",
    "sendgrid_events",
    "twilio_event",
    "twilio_reply",
]
