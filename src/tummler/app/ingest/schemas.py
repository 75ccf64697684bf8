"""What a row of each import kind must hold: its fields, their parsers, and the checks across them.

The parsers live in :mod:`~tummler.app.ingest.fields`, typed attributes in
:mod:`~tummler.app.ingest.attributes`, and row validation in :mod:`~tummler.app.ingest.validation`.
A field parser takes the raw value as the reader gave it — text from CSV, a JSON value from JSON Lines,
a typed value from Parquet — and returns the normalized value or raises :class:`FieldError` with a reason
that does not repeat the value (the rejects file has a column for it). Validation is per row, because the
rejects file must say which row and which field failed; the checks are cheap set look-ups and C-level
parsers (``datetime.fromisoformat``, ``float``) so that this loop stays a small share of an import.

Conventions users rely on (and the docs repeat):

* timestamps are ISO 8601; a timestamp without a zone is **UTC**; a plain number is **unix seconds**;
* e-mail addresses are checked for syntax only (no DNS) and stored in lower case;
* phone numbers are stored in E.164; national numbers need ``default_region`` (``--default-region``);
* a contact's columns that are not fields of a contact go into its ``attributes``, typed: integers and
  decimals become numbers (unless they have a leading zero, like a postcode), ``true``/``false`` become
  booleans, empty cells are left out; an attribute the strategy declares (``attributes:`` in
  ``strategy.yaml``) must hold a value of its declared type, or the row is rejected;
* a field holds one value: a list or a struct (from Parquet or JSON) is rejected, not taken apart;
* consent cannot be dated in the future: a grant or revoke later than the import's "now" plus
  :data:`CLOCK_SKEW` is rejected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tummler.app.ingest.fields import (
    CLOCK_SKEW,
    FastParser,
    FieldError,
    Parser,
    address_parser,
    bounded_number_parser,
    choice_parser,
    fast_choice,
    fast_number,
    fast_text,
    fast_timestamp,
    normalize_email,
    normalize_phone,
    parse_locale,
    parse_number,
    parse_time_zone,
    parse_timestamp,
    shown,
    text_parser,
    timestamp_not_after,
)
from tummler.core.vocabulary import ChannelKind, ConsentStatus, EdgeKind, EventType, Stage

# The field parsers the API checks its bodies with are re-exported here, where it imports them.
__all__ = [
    "CLOCK_SKEW",
    "FieldError",
    "FieldSpec",
    "ImportKind",
    "KindSchema",
    "derived_event_id",
    "normalize_email",
    "normalize_phone",
    "parse_timestamp",
    "schema_for",
]


class ImportKind(StrEnum):
    """What a file holds; one import reads one kind."""

    CONTACTS = "contacts"
    IDENTITIES = "identities"
    CONSENT = "consent"
    EVENTS = "events"
    EDGES = "edges"
    MENTIONS = "mentions"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an import kind.

    Attributes
    ----------
    name
        The column name the file must use (or map to with ``--map``).
    parse
        Normalizes a present value, or raises :class:`FieldError`.
    required
        Rows without a value are rejected; files without the column are refused before any write.
    default
        The value when the cell is empty or the column absent.
    contact_ref
        The value is a contact's external id, resolved to ``contacts.id`` per chunk.
    fast
        Parses a whole column of text at once, or raises anything when a value needs a closer look;
        the validator then falls back to ``parse``, value by value, to find the reasons.
    """

    name: str
    parse: Parser
    required: bool = False
    default: Any = None
    contact_ref: bool = False
    fast: FastParser | None = None


@dataclass(frozen=True, slots=True)
class KindSchema:
    """The fields of one kind; ``extras_to_attributes``: unknown columns become contact attributes."""

    kind: ImportKind
    fields: tuple[FieldSpec, ...]
    extras_to_attributes: bool = False
    #: A check across fields of one row; may normalize the row in place or raise FieldError.
    finish: Callable[[list[Any]], None] | None = None
    #: Completes parsed columns in place (e.g. derived ids) before rows are assembled.
    complete: Callable[[list[list[Any]]], None] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields if spec.required)

    def index(self, name: str) -> int:
        return self.names.index(name)


def derived_event_id(
    contact: str, event_type: str, channel: str | None, at: datetime, value: float | None
) -> str:
    """A deterministic provider event id for an event that came without one.

    Re-importing the same row gives the same id, so the import stays idempotent; two events that agree
    on contact, type, channel, time and value are taken to be the same event.

    >>> from datetime import datetime, UTC
    >>> derived_event_id("c1", "clicked", "email", datetime(2026, 1, 1, tzinfo=UTC), None)[:8]
    'derived:'
    """
    key = "\x1f".join((contact, event_type, channel or "", at.isoformat(), repr(value)))
    return "derived:" + hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


# --- the kinds -------------------------------------------------------------------------------------


def _contact_ref(name: str, *, required: bool = True) -> FieldSpec:
    """A column naming a contact by external id, resolved against the store per chunk."""
    return FieldSpec(
        name, text_parser(255), required=required, contact_ref=True, fast=fast_text(255)
    )


def _channel(*, required: bool) -> FieldSpec:
    return FieldSpec(
        "channel", choice_parser(ChannelKind), required=required, fast=fast_choice(ChannelKind)
    )


