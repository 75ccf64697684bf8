"""The measure package's public surface: what ``__all__`` says, and examples that run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tummler.measure

MODULES = sorted(
    info.name for info in pkgutil.iter_modules(tummler.measure.__path__, prefix="tummler.measure.")
)


def test_all_names_are_exported_and_say_where_they_come_from() -> None:
    for name in tummler.measure.__all__:
        member = getattr(tummler.measure, name)
        module = getattr(member, "__module__", "tummler.measure")
        assert module is None or module.startswith(("tummler.measure", "typing")), name
    public = {
        name
        for name, value in vars(tummler.measure).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("tummler.measure.")
    }
    assert public == set(tummler.measure.__all__) - {
        "HOURS_IN_WEEK",
        "STAGE_ORDER",
        "KpiKind",
        "TargetKind",
    }


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
