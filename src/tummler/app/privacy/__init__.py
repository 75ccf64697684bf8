"""A person's rights: see everything the store holds about them, or forget them.

Finding a person
    By their external id (``c-123``), or by an identity written ``channel:address``
    (``email:ana@example.org``, ``sms:+33612345678``, ``mastodon:@ana@example.social``). The address is
    normalized the way identities are stored (lower-case e-mail, E.164 phone).

Seeing (:func:`person_record`)
    One JSON-ready document: profile, the history of its stage and attributes, identities, consent log
    and current state per channel (through :func:`tummler.app.consent.current_consent`, the rule the
    outbox checks at send time and planning applies in bulk: what the person is shown is what the
    engine acts on), events, decisions with their reasons, deliveries, mentions, social
    edges in and out, and the audit entries about them. The other end of a social edge is given by internal id only: the other person's
    external id is *their* personal data.

Forgetting (:func:`forget_person`)
    Erases personal data everywhere and keeps the anonymous aggregates, in one transaction:

    * identities, consent events and social edges (in and out: they are data about two people) are
      deleted;
    * the contact row stays as an anonymous anchor: its external id becomes an opaque random token
      (``forgotten-<32 hex>``), attributes and locale are cleared, the time zone becomes ``UTC``,
      ``forgotten_at`` is set; the stage stays (an aggregate, not an identifier);
    * their history (``contact_changes``) keeps its stage movements and times, for the reports'
      movements between stages, but every row's attributes are cleared and a ``source`` that holds
      one of their identifiers is redacted;
    * events, decisions and deliveries stay (counts, values, times, channels) but lose what could point
      back to the person: provider event ids become tokens, a delivery's ``last_error`` and
      ``provider_message_id`` are nulled, its idempotency key is replaced when it holds an identifier,
      and the person's identifiers are redacted from decision reasons;
    * their mentions (linked to them, or written under one of their handles) keep channel, time,
      sentiment, topic and routing, but lose text, author handle and the post's id on the network;
      their identifiers are redacted from other people's mention texts and from the audit log;
    * an audit entry ``person.forget`` records the internal contact id, the counts of what was erased
      and kept, the actor and the time — and none of the person's identifiers.
    * the files tummler wrote that may hold them (rejects files, exports, the dry run's outbox, access
      documents: :mod:`tummler.app.personal_files`) lose their records; on SQLite, deleted content
      is overwritten (``secure_delete``) and the write-ahead log is checkpointed and truncated after
      the commit, so the old bytes leave the store's files too. ``docs/personal-data.md`` lists
      every place personal data goes and what forgetting cannot reach.

    * their identifiers (external id, every identity, every handle they posted under) go to the
      suppression list as keyed one-way digests (:mod:`tummler.app.suppression`), so that no import,
      API call or provider callback brings them back; the list cannot be read back into identifiers
      and nothing links it to the anonymous contact row.

    Forgetting someone already forgotten (found by their token) changes nothing. Their old identifiers
    find nobody afterwards; looking them up says that they belong to a forgotten person, and nothing
    more.

Identifiers are matched case-insensitively: exactly (a JSON string equal to one) and, for those of at
least :data:`MIN_SUBSTRING_LENGTH` characters, inside longer text too. A distinctive attribute value is
matched exactly in the person's own decision reasons and in the audit log.

Where each job lives: :mod:`~tummler.app.privacy.finding` finds the person,
:mod:`~tummler.app.privacy.identifiers` gathers, finds and redacts their identifiers,
:mod:`~tummler.app.privacy.record` gathers everything about them, and
:mod:`~tummler.app.privacy.forgetting` forgets them; the files tummler wrote are scrubbed by
:mod:`tummler.app.personal_files`.
"""

from tummler.app.privacy.finding import contact_subject, find_contact
from tummler.app.privacy.forgetting import (
    FORGET_ACTION,
    FORGOTTEN_PREFIX,
    ForgetReport,
    forget_person,
)
from tummler.app.privacy.identifiers import MIN_SUBSTRING_LENGTH, REDACTED
from tummler.app.privacy.record import person_record

__all__ = [
    "FORGET_ACTION",
    "FORGOTTEN_PREFIX",
    "MIN_SUBSTRING_LENGTH",
    "REDACTED",
    "ForgetReport",
    "contact_subject",
    "find_contact",
    "forget_person",
    "person_record",
]
