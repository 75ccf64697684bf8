"""The measure package's public surface: what ``__all__`` says (its examples run with ``--doctest-modules``)."""

from __future__ import annotations

import tummler.measure


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
