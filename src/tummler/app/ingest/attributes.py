"""A contact's extra columns as typed attributes, and values of the types a strategy declares."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from tummler.app.ingest.fields import (
    FieldError,
    one_value,
    parse_number,
)

__all__ = ["ATTRIBUTE_TYPES", "attribute_value", "declared_attribute"]

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
        one_value(raw)
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
