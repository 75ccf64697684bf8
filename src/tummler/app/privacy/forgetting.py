"""Forgetting a person: erase their personal data everywhere, keep the anonymous aggregates.

One transaction, in the order the module notes of :mod:`tummler.app.privacy` give: their
identifiers go to the suppression list, their mentions lose what names them, identities, consent
events and social edges are deleted, events, decisions and deliveries keep their counts but lose
what points back to them, the audit log and their history are redacted, the contact row becomes an
anonymous anchor, the files tummler wrote are scrubbed, and one audit entry records the counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, String, cast, delete, func, literal, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from tummler.app.personal_files import FileScrub, scrub_personal_files
from tummler.app.privacy.finding import contact_subject, find_contact, identities_of
from tummler.app.privacy.identifiers import (
    REDACTED,
    PersonMatcher,
    mentions_of,
    person_handles,
)
from tummler.app.suppression import external_id_key, identity_key, suppress
from tummler.core.clock import Clock, SystemClock
from tummler.core.randomness import make_rng
from tummler.store.models import (
    AuditEntry,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    ContactChange,
    Decision,
    Delivery,
    Event,
    Mention,
    SocialEdge,
)

__all__ = ["FORGET_ACTION", "FORGOTTEN_PREFIX", "ForgetReport", "forget_person"]

#: The audit action recorded when a person is forgotten.
FORGET_ACTION = "person.forget"
#: How a forgotten contact's external id begins.
FORGOTTEN_PREFIX = "forgotten-"


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
    """Forget ``contact`` in ``session``'s transaction, step by step, counting what each erased
    (``erased``) and what stays as an anonymous aggregate (``kept``)."""
    cid = contact.id
    identities = identities_of(session, cid)
    addresses = [identity.address for identity in identities]
    handles = person_handles(session, contact, addresses)
    # Attributes the person had before (an old nickname) identify them as well as today's.
    past = session.scalars(
        select(ContactChange.attributes).where(ContactChange.contact_id == cid)
    ).all()
    matcher = PersonMatcher.for_person(contact, addresses, handles, past)
    # Their mentions first: finding them needs the handles, which live on rows deleted below.
    mentions = session.scalars(mentions_of(cid, handles)).all()
    kept = {"suppressed_identifiers": _suppress(session, contact, identities, mentions, now)}
    erased = _erase_mentions(session, mentions, matcher, token)
    erased |= _delete_links(session, cid)
    kept["events"] = _anonymize_events(session, cid, matcher, token)
    kept["decisions"], erased["decision_reasons_redacted"] = _redact_decisions(
        session, cid, matcher
    )
    deliveries, erased["deliveries_cleared"] = _clear_deliveries(session, cid, matcher, token)
    kept["deliveries"] = len(deliveries)
    erased["audit_entries_redacted"] = _redact_audit(session, matcher, cid)
    # The history keeps the stage movements (aggregates) and loses what the person was.
    erased["contact_changes"] = _delete(
        session,
        update(ContactChange).where(ContactChange.contact_id == cid).values(attributes={}),
    )
    _redact_sources(session, ContactChange.source, ContactChange.contact_id, cid, matcher)
    erased["attributes"] = _anonymize_contact(contact, token, now)
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
        sent_on=tuple(sorted({d.channel for d in deliveries if d.sent_at is not None})),
    )


def _suppress(
    session: Session,
    contact: Contact,
    identities: Sequence[ChannelIdentity],
    mentions: Sequence[Mention],
    now: datetime,
) -> int:
    """Put the person's external id, identities and mention handles on the suppression list."""
    keys = {external_id_key(contact.external_id): "external_id"}
    keys |= {identity_key(i.channel, i.address): "identity" for i in identities}
    keys |= {
        identity_key(m.channel, m.author_handle): "identity" for m in mentions if m.author_handle
    }
    return suppress(session.connection(), keys, now=now)


