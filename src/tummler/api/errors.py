"""Errors as HTTP answers, in FastAPI's shape: ``{"detail": [{"type", "loc", "msg", "input"}]}``.

An answer names what was wrong and where, and quotes what was sent only as a short excerpt: a client
that sends a megabyte of invalid text must not get it back (nor make the server build that answer),
and a value JSON cannot carry (``NaN``, ``Infinity``) is quoted as text instead of breaking the answer.
A body with very many problems gets the first :data:`MAX_PROBLEMS` and a count of the rest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tummler.app.callbacks import EventProblem, RejectedEventsError
from tummler.core.errors import ConfigError, InputError, NotFoundError, StoreError, TummlerError

__all__ = ["EXCERPT_CHARS", "MAX_PROBLEMS", "add_error_handlers", "excerpt"]

#: How many characters of an offending value an answer quotes.
EXCERPT_CHARS = 80
#: How many characters of a message an answer keeps (messages may quote what was sent).
MESSAGE_CHARS = 300
#: How many problems one answer lists.
MAX_PROBLEMS = 100


def add_error_handlers(app: FastAPI) -> None:
    """Answer tummler's errors and FastAPI's validation errors in one shape, with excerpts only."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(TummlerError, _tummler_error)


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> Any:
    """``value`` as an answer quotes it: itself when short, else its first characters and its size.

    Text that UTF-8 cannot carry (an unpaired surrogate) is quoted with backslash escapes.

    >>> excerpt("liked")
    'liked'
    >>> excerpt("x" * 1000, limit=10)
    'xxxxxxxxxx… (1000 characters)'
    >>> excerpt({"value": float("nan")})
    '{"value": NaN}'
    >>> excerpt("\\ud800")
    '\\\\ud800'
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
        except ValueError:  # NaN or Infinity: quoted as the text JSON would have needed
            text = json.dumps(value, ensure_ascii=False, default=str)
        else:
            if len(text) <= limit and _utf8(text):
                return json.loads(text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem(kind: str, loc: Sequence[Any], message: str, **more: Any) -> dict[str, Any]:
    where = [part if isinstance(part, int) else excerpt(str(part)) for part in loc]
    return {"type": kind, "loc": where, "msg": excerpt(message, MESSAGE_CHARS), **more}


def _listing(problems: list[dict[str, Any]], count: int) -> JSONResponse:
    if count > len(problems):
        problems.append(
            _problem(
                "too_many_errors",
                problems[0]["loc"][:1],
                f"{count - len(problems)} more problems not listed: fix these first",
            )
        )
    return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation errors, each with an excerpt of its input and without ``ctx``."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = [
        _problem(
            error["type"],
            error["loc"],
            error["msg"],
            **({"input": excerpt(error["input"])} if "input" in error else {}),
        )
        for error in errors[:MAX_PROBLEMS]
    ]
    return _listing(problems, len(errors))


def _located(problem: EventProblem) -> dict[str, Any]:
    loc = (
        ["body", problem.field] if problem.index is None else ["body", problem.index, problem.field]
    )
    return _problem(problem.code, loc, problem.reason)


async def _tummler_error(_request: Request, exc: Exception) -> JSONResponse:
    """tummler's errors: input problems as a 422 listing, the others as one short message."""
    if isinstance(exc, RejectedEventsError):
        shown = [_located(p) for p in exc.problems[:MAX_PROBLEMS]]
        return _listing(shown, len(exc.problems))
    if isinstance(exc, InputError):
        loc = ["body"] if exc.field is None else ["body", exc.field]
        return _listing([_problem("invalid", loc, exc.reason)], 1)
    code = status.HTTP_400_BAD_REQUEST
    if isinstance(exc, NotFoundError):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, StoreError):
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    elif isinstance(exc, ConfigError):
        code = status.HTTP_500_INTERNAL_SERVER_ERROR
    return JSONResponse({"detail": excerpt(str(exc), MESSAGE_CHARS)}, status_code=code)
