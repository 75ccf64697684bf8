"""The columns of each export: their names and Arrow types, the queries that read them, and a
contacts export's layout (one column per channel and attribute, found before the first row)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Select, select
from sqlalchemy.orm import InstrumentedAttribute

from tummler.app.export.kinds import DEFAULT_CHUNK_SIZE, ExportKind
from tummler.core.vocabulary import ChannelKind
from tummler.store.models import (
    Campaign,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    Decision,
    Event,
    PolicyVersion,
    Variant,
)

__all__ = [
    "BOOLEAN",
    "OTHER_IDENTITIES",
    "TABLES",
    "TEXT",
    "TIMESTAMP",
    "Column",
    "ContactLayout",
    "columns_for",
    "decisions_query",
    "events_query",
    "identity_column",
    "json_text",
]


@dataclass(frozen=True, slots=True)
class Column:
    """One output column: its name and its Arrow type (which also drives the CSV rendering)."""

    name: str
    type: pa.DataType
    #: JSON documents are written as compact JSON text in both formats.
    is_json: bool = False


_INT = pa.int64()


_FLOAT = pa.float64()


BOOLEAN = pa.bool_()


TEXT = pa.string()


TIMESTAMP = pa.timestamp("us", tz="UTC")


TABLES = {
    ExportKind.CONTACTS: Contact.__table__,
    ExportKind.DECISIONS: Decision.__table__,
    ExportKind.EVENTS: Event.__table__,
}


#: The decisions export: (column, expression) in file order.
_DECISION_COLUMNS: tuple[tuple[Column, InstrumentedAttribute[Any]], ...] = (
    (Column("id", _INT), Decision.id),
    (Column("campaign_id", _INT), Decision.campaign_id),
    (Column("campaign", TEXT), Campaign.key),
    (Column("contact_id", _INT), Decision.contact_id),
    (Column("contact_external_id", TEXT), Contact.external_id),
    (Column("lever", _INT), Decision.lever),
    (Column("channel", TEXT), Decision.channel),
    (Column("send_at", TIMESTAMP), Decision.send_at),
    (Column("variant_id", _INT), Decision.variant_id),
    (Column("variant", TEXT), Variant.key),
    (Column("action", _INT), Decision.action),
    (Column("propensity", _FLOAT), Decision.propensity),
    (Column("expected_value", _FLOAT), Decision.expected_value),
    (Column("policy_version_id", _INT), Decision.policy_version_id),
    (Column("policy", TEXT), PolicyVersion.name),
    (Column("policy_version", _INT), PolicyVersion.version),
    (Column("holdout", BOOLEAN), Decision.holdout),
    (Column("reasons", TEXT, is_json=True), Decision.reasons),
    (Column("decided_at", TIMESTAMP), Decision.decided_at),
)


#: The events export: (column, expression) in file order.
_EVENT_COLUMNS: tuple[tuple[Column, InstrumentedAttribute[Any]], ...] = (
    (Column("id", _INT), Event.id),
    (Column("contact_id", _INT), Event.contact_id),
    (Column("contact_external_id", TEXT), Contact.external_id),
    (Column("decision_id", _INT), Event.decision_id),
    (Column("channel", TEXT), Event.channel),
    (Column("type", TEXT), Event.type),
    (Column("value", _FLOAT), Event.value),
    (Column("at", TIMESTAMP), Event.at),
    (Column("source", TEXT), Event.source),
    (Column("provider_event_id", TEXT), Event.provider_event_id),
)


#: The contacts export's leading columns, named as ``tummler import contacts`` expects them.
_CONTACT_COLUMNS = (
    Column("external_id", TEXT),
    Column("time_zone", TEXT),
    Column("locale", TEXT),
    Column("stage", TEXT),
)


def decisions_query() -> Select[Any]:
    """Every decision with its campaign, variant and policy version, as the export's columns."""
    return (
        select(*(expression for _, expression in _DECISION_COLUMNS))
        .join(Contact, Contact.id == Decision.contact_id)
        .join(Campaign, Campaign.id == Decision.campaign_id)
        .outerjoin(Variant, Variant.id == Decision.variant_id)
        .outerjoin(PolicyVersion, PolicyVersion.id == Decision.policy_version_id)
        .order_by(Decision.id)
    )


