"""The audience expression language: tokenizer, parser to an AST, and an evaluator over columns.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from tummler.core.errors import StrategyError

__all__ = [
    "CONTACT_FIELDS",
    "And",
    "Compare",
    "ContactColumns",
    "ContactView",
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
    "evaluate",
    "leaves",
    "matches",
    "parse_duration",
    "parse_expression",
    "predicate_arguments",
    "unmet_conditions",
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


# ------------------------------------------------------------------------------------------ tokenizer


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["name", "string", "number", "op", "end"]
    text: str
    value: Scalar
    column: int  # 1-based


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unescape(body: str, column: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            following = body[i + 1]
            if following not in _ESCAPES:
                raise ExpressionError(
                    f"unknown escape \\{following} in a string",
                    column=column + i + 1,
                    expected="one of \\\" \\' \\\\ \\n \\t",
                )
            out.append(_ESCAPES[following])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        column = position + 1
        if match is None:
            char = text[position]
            if char in "\"'":
                raise ExpressionError(
                    "string is not closed", column=column, expected=f"a closing {char}"
                )
            raise ExpressionError(
                f"unexpected character {char!r}",
                column=column,
                expected="a field, a literal, an operator or a parenthesis",
            )
        kind = match.lastgroup
        raw = match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "number":
            number: Scalar = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(number, float) and not np.isfinite(number):
                raise ExpressionError(f"number {raw} is out of range", column=column)
            tokens.append(_Token("number", raw, number, column))
        elif kind == "string":
            tokens.append(_Token("string", raw, _unescape(raw[1:-1], column), column))
        elif kind == "name":
            tokens.append(_Token("name", raw, raw, column))
        else:
            tokens.append(_Token("op", raw, raw, column))
    tokens.append(_Token("end", "", None, len(text) + 1))
    return tokens


# --------------------------------------------------------------------------------------------- parser

_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _fail(self, expected: str) -> ExpressionError:
        token = self.current
        found = "the end of the expression" if token.kind == "end" else repr(token.text)
        return ExpressionError(
            f"expected {expected}, found {found}", column=token.column, expected=expected
        )

    def _is(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def _expect_op(self, text: str, expected: str | None = None) -> _Token:
        if not self._is("op", text):
            raise self._fail(expected or repr(text))
        return self._advance()

    def parse(self) -> Expression:
        node = self._or()
        if not self._is("end"):
            raise self._fail("'and', 'or' or the end of the expression")
        return node

    def _or(self) -> Expression:
        operands = [self._and()]
        while self._is("name", "or"):
            self._advance()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Expression:
        operands = [self._not()]
        while self._is("name", "and"):
            self._advance()
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _not(self) -> Expression:
        if self._is("name", "not"):
            token = self._advance()
            self._enter(token)
            try:
                return Not(self._not())
            finally:
                self.depth -= 1
        return self._comparison()

    def _enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"expression nested deeper than {MAX_DEPTH} levels; simplify it",
                column=token.column,
            )

    def _comparison(self) -> Expression:
        token = self.current
        if self._is("op", "("):
            self._advance()
            self._enter(token)
            try:
                inner = self._or()
            finally:
                self.depth -= 1
            self._expect_op(")", "')' to close the '(' at column " + str(token.column))
            return inner
        if token.kind != "name" or token.text in _KEYWORDS:
            raise self._fail("a field (stage, attributes.NAME, ...), a predicate, 'not' or '('")
        if token.text in PREDICATES:
            return self._predicate()
        target = self._field()
        if self._is("op") and self.current.text in _COMPARISONS:
            op: Operator = self._advance().text  # type: ignore[assignment]
            value = self._literal()
            if op not in ("==", "!=") and (value is None or isinstance(value, bool)):
                raise ExpressionError(
                    f"{op} needs a number or a string, not {_render(value)}",
                    column=self.tokens[self.index - 1].column,
                    expected="a number or a string",
                )
            return Compare(target, op, value)
        negated = False
        if self._is("name", "not"):
            self._advance()
            negated = True
            if not self._is("name", "in"):
                raise self._fail("'in' after 'not'")
        if self._is("name", "in"):
            self._advance()
            return Membership(target, self._list(), negated)
        return Truthy(target)

    def _field(self) -> Field:
        token = self._advance()
        if token.text in CONTACT_FIELDS:
            return Field(token.text)
        if token.text == "attributes":
            self._expect_op(".", "'.' and an attribute name after 'attributes'")
            name = self.current
            if name.kind != "name":
                raise self._fail("an attribute name after 'attributes.'")
            self._advance()
            return Field(f"attributes.{name.text}")
        known = ", ".join((*CONTACT_FIELDS, "attributes.NAME", *(f"{p}(...)" for p in PREDICATES)))
        raise ExpressionError(
            f"unknown field {token.text!r}; use one of {known}",
            column=token.column,
            expected="a field or a predicate",
        )

    def _predicate(self) -> Predicate:
        token = self._advance()
        self._expect_op("(", f"'(' after {token.text}")
        argument = self.current
        if argument.kind != "string":
            raise self._fail(f"a quoted string as the argument of {token.text}()")
        self._advance()
        self._expect_op(")", f"')' to close {token.text}(")
        text = str(argument.value)
        if token.text == "engaged_within":
            try:
                parse_duration(text)
            except ValueError as exc:
                raise ExpressionError(
                    str(exc), column=argument.column, expected='a duration like "30d"'
                ) from None
        elif not text:
            raise ExpressionError(
                f"{token.text}() needs a channel name", column=argument.column, expected="a channel"
            )
        return Predicate(token.text, text)  # type: ignore[arg-type]

    def _literal(self) -> Scalar:
        token = self.current
        if token.kind in ("string", "number"):
            self._advance()
            return token.value
        if token.kind == "name" and token.text in ("true", "false", "null"):
            self._advance()
            return {"true": True, "false": False, "null": None}[token.text]
        raise self._fail("a literal (a quoted string, a number, true, false or null)")

    def _list(self) -> tuple[Scalar, ...]:
        self._expect_op("[", 'a list like ["a", "b"] after \'in\'')
        values: list[Scalar] = []
        while not self._is("op", "]"):
            values.append(self._literal())
            if self._is("op", ","):
                self._advance()
            elif not self._is("op", "]"):
                raise self._fail("',' or ']'")
        self._advance()
        return tuple(values)


def parse_expression(text: str) -> Expression:
    """Parse an audience expression into its syntax tree.

    Parsing is the only way an expression is read: nothing in it is ever executed as code.

    Raises
    ------
    ExpressionError
        With the 1-based column and what was expected there.

    Examples
    --------
    >>> str(parse_expression('stage in ["customer"] and not consent("sms")'))
    'stage in ["customer"] and not consent("sms")'
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression is text, not {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("the expression is empty", column=1, expected="a condition")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed"
        )
    return _Parser(text).parse()


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


