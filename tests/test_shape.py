"""The package's shape: no function longer than a screen, no module longer than a sitting.

Long functions become short orchestrations of named steps; ruff's complexity rules (C901, PLR0912,
PLR0915 in pyproject.toml) bound their branching. This test bounds their length, which ruff cannot.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tummler

PACKAGE = Path(tummler.__file__).parent

#: Code lines (not blank, not comments, not the docstring) a function may have.
MAX_FUNCTION_LINES = 80
#: Lines a module may have.
MAX_MODULE_LINES = 620
#: Schema history: each migration is one upgrade, written once.
EXEMPT = ("store/migrations/",)


def _sources() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if not any(str(p.relative_to(PACKAGE)).startswith(e) for e in EXEMPT)
    )


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    first = node.body[0]
    docstring = (
        first.end_lineno - first.lineno + 1
        if isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
        and first.end_lineno is not None
        else 0
    )
    body = lines[node.lineno - 1 : node.end_lineno]
    code = sum(1 for line in body if line.strip() and not line.strip().startswith("#"))
    return code - docstring


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_fit_on_a_screen(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    long = [
        f"{node.name} (line {node.lineno}): {count} code lines"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (count := _code_lines(node, lines)) > MAX_FUNCTION_LINES
    ]
    assert not long, f"split into named steps (at most {MAX_FUNCTION_LINES}): {long}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_hold_one_job(path: Path) -> None:
    count = len(path.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_MODULE_LINES, f"{count} lines: split the module by job"


def test_the_length_rule_counts_code_not_docstrings_or_comments() -> None:
    source = 'def f():\n    """Doc\n    string."""\n    # note\n\n    x = 1\n    return x\n'
    (node,) = ast.parse(source).body
    assert isinstance(node, ast.FunctionDef)
    assert _code_lines(node, source.splitlines()) == 3  # def, x = 1, return
