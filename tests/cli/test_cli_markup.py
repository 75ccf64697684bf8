"""Messages with square brackets reach the terminal whole.

The CLI prints through Rich, whose markup reads ``[api]`` in ``pip install 'tummler[api]'`` as a
style tag and drops it, so the install hint named no extra. These tests run the real ``tummler``
command in a fresh interpreter and read what it printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seeding import add_reachable
from tummler.app.personal_files import remember_personal_file
from tummler.app.workspace import init_workspace, open_store
from tummler.store.database import session_scope


def _tummler(
    args: list[str], *, cwd: Path, missing: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``tummler ARGS`` through its entry function, with package ``missing`` not importable.

    ``sys.modules[name] = None`` is how Python marks a module that cannot be imported: ``import``
    raises ``ImportError`` and ``importlib.util.find_spec`` returns ``None``, as when the extra that
    brings it was never installed.
    """
    block = f"sys.modules[{missing!r}] = None; " if missing else ""
    code = f"import sys; {block}from tummler.cli.main import main; sys.argv[0] = 'tummler'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.mark.parametrize(
    ("missing", "args", "env", "hint"),
    [
        ("fastapi", ["serve"], {}, "pip install 'tummler[api]'"),
        ("uvicorn", ["serve"], {}, "pip install 'tummler[api]'"),
        (
            "psycopg",
            ["status"],
            {"TUMMLER_DATABASE_URL": "postgresql+psycopg://nobody@localhost/nothing"},
            "pip install 'tummler[postgres]'",
        ),
    ],
)
def test_a_missing_extra_is_named_in_the_install_hint(
    tmp_path: Path, missing: str, args: list[str], env: dict[str, str], hint: str
) -> None:
    init_workspace(tmp_path)
    result = _tummler(args, cwd=tmp_path, missing=missing, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{missing} is not installed; install it with: {hint}" in result.stderr


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["import", "contacts", "brand[eu].csv"], "brand[eu].csv"),
        (["explain", "cust[b]", "spring[sale]"], "no campaign 'spring[sale]'"),
    ],
)
def test_an_error_message_keeps_its_brackets(tmp_path: Path, args: list[str], shown: str) -> None:
    init_workspace(tmp_path)
    result = _tummler(args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert shown in result.stderr


def test_a_forget_names_a_file_it_could_not_read_with_its_brackets(tmp_path: Path) -> None:
    # a file of a format tummler cannot scrub is listed with its suffix as the reason
    settings = init_workspace(tmp_path)
    now = datetime.now(UTC)
    engine = open_store(settings)
    try:
        with session_scope(engine) as session:
            add_reachable(session, "ana", {"email": "ana@example.org"}, now=now)
        kept = tmp_path / "ana.[eu]"
        kept.write_text("ana@example.org\n", encoding="utf-8")
        remember_personal_file(engine, kept, "person_record", now=now)
    finally:
        engine.dispose()
    result = _tummler(["person", "forget", "ana", "--yes"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unknown format: .[eu]" in result.stdout


def test_the_help_names_the_extra(tmp_path: Path) -> None:
    result = _tummler(["demo", "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tummler[email]" in result.stdout
