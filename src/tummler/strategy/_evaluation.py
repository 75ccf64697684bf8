"""The audience expression language's evaluator: a syntax tree over contact columns, to a mask.

Evaluating over a :class:`ContactView` returns a boolean mask, one entry per contact, so that the
``decide`` layer can filter a whole audience at once; :func:`matches` asks about one record and
:func:`unmet_conditions` says which conditions a contact fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from tummler.strategy._expression import (
    CONTACT_FIELDS,
    And,
    BoolArray,
    BoolColumn,
    Compare,
    Expression,
    ExpressionError,
    Field,
    Membership,
    Not,
    Operator,
    Or,
    Predicate,
    Scalar,
    Truthy,
    ValueColumn,
    _render,
    leaves,
    parse_duration,
)
from tummler.strategy._parser import parse_expression

__all__ = ["ContactColumns", "ContactView", "evaluate", "matches", "unmet_conditions"]


class ContactView(Protocol):
    """Contacts as columns, one entry per contact, in the same order in every column.

    The ``decide`` layer builds one per planning chunk; the evaluator reads only through this.
    """

    @property
    def size(self) -> int:
        """How many contacts the view holds."""
        ...

    @property
    def now(self) -> datetime:
        """The moment ``engaged_within`` counts back from (timezone-aware)."""
        ...

    def field(self, name: str) -> NDArray[Any]:
        """Values of ``stage``, ``locale``, ``time_zone``, ``external_id`` (object array)."""
        ...

    def attribute(self, name: str) -> NDArray[Any]:
        """Values of attribute ``name`` (object array; ``None`` where a contact lacks it)."""
        ...

    def consent(self, channel: str) -> BoolArray:
        """True where consent to ``channel`` is currently granted."""
        ...

    def has_identity(self, channel: str) -> BoolArray:
        """True where the contact has an address or handle on ``channel``."""
        ...

    def last_engaged_at(self) -> NDArray[np.datetime64]:
        """When each contact last engaged (``datetime64[us]`` in UTC; ``NaT`` for never)."""
        ...


def _object_column(values: ValueColumn, size: int, name: str) -> NDArray[Any]:
    if len(values) != size:
        raise ExpressionError(f"column {name!r} has {len(values)} values for {size} contacts")
    if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1:
        return values
    column = np.empty(size, dtype=object)
    column[:] = list(values)
    return column


def _bool_column(values: BoolColumn, size: int, name: str) -> BoolArray:
    column = np.asarray(values, dtype=bool)
    if column.shape != (size,):
        raise ExpressionError(f"{name} has {column.size} values for {size} contacts")
    return column


@dataclass(frozen=True)
class ContactColumns:
    """The plain implementation of :class:`ContactView`: columns held in dictionaries.

    Parameters
    ----------
    fields
        ``stage``, ``locale``, ``time_zone``, ``external_id``: a sequence per field (absent: all ``None``).
    attributes
        Attribute name → values (``None`` where missing).
    consents, identities
        Channel → booleans; a channel not given is false for everyone.
    last_engaged
        ``datetime64`` values (``NaT`` for never) in UTC.
    now
        The reference moment for ``engaged_within``.
    """

    size: int
    now: datetime
    fields: Mapping[str, ValueColumn] = field(default_factory=dict)
    attributes: Mapping[str, ValueColumn] = field(default_factory=dict)
    consents: Mapping[str, BoolColumn] = field(default_factory=dict)
    identities: Mapping[str, BoolColumn] = field(default_factory=dict)
    last_engaged: NDArray[np.datetime64] | None = None

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ExpressionError(f"size must be 0 or more, got {self.size}")
        if self.now.tzinfo is None:
            raise ExpressionError("now must be timezone-aware (UTC)")
        # columns become arrays once, here, so that evaluating many expressions copies nothing
        size = self.size
        converted = {
            "fields": {k: _object_column(v, size, k) for k, v in self.fields.items()},
            "attributes": {
                k: _object_column(v, size, f"attributes.{k}") for k, v in self.attributes.items()
            },
            "consents": {
                k: _bool_column(v, size, f"consents[{k!r}]") for k, v in self.consents.items()
            },
            "identities": {
                k: _bool_column(v, size, f"identities[{k!r}]") for k, v in self.identities.items()
            },
        }
        for name, value in converted.items():
            object.__setattr__(self, name, value)
        if self.last_engaged is not None:
            engaged = np.asarray(self.last_engaged, dtype="datetime64[us]")
            if engaged.shape != (size,):
                raise ExpressionError(f"last_engaged has {engaged.size} values for {size} contacts")
            object.__setattr__(self, "last_engaged", engaged)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], *, now: datetime) -> ContactColumns:
        """Columns from contact records.

        Each record may hold ``stage``, ``locale``, ``time_zone``, ``external_id``, ``attributes``
        (a dict), ``consents`` and ``identities`` (sets of channels) and ``last_engaged_at`` (an aware
        datetime or ``None``).
        """
        size = len(records)
        names = {n for r in records for n in (r.get("attributes") or {})}
        consent_channels = {c for r in records for c in (r.get("consents") or ())}
        identity_channels = {c for r in records for c in (r.get("identities") or ())}
        engaged = np.array(
            [_to_datetime64(r.get("last_engaged_at")) for r in records], dtype="datetime64[us]"
        )
        return cls(
            size=size,
            now=now,
            fields={f: [r.get(f) for r in records] for f in CONTACT_FIELDS},
            attributes={n: [(r.get("attributes") or {}).get(n) for r in records] for n in names},
            consents={
                c: [c in (r.get("consents") or ()) for r in records] for c in consent_channels
            },
            identities={
                c: [c in (r.get("identities") or ()) for r in records] for c in identity_channels
            },
            last_engaged=engaged,
        )

    def field(self, name: str) -> NDArray[Any]:
        return self._column(self.fields, name)

    def attribute(self, name: str) -> NDArray[Any]:
        return self._column(self.attributes, name)

    def _column(self, table: Mapping[str, ValueColumn], name: str) -> NDArray[Any]:
        column = table.get(name)
        if column is None:
            return np.full(self.size, None, dtype=object)
        return _object_column(column, self.size, name)

    def consent(self, channel: str) -> BoolArray:
        return self._flags(self.consents, channel, "consents")

    def has_identity(self, channel: str) -> BoolArray:
        return self._flags(self.identities, channel, "identities")

    def _flags(self, table: Mapping[str, BoolColumn], channel: str, what: str) -> BoolArray:
        if channel not in table:
            return np.zeros(self.size, dtype=bool)
        return _bool_column(table[channel], self.size, f"{what}[{channel!r}]")

    def last_engaged_at(self) -> NDArray[np.datetime64]:
        if self.last_engaged is None:
            return np.full(self.size, np.datetime64("NaT"), dtype="datetime64[us]")
        return self.last_engaged


def _to_datetime64(value: datetime | None) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT")
    if value.tzinfo is None:
        raise ExpressionError(f"last_engaged_at {value.isoformat()} has no time zone; give UTC")
    return np.datetime64(value.replace(tzinfo=None) - (value.utcoffset() or timedelta()), "us")


def evaluate(node: Expression | str, view: ContactView) -> BoolArray:
    """Which contacts of ``view`` the expression selects: a boolean mask of length ``view.size``.

    Raises
    ------
    ExpressionError
        When ``node`` is text that does not parse.
    """
    if isinstance(node, str):
        node = parse_expression(node)
    mask = _evaluate(node, view)
    return np.asarray(mask, dtype=bool).reshape(view.size)


def matches(node: Expression | str, record: Mapping[str, Any], *, now: datetime) -> bool:
    """Whether one contact record (see :meth:`ContactColumns.from_records`) is in the audience."""
    return bool(evaluate(node, ContactColumns.from_records([record], now=now))[0])


def unmet_conditions(node: Expression | str, view: ContactView) -> list[str]:
    """Why the one contact of ``view`` is outside the audience: each condition it fails, with the
    values it has there, e.g. ``stage in ["customer", "advocate"] (stage is "subscriber")``.

    The conditions are the operands of a top-level ``and`` (the whole expression otherwise), so a
    person is told every requirement they miss, not only the first. Empty when the contact is in.

    Raises
    ------
    ExpressionError
        When ``view`` holds other than one contact, or ``node`` is text that does not parse.
    """
    if view.size != 1:
        raise ExpressionError(f"unmet_conditions explains one contact; the view holds {view.size}")
    if isinstance(node, str):
        node = parse_expression(node)
    conditions = node.operands if isinstance(node, And) else (node,)
    unmet = [c for c in conditions if not bool(_evaluate(c, view)[0])]
    return [
        f"{condition} ({'; '.join(dict.fromkeys(_value_of(leaf, view) for leaf in leaves(condition)))})"
        for condition in unmet
    ]


def _value_of(leaf: Compare | Membership | Predicate | Truthy, view: ContactView) -> str:
    """What the one contact of ``view`` has where ``leaf`` looks, in words."""
    if isinstance(leaf, Predicate):
        if leaf.name == "consent":
            granted = bool(view.consent(leaf.argument)[0])
            return f"consent to {leaf.argument} {'granted' if granted else 'not granted'}"
        if leaf.name == "has_identity":
            held = bool(view.has_identity(leaf.argument)[0])
            return f"{'an' if held else 'no'} identity on {leaf.argument}"
        engaged = np.asarray(view.last_engaged_at(), dtype="datetime64[us]")[0]
        if np.isnat(engaged):
            return "never engaged"
        return f"last engaged {np.datetime_as_string(engaged, unit='m').replace('T', ' ')} UTC"
    value = _column(leaf.field, view)[0]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return f"{leaf.field} is missing"
    shown = _render(value) if isinstance(value, str | int | float | bool) else repr(value)
    return f"{leaf.field} is {shown}"


def _column(target: Field, view: ContactView) -> NDArray[Any]:
    attribute = target.attribute
    return view.attribute(attribute) if attribute is not None else view.field(target.name)


_NUMBERS = (int, float, np.integer, np.floating)


def _same(left: Any, right: Scalar) -> bool:
    if right is None or left is None:
        return left is right
    if isinstance(right, bool) or isinstance(left, bool | np.bool_):
        return isinstance(left, bool | np.bool_) and isinstance(right, bool) and left == right
    if isinstance(right, int | float) and isinstance(left, _NUMBERS):
        return bool(left == right)
    if isinstance(right, str):
        return isinstance(left, str) and left == right
    return False


def _ordered(left: Any, op: Operator, right: Scalar) -> bool:
    if isinstance(left, bool | np.bool_) or isinstance(right, bool):
        return False
    if isinstance(left, _NUMBERS) and isinstance(right, int | float):
        pass
    elif not (isinstance(left, str) and isinstance(right, str)):
        return False
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _evaluate(node: Expression, view: ContactView) -> BoolArray:
    if isinstance(node, Or):
        mask = np.zeros(view.size, dtype=bool)
        for operand in node.operands:
            mask |= _evaluate(operand, view)
        return mask
    if isinstance(node, And):
        mask = np.ones(view.size, dtype=bool)
        for operand in node.operands:
            mask &= _evaluate(operand, view)
        return mask
    if isinstance(node, Not):
        return ~_evaluate(node.operand, view)
    if isinstance(node, Predicate):
        return _predicate(node, view)
    column = _column(node.field, view)
    if isinstance(node, Truthy):
        return np.fromiter(
            (isinstance(v, bool | np.bool_) and bool(v) for v in column),
            dtype=bool,
            count=view.size,
        )
    if isinstance(node, Membership):
        inside = _membership(node, column, view.size)
        return ~inside if node.negated else inside
    return _comparison(node, column, view.size)


def _predicate(node: Predicate, view: ContactView) -> BoolArray:
    """``consent(channel)``, ``has_identity(channel)`` or ``engaged_within(duration)``."""
    if node.name == "consent":
        return np.asarray(view.consent(node.argument), dtype=bool)
    if node.name == "has_identity":
        return np.asarray(view.has_identity(node.argument), dtype=bool)
    cutoff = np.datetime64(_naive_utc(view.now) - parse_duration(node.argument), "us")
    engaged = np.asarray(view.last_engaged_at(), dtype="datetime64[us]")
    recent: BoolArray = ~np.isnat(engaged) & (engaged >= cutoff)
    return recent


def _membership(node: Membership, column: NDArray[Any], size: int) -> BoolArray:
    """Whether each value is one of the node's options (text compared in C)."""
    if all(isinstance(v, str) for v in node.values):
        inside = np.zeros(size, dtype=bool)
        for option in node.values:
            inside |= _equals_text(column, str(option))
        return inside
    return np.fromiter(
        (any(_same(v, option) for option in node.values) for v in column),
        dtype=bool,
        count=size,
    )


def _comparison(node: Compare, column: NDArray[Any], size: int) -> BoolArray:
    if node.op in ("==", "!=") and isinstance(node.value, str):
        equal = _equals_text(column, node.value)
        return equal if node.op == "==" else ~equal
    if node.op in ("==", "!="):
        equal = np.fromiter((_same(v, node.value) for v in column), dtype=bool, count=size)
        return equal if node.op == "==" else ~equal
    return np.fromiter((_ordered(v, node.op, node.value) for v in column), dtype=bool, count=size)


def _equals_text(column: NDArray[Any], text: str) -> BoolArray:
    """``column == text`` elementwise in C; only strings equal a string, so no type check is needed."""
    if column.size == 0:
        return np.zeros(0, dtype=bool)
    equal = np.asarray(column == text, dtype=bool)
    return equal.reshape(column.shape)


def _naive_utc(moment: datetime) -> datetime:
    offset = moment.utcoffset() or timedelta()
    return moment.replace(tzinfo=None) - offset
