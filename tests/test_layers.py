"""The layering of DESIGN.md: imports go downward only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tummler

PACKAGE = Path(tummler.__file__).parent

#: What each layer may import, besides itself.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "store": {"core"},
    "deliver": {"core"},
    "decide": {"core"},
    "learn": {"core", "decide"},
    "evaluate": {"core"},
    "measure": {"core"},
    "listen": {"core"},
    "influence": {"core"},
    "strategy": {"core"},
    "simulate": {"core"},
    "app": {
        "core",
        "store",
        "deliver",
        "decide",
        "learn",
        "evaluate",
        "measure",
        "listen",
        "influence",
        "strategy",
        "simulate",
    },
    # entry points call services only: never the store, nor the connectors
    "cli": {"core", "app", "demo", "web"},
    "api": {"core", "app"},
    "web": {"core", "app", "api"},
    "demo": {"core", "app", "deliver", "simulate", "strategy", "web"},
}
#: Pure modules may import each other only through their package's public ``__init__``.
PURE = {"decide", "learn", "evaluate", "measure", "listen", "influence", "strategy", "simulate"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def test_every_subpackage_is_a_known_layer() -> None:
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert layers <= set(ALLOWED), f"add {layers - set(ALLOWED)} to ALLOWED in this test"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_downward(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0]
    for line, module in _imports(path):
        parts = module.split(".")
        if parts[0] != "tummler" or len(parts) < 2 or parts[1] == layer:
            continue
        target = parts[1]
        assert target in ALLOWED[layer], f"{path.name}:{line}: {layer} may not import {module}"
        if layer in PURE and target in PURE:
            assert len(parts) == 2, (
                f"{path.name}:{line}: import {target}'s public API, not {module}"
            )


def test_the_top_level_package_imports_only_core() -> None:
    """``import tummler`` stays light: it imports core; the services it exports from app are
    imported on first use (``tummler._LAZY``), and named in ``if TYPE_CHECKING:`` for mypy only."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        type_only = (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        )
        allowed = {"core", "app"} if type_only else {"core"}
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("tummler."):
                layer = (inner.module or "").split(".")[1]
                assert layer in allowed, f"__init__.py:{inner.lineno}: keep `import tummler` light"
    lazy = {module.split(".")[1] for module in tummler._LAZY.values()}
    assert lazy <= {"core", "app"}