def _erase_mentions(
    session: Session, mentions: Sequence[Mention], matcher: PersonMatcher, token: str
) -> dict[str, int]:
    """Their mentions keep channel, time, sentiment, topic and routing, and lose text, handle and
    the post's id; their identifiers leave other people's mention texts."""
    for mention in mentions:
        mention.text = None
        mention.author_handle = None
        mention.external_id = f"{token}-m{mention.id}"
    own_mentions = {mention.id for mention in mentions}
    return {
        "mentions": len(mentions),
        "mention_texts_redacted": _redact_other_mentions(session, matcher, own_mentions),
    }


def _delete_links(session: Session, contact_id: int) -> dict[str, int]:
    """Delete identities, consent events and social edges (in and out: data about two people)."""
    return {
        "identities": _delete(
            session, delete(ChannelIdentity).where(ChannelIdentity.contact_id == contact_id)
        ),
        "consent_events": _delete(
            session, delete(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
        ),
        "social_edges": _delete(
            session,
            delete(SocialEdge).where(
                or_(
                    SocialEdge.source_contact_id == contact_id,
                    SocialEdge.target_contact_id == contact_id,
                )
            ),
        ),
    }


def _anonymize_events(session: Session, contact_id: int, matcher: PersonMatcher, token: str) -> int:
    """Events stay as aggregates; the provider's event id would let the provider name the
    person, so it becomes a token, and a source naming them is redacted."""
    events = session.execute(
        update(Event)
        .where(Event.contact_id == contact_id)
        .values(provider_event_id=literal(f"{token}-e") + cast(Event.id, String))
        .execution_options(synchronize_session=False)
    )
    _redact_sources(session, Event.source, Event.contact_id, contact_id, matcher)
    return int(getattr(events, "rowcount", 0) or 0)


def _redact_sources(
    session: Session,
    source: InstrumentedAttribute[Any],
    owner: InstrumentedAttribute[Any],
    contact_id: int,
    matcher: PersonMatcher,
) -> None:
    """Redact the person's rows' ``source`` values that hold one of their identifiers."""
    table = source.class_
    for value in session.scalars(select(source).where(owner == contact_id).distinct()):
        if matcher.matches(value):
            session.execute(
                update(table)
                .where(owner == contact_id, source == value)
                .values({source.key: REDACTED})
                .execution_options(synchronize_session=False)
            )


def _redact_decisions(session: Session, contact_id: int, matcher: PersonMatcher) -> tuple[int, int]:
    """The person's identifiers leave their decisions' reasons: (decisions kept, redacted)."""
    decisions = session.scalars(select(Decision).where(Decision.contact_id == contact_id)).all()
    redacted = 0
    for decision in decisions:
        reasons = matcher.redact(decision.reasons)
        if reasons != decision.reasons:
            decision.reasons = reasons
            redacted += 1
    return len(decisions), redacted


def _clear_deliveries(
    session: Session, contact_id: int, matcher: PersonMatcher, token: str
) -> tuple[Sequence[Delivery], int]:
    """Deliveries lose their provider's message id and error, and an idempotency key naming the
    person; the deliveries, and how many held something personal."""
    deliveries = session.scalars(
        select(Delivery)
        .join(Decision, Decision.id == Delivery.decision_id)
        .where(Decision.contact_id == contact_id)
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
    return deliveries, cleared


def _anonymize_contact(contact: Contact, token: str, now: datetime) -> int:
    """The contact row becomes an anonymous anchor; the number of attributes it lost."""
    attributes = len(contact.attributes or {})
    contact.external_id = token
    contact.attributes = {}
    contact.locale = None
    contact.time_zone = "UTC"
    contact.forgotten_at = now
    contact.updated_at = now
    return attributes


def _delete(session: Session, statement: Any) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _redact_other_mentions(session: Session, matcher: PersonMatcher, skip: set[int]) -> int:
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


def _redact_audit(session: Session, matcher: PersonMatcher, contact_id: int) -> int:
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
