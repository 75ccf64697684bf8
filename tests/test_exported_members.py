"""The public API is what ``tummler.__all__`` says, no more, no less."""

from __future__ import annotations

import tummler


def test_all_names_are_importable_and_public() -> None:
    for name in tummler.__all__:
        assert hasattr(tummler, name), name
    exported = {
        name
        for name, value in vars(tummler).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("tummler")
    }
    assert exported == set(tummler.__all__) - {"__version__"}


def test_exported_members_say_where_they_come_from() -> None:
    for name in tummler.__all__:
        member = getattr(tummler, name)
        module = getattr(member, "__module__", "tummler")
        assert module.startswith("tummler"), name
