"""What a row of each import kind must hold, and how each field is checked and normalized.

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
import math
import re
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from tummler.core.vocabulary import ChannelKind, ConsentStatus, EdgeKind, EventType, Stage

__all__ = [
    "ATTRIBUTE_TYPES",
    "CLOCK_SKEW",
    "MISSING",
    "FieldError",
    "FieldSpec",
    "ImportKind",
    "KindSchema",
    "RowValidator",
    "RowWarning",
    "declared_attribute",
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


class _Missing:
    """A key absent from a JSON object (as opposed to ``null``); both count as "no value"."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class FieldError(ValueError):
    """A value that a field cannot accept; ``str(error)`` is the reason shown in the rejects file.

    ``field`` names the field when a check spans several (e.g. an address checked for its channel).
    """

    def __init__(self, reason: str, *, field: str = "", value: str = "") -> None:
        super().__init__(reason)
        self.field = field
        self.value = value


Parser = Callable[[Any], Any]
#: (column of text values, required, default) -> parsed column; raises when it cannot vouch for all.
FastParser = Callable[[Sequence[str], bool, Any], list[Any]]


class _UndecidedError(Exception):
    """A fast column parser met a value it will not decide on; the per-value parser will."""


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


# --- field parsers ---------------------------------------------------------------------------------


def _text(max_length: int, *, lower: bool = False) -> Parser:
    def parse(raw: Any) -> str:
        if isinstance(raw, bool | dict | list):
            raise FieldError("expected text")
        value = str(raw).strip()
        if not value:
            raise FieldError("empty value")
        if len(value) > max_length:
            raise FieldError(f"longer than {max_length} characters")
        return value.lower() if lower else value

    return parse


def _choice(enum: type[StrEnum]) -> Parser:
    allowed = {member.value for member in enum}
    listing = ", ".join(sorted(allowed))

    def parse(raw: Any) -> str:
        value = str(raw).strip().lower() if isinstance(raw, str) else raw
        if value not in allowed:
            raise FieldError(f"not one of: {listing}")
        return str(value)

    return parse


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_number(raw: Any) -> float:
    """A finite number from a number or its text; booleans are refused (JSON ``true`` is not 1)."""
    if isinstance(raw, bool):
        raise FieldError("expected a number, got a boolean")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise FieldError("not a number") from None
    else:
        raise FieldError("not a number")
    if not math.isfinite(value):
        raise FieldError("not a finite number")
    return value


def _bounded_number(low: float, high: float) -> Parser:
    def parse(raw: Any) -> float:
        value = parse_number(raw)
        if not low <= value <= high:
            raise FieldError(f"outside [{low:g}, {high:g}]")
        return value

    return parse


#: Years outside this range are typos (or milliseconds given as seconds), not history.
_YEARS = (1900, 2200)

#: How far a consent's ``at`` may lie after the import's "now": the clocks of the system that
#: recorded it and of this one may disagree a little, but a grant cannot be dated days ahead.
CLOCK_SKEW: Final = timedelta(minutes=5)


def parse_timestamp(raw: Any) -> datetime:
    """An aware UTC datetime from ISO 8601 text (naive = UTC), unix seconds, or a datetime.

    >>> parse_timestamp("2026-03-01T09:30:00+01:00").isoformat()
    '2026-03-01T08:30:00+00:00'
    >>> parse_timestamp("2026-03-01 09:30").isoformat()
    '2026-03-01T09:30:00+00:00'
    >>> parse_timestamp(0).isoformat()
    '1970-01-01T00:00:00+00:00'
    """
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, bool):
        raise FieldError("expected a timestamp, got a boolean")
    elif isinstance(raw, int | float):
        value = _from_unix(float(raw))
    elif isinstance(raw, str):
        text = raw.strip()
        if _NUMBER.fullmatch(text):
            value = _from_unix(float(text))
        else:
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise FieldError(
                    "not an ISO 8601 timestamp (e.g. 2026-03-01T09:30:00Z) or unix seconds"
                ) from None
    else:
        raise FieldError("expected a timestamp")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    elif value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC)
    if not _YEARS[0] <= value.year <= _YEARS[1]:
        raise FieldError(f"year {value.year} is outside {_YEARS[0]}–{_YEARS[1]}")
    return value


