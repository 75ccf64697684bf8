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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import phonenumbers
from sqlalchemy import Engine, String, cast, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from tummler.app.consent import ConsentState, consent_names, current_consent
from tummler.app.personal_files import FileScrub, scrub_personal_files
from tummler.app.suppression import Suppressions, external_id_key, identity_key, suppress
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import NotFoundError
from tummler.core.randomness import make_rng
from tummler.core.vocabulary import ChannelKind
from tummler.store.models import (
    AuditEntry,
    Campaign,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    ContactChange,
    Decision,
    Delivery,
    Event,
    Mention,
    SocialEdge,
    Variant,
)

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

#: The audit action recorded when a person is forgotten.
FORGET_ACTION = "person.forget"
#: How a forgotten contact's external id begins.
FORGOTTEN_PREFIX = "forgotten-"
#: What replaces an identifier inside text that is kept.
REDACTED = "[forgotten]"
#: Shorter identifiers are only matched exactly, never inside longer text (``"42"`` is everywhere).
MIN_SUBSTRING_LENGTH = 4


def contact_subject(contact_id: int) -> str:
    """The audit subject for a contact: its internal id, which identifies no one outside the store."""
    return f"contact:{contact_id}"


# --- finding a person ------------------------------------------------------------------------


def find_contact(session: Session, *, person: str, for_update: bool = False) -> Contact:
    """The contact ``person`` names: an external id, or ``channel:address`` for an identity.

    A ``channel:`` prefix that names a known channel looks the address up among identities first; when
    no identity matches, the whole text is tried as an external id (external ids may contain colons).

    Raises
    ------
    NotFoundError
        When nobody matches; the message says which forms are accepted.
    """
    channel, _, address = person.partition(":")
    query = select(Contact)
    if for_update:
        query = query.with_for_update()
    if address and channel.lower() in {kind.value for kind in ChannelKind}:
        candidates = _address_forms(channel.lower(), address)
        found = session.scalars(
            query.join(ChannelIdentity, ChannelIdentity.contact_id == Contact.id)
            .where(ChannelIdentity.channel == channel.lower())
            .where(func.lower(ChannelIdentity.address).in_(candidates))
            .order_by(Contact.id)
        ).first()
        if found is not None:
            return found
    contact = session.scalars(query.where(Contact.external_id == person)).one_or_none()
    if contact is None:
        keys = [external_id_key(person)]
        if address and channel.lower() in {kind.value for kind in ChannelKind}:
            keys += [
                identity_key(channel, form) for form in _address_forms(channel.lower(), address)
            ]
        connection = session.connection()
        if Suppressions.load(connection).suppressed(connection, keys):
            raise NotFoundError(
                f"{person!r} belongs to a person who was forgotten: it is on the suppression "
                "list, so imports, the API and provider callbacks refuse it, and nothing else is "
                "held about it"
            )
        raise NotFoundError(
            f"no contact with external id or identity {person!r}: give an external id, or "
            "CHANNEL:ADDRESS such as email:ana@example.org or sms:+33612345678 "
            "(a forgotten person is found only by their forgotten-… token)"
        )
    return contact


def _address_forms(channel: str, address: str) -> list[str]:
    """The lower-cased forms an address may be stored under on ``channel``."""
    address = address.strip()
    forms = {address.lower()}
    if channel == ChannelKind.SMS.value:
        try:
            number = phonenumbers.parse(address, None)
        except phonenumbers.NumberParseException:
            pass
        else:
            forms.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if channel in {ChannelKind.MASTODON.value, ChannelKind.BLUESKY.value}:
        bare = address.lower().lstrip("@")
        forms |= {bare, f"@{bare}"}
    return sorted(forms)


# --- seeing everything about a person --------------------------------------------------------


