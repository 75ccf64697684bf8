"""How one field's value is checked and normalized, value by value or a whole text column at once.

A field parser takes the raw value as the reader gave it — text from CSV, a JSON value from JSON Lines,
a typed value from Parquet — and returns the normalized value or raises :class:`FieldError` with a reason
that does not repeat the value (the rejects file has a column for it). Validation is per row, because the
rejects file must say which row and which field failed; the checks are cheap set look-ups and C-level
parsers (``datetime.fromisoformat``, ``float``) so that this loop stays a small share of an import.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from tummler.core.vocabulary import ChannelKind

__all__ = [
    "CLOCK_SKEW",
    "MISSING",
    "FastParser",
    "FieldError",
    "Parser",
    "UndecidedError",
    "address_parser",
    "bounded_number_parser",
    "choice_parser",
    "fast_choice",
    "fast_number",
    "fast_text",
    "fast_timestamp",
    "normalize_email",
    "normalize_phone",
    "one_value",
    "parse_locale",
    "parse_number",
    "parse_time_zone",
    "parse_timestamp",
    "shown",
    "text_parser",
    "timestamp_not_after",
]


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


class UndecidedError(Exception):
    """A fast column parser met a value it will not decide on; the per-value parser will."""


# --- field parsers ---------------------------------------------------------------------------------


def text_parser(max_length: int, *, lower: bool = False) -> Parser:
    """Text of at most ``max_length`` characters, stripped (and lower-cased when ``lower``)."""

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


def choice_parser(enum: type[StrEnum]) -> Parser:
    """One of ``enum``'s values, in any case."""
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


def bounded_number_parser(low: float, high: float) -> Parser:
    """A finite number between ``low`` and ``high``."""

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


def timestamp_not_after(latest: datetime) -> tuple[Parser, FastParser]:
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
        values = fast_timestamp(column, required, default)
        if any(value is not None and value > latest for value in values):
            raise UndecidedError
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


def parse_time_zone(raw: Any) -> str:
    """An IANA time zone name (``Europe/Paris``)."""
    value = str(raw).strip()
    if value not in _time_zones():
        raise FieldError("unknown time zone: use an IANA name such as Europe/Berlin or UTC")
    return value


_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")


def parse_locale(raw: Any) -> str:
    """A language tag (``en``, ``de-CH``; ``pt_BR`` becomes ``pt-BR``)."""
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


def address_parser(default_region: str | None) -> Callable[[str, Any], str]:
    """Normalize an address for its channel: e-mail lower case, SMS E.164, handles lower case."""
    handle = text_parser(320, lower=True)
    other = text_parser(320)

    def normalize(channel: str, raw: Any) -> str:
        if channel == ChannelKind.EMAIL:
            return normalize_email(raw)
        if channel == ChannelKind.SMS:
            return normalize_phone(raw, default_region)
        if channel in (ChannelKind.MASTODON, ChannelKind.BLUESKY):
            return str(handle(raw))
        return str(other(raw))

    return normalize


# --- column-wise fast paths (text columns, the common case) ------------------------------------------


def fast_text(max_length: int, *, lower: bool = False) -> FastParser:
    """The column-wise :func:`text_parser`: refuses a column with any value it would not pass as is."""

    def fast(column: Sequence[str], required: bool, default: Any) -> list[Any]:
        values = [value.strip() for value in column]
        if lower:
            values = [value.lower() for value in values]
        if max(map(len, values)) > max_length:
            raise UndecidedError
        if not all(values):
            if required:
                raise UndecidedError
            return [value or default for value in values]
        return values

    return fast


def fast_choice(enum: type[StrEnum]) -> FastParser:
    """The column-wise :func:`choice_parser`: one set look-up per value."""
    allowed = frozenset(member.value for member in enum)
    allowed_or_empty = allowed | {""}

    def fast(column: Sequence[str], required: bool, default: Any) -> list[Any]:
        if allowed.issuperset(column):
            return list(column)
        if not required and allowed_or_empty.issuperset(column):
            return [value or default for value in column]
        raise UndecidedError

    return fast


def fast_timestamp(column: Sequence[str], required: bool, default: Any) -> list[Any]:
    """The column-wise :func:`parse_timestamp` for ISO 8601 text."""
    # Only ISO dates (YYYY-...): plain numbers are unix seconds, left to the per-value parser.
    if not all(value[4:5] == "-" for value in column if value or required):
        raise UndecidedError
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
            raise UndecidedError
    return values


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def fast_number(low: float = -math.inf, high: float = math.inf) -> FastParser:
    """The column-wise :func:`bounded_number_parser` for plain decimal text."""

    def fast(column: Sequence[str], required: bool, default: Any) -> list[Any]:
        values = [float(value) if value else default for value in column]
        present = [value for value in values if value is not None]
        if required and len(present) < len(values):
            raise UndecidedError
        if present:
            total = math.fsum(present) if len(present) < 2 else sum(present)
            if not math.isfinite(total) or min(present) < low or max(present) > high:
                raise UndecidedError
        return values

    return fast


def shown(raw: Any) -> str:
    """A raw value as the rejects file shows it (shortened)."""
    if raw is MISSING or raw is None:
        return ""
    text = raw if isinstance(raw, str) else repr(raw)
    return text if len(text) <= 200 else text[:197] + "..."


def one_value(raw: Any) -> None:
    """Refuse a list or a struct (a Parquet list, map or struct column; a JSON array or object)."""
    if isinstance(raw, dict):
        raise FieldError("expected one value, got a struct: give this column one value per row")
    if isinstance(raw, list | tuple):
        raise FieldError("expected one value, got a list: give this column one value per row")
