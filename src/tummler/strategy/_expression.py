"""The audience expression language: its grammar, its syntax tree, and what a tree reads.

The parser is :mod:`tummler.strategy._parser`, the evaluator over contact columns
:mod:`tummler.strategy._evaluation`.

An audience is a filter over contacts, written in a small language that is parsed, never ``eval``-ed::

    stage in ["customer", "advocate"] and attributes.country == "DE" and engaged_within("30d")

Grammar (keywords are lower-case)::

    expression  := or
    or          := and ("or" and)*
    and         := not ("and" not)*
    not         := "not" not | comparison
    comparison  := operand [("==" | "!=" | "<" | "<=" | ">" | ">=") literal
                            | ["not"] "in" list]
    operand     := field | predicate | "(" expression ")"
    field       := "stage" | "locale" | "time_zone" | "external_id" | "attributes" "." NAME
    predicate   := ("consent" | "has_identity" | "engaged_within") "(" STRING ")"
    list        := "[" [literal ("," literal)* [","]] "]"
    literal     := STRING | NUMBER | "true" | "false" | "null"

A field on its own is true where its value is ``true``. Logic is two-valued, never SQL's three: ``==``,
``<``, ``<=``, ``>``, ``>=`` and ``in`` are false where the attribute is missing or of another type;
``!=`` and ``not in`` are their negations (so they include contacts without the attribute); ``== null``
is true exactly where the attribute is missing. Numbers compare with numbers, strings with strings.

Evaluating over a :class:`ContactView` returns a boolean mask, one entry per contact, so that the
``decide`` layer can filter a whole audience at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from tummler.core.errors import StrategyError

__all__ = [
    "CONTACT_FIELDS",
    "And",
    "Compare",
    "Expression",
    "ExpressionError",
    "Field",
    "Membership",
    "Not",
    "Or",
    "Predicate",
    "Scalar",
    "Truthy",
    "attribute_names",
    "leaves",
    "parse_duration",
    "predicate_arguments",
]

#: Fields every contact has, besides its ``attributes``.
CONTACT_FIELDS: tuple[str, ...] = ("external_id", "locale", "time_zone", "stage")
PREDICATES: tuple[str, ...] = ("consent", "has_identity", "engaged_within")
#: Longer expressions and deeper nesting are refused with a clear error rather than a crash.
MAX_LENGTH = 4000
MAX_DEPTH = 32

Scalar: TypeAlias = str | int | float | bool | None
Operator: TypeAlias = Literal["==", "!=", "<", "<=", ">", ">="]
BoolArray: TypeAlias = NDArray[np.bool_]
ValueColumn: TypeAlias = Sequence[Any] | NDArray[Any]
BoolColumn: TypeAlias = Sequence[bool] | NDArray[np.bool_]


class ExpressionError(StrategyError):
    """An audience expression that cannot be parsed or evaluated.

    ``column`` is 1-based within the expression text; ``expected`` says what the parser wanted there.
    """

    def __init__(self, reason: str, *, column: int | None = None, expected: str | None = None):
        self.column = column
        self.expected = expected
        text = reason
        if column is not None:
            text = f"column {column}: {reason}"
        super().__init__(text)
        self.reason = text


# ---------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Field:
    """A contact field: ``stage``, ``locale``, ``time_zone``, ``external_id`` or ``attributes.NAME``."""

    name: str

    @property
    def attribute(self) -> str | None:
        """The attribute's name for ``attributes.NAME``, else ``None``."""
        return self.name.split(".", 1)[1] if self.name.startswith("attributes.") else None

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: Operator
    value: Scalar

    def __str__(self) -> str:
        return f"{self.field} {self.op} {_render(self.value)}"


@dataclass(frozen=True, slots=True)
class Membership:
    field: Field
    values: tuple[Scalar, ...]
    negated: bool = False

    def __str__(self) -> str:
        items = ", ".join(_render(v) for v in self.values)
        return f"{self.field} {'not in' if self.negated else 'in'} [{items}]"


@dataclass(frozen=True, slots=True)
class Predicate:
    """``consent(channel)``, ``has_identity(channel)`` or ``engaged_within(duration)``."""

    name: Literal["consent", "has_identity", "engaged_within"]
    argument: str

    def __str__(self) -> str:
        return f"{self.name}({_render(self.argument)})"


@dataclass(frozen=True, slots=True)
class Truthy:
    field: Field

    def __str__(self) -> str:
        return str(self.field)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expression

    def __str__(self) -> str:
        return f"not {_wrap(self.operand)}"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expression, ...]

    def __str__(self) -> str:
        return " and ".join(_wrap(o) for o in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expression, ...]

    def __str__(self) -> str:
        return " or ".join(_wrap(o) for o in self.operands)


Expression: TypeAlias = Compare | Membership | Predicate | Truthy | Not | And | Or


def _wrap(node: Expression) -> str:
    return f"({node})" if isinstance(node, And | Or) else str(node)


def _render(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return repr(value)


_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"30d"`` → 30 days; units m (minutes), h, d, w.

    >>> parse_duration("2w")
    datetime.timedelta(days=14)
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number and a unit: 90m, 12h, 30d or 2w"
        )
    amount = int(match.group(1))
    if amount == 0:
        raise ValueError(f"{text!r} is zero; a duration must be positive")
    if amount > 100_000:
        raise ValueError(f"{text!r} is too long a duration")
    return timedelta(**{_UNITS[match.group(2)]: amount})


def attribute_names(node: Expression) -> set[str]:
    """The ``attributes.NAME`` names an expression reads (to check they are declared)."""
    found: set[str] = set()
    for leaf in leaves(node):
        if isinstance(leaf, Compare | Membership | Truthy) and leaf.field.attribute is not None:
            found.add(leaf.field.attribute)
    return found


def predicate_arguments(node: Expression, name: str) -> set[str]:
    """The arguments given to predicate ``name`` (e.g. the channels ``consent`` asks about)."""
    return {
        leaf.argument for leaf in leaves(node) if isinstance(leaf, Predicate) and leaf.name == name
    }


def leaves(node: Expression) -> list[Compare | Membership | Predicate | Truthy]:
    """The conditions of an expression, left to right, without its logic."""
    if isinstance(node, Not):
        return leaves(node.operand)
    if isinstance(node, And | Or):
        return [leaf for operand in node.operands for leaf in leaves(operand)]
    return [node]
