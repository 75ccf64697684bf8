"""JSON bodies that the API parses itself (provider callbacks): strict values, problems by field.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e999`` (as infinity), which JSON does not allow and
nothing downstream can use, and fails on an integer of more than 4300 digits or on very deep nesting
with errors that are not ``JSONDecodeError``; text may hold a NUL or an unpaired surrogate, which no
store can hold. Here each is a :class:`RejectedEventsError` (a 422) that names the field, like any other
bad value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tummler.api.errors import excerpt
from tummler.api.schemas import unstorable
from tummler.app.callbacks import EventProblem, RejectedEventsError

__all__ = ["parse_json"]


@dataclass(frozen=True, slots=True)
class _Unusable:
    """A value met while parsing that cannot be used, kept to say where it was."""

    text: str
    reason: str


_NOT_FINITE = (
    "not a finite number: JSON has no NaN or Infinity; send a finite number or leave it out"
)


def _constant(text: str) -> _Unusable:
    return _Unusable(text, _NOT_FINITE)


def _float(text: str) -> float | _Unusable:
    value = float(text)
    return value if math.isfinite(value) else _Unusable(text, _NOT_FINITE)


def _int(text: str) -> int | _Unusable:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return _Unusable(text, "a number with too many digits")


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``.

    Raises
    ------
    RejectedEventsError
        When ``body`` is not JSON, nests too deeply, holds a number that is not finite (``NaN``,
        ``Infinity``, ``1e999``) or has too many digits, or text that cannot be stored; the problem
        names the field, e.g. ``event-data.timestamp`` or item 3's ``timestamp``.
    """
    try:
        value = json.loads(body, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"not JSON ({exc}); send Content-Type application/json"
        raise RejectedEventsError([EventProblem(None, "body", reason)]) from None
    except RecursionError:
        raise RejectedEventsError([EventProblem(None, "body", "JSON nested too deeply")]) from None
    found = _first_unusable(value)
    if found is not None:
        path, unusable = found
        raise RejectedEventsError([_located(path, unusable)])
    return value


def _first_unusable(value: Any) -> tuple[tuple[str | int, ...], _Unusable] | None:
    """The first unusable value (or key) in ``value`` and its path, depth first, without recursion."""
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, _Unusable):
            return path, item
        if isinstance(item, str) and (why := unstorable(item)) is not None:
            return path, _Unusable(item, f"text with {why}: it cannot be stored")
        if isinstance(item, dict):
            for key in item:
                if (why := unstorable(key)) is not None:
                    return (*path, key), _Unusable(key, f"a name with {why}: it cannot be stored")
        children = (
            item.items()
            if isinstance(item, dict)
            else enumerate(item)
            if isinstance(item, list)
            else ()
        )
        pending.extend(reversed([((*path, key), child) for key, child in children]))
    return None


def _located(path: tuple[str | int, ...], unusable: _Unusable) -> EventProblem:
    """A problem at ``path``: an array's index is the item, the keys under it the field."""
    index = path[0] if path and isinstance(path[0], int) else None
    keys = path[1:] if index is not None else path
    field = ".".join(str(key) for key in keys) or ("item" if index is not None else "body")
    return EventProblem(index, field, f"{excerpt(unusable.text, 20)} is {unusable.reason}")