def events_query() -> Select[Any]:
    """Every event with its contact's external id, as the export's columns."""
    return (
        select(*(expression for _, expression in _EVENT_COLUMNS))
        .join(Contact, Contact.id == Event.contact_id)
        .order_by(Event.id)
    )


#: The importer's name for the column of a channel's address, where it differs from the channel's.
_IDENTITY_COLUMN = {ChannelKind.SMS.value: "phone"}


#: Addresses beyond the first on a channel, as ``channel:address`` joined by ``;``.
OTHER_IDENTITIES = "other_identities"


@dataclass(frozen=True, slots=True)
class ContactLayout:
    """The contacts export's variable part, found by a first pass over the store."""

    channels: tuple[str, ...]
    #: (attribute key, its column), in column order
    attributes: tuple[tuple[str, Column], ...]

    def columns(self) -> list[Column]:
        return [
            *_CONTACT_COLUMNS,
            *(Column(identity_column(channel), TEXT) for channel in self.channels),
            Column(OTHER_IDENTITIES, TEXT),
            *(Column(f"consent_{channel}", TEXT) for channel in self.channels),
            *(column for _, column in self.attributes),
        ]


def identity_column(channel: str) -> str:
    """The contacts export's column for the identity on ``channel``."""
    return _IDENTITY_COLUMN.get(channel, channel)


def columns_for(
    connection: Connection, kind: ExportKind
) -> tuple[list[Column], ContactLayout | None]:
    """The columns of a ``kind`` export, with a contacts export's layout (None for the others)."""
    if kind is ExportKind.DECISIONS:
        return [column for column, _ in _DECISION_COLUMNS], None
    if kind is ExportKind.EVENTS:
        return [column for column, _ in _EVENT_COLUMNS], None
    layout = _contact_layout(connection)
    return layout.columns(), layout


def _contact_layout(connection: Connection) -> ContactLayout:
    """Channels and attribute columns of the contacts export.

    Every known channel has its columns, so that the same store always exports the same leading
    columns; channels outside the vocabulary that the store holds come after them. Attribute keys
    are collected by streaming the ``attributes`` column alone, so memory grows with the number of
    distinct keys, not of contacts. An attribute whose values are all booleans, all integers or all
    numbers gets that Parquet type; any other is text. An attribute named like a fixed column is
    exported as ``attributes.<key>``.
    """
    seen = set(connection.scalars(select(ChannelIdentity.channel).distinct()))
    seen |= set(connection.scalars(select(ConsentEvent.channel).distinct()))
    known = [channel.value for channel in ChannelKind]
    channels = (*known, *sorted(seen - set(known)))

    kinds: dict[str, set[type]] = {}
    stream = connection.execute(
        select(Contact.attributes)
        .where(Contact.forgotten_at.is_(None))
        .execution_options(yield_per=DEFAULT_CHUNK_SIZE)
    )
    for (attributes,) in stream:
        for key, value in (attributes or {}).items():
            found = kinds.setdefault(key, set())
            if value is not None:
                found.add(type(value))
    reserved = {column.name for column in ContactLayout(channels, ()).columns()}
    attributes = []
    for key in sorted(kinds):
        name = f"attributes.{key}" if key in reserved else key
        attributes.append((key, Column(name, _attribute_type(kinds[key]))))
    return ContactLayout(channels=channels, attributes=tuple(attributes))


def _attribute_type(kinds: set[type]) -> pa.DataType:
    if kinds and kinds <= {bool}:
        return BOOLEAN
    if kinds and kinds <= {int}:
        return _INT
    if kinds and kinds <= {int, float}:
        return _FLOAT
    return TEXT


def json_text(value: Any) -> str:
    """Compact, key-sorted JSON: the same document always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
