"""The tables of tummler's store, designed together for the whole engine.

Times are timezone-aware UTC. Personal data lives in ``contacts``, ``contact_changes`` (attributes,
source), ``channel_identities``, ``consent_events``, ``mentions`` (text, handle) and ``audit_log``
details only; everything else refers to a contact by its integer id, so that forgetting a person
(``app.privacy``) can erase them and keep the anonymous aggregates. ``suppressions`` holds keyed
one-way digests of a forgotten person's identifiers, never the identifiers; ``personal_files`` lists
the files tummler wrote that may hold personal data, so that forgetting reaches them too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tummler.core.vocabulary import (
    ConsentStatus,
    DeliveryStatus,
    EdgeKind,
    EventType,
    Stage,
)
from tummler.store.types import JSONDocument, PrimaryKey, UTCDateTime

__all__ = [
    "AuditEntry",
    "Base",
    "Campaign",
    "ChannelIdentity",
    "ConsentEvent",
    "Contact",
    "ContactChange",
    "Decision",
    "Delivery",
    "Event",
    "Mention",
    "Message",
    "PersonalFile",
    "PolicyVersion",
    "SocialEdge",
    "StoreSecret",
    "Suppression",
    "Variant",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: type[Any]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
    }


class Contact(Base):
    """A person the brand may talk to: one profile across CRM and social channels."""

    __tablename__ = "contacts"
    __table_args__ = (CheckConstraint(_one_of("stage", Stage), name="stage"),)

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str | None] = mapped_column(String(35))
    stage: Mapped[str] = mapped_column(String(16), default=Stage.PROSPECT.value)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Set when the person was forgotten: the row stays as an anonymous anchor for aggregates.
    forgotten_at: Mapped[datetime | None]

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="contact")


class ContactChange(Base):
    """One change of a contact's stage or attributes, as it happened: an append-only history.

    ``contacts`` holds each person's state *now*; this table holds how it got there, so that a
    decision can be learned from with the features it was made on, and a report can count the
    movements between relationship stages over a campaign. The first row of a contact is its first
    known state (``stage_before`` is ``None``); every later row has the stage before and after and
    the whole attributes document after the change. The state as of a time ``T`` is the latest row
    with ``changed_at <= T`` (ties: latest id); ``app.contacts`` reads it. Rows are never updated,
    except when a person is forgotten (their attributes and any identifier in ``source`` erased).
    """

    __tablename__ = "contact_changes"
    __table_args__ = (
        CheckConstraint(_one_of("stage", Stage), name="stage"),
        CheckConstraint(_one_of("stage_before", Stage), name="stage_before"),
        Index(None, "contact_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime]
    #: ``None`` for the first known state of the contact.
    stage_before: Mapped[str | None] = mapped_column(String(16))
    #: The stage after the change.
    stage: Mapped[str] = mapped_column(String(16))
    #: The whole attributes document after the change.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: What made the change: ``import:<file name>``, ``api``, ``simulation``, ``migration:0002``...
    source: Mapped[str] = mapped_column(String(255))


class ChannelIdentity(Base):
    """A contact's address or handle on one channel (normalized: lower-case e-mail, E.164 phone)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]

    contact: Mapped[Contact] = relationship(back_populates="identities")


class ConsentEvent(Base):
    """One grant or revoke, as it happened: an append-only log; the current state is derived.

    The state of (contact, channel) is the status of its latest event by ``at`` (ties: latest id).
    Rows are never updated; merging identities never writes a grant nobody gave.
    """

    __tablename__ = "consent_events"
    __table_args__ = (
        CheckConstraint(_one_of("status", ConsentStatus), name="status"),
        Index(None, "contact_id", "channel", "at"),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]


