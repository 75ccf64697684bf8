"""`tummler import ...` end to end: a workspace, the example files, JSON and table output, exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from example_files import write_example_data
from tummler.app.workspace import init_workspace, open_store, store_status
from tummler.cli.main import app
from tummler.core.settings import Settings
from tummler.core.vocabulary import ChannelKind

runner = CliRunner()


def test_import_every_example_file_then_again(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    settings = init_workspace(workspace)
    files = write_example_data(tmp_path / "data", seed=11, contacts=30)
    for kind, path in files.in_import_order():
        result = runner.invoke(app, ["-w", str(workspace), "import", kind, str(path), "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["kind"] == kind
        assert summary["rejected"] == 0
        assert summary["inserted"] == summary["rows_read"] > 0
    again = runner.invoke(app, ["-w", str(workspace), "import", "events", str(files.events)])
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.stdout
    engine = open_store(settings)
    try:
        counts = store_status(engine).counts
    finally:
        engine.dispose()
    assert counts["contacts"] == 30
    assert counts["events"] > 0


def test_rejects_mapping_and_exit_codes(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    crm = tmp_path / "crm.csv"
    crm.write_text("customer_id,mail\nk1,K1@Example.org\nk2,broken@\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("external_id: customer_id\n", encoding="utf-8")
    rejects = tmp_path / "out" / "rejects.csv"
    rejects.parent.mkdir()
    result = runner.invoke(
        app,
        [
            "-w",
            str(workspace),
            "import",
            "contacts",
            str(crm),
            "--mapping",
            str(mapping),
            "--map",
            "email=mail",
            "--rejects",
            str(rejects),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["rejected"], summary["identities_added"]) == (1, 1, 1)
    assert rejects.read_text(encoding="utf-8").splitlines()[1].startswith("3,email,broken@,")

    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    failed = runner.invoke(app, ["-w", str(workspace), "import", "contacts", str(empty)])
    assert failed.exit_code == 1
    assert "empty file" in failed.output

    bad_map = runner.invoke(
        app, ["-w", str(workspace), "import", "contacts", str(crm), "--map", "external_id"]
    )
    assert bad_map.exit_code == 1
    assert "write FIELD=COLUMN" in bad_map.output


def test_example_data_is_reproducible(tmp_path: Path) -> None:
    first = write_example_data(tmp_path / "a", seed=5, contacts=12)
    second = write_example_data(tmp_path / "b", seed=5, contacts=12)
    other = write_example_data(tmp_path / "c", seed=6, contacts=12)
    for (kind, a), (_, b), (_, c) in zip(
        first.in_import_order(), second.in_import_order(), other.in_import_order(), strict=True
    ):
        assert a.read_bytes() == b.read_bytes(), kind
        if kind in ("contacts", "events"):
            assert a.read_bytes() != c.read_bytes(), kind


def test_declared_attributes_and_warnings_reach_the_summary(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    init_workspace(
        workspace
    )  # its example strategy declares lifetime_value a number, vip a boolean
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "external_id,timezone,lifetime_value,vip\n"
        "k1,Europe/Berlin,120.5,true\n"
        "k2,Europe/Paris,abc,false\n"
        "k3,Europe/Rome,3,maybe\n"
        "k1,Europe/Berlin,130,true\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["-w", str(workspace), "import", "contacts", str(crm), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["rejected"]) == (2, 2)
    reasons = {r["reason"] for r in summary["top_reasons"]}
    assert any(r.startswith("lifetime_value: declared a number in strategy.yaml") for r in reasons)
    assert any(r.startswith("vip: declared a boolean in strategy.yaml") for r in reasons)
    warnings = {w["warning"]: (w["rows"], w["lines"]) for w in summary["warnings"]}
    assert any("--map time_zone=timezone" in w for w in warnings)
    [repeated] = [v for w, v in warnings.items() if w.startswith("external_id repeated")]
    assert repeated == (1, [5])

    table = runner.invoke(app, ["-w", str(workspace), "import", "contacts", str(crm)])
    assert table.exit_code == 0, table.output
    shown = " ".join(table.stdout.split())
    assert "warning: column 'timezone' looks like the field time_zone" in shown
    assert "--map time_zone=timezone" in shown
    assert (
        "warning: external_id repeated within the file: the later row wins (1 row: line 5)" in shown
    )
    assert "rejects and warnings:" in table.stdout


def _slow_import(workspace: Path, path: Path) -> subprocess.Popen[str]:
    environment = {**os.environ, "TUMMLER_IMPORT_BATCH_SIZE": "200"}
    cli = "from tummler.cli.main import main; main()"
    command = [sys.executable, "-c", cli, "-w", str(workspace), "import"]
    return subprocess.Popen(
        [*command, "events", str(path)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stored_events(settings: Settings) -> int:
    engine = open_store(settings)
    try:
        return int(store_status(engine).counts["events"])
    finally:
        engine.dispose()


@pytest.mark.slow
def test_ctrl_c_says_what_was_committed_and_that_a_rerun_resumes(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    settings = init_workspace(workspace)
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("external_id\nc1\nc2\n", encoding="utf-8")
    assert (
        runner.invoke(app, ["-w", str(workspace), "import", "contacts", str(contacts)]).exit_code
        == 0
    )
    events = tmp_path / "events.csv"
    with events.open("w", encoding="utf-8") as handle:
        handle.write("contact_external_id,type,at,provider_event_id\n")
        for i in range(200_000):
            handle.write(f"c{1 + i % 2},clicked,2026-01-01T00:00:00Z,e{i}\n")
    process = _slow_import(workspace, events)
    deadline = time.monotonic() + 120
    while _stored_events(settings) == 0:  # wait for the first committed batch
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no batch was committed in two minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    match = re.search(r"interrupted: ([\d,]+) batch(?:es)? committed \(([\d,]+) rows\)", err)
    assert match is not None, err
    batches, rows = (int(group.replace(",", "")) for group in match.groups())
    assert batches >= 1
    assert rows == 200 * batches
    assert "Run the same command again to resume" in err
    assert _stored_events(settings) == rows  # exactly the committed batches, no half batch

    again = runner.invoke(
        app,
        ["-w", str(workspace), "import", "events", str(events), "--json"],
        catch_exceptions=False,
    )
    assert again.exit_code == 0
    summary = json.loads(again.stdout)
    assert (summary["inserted"], summary["unchanged"]) == (200_000 - rows, rows)
    assert _stored_events(settings) == 200_000


@pytest.mark.parametrize(("scope", "revoked"), [("channel", 1), ("all", len(ChannelKind))])
def test_an_imported_complaint_revokes_what_the_strategy_says(
    tmp_path: Path, scope: str, revoked: int
) -> None:
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    strategy = workspace / "strategy.yaml"
    text = strategy.read_text(encoding="utf-8")
    assert "on_complaint: channel" in text
    strategy.write_text(text.replace("on_complaint: channel", f"on_complaint: {scope}"))
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("external_id\nk1\n", encoding="utf-8")
    events = tmp_path / "events.csv"
    events.write_text(
        "contact_external_id,type,at,channel\nk1,complained,2026-01-01T00:00:00Z,email\n",
        encoding="utf-8",
    )
    for kind, path in (("contacts", contacts), ("events", events)):
        result = runner.invoke(app, ["-w", str(workspace), "import", kind, str(path), "--json"])
        assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["revoked"] == revoked
