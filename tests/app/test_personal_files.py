"""Forgetting reaches tummler's own files and the store's bytes, and says what it cannot reach."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from example_files import write_example_data
from tummler.app.export import export_table
from tummler.app.ingest import import_file
from tummler.app.personal_files import record_personal_file
from tummler.app.privacy import forget_person
from tummler.core.clock import FrozenClock
from tummler.core.randomness import make_rng
from tummler.store.database import connect, upgrade

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANA = {"id": "crm-ana-7731", "email": "ana.target@example.org", "handle": "@ana_t@social.example"}
BOB = {"id": "crm-bob-1200", "email": "bob.other@example.org"}


def _store_people(engine: Engine, tmp_path: Path) -> None:
    contacts = tmp_path / "people.csv"
    contacts.write_text(
        f"external_id,email\n{ANA['id']},{ANA['email']}\n{BOB['id']},{BOB['email']}\n"
    )
    identities = tmp_path / "handles.csv"
    identities.write_text(
        f"contact_external_id,channel,address\n{ANA['id']},mastodon,{ANA['handle']}\n"
    )
    for kind, path in (("contacts", contacts), ("identities", identities)):
        assert import_file(engine, kind, path, clock=FrozenClock(NOW)).rejected == 0


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _files(tmp_path: Path) -> dict[str, Path]:
    """One file of each kind and format tummler writes, each with Ana, Bob, or both."""
    out = tmp_path / "out"
    out.mkdir()
    rejects = out / "contacts.rejects.csv"
    with rejects.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "field", "value", "reason"])
        writer.writerow([2, "email", ANA["email"], "not an e-mail address"])
        writer.writerow([3, "time_zone", "Mars/Olympus", "unknown time zone"])
    export = out / "mentions.csv"
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["channel", "author_handle", "text"])
        writer.writerow(["mastodon", ANA["handle"], "my order is late"])
        writer.writerow(["mastodon", "@cy@social.example", f"{ANA['handle']} same here!"])
    parquet = out / "contacts.parquet"
    pq.write_table(
        pa.table({"external_id": [ANA["id"], BOB["id"]], "stage": ["customer", "prospect"]}),
        parquet,
    )
    dry_run = _write(
        out / "dry-run.jsonl",
        json.dumps({"to": ANA["email"], "body": "Hi Ana"})
        + "\n"
        + json.dumps({"to": BOB["email"], "body": "Hi Bob"})
        + "\n",
    )
    record = _write(out / "ana.json", json.dumps({"contact": {"external_id": ANA["id"]}}))
    other = _write(out / "bob.json", json.dumps({"contact": {"external_id": BOB["id"]}}))
    return {
        "rejects": rejects,
        "export": export,
        "parquet": parquet,
        "dry_run": dry_run,
        "person_record": record,
        "other_record": other,
        "gone": out / "moved-away.csv",
        "odd": _write(out / "notes.txt", ANA["email"]),
    }


def _record(engine: Engine, files: dict[str, Path]) -> None:
    with engine.begin() as connection:
        for kind, path in files.items():
            record_personal_file(connection, path, kind, now=NOW)


def test_forget_removes_their_records_from_every_file_tummler_wrote(
    engine: Engine, tmp_path: Path
) -> None:
    _store_people(engine, tmp_path)
    files = _files(tmp_path)
    _record(engine, files)

    report = forget_person(engine, person=ANA["id"], actor="dpo", clock=FrozenClock(NOW))

    outcome = {Path(f.path).name: (f.status, f.removed, f.redacted) for f in report.files}
    assert outcome == {
        "contacts.rejects.csv": ("scrubbed", 1, 0),
        "mentions.csv": ("scrubbed", 1, 1),
        "contacts.parquet": ("scrubbed", 1, 0),
        "dry-run.jsonl": ("scrubbed", 1, 0),
        "ana.json": ("deleted", 1, 0),
        "bob.json": ("clean", 0, 0),
        "moved-away.csv": ("missing", 0, 0),
        "notes.txt": ("unknown format", 0, 0),
    }
    assert report.erased["file_records"] == 6
    for name in ("rejects", "export", "dry_run"):
        text = files[name].read_text(encoding="utf-8").lower()
        assert ANA["email"] not in text
        assert ANA["handle"].lower().lstrip("@") not in text
    assert "Mars/Olympus" in files["rejects"].read_text()  # nobody's: kept
    assert "same here!" in files["export"].read_text()  # someone else's words: kept, redacted
    assert "Hi Bob" in files["dry_run"].read_text()
    assert pq.read_table(files["parquet"]).column("external_id").to_pylist() == [BOB["id"]]
    assert not files["person_record"].exists()
    assert files["other_record"].exists()
    again = forget_person(engine, person=BOB["id"], actor="dpo", clock=FrozenClock(NOW))
    assert "ana.json" not in {Path(f.path).name for f in again.files}  # deleted: not listed again


def test_a_dry_run_counts_and_changes_no_file(engine: Engine, tmp_path: Path) -> None:
    _store_people(engine, tmp_path)
    files = _files(tmp_path)
    _record(engine, files)
    before = {p: p.read_bytes() for p in files.values() if p.exists()}
    plan = forget_person(engine, person=ANA["id"], actor="dpo", dry_run=True)
    assert plan.erased["file_records"] == 6
    assert {p: p.read_bytes() for p in files.values() if p.exists()} == before


def test_after_forget_the_sqlite_files_hold_none_of_their_bytes(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'tummler.db'}")
    upgrade(engine)
    data = write_example_data(tmp_path / "data", contacts=60)
    for kind, path in data.in_import_order():
        import_file(engine, kind, path, clock=FrozenClock(NOW - timedelta(days=1)))
    person = "cust-00007"
    with data.identities.open(encoding="utf-8") as handle:
        secrets = [person] + [
            row["address"].lstrip("@")
            for row in csv.DictReader(handle)
            if row["contact_external_id"] == person
        ]
    assert len(secrets) >= 2
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("tummler.db*"))
    assert all(s.encode() in stored for s in secrets)  # the test can see them before

    # another process with the store open: SQLite would otherwise checkpoint on the last close
    keeper = sqlite3.connect(tmp_path / "tummler.db")
    try:
        report = forget_person(engine, person=person, actor="dpo", rng=make_rng(3))
        assert report.store_note is None  # the write-ahead log was emptied
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("tummler.db*"))
    finally:
        keeper.close()
        engine.dispose()
    for secret in secrets:
        assert secret.encode() not in stored, secret


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgresql_forget_says_what_the_server_still_holds(
    engine: Engine, tmp_path: Path
) -> None:
    _store_people(engine, tmp_path)
    report = forget_person(engine, person=ANA["id"], actor="dpo")
    assert report.store_note is not None
    assert "VACUUM" in report.store_note


def test_the_files_tummler_writes_are_recorded_and_scrubbed(engine: Engine, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "external_id,email,time_zone\n"
        f"{ANA['id']},{ANA['email']},UTC\n"
        f"{BOB['id']},{BOB['email']},Mars/Olympus\n"  # rejected: nobody's data in the reason
        f"crm-cy-3,{ANA['email']},UTC\n"  # Ana's address on Cy: a warning that quotes it
    )
    report = import_file(engine, "contacts", people, clock=FrozenClock(NOW))
    assert report.rejects_path is not None
    rejects = Path(report.rejects_path)
    export = tmp_path / "contacts.csv"
    export_table(engine, kind="contacts", path=export, export_format="csv")
    assert ANA["email"] in rejects.read_text()
    assert ANA["email"] in export.read_text()

    forgot = forget_person(engine, person=ANA["id"], actor="dpo", clock=FrozenClock(NOW))

    assert {Path(f.path).name: f.status for f in forgot.files} == {
        rejects.name: "scrubbed",
        export.name: "scrubbed",
    }
    for path in (rejects, export):
        text = path.read_text()
        assert ANA["id"] not in text
        assert ANA["email"] not in text
    assert BOB["id"] not in rejects.read_text()  # Bob's rejected row was never about Ana
    assert "Mars/Olympus" in rejects.read_text()
    assert "crm-cy-3" in export.read_text()


def test_rows_that_only_share_a_value_with_them_are_kept(engine: Engine, tmp_path: Path) -> None:
    """Ana's city and first name are other people's too: only her identifiers mark her rows."""
    people = tmp_path / "people.csv"
    people.write_text(
        "external_id,email,first_name,city\n"
        f"{ANA['id']},{ANA['email']},Kofi,Berlin\n"
        f"{BOB['id']},{BOB['email']},Kofi,Berlin\n"
        "crm-cy-3,cy@example.org,Mei,Berlin\n"
    )
    import_file(engine, "contacts", people, clock=FrozenClock(NOW))
    export = tmp_path / "contacts.parquet"
    export_table(engine, kind="contacts", path=export, export_format="parquet")

    forget_person(engine, person=ANA["id"], actor="dpo", clock=FrozenClock(NOW))

    table = pq.read_table(export).to_pylist()
    assert sorted(row["external_id"] for row in table) == [BOB["id"], "crm-cy-3"]
    assert {row["city"] for row in table} == {"Berlin"}