class SocialEdge(Base):
    """Who is connected to whom, and how: the graph that influence is measured on."""

    __tablename__ = "social_edges"
    __table_args__ = (
        UniqueConstraint("source_contact_id", "target_contact_id", "kind"),
        CheckConstraint(_one_of("kind", EdgeKind), name="kind"),
        Index(None, "target_contact_id"),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    source_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    target_contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    at: Mapped[datetime | None]


class Campaign(Base):
    """A tactic: one campaign file of the workspace, tracing to an objective of the strategy."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    objective: Mapped[str] = mapped_column(String(128))
    pillar: Mapped[str | None] = mapped_column(String(128))
    audience: Mapped[str | None] = mapped_column(String(128))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    holdout_share: Mapped[float] = mapped_column(Float, default=0.1)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    messages: Mapped[list[Message]] = relationship(back_populates="campaign")


class Message(Base):
    """What a campaign says, with attributes that channel norms are checked against."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)

    campaign: Mapped[Campaign] = relationship(back_populates="messages")
    variants: Mapped[list[Variant]] = relationship(back_populates="message")


class Variant(Base):
    """One wording of a message for one channel (templates for subject, headline and body)."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("message_id", "channel", "key"),)

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(Text)
    headline: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="variants")


class PolicyVersion(Base):
    """A policy's parameters at one version, with its lineage (the version it was learned from)."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.id"))
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Decision(Base):
    """What the engine chose for one contact in one campaign — a lever, or none — and why.

    Every decision is logged, holdouts included, with the propensity of the chosen action under the
    policy that chose it, so that any other policy can be evaluated off-line later. ``channel`` is
    ``None`` for *no send*. A contact given several levers has one row per lever (``lever`` 0, 1, ...).
    """

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", "lever"),
        CheckConstraint("propensity > 0 AND propensity <= 1", name="propensity"),
        Index(None, "contact_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    lever: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str | None] = mapped_column(String(64))
    send_at: Mapped[datetime | None]
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"))
    action: Mapped[int] = mapped_column(Integer)
    propensity: Mapped[float] = mapped_column(Float)
    expected_value: Mapped[float | None] = mapped_column(Float)
    policy_version_id: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.id"))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decided_at: Mapped[datetime]


class Delivery(Base):
    """The outbox: one row per message to hand over, sent at most once thanks to its key."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(_one_of("status", DeliveryStatus), name="status"),
        Index(None, "status", "scheduled_at"),
        # the fatigue check at send time counts a contact's sends through its decisions
        Index(None, "decision_id"),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    scheduled_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Event(Base):
    """Something a person did or a provider reported, de-duplicated by (source, provider event id).

    ``decision_id`` is filled when the event is attributed to the decision it follows.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "provider_event_id"),
        CheckConstraint(_one_of("type", EventType), name="type"),
        Index(None, "contact_id", "at"),
        Index(None, "decision_id"),
        Index(None, "type", "at"),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    channel: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64))
    provider_event_id: Mapped[str] = mapped_column(String(255))


class Mention(Base):
    """Something said about the brand in public, linked to a contact when the author is known."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index(None, "contact_id"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    author_handle: Mapped[str | None] = mapped_column(String(320))
    text: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    sentiment: Mapped[float | None] = mapped_column(Float)
    topic: Mapped[str | None] = mapped_column(String(128))
    routed_to: Mapped[str | None] = mapped_column(String(128))


class AuditEntry(Base):
    """Who did what to whom, when: forgetting a person, promoting a policy, forcing a send."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StoreSecret(Base):
    """A random value the store keeps for itself, made once (the suppression list's HMAC key).

    Kept in the store rather than in the settings: the suppression list must keep working when the
    settings' ``secret_key`` is rotated, and it must not match the digests of any other data set.
    """

    __tablename__ = "store_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class Suppression(Base):
    """One identifier of a forgotten person, as a keyed one-way digest: refused on every way in.

    ``digest`` is HMAC-SHA256 under the store's ``suppression`` secret of ``"<kind>:<identifier>"``
    (``external_id:c-42``, ``identity:email:ana@example.org``); nothing links it to the anonymous
    contact row the person left behind.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: ``external_id`` or ``identity``: what kind of identifier it was, for counts only.
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class PersonalFile(Base):
    """A file tummler wrote that may hold personal data: a rejects file, an export, a dry run."""

    __tablename__ = "personal_files"

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True)
    #: Absolute path on the machine that wrote it.
    path: Mapped[str] = mapped_column(Text, unique=True)
    #: ``rejects``, ``export``, ``dry_run`` or ``person_record``.
    kind: Mapped[str] = mapped_column(String(32))
    written_at: Mapped[datetime]
