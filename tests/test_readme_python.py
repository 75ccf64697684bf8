"""The README's Python example, run as written in a fresh directory holding the tour's files.

The script is the ``python`` block under "From Python" in README.md, so a change there changes what
runs here. It runs as its own process (a fresh ``import tummler``, as a user's script gets), with a
time limit, in a directory holding the example brand's files (its last four weeks ending two days
ago, as in the tour); what it prints and the dry run's file it writes are checked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from example_files import write_example_data

README = Path(__file__).parents[1] / "README.md"
#: Seconds the script may take.
TIMEOUT = 120
CONTACTS = 200


def readme_script() -> str:
    """The first ``python`` code block after the "From Python" heading."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## From Python\n") :]
    found = re.search(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert found is not None, "README.md: no python block under 'From Python'"
    return found.group(1)


def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    write_example_data(tmp_path, contacts=CONTACTS, start=today - timedelta(days=30))
    script = tmp_path / "example.py"
    script.write_text(readme_script(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stdout
    assert f"contacts: {CONTACTS} rows imported, 0 rejected" in said
    for kind in ("identities", "consent", "events"):
        assert re.search(rf"^{kind}: [1-9]\d* rows imported, 0 rejected$", said, re.MULTILINE)
    planned = re.search(r"^plan: (\d+) decisions", said, re.MULTILINE)
    assert planned is not None, said
    assert 0 < int(planned.group(1)) <= CONTACTS
    rendered = re.search(r"^dry run: (\d+) messages rendered to (.+); nothing sent$", said, re.M)
    assert rendered is not None, said
    dry_run = tmp_path / rendered.group(2)
    assert dry_run == tmp_path / "my-brand" / "outbox" / "dry-run.jsonl"
    assert len(dry_run.read_text(encoding="utf-8").splitlines()) == int(rendered.group(1)) > 0
    assert re.search(
        r"^report: fresh-roast-reorder: \d+ treated, \d+ held out$", said, re.MULTILINE
    ), said