def person_record(
    engine: Engine,
    *,
    person: str,
    channels: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Everything the store holds about one person, as one JSON-ready document.

    What a data-subject access request returns. Times are ISO 8601 UTC strings.

    Parameters
    ----------
    engine
        The store.
    person
        An external id or ``channel:address`` (see :func:`find_contact`).
    channels
        The strategy's channels (id → kind): consent ``current`` is stated per channel, exactly as
        planning and the outbox decide it. Default: one entry per name found in the consent log.
    clock
        "Now" for the current consent state (default: the wall clock); a grant dated later does
        not count yet.

    Returns
    -------
    dict
        Keys ``contact``, ``history`` (its stage and attributes, change by change),
        ``identities``, ``consent`` (``current`` per channel and the ``log``),
        ``events``, ``decisions``, ``deliveries``, ``mentions``, ``social_edges`` (``out`` and
        ``in``) and ``audit``.

    Raises
    ------
    NotFoundError
        When nobody matches ``person``.
    """
    with sessionmaker(engine)() as session, session.begin():
        contact = find_contact(session, person=person)
        cid = contact.id
        identities = session.scalars(
            select(ChannelIdentity)
            .where(ChannelIdentity.contact_id == cid)
            .order_by(ChannelIdentity.id)
        ).all()
        consent_log = session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == cid)
            .order_by(ConsentEvent.at, ConsentEvent.id)
        ).all()
        history = session.scalars(
            select(ContactChange)
            .where(ContactChange.contact_id == cid)
            .order_by(ContactChange.changed_at, ContactChange.id)
        ).all()
        now = (clock or SystemClock()).now()
        known = channels if channels is not None else {c.channel: c.channel for c in consent_log}
        current = {
            channel: _consent(
                current_consent(
                    session.connection(),
                    contact_id=cid,
                    names=consent_names(channel, kind),
                    now=now,
                )
            )
            for channel, kind in sorted(known.items())
        }
        events = session.scalars(
            select(Event).where(Event.contact_id == cid).order_by(Event.at, Event.id)
        ).all()
        decisions = session.execute(
            select(Decision, Campaign.key, Variant.key)
            .join(Campaign, Campaign.id == Decision.campaign_id)
            .outerjoin(Variant, Variant.id == Decision.variant_id)
            .where(Decision.contact_id == cid)
            .order_by(Decision.decided_at, Decision.id)
        ).all()
        deliveries = session.scalars(
            select(Delivery)
            .join(Decision, Decision.id == Delivery.decision_id)
            .where(Decision.contact_id == cid)
            .order_by(Delivery.id)
        ).all()
        handles = _handles(session, contact, [i.address for i in identities])
        mentions = session.scalars(
            _mentions_of(cid, handles).order_by(Mention.at, Mention.id)
        ).all()
        edges_out = session.scalars(
            select(SocialEdge).where(SocialEdge.source_contact_id == cid).order_by(SocialEdge.id)
        ).all()
        edges_in = session.scalars(
            select(SocialEdge).where(SocialEdge.target_contact_id == cid).order_by(SocialEdge.id)
        ).all()
        matcher = _Matcher.for_person(
            contact, [i.address for i in identities], handles, [h.attributes for h in history]
        )
        audit = [
            entry
            for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id))
            if entry.subject == contact_subject(cid)
            or matcher.matches(entry.subject)
            or matcher.matches(entry.actor)
            or matcher.matches(entry.details)
        ]
        return {
            "contact": {
                "id": cid,
                "external_id": contact.external_id,
                "time_zone": contact.time_zone,
                "locale": contact.locale,
                "stage": contact.stage,
                "attributes": contact.attributes,
                "created_at": _iso(contact.created_at),
                "updated_at": _iso(contact.updated_at),
                "forgotten_at": _iso(contact.forgotten_at),
            },
            "history": [
                {
                    "changed_at": _iso(h.changed_at),
                    "stage_before": h.stage_before,
                    "stage": h.stage,
                    "attributes": h.attributes,
                    "source": h.source,
                }
                for h in history
            ],
            "identities": [
                {"channel": i.channel, "address": i.address, "created_at": _iso(i.created_at)}
                for i in identities
            ],
            "consent": {
                "current": current,
                "log": [
                    {
                        "channel": c.channel,
                        "status": c.status,
                        "source": c.source,
                        "at": _iso(c.at),
                        "recorded_at": _iso(c.recorded_at),
                    }
                    for c in consent_log
                ],
            },
            "events": [
                {
                    "id": e.id,
                    "type": e.type,
                    "channel": e.channel,
                    "value": e.value,
                    "at": _iso(e.at),
                    "decision_id": e.decision_id,
                    "source": e.source,
                    "provider_event_id": e.provider_event_id,
                }
                for e in events
            ],
            "decisions": [
                {
                    "id": d.id,
                    "campaign": campaign,
                    "lever": d.lever,
                    "channel": d.channel,
                    "send_at": _iso(d.send_at),
                    "variant": variant,
                    "action": d.action,
                    "propensity": d.propensity,
                    "expected_value": d.expected_value,
                    "policy_version_id": d.policy_version_id,
                    "holdout": d.holdout,
                    "reasons": d.reasons,
                    "decided_at": _iso(d.decided_at),
                }
                for d, campaign, variant in decisions
            ],
            "deliveries": [
                {
                    "id": d.id,
                    "decision_id": d.decision_id,
                    "channel": d.channel,
                    "status": d.status,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "provider_message_id": d.provider_message_id,
                    "idempotency_key": d.idempotency_key,
                    "scheduled_at": _iso(d.scheduled_at),
                    "sent_at": _iso(d.sent_at),
                    "updated_at": _iso(d.updated_at),
                }
                for d in deliveries
            ],
            "mentions": [
                {
                    "id": m.id,
                    "channel": m.channel,
                    "external_id": m.external_id,
                    "author_handle": m.author_handle,
                    "text": m.text,
                    "at": _iso(m.at),
                    "sentiment": m.sentiment,
                    "topic": m.topic,
                    "routed_to": m.routed_to,
                }
                for m in mentions
            ],
            "social_edges": {
                "out": [_edge(e, other=e.target_contact_id) for e in edges_out],
                "in": [_edge(e, other=e.source_contact_id) for e in edges_in],
            },
            "audit": [
                {
                    "id": a.id,
                    "at": _iso(a.at),
                    "actor": a.actor,
                    "action": a.action,
                    "subject": a.subject,
                    "details": a.details,
                }
                for a in audit
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _consent(state: ConsentState) -> dict[str, Any]:
    return {
        "status": state.status or "none",
        "granted": state.granted,
        "at": _iso(state.at),
        "source": state.source,
        "recorded_under": state.name,
    }


def _edge(edge: SocialEdge, *, other: int) -> dict[str, Any]:
    return {
        "contact_id": other,
        "kind": edge.kind,
        "weight": edge.weight,
        "at": _iso(edge.at),
    }


def _handles(session: Session, contact: Contact, addresses: Iterable[str]) -> set[str]:
    """The person's addresses and the author handles of the mentions linked to them, lower-cased."""
    handles = {address.lower() for address in addresses}
    handles |= {
        handle.lower()
        for handle in session.scalars(
            select(Mention.author_handle).where(Mention.contact_id == contact.id).distinct()
        )
        if handle
    }
    return handles


def _mentions_of(contact_id: int, handles: set[str]) -> Any:
    """Mentions linked to the contact, or written under one of their handles (``@`` or not)."""
    forms = {form for handle in handles for form in (handle, handle.lstrip("@"), f"@{handle}")}
    condition = Mention.contact_id == contact_id
    if forms:
        condition = or_(condition, func.lower(Mention.author_handle).in_(sorted(forms)))
    return select(Mention).where(condition)


# --- forgetting a person ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What forgetting a person did (or, in a dry run, would do).

    ``identities`` lists the person's ``channel:address`` pairs for the operator's confirmation; it is
    never stored. ``erased`` and ``kept`` are what the audit entry records.
    """

    contact_id: int
    token: str
    already_forgotten: bool
    dry_run: bool
    identities: tuple[str, ...] = ()
    erased: Mapping[str, int] = field(default_factory=dict)
    kept: Mapping[str, int] = field(default_factory=dict)
    audit_entry_id: int | None = None
    #: What happened to each file tummler wrote that may hold personal data.
    files: tuple[FileScrub, ...] = ()
    #: Channels the person was sent messages on: the providers behind them hold copies that
    #: tummler cannot erase (ask them).
    sent_on: tuple[str, ...] = ()
    #: What the store's own files still hold, in words (``None``: nothing known).
    store_note: str | None = None


def forget_person(
    engine: Engine,
    *,
    person: str,
    actor: str,
    clock: Clock | None = None,
    rng: np.random.Generator | None = None,
    dry_run: bool = False,
) -> ForgetReport:
    """Erase a person's personal data everywhere, keep anonymous aggregates, audit it; one transaction.

    See the module's docstring for what is erased, what is kept and why.

    Parameters
    ----------
    engine
        The store.
    person
        An external id or ``channel:address`` (see :func:`find_contact`).
    actor
        Who asked (an operator, an API key's name): recorded in the audit entry.
    clock
        The time recorded in ``forgotten_at`` and in the audit entry (default: the wall clock).
    rng
        Draws the opaque token that replaces the external id. The default draws fresh entropy from
        the operating system: a token must not be reproducible from a seed someone else knows.
    dry_run
        Do everything, report it, then roll back: what ``tummler person forget`` shows before it asks
        for confirmation.

    Returns
    -------
    ForgetReport
        Counts of what was erased and kept; ``already_forgotten`` when there was nothing to do.

    Raises
    ------
    NotFoundError
        When nobody matches ``person``.
    """
    clock = clock or SystemClock()
    rng = make_rng(rng)
    session = sessionmaker(engine, expire_on_commit=False)()
    try:
        transaction = session.begin()
        try:
            contact = find_contact(session, person=person, for_update=True)
            if contact.forgotten_at is not None:
                transaction.rollback()
                return ForgetReport(
                    contact_id=contact.id,
                    token=contact.external_id,
                    already_forgotten=True,
                    dry_run=dry_run,
                )
            token = _fresh_token(session, rng)
            report = _forget(
                session, contact, token=token, actor=actor, now=clock.now(), dry_run=dry_run
            )
        except BaseException:
            transaction.rollback()
            raise
        if dry_run:
            transaction.rollback()
            return report
        transaction.commit()
    finally:
        session.close()
    return replace(report, store_note=_flush_old_bytes(engine))


def _flush_old_bytes(engine: Engine) -> str | None:
    """Push the erased rows' old bytes out of the store's files, where the database allows it."""
    if engine.dialect.name != "sqlite":
        return (
            "PostgreSQL keeps the old row versions until VACUUM reuses their space, and its "
            "write-ahead log, archives and backups keep them until they expire: run VACUUM on "
            "the store and let backups rotate"
        )
    # secure_delete (set on every connection) zeroed the freed content; the WAL still holds
    # page images from before the forget until a checkpoint copies it back and truncates it.
    with engine.connect() as connection:
        busy, frames, done = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy or (frames > 0 and done < frames):
        return (
            "another process is reading the store, so its write-ahead log could not be emptied: "
            "run `tummler person forget` again (it changes nothing) when no other tummler runs"
        )
    return None


def _fresh_token(session: Session, rng: np.random.Generator) -> str:
    """A ``forgotten-<32 hex>`` token no contact has (a generator reused with one seed repeats)."""
    while True:
        token = f"{FORGOTTEN_PREFIX}{rng.bytes(16).hex()}"
        if session.scalar(select(Contact.id).where(Contact.external_id == token)) is None:
            return token


def _forget(
    session: Session, contact: Contact, *, token: str, actor: str, now: datetime, dry_run: bool
) -> ForgetReport:
    cid = contact.id
    identities = session.scalars(
        select(ChannelIdentity)
        .where(ChannelIdentity.contact_id == cid)
        .order_by(ChannelIdentity.id)
    ).all()
    addresses = [identity.address for identity in identities]
    handles = _handles(session, contact, addresses)
    # Attributes the person had before (an old nickname) identify them as well as today's.
    past = session.scalars(
        select(ContactChange.attributes).where(ContactChange.contact_id == cid)
    ).all()
    matcher = _Matcher.for_person(contact, addresses, handles, past)
    erased: dict[str, int] = {}
    kept: dict[str, int] = {}

    # Their mentions first: finding them needs the handles, which live on rows deleted below.
    mentions = session.scalars(_mentions_of(cid, handles)).all()
    keys = {external_id_key(contact.external_id): "external_id"}
    keys |= {identity_key(i.channel, i.address): "identity" for i in identities}
    keys |= {
        identity_key(m.channel, m.author_handle): "identity" for m in mentions if m.author_handle
    }
    kept["suppressed_identifiers"] = suppress(session.connection(), keys, now=now)
    for mention in mentions:
        mention.text = None
        mention.author_handle = None
        mention.external_id = f"{token}-m{mention.id}"
    erased["mentions"] = len(mentions)
    own_mentions = {mention.id for mention in mentions}
    erased["mention_texts_redacted"] = _redact_other_mentions(session, matcher, own_mentions)

    erased["identities"] = _delete(
        session, delete(ChannelIdentity).where(ChannelIdentity.contact_id == cid)
    )
    erased["consent_events"] = _delete(
        session, delete(ConsentEvent).where(ConsentEvent.contact_id == cid)
    )
    erased["social_edges"] = _delete(
        session,
        delete(SocialEdge).where(
            or_(SocialEdge.source_contact_id == cid, SocialEdge.target_contact_id == cid)
        ),
    )

    # Events stay as aggregates; the provider's event id would let the provider name the person.
    events = session.execute(
        update(Event)
        .where(Event.contact_id == cid)
        .values(provider_event_id=literal(f"{token}-e") + cast(Event.id, String))
        .execution_options(synchronize_session=False)
    )
    kept["events"] = int(getattr(events, "rowcount", 0) or 0)
    for source in session.scalars(select(Event.source).where(Event.contact_id == cid).distinct()):
        if matcher.matches(source):
            session.execute(
                update(Event)
                .where(Event.contact_id == cid, Event.source == source)
                .values(source=REDACTED)
                .execution_options(synchronize_session=False)
            )

    decisions = session.scalars(select(Decision).where(Decision.contact_id == cid)).all()
    redacted = 0
    for decision in decisions:
        reasons = matcher.redact(decision.reasons)
        if reasons != decision.reasons:
            decision.reasons = reasons
            redacted += 1
    kept["decisions"] = len(decisions)
    erased["decision_reasons_redacted"] = redacted

    deliveries = session.scalars(
        select(Delivery)
        .join(Decision, Decision.id == Delivery.decision_id)
        .where(Decision.contact_id == cid)
    ).all()
    cleared = 0
    for delivery in deliveries:
        personal = delivery.last_error is not None or delivery.provider_message_id is not None
        delivery.last_error = None
        delivery.provider_message_id = None
        if matcher.matches(delivery.idempotency_key):
            delivery.idempotency_key = f"{token}-d{delivery.id}"
            personal = True
        cleared += personal
    kept["deliveries"] = len(deliveries)
    sent_on = tuple(sorted({d.channel for d in deliveries if d.sent_at is not None}))
    erased["deliveries_cleared"] = cleared

    erased["audit_entries_redacted"] = _redact_audit(session, matcher, cid)

    # The history keeps the stage movements (aggregates) and loses what the person was.
    erased["contact_changes"] = _delete(
        session,
        update(ContactChange).where(ContactChange.contact_id == cid).values(attributes={}),
    )
    for source in session.scalars(
        select(ContactChange.source).where(ContactChange.contact_id == cid).distinct()
    ):
        if matcher.matches(source):
            session.execute(
                update(ContactChange)
                .where(ContactChange.contact_id == cid, ContactChange.source == source)
                .values(source=REDACTED)
                .execution_options(synchronize_session=False)
            )

    erased["attributes"] = len(contact.attributes or {})
    contact.external_id = token
    contact.attributes = {}
    contact.locale = None
    contact.time_zone = "UTC"
    contact.forgotten_at = now
    contact.updated_at = now

    files = tuple(
        scrub_personal_files(
            session.connection(),
            matcher.identifiers_only().redact,
            whole=REDACTED,
            dry_run=dry_run,
        )
    )
    erased["file_records"] = sum(f.removed + f.redacted for f in files)

    entry = AuditEntry(
        at=now,
        actor=actor,
        action=FORGET_ACTION,
        subject=contact_subject(cid),
        details={"contact_id": cid, "erased": erased, "kept": kept},
    )
    session.add(entry)
    session.flush()
    return ForgetReport(
        contact_id=cid,
        token=token,
        already_forgotten=False,
        dry_run=dry_run,
        identities=tuple(f"{i.channel}:{i.address}" for i in identities),
        erased=dict(erased),
        kept=dict(kept),
        audit_entry_id=None if dry_run else entry.id,
        files=files,
        sent_on=sent_on,
    )


def _delete(session: Session, statement: Any) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _redact_other_mentions(session: Session, matcher: _Matcher, skip: set[int]) -> int:
    """Redact the person's identifiers from what other people said (``@ana`` in someone's post)."""
    if not matcher.needles:
        return 0
    condition = or_(
        *(func.lower(Mention.text).contains(needle, autoescape=True) for needle in matcher.needles)
    )
    changed = 0
    for mention in session.scalars(select(Mention).where(condition)).all():
        if mention.id in skip or mention.text is None:
            continue
        text = matcher.redact_text(mention.text)
        if text != mention.text:
            mention.text = text
            changed += 1
    return changed


def _redact_audit(session: Session, matcher: _Matcher, contact_id: int) -> int:
    """Rewrite audit entries that name the person: subject to the internal id, the rest redacted.

    Every entry is read (in chunks): identifiers may sit anywhere in the JSON details, and the audit
    log holds operators' actions, not one row per message. The actor is redacted too: a person may
    have acted on their own record (a self-service unsubscribe).
    """
    changes: list[dict[str, Any]] = []
    rows = session.execute(
        select(
            AuditEntry.id, AuditEntry.actor, AuditEntry.subject, AuditEntry.details
        ).execution_options(yield_per=1_000)
    )
    for entry_id, actor, subject, details in rows:
        change = {
            "actor": matcher.redact_text(actor),
            "subject": contact_subject(contact_id) if matcher.matches(subject) else subject,
            "details": matcher.redact(details),
        }
        if change != {"actor": actor, "subject": subject, "details": details}:
            changes.append({"id": entry_id, **change})
    for change in changes:
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == change.pop("id"))
            .values(**change)
            .execution_options(synchronize_session=False)
        )
    return len(changes)


@dataclass(frozen=True, slots=True)
class _Matcher:
    """Finds and redacts one person's identifiers in strings and JSON documents."""

    #: Lower-cased values matched exactly (a whole string).
    exact: frozenset[str]
    #: Lower-cased identifiers also matched inside longer text, longest first.
    needles: tuple[str, ...]
    #: The needles as one case-insensitive pattern; ``None`` when there are none.
    pattern: re.Pattern[str] | None
    #: The lower-cased identifiers alone (external id, addresses, handles): what names the person,
    #: unlike an attribute value another person may share ("Berlin").
    identifiers: frozenset[str] = frozenset()

    @classmethod
    def for_person(
        cls,
        contact: Contact,
        addresses: Iterable[str],
        handles: Iterable[str],
        past_attributes: Iterable[Mapping[str, Any]] = (),
    ) -> _Matcher:
        strong = {contact.external_id, *addresses, *handles}
        strong |= {handle.lstrip("@") for handle in handles}
        strong = {value.lower() for value in strong if value}
        attribute_values = {
            value.lower()
            for document in (contact.attributes or {}, *past_attributes)
            for value in (document or {}).values()
            if isinstance(value, str) and len(value) >= MIN_SUBSTRING_LENGTH
        }
        needles = sorted(
            (value for value in strong if len(value) >= MIN_SUBSTRING_LENGTH),
            key=lambda value: (-len(value), value),
        )
        pattern = (
            re.compile("|".join(re.escape(needle) for needle in needles), re.IGNORECASE)
            if needles
            else None
        )
        return cls(
            exact=frozenset(strong | attribute_values),
            needles=tuple(needles),
            pattern=pattern,
            identifiers=frozenset(strong),
        )

    def identifiers_only(self) -> _Matcher:
        """The same matcher without the attribute values: for records that may be anyone's (a
        file's rows), where "Berlin" in a cell says nothing about whose row it is."""
        return _Matcher(self.identifiers, self.needles, self.pattern, self.identifiers)

    def redact_text(self, text: str) -> str:
        if text.lower() in self.exact:
            return REDACTED
        return text if self.pattern is None else self.pattern.sub(REDACTED, text)

    def redact(self, document: Any) -> Any:
        """A copy of a JSON document with every identifier replaced by :data:`REDACTED`."""
        if isinstance(document, str):
            return self.redact_text(document)
        if isinstance(document, dict):
            return {self.redact_text(str(k)): self.redact(v) for k, v in document.items()}
        if isinstance(document, list):
            return [self.redact(item) for item in document]
        return document

    def matches(self, document: Any) -> bool:
        """Whether a string or JSON document holds any of the identifiers."""
        return bool(self.redact(document) != document)
