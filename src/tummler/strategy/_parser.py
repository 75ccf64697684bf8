"""The audience expression language's parser: text to the syntax tree, with errors that say where.

A tokenizer, then a recursive-descent parser for the grammar in :mod:`tummler.strategy._expression`;
expressions longer than :data:`MAX_LENGTH` or nested deeper than :data:`MAX_DEPTH` are refused.
Parsing is the only way an expression is read: nothing in it is ever executed as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tummler.strategy._expression import (
    CONTACT_FIELDS,
    MAX_DEPTH,
    MAX_LENGTH,
    PREDICATES,
    And,
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
    _render,
    parse_duration,
)

__all__ = ["parse_expression"]


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