def _not_after(latest: datetime) -> tuple[Parser, FastParser]:
    """A timestamp field that refuses times after ``latest`` (per value, and for a whole column)."""
    reason = (
        f"in the future (after {latest.isoformat()}, now plus {CLOCK_SKEW.seconds // 60} minutes "
        "of clock skew): consent is recorded when it is given; check the time zone (a time "
        "without one is UTC) or the clock of the system that exported it"
    )

    def parse(raw: Any) -> datetime:
        value = parse_timestamp(raw)
        if value > latest:
            raise FieldError(reason)
        return value

    def fast(column: Sequence[str], required: bool, default: Any) -> list[Any]:
        values = _fast_timestamp(column, required, default)
        if any(value is not None and value > latest for value in values):
            raise _UndecidedError
        return values

    return parse, fast


def _from_unix(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise FieldError("not a finite number of unix seconds")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise FieldError("unix seconds out of range (milliseconds given as seconds?)") from None


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _time_zone(raw: Any) -> str:
    value = str(raw).strip()
    if value not in _time_zones():
        raise FieldError("unknown time zone: use an IANA name such as Europe/Berlin or UTC")
    return value


_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")


def _locale(raw: Any) -> str:
    value = str(raw).strip()
    if len(value) > 35 or not _LOCALE.fullmatch(value):
        raise FieldError("not a language tag such as en, de-CH or pt_BR")
    return value.replace("_", "-")


def normalize_email(raw: Any) -> str:
    """Check an e-mail address's syntax (no DNS) and return it in lower case.

    >>> normalize_email(" Alice@Example.ORG ")
    'alice@example.org'
    """
    if not isinstance(raw, str):
        raise FieldError("expected an e-mail address as text")
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(f"not a valid e-mail address: {exc}") from None
    return checked.normalized.lower()


def normalize_phone(raw: Any, default_region: str | None = None) -> str:
    """A phone number in E.164; a national number needs ``default_region`` (ISO 3166 code).

    >>> normalize_phone("030 1234567", "DE")
    '+49301234567'
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise FieldError("expected a phone number as text")
    text = str(raw).strip()
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise FieldError(
                "national number without a country: write it with +<country code> "
                "or pass --default-region"
            ) from None
        raise FieldError("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise FieldError("not a possible phone number (wrong length for its country)")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _address(default_region: str | None) -> Callable[[str, Any], str]:
    """Normalize an address for its channel: e-mail lower case, SMS E.164, handles lower case."""
    handle = _text(320, lower=True)
    other = _text(320)

    def normalize(channel: str, raw: Any) -> str:
        if channel == ChannelKind.EMAIL:
            return normalize_email(raw)
        if channel == ChannelKind.SMS:
            return normalize_phone(raw, default_region)
        if channel in (ChannelKind.MASTODON, ChannelKind.BLUESKY):
            return str(handle(raw))
        return str(other(raw))

    return normalize


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


# --- column-wise fast paths (text columns, the common case) ------------------------------------------


def _fast_text(max_length: int, *, lower: bool = False) -> FastParser:
    def fast(column: Sequence[str], required: bool, default: Any) -> list[Any]:
        values = [value.strip() for value in column]
        if lower:
            values = [value.lower() for value in values]
        if max(map(len, values)) > max_length:
            raise _UndecidedError
        if not all(values):
            if required:
                raise _UndecidedError
            return [value or default for value in values]
        return values

    return fast


def _fast_choice(enum: type[StrEnum]) -> FastParser:
    allowed = frozenset(member.value for member in enum)
    allowed_or_empty = allowed | {""}

    def fast(column: Sequence[str], required: bool, default: Any) -> list[Any]:
        if allowed.issuperset(column):
            return list(column)
        if not required and allowed_or_empty.issuperset(column):
            return [value or default for value in column]
        raise _UndecidedError

    return fast


def _fast_timestamp(column: Sequence[str], required: bool, default: Any) -> list[Any]:
    # Only ISO dates (YYYY-...): plain numbers are unix seconds, left to the per-value parser.
    if not all(value[4:5] == "-" for value in column if value or required):
        raise _UndecidedError
    parse = datetime.fromisoformat
    values = [parse(value) if value else default for value in column]
    present = [value for value in values if value is not None]
    if any(value.tzinfo is not UTC for value in present):
        values = [
            value if value is None or value.tzinfo is UTC else _as_utc(value) for value in values
        ]
        present = [value for value in values if value is not None]
    if present:
        years = {value.year for value in present}
        if min(years) < _YEARS[0] or max(years) > _YEARS[1]:
            raise _UndecidedError
    return values


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _fast_number(low: float = -math.inf, high: float = math.inf) -> FastParser:
    def fast(column: Sequence[str], required: bool, default: Any) -> list[Any]:
        values = [float(value) if value else default for value in column]
        present = [value for value in values if value is not None]
        if required and len(present) < len(values):
            raise _UndecidedError
        if present:
            total = math.fsum(present) if len(present) < 2 else sum(present)
            if not math.isfinite(total) or min(present) < low or max(present) > high:
                raise _UndecidedError
        return values

    return fast


# --- attributes ------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?(0|[1-9]\d*)")
_DECIMAL = re.compile(r"[+-]?(0|[1-9]\d*)\.\d+([eE][+-]?\d+)?")


def attribute_value(raw: Any) -> Any:
    """An extra column's value, typed: numbers stay numbers, text that spells one becomes one.

    >>> [attribute_value(v) for v in ["42", "3.5", "true", "01234", "Berlin", 7]]
    [42, 3.5, True, '01234', 'Berlin', 7]
    """
    if isinstance(raw, str):
        text = raw.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else text
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text
    if isinstance(raw, float) and not math.isfinite(raw):
        return None
    if isinstance(raw, datetime | date):
        return raw.isoformat()
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "backslashreplace")
    return raw


#: The types ``strategy.yaml`` may declare for an attribute.
ATTRIBUTE_TYPES: Final = ("string", "number", "boolean")

_DIGITS = re.compile(r"[+-]?\d+")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _one_value(raw: Any) -> None:
    """Refuse a list or a struct (a Parquet list, map or struct column; a JSON array or object)."""
    if isinstance(raw, dict):
        raise FieldError("expected one value, got a struct: give this column one value per row")
    if isinstance(raw, list | tuple):
        raise FieldError("expected one value, got a list: give this column one value per row")


def declared_attribute(declared: str, raw: Any) -> Any:
    """An attribute's value as the strategy declares it: a number, a boolean or text.

    Undeclared attributes are typed by :func:`attribute_value`; a declared one must hold its type,
    so that an audience filter such as ``attributes.lifetime_value >= 100`` compares numbers.

    >>> [declared_attribute("number", v) for v in ["42", "007", "12.5", 3]]
    [42, 7, 12.5, 3]
    >>> [declared_attribute("boolean", v) for v in ["TRUE", "no", 1, False]]
    [True, False, True, False]
    >>> declared_attribute("string", "10115")
    '10115'
    """
    try:
        _one_value(raw)
        if declared == "number":
            return _declared_number(raw)
        if declared == "boolean":
            return _declared_boolean(raw)
        return _declared_text(raw)
    except FieldError as exc:
        raise FieldError(
            f"declared a {declared} in strategy.yaml: {exc}; fix the value, or the attribute's "
            "type under `attributes:` in strategy.yaml"
        ) from None


def _declared_number(raw: Any) -> int | float:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _DIGITS.fullmatch(raw.strip()):
        return int(raw)  # leading zeros too: a declared number is a number
    return parse_number(float(raw) if isinstance(raw, Decimal) else raw)


def _declared_boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _BOOLEANS:
        return _BOOLEANS[raw.strip().lower()]
    raise FieldError("expected true or false (or yes/no, 1/0)")


def _declared_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, bool):
        return "true" if raw else "false"
    value = attribute_value(raw)  # dates as ISO text, bytes decoded
    return value if isinstance(value, str) else str(raw)


# --- the kinds -------------------------------------------------------------------------------------


def _contact_ref(name: str, *, required: bool = True) -> FieldSpec:
    """A column naming a contact by external id, resolved against the store per chunk."""
    return FieldSpec(name, _text(255), required=required, contact_ref=True, fast=_fast_text(255))


def _channel(*, required: bool) -> FieldSpec:
    return FieldSpec(
        "channel", _choice(ChannelKind), required=required, fast=_fast_choice(ChannelKind)
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
            FieldSpec("external_id", _text(255), required=True, fast=_fast_text(255)),
            FieldSpec("time_zone", _time_zone),
            FieldSpec("locale", _locale),
            FieldSpec("stage", _choice(Stage), fast=_fast_choice(Stage)),
            FieldSpec("email", normalize_email),
            FieldSpec("phone", lambda raw: normalize_phone(raw, default_region)),
        ),
        extras_to_attributes=True,
    )


def _identities_schema(default_region: str | None) -> KindSchema:
    normalize = _address(default_region)

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
        at = FieldSpec("at", parse_timestamp, required=True, fast=_fast_timestamp)
    else:
        parse_at, fast_at = _not_after(now + CLOCK_SKEW)
        at = FieldSpec("at", parse_at, required=True, fast=fast_at)
    return KindSchema(
        ImportKind.CONSENT,
        (
            _contact_ref("contact_external_id"),
            _channel(required=True),
            FieldSpec(
                "status",
                _choice(ConsentStatus),
                required=True,
                fast=_fast_choice(ConsentStatus),
            ),
            at,
            FieldSpec("source", _text(255), default="import", fast=_fast_text(255)),
        ),
    )


def _events_schema() -> KindSchema:
    return KindSchema(
        ImportKind.EVENTS,
        (
            _contact_ref("contact_external_id"),
            FieldSpec("type", _choice(EventType), required=True, fast=_fast_choice(EventType)),
            FieldSpec("at", parse_timestamp, required=True, fast=_fast_timestamp),
            _channel(required=False),
            FieldSpec("value", parse_number, fast=_fast_number()),
            FieldSpec("source", _text(64), default="import", fast=_fast_text(64)),
            FieldSpec("provider_event_id", _text(255), fast=_fast_text(255)),
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
            FieldSpec("kind", _choice(EdgeKind), required=True, fast=_fast_choice(EdgeKind)),
            FieldSpec(
                "weight", _bounded_number(0.0, 1e9), default=1.0, fast=_fast_number(0.0, 1e9)
            ),
            FieldSpec("at", parse_timestamp, fast=_fast_timestamp),
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
                "channel", _text(64, lower=True), required=True, fast=_fast_text(64, lower=True)
            ),
            FieldSpec("external_id", _text(255), required=True, fast=_fast_text(255)),
            FieldSpec("at", parse_timestamp, required=True, fast=_fast_timestamp),
            FieldSpec("author_handle", _text(320), fast=_fast_text(320)),
            FieldSpec("text", _text(100_000), fast=_fast_text(100_000)),
            _contact_ref("contact_external_id", required=False),
            FieldSpec("sentiment", _bounded_number(-1.0, 1.0), fast=_fast_number(-1.0, 1.0)),
            FieldSpec("topic", _text(128), fast=_fast_text(128)),
        ),
    )


# --- validating rows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reject:
    """One reason a row was not imported: where, which field, the value, why."""

    line: int
    field: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class RowWarning:
    """Something to check about a row that was imported: where, which field, the value, why.

    ``summary`` is the same for every row with this kind of warning: the import's summary counts
    rows by it.
    """

    line: int
    field: str
    value: str
    reason: str
    summary: str


def shown(raw: Any) -> str:
    """A raw value as the rejects file shows it (shortened)."""
    if raw is MISSING or raw is None:
        return ""
    text = raw if isinstance(raw, str) else repr(raw)
    return text if len(text) <= 200 else text[:197] + "..."


#: Columns of ``tummler export contacts`` that are not attributes: the current consent state (import
#: consent as its log, with times, through ``tummler import consent``) and identities on channels a
#: contacts file does not carry (``tummler import identities``).
_EXPORT_ONLY = re.compile(r"consent_[a-z]+|other_identities|mastodon|bluesky|linkedin|webhook")


class RowValidator:
    """Checks rows laid out as ``columns`` against a kind's schema.

    Built once per header (per chunk for JSON Lines, whose objects may differ in keys); ``validate``
    returns the accepted rows as lists in the schema's field order, plus the rejects. Contact attributes
    (extra columns) are appended as a last element, a dict.

    Validation is column-wise where it pays: a column of text is first given to its field's fast parser
    (a set look-up for enums, ``datetime.fromisoformat`` over the column for times), and only when that
    cannot vouch for every value is the column checked value by value, to find which rows fail and why.
    """

    def __init__(
        self,
        schema: KindSchema,
        columns: Sequence[str],
        attribute_types: Mapping[str, str] | None = None,
    ) -> None:
        self.schema = schema
        position = {name: index for index, name in enumerate(columns)}
        self._plan = [(spec, position.get(spec.name)) for spec in schema.fields]
        known = set(schema.names)
        declared = attribute_types or {}
        #: (attribute, column index, column name, declared type or None)
        self._extras = (
            [
                (
                    name.removeprefix("attributes."),
                    index,
                    name,
                    declared.get(name.removeprefix("attributes.")),
                )
                for index, name in enumerate(columns)
                if name not in known and not _EXPORT_ONLY.fullmatch(name)
            ]
            if schema.extras_to_attributes
            else []
        )

    def validate(
        self, lines: Sequence[int], rows: Sequence[Sequence[Any]]
    ) -> tuple[list[tuple[int, Sequence[Any]]], list[Reject]]:
        count = len(rows)
        if count == 0:
            return [], []
        rejects: list[Reject] = []
        bad: set[int] = set()
        table = list(zip(*rows, strict=True))
        parsed: list[list[Any]] = []
        for spec, index in self._plan:
            if index is None:
                if spec.required:  # JSON Lines: the key is in no object of this chunk
                    rejects.extend(
                        Reject(line, spec.name, "", "missing required value") for line in lines
                    )
                    bad.update(range(count))
                parsed.append([spec.default] * count)
                continue
            parsed.append(self._column(spec, table[index], lines, rejects, bad))
        if self.schema.complete is not None:
            self.schema.complete(parsed)
        finish = self.schema.finish
        plain = finish is None and not self.schema.extras_to_attributes
        # Rows that nothing will change stay tuples: one allocation per row fewer.
        assembled: Iterator[Sequence[Any]] = (
            zip(*parsed, strict=True) if plain else map(list, zip(*parsed, strict=True))
        )
        if bad:
            candidates = [
                (lines[number], row) for number, row in enumerate(assembled) if number not in bad
            ]
        else:
            candidates = list(zip(lines, assembled, strict=True))
        if plain:
            return candidates, rejects
        accepted: list[tuple[int, Sequence[Any]]] = []
        where = {line: number for number, line in enumerate(lines)}
        for line, values in candidates:
            row = list(values)  # already a list here: map(list, ...) above; this only types it
            if finish is not None:
                try:
                    finish(row)
                except FieldError as exc:
                    rejects.append(Reject(line, exc.field, exc.value, str(exc)))
                    continue
            if self.schema.extras_to_attributes:
                try:
                    row.append(self._attributes(rows[where[line]]))
                except FieldError as exc:
                    rejects.append(Reject(line, exc.field, exc.value, str(exc)))
                    continue
            accepted.append((line, row))
        return accepted, rejects

    @staticmethod
    def _column(
        spec: FieldSpec,
        column: Sequence[Any],
        lines: Sequence[int],
        rejects: list[Reject],
        bad: set[int],
    ) -> list[Any]:
        types = set(map(type, column))
        if spec.fast is not None and types == {str}:
            try:
                return spec.fast(column, spec.required, spec.default)
            except Exception:
                pass
        nested = not types.isdisjoint((list, tuple, dict))
        values: list[Any] = []
        parse, required, default, name = spec.parse, spec.required, spec.default, spec.name
        for number, raw in enumerate(column):
            if raw is None or raw == "" or raw is MISSING:
                if required:
                    rejects.append(Reject(lines[number], name, "", "missing required value"))
                    bad.add(number)
                values.append(default)
                continue
            try:
                if nested:
                    _one_value(raw)
                values.append(parse(raw))
            except FieldError as exc:
                rejects.append(Reject(lines[number], name, shown(raw), str(exc)))
                bad.add(number)
                values.append(None)
        return values

    def _attributes(self, row: Sequence[Any]) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name, index, column, declared in self._extras:
            raw = row[index]
            if raw is None or raw == "" or raw is MISSING:
                continue
            if declared is None:
                value = attribute_value(raw)
            else:
                try:
                    value = declared_attribute(declared, raw)
                except FieldError as exc:
                    raise FieldError(str(exc), field=column, value=shown(raw)) from None
            if value is not None:
                attributes[name] = value
        return attributes
