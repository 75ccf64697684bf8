"""Seeing everything the store holds about a person: what a data-subject access request returns.

The consent state is stated per channel through :func:`tummler.app.consent.current_consent`, the
rule the outbox checks at send time and planning applies in bulk: what the person is shown is what
the engine acts on. The other end of a social edge is given by internal id only: the other
person's external id is *their* personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tummler.app.consent import ConsentState, consent_names, current_consent
from tummler.app.privacy.finding import contact_subject, find_contact, identities_of
from tummler.app.privacy.identifiers import PersonMatcher, mentions_of, person_handles
from tummler.core.clock import Clock, SystemClock
from tummler.store.models import (
    AuditEntry,
    Campaign,
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

__all__ = ["person_record"]


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
        identities = identities_of(session, cid)
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
        known = channels if channels is not None else {c.channel: c.channel for c in consent_log}
        now = (clock or SystemClock()).now()
        handles = person_handles(session, contact, [i.address for i in identities])
        matcher = PersonMatcher.for_person(
            contact, [i.address for i in identities], handles, [h.attributes for h in history]
        )
        return {
            "contact": _contact(contact),
            "history": [_change(h) for h in history],
            "identities": [
                {"channel": i.channel, "address": i.address, "created_at": _iso(i.created_at)}
                for i in identities
            ],
            "consent": {
                "current": _current_consent(session, cid, known, now),
                "log": [_consent_event(c) for c in consent_log],
            },
            "events": _events(session, cid),
            "decisions": _decisions(session, cid),
            "deliveries": _deliveries(session, cid),
            "mentions": [
                _mention(m)
                for m in session.scalars(
                    mentions_of(cid, handles).order_by(Mention.at, Mention.id)
                ).all()
            ],
            "social_edges": _social_edges(session, cid),
            "audit": _audit(session, cid, matcher),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _contact(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "external_id": contact.external_id,
        "time_zone": contact.time_zone,
        "locale": contact.locale,
        "stage": contact.stage,
        "attributes": contact.attributes,
        "created_at": _iso(contact.created_at),
        "updated_at": _iso(contact.updated_at),
        "forgotten_at": _iso(contact.forgotten_at),
    }


def _change(change: ContactChange) -> dict[str, Any]:
    return {
        "changed_at": _iso(change.changed_at),
        "stage_before": change.stage_before,
        "stage": change.stage,
        "attributes": change.attributes,
        "source": change.source,
    }


def _current_consent(
    session: Session, contact_id: int, channels: Mapping[str, str], now: datetime
) -> dict[str, dict[str, Any]]:
    """The consent state per channel (id → kind), as planning and the outbox decide it."""
    return {
        channel: _consent(
            current_consent(
                session.connection(),
                contact_id=contact_id,
                names=consent_names(channel, kind),
                now=now,
            )
        )
        for channel, kind in sorted(channels.items())
    }


def _consent(state: ConsentState) -> dict[str, Any]:
    return {
        "status": state.status or "none",
        "granted": state.granted,
        "at": _iso(state.at),
        "source": state.source,
        "recorded_under": state.name,
    }


def _consent_event(event: ConsentEvent) -> dict[str, Any]:
    return {
        "channel": event.channel,
        "status": event.status,
        "source": event.source,
        "at": _iso(event.at),
        "recorded_at": _iso(event.recorded_at),
    }


def _events(session: Session, contact_id: int) -> list[dict[str, Any]]:
    events = session.scalars(
        select(Event).where(Event.contact_id == contact_id).order_by(Event.at, Event.id)
    ).all()
    return [
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
    ]


def _decisions(session: Session, contact_id: int) -> list[dict[str, Any]]:
    """The decisions made for the person, with their campaign, variant and reasons."""
    decisions = session.execute(
        select(Decision, Campaign.key, Variant.key)
        .join(Campaign, Campaign.id == Decision.campaign_id)
        .outerjoin(Variant, Variant.id == Decision.variant_id)
        .where(Decision.contact_id == contact_id)
        .order_by(Decision.decided_at, Decision.id)
    ).all()
    return [
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
    ]


def _deliveries(session: Session, contact_id: int) -> list[dict[str, Any]]:
    deliveries = session.scalars(
        select(Delivery)
        .join(Decision, Decision.id == Delivery.decision_id)
        .where(Decision.contact_id == contact_id)
        .order_by(Delivery.id)
    ).all()
    return [
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
    ]


def _mention(mention: Mention) -> dict[str, Any]:
    return {
        "id": mention.id,
        "channel": mention.channel,
        "external_id": mention.external_id,
        "author_handle": mention.author_handle,
        "text": mention.text,
        "at": _iso(mention.at),
        "sentiment": mention.sentiment,
        "topic": mention.topic,
        "routed_to": mention.routed_to,
    }


def _social_edges(session: Session, contact_id: int) -> dict[str, list[dict[str, Any]]]:
    """Edges out of and into the person, the other end by internal id only."""
    edges_out = session.scalars(
        select(SocialEdge).where(SocialEdge.source_contact_id == contact_id).order_by(SocialEdge.id)
    ).all()
    edges_in = session.scalars(
        select(SocialEdge).where(SocialEdge.target_contact_id == contact_id).order_by(SocialEdge.id)
    ).all()
    return {
        "out": [_edge(e, other=e.target_contact_id) for e in edges_out],
        "in": [_edge(e, other=e.source_contact_id) for e in edges_in],
    }


def _edge(edge: SocialEdge, *, other: int) -> dict[str, Any]:
    return {
        "contact_id": other,
        "kind": edge.kind,
        "weight": edge.weight,
        "at": _iso(edge.at),
    }


def _audit(session: Session, contact_id: int, matcher: PersonMatcher) -> list[dict[str, Any]]:
    """The audit entries about the person: by their subject, or naming one of their identifiers."""
    entries: Sequence[AuditEntry] = [
        entry
        for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id))
        if entry.subject == contact_subject(contact_id)
        or matcher.matches(entry.subject)
        or matcher.matches(entry.actor)
        or matcher.matches(entry.details)
    ]
    return [
        {
            "id": a.id,
            "at": _iso(a.at),
            "actor": a.actor,
            "action": a.action,
            "subject": a.subject,
            "details": a.details,
        }
        for a in entries
    ]