# ------------------------------------------------------------------------------------------ evaluator


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
        if node.name == "consent":
            return np.asarray(view.consent(node.argument), dtype=bool)
        if node.name == "has_identity":
            return np.asarray(view.has_identity(node.argument), dtype=bool)
        cutoff = np.datetime64(_naive_utc(view.now) - parse_duration(node.argument), "us")
        engaged = np.asarray(view.last_engaged_at(), dtype="datetime64[us]")
        recent: BoolArray = ~np.isnat(engaged) & (engaged >= cutoff)
        return recent
    column = _column(node.field, view)
    if isinstance(node, Truthy):
        return np.fromiter(
            (isinstance(v, bool | np.bool_) and bool(v) for v in column),
            dtype=bool,
            count=view.size,
        )
    if isinstance(node, Membership) and all(isinstance(v, str) for v in node.values):
        inside = np.zeros(view.size, dtype=bool)
        for option in node.values:
            inside |= _equals_text(column, str(option))
        return ~inside if node.negated else inside
    if isinstance(node, Membership):
        inside = np.fromiter(
            (any(_same(v, option) for option in node.values) for v in column),
            dtype=bool,
            count=view.size,
        )
        return ~inside if node.negated else inside
    if node.op in ("==", "!=") and isinstance(node.value, str):
        equal = _equals_text(column, node.value)
        return equal if node.op == "==" else ~equal
    if node.op in ("==", "!="):
        equal = np.fromiter((_same(v, node.value) for v in column), dtype=bool, count=view.size)
        return equal if node.op == "==" else ~equal
    return np.fromiter(
        (_ordered(v, node.op, node.value) for v in column), dtype=bool, count=view.size
    )


def _equals_text(column: NDArray[Any], text: str) -> BoolArray:
    """``column == text`` elementwise in C; only strings equal a string, so no type check is needed."""
    if column.size == 0:
        return np.zeros(0, dtype=bool)
    equal = np.asarray(column == text, dtype=bool)
    return equal.reshape(column.shape)


def _naive_utc(moment: datetime) -> datetime:
    offset = moment.utcoffset() or timedelta()
    return moment.replace(tzinfo=None) - offset