def schema_for(
    kind: ImportKind, *, default_region: str | None = None, now: datetime | None = None
) -> KindSchema:
    """The fields of ``kind``; ``default_region`` is used for national phone numbers.

    ``now`` is the import's time: consent dated later than ``now + CLOCK_SKEW`` is rejected (without
    ``now``, any time is accepted).
    """
    if kind is ImportKind.CONTACTS:
        return _contacts_schema(default_region)
    if kind is ImportKind.IDENTITIES:
        return _identities_schema(default_region)
    if kind is ImportKind.CONSENT:
        return _consent_schema(now)
    if kind is ImportKind.EVENTS:
        return _events_schema()
    if kind is ImportKind.EDGES:
        return _edges_schema()
    return _mentions_schema()


def _contacts_schema(default_region: str | None) -> KindSchema:
    return KindSchema(
        ImportKind.CONTACTS,
        (
            FieldSpec("external_id", text_parser(255), required=True, fast=fast_text(255)),
            FieldSpec("time_zone", parse_time_zone),
            FieldSpec("locale", parse_locale),
            FieldSpec("stage", choice_parser(Stage), fast=fast_choice(Stage)),
            FieldSpec("email", normalize_email),
            FieldSpec("phone", lambda raw: normalize_phone(raw, default_region)),
        ),
        extras_to_attributes=True,
    )


def _identities_schema(default_region: str | None) -> KindSchema:
    normalize = address_parser(default_region)

    def finish_identity(values: list[Any]) -> None:
        try:
            values[2] = normalize(values[1], values[2])
        except FieldError as exc:
            raise FieldError(str(exc), field="address", value=shown(values[2])) from None

    return KindSchema(
        ImportKind.IDENTITIES,
        (
            _contact_ref("contact_external_id"),
            _channel(required=True),
            FieldSpec("address", lambda raw: raw, required=True),
        ),
        finish=finish_identity,
    )


def _consent_schema(now: datetime | None) -> KindSchema:
    if now is None:
        at = FieldSpec("at", parse_timestamp, required=True, fast=fast_timestamp)
    else:
        parse_at, fast_at = timestamp_not_after(now + CLOCK_SKEW)
        at = FieldSpec("at", parse_at, required=True, fast=fast_at)
    return KindSchema(
        ImportKind.CONSENT,
        (
            _contact_ref("contact_external_id"),
            _channel(required=True),
            FieldSpec(
                "status",
                choice_parser(ConsentStatus),
                required=True,
                fast=fast_choice(ConsentStatus),
            ),
            at,
            FieldSpec("source", text_parser(255), default="import", fast=fast_text(255)),
        ),
    )


def _events_schema() -> KindSchema:
    return KindSchema(
        ImportKind.EVENTS,
        (
            _contact_ref("contact_external_id"),
            FieldSpec("type", choice_parser(EventType), required=True, fast=fast_choice(EventType)),
            FieldSpec("at", parse_timestamp, required=True, fast=fast_timestamp),
            _channel(required=False),
            FieldSpec("value", parse_number, fast=fast_number()),
            FieldSpec("source", text_parser(64), default="import", fast=fast_text(64)),
            FieldSpec("provider_event_id", text_parser(255), fast=fast_text(255)),
        ),
        complete=_derive_event_ids,
    )


def _derive_event_ids(columns: list[list[Any]]) -> None:
    """Give an event without ``provider_event_id`` the one its content derives (``derived_event_id``)."""
    ids = columns[6]
    if None not in ids:
        return
    contact, event_type, at, channel, value = columns[:5]
    columns[6] = [
        derived_event_id(contact[i], event_type[i], channel[i], at[i], value[i])
        if given is None and None not in (contact[i], event_type[i], at[i])
        else given
        for i, given in enumerate(ids)
    ]


def _edges_schema() -> KindSchema:
    return KindSchema(
        ImportKind.EDGES,
        (
            _contact_ref("source_external_id"),
            _contact_ref("target_external_id"),
            FieldSpec("kind", choice_parser(EdgeKind), required=True, fast=fast_choice(EdgeKind)),
            FieldSpec(
                "weight", bounded_number_parser(0.0, 1e9), default=1.0, fast=fast_number(0.0, 1e9)
            ),
            FieldSpec("at", parse_timestamp, fast=fast_timestamp),
        ),
        finish=_refuse_self_edge,
    )


def _refuse_self_edge(values: list[Any]) -> None:
    if values[0] == values[1]:
        raise FieldError(
            "an edge from a contact to itself", field="target_external_id", value=values[1]
        )


def _mentions_schema() -> KindSchema:
    return KindSchema(
        ImportKind.MENTIONS,
        (
            FieldSpec(
                "channel",
                text_parser(64, lower=True),
                required=True,
                fast=fast_text(64, lower=True),
            ),
            FieldSpec("external_id", text_parser(255), required=True, fast=fast_text(255)),
            FieldSpec("at", parse_timestamp, required=True, fast=fast_timestamp),
            FieldSpec("author_handle", text_parser(320), fast=fast_text(320)),
            FieldSpec("text", text_parser(100_000), fast=fast_text(100_000)),
            _contact_ref("contact_external_id", required=False),
            FieldSpec("sentiment", bounded_number_parser(-1.0, 1.0), fast=fast_number(-1.0, 1.0)),
            FieldSpec("topic", text_parser(128), fast=fast_text(128)),
        ),
    )
