"""Importing every kind from every format, on SQLite and PostgreSQL: counts, idempotency, atomic batches."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, event, select, text

from example_files import write_example_data
from test_import_validation import read_rejects
from tummler.app.ingest import ImportReport, import_file
from tummler.core.clock import FrozenClock
from tummler.core.errors import InputError, StoreError
from tummler.store import models

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)

CONTACTS = (
    ["external_id", "time_zone", "stage", "email", "phone", "city", "score"],
    [
        ["c1", "Europe/Berlin", "customer", "Alice@Example.ORG", "+49 30 1234567", "Berlin", "3"],
        ["c2", "America/New_York", "prospect", "bob@example.org", "", "NYC", "2.5"],
        ["c3", "", "", "", "", "", ""],
    ],
)
ROWS: dict[str, tuple[list[str], list[list[Any]]]] = {
    "contacts": CONTACTS,
    "identities": (
        ["contact_external_id", "channel", "address"],
        [["c1", "mastodon", "@Alice@Social.Example"], ["c3", "email", "C3@Example.org"]],
    ),
    "consent": (
        ["contact_external_id", "channel", "status", "at", "source"],
        [
            ["c1", "email", "granted", "2026-01-01T00:00:00Z", "signup"],
            ["c1", "email", "revoked", "2026-02-01T00:00:00+01:00", "link"],
            ["c2", "sms", "granted", "1767225600", "signup"],
        ],
    ),
    "events": (
        ["contact_external_id", "type", "at", "channel", "value", "provider_event_id"],
        [
            ["c1", "clicked", "2026-01-02T10:00:00Z", "email", "", "e-1"],
            ["c1", "converted", "2026-01-02T11:00:00Z", "email", "19.5", "e-2"],
            ["c2", "opened", "2026-01-03 08:00:00", "email", "", ""],
        ],
    ),
    "edges": (
        ["source_external_id", "target_external_id", "kind", "weight"],
        [["c1", "c2", "follows", "0.5"], ["c2", "c1", "mentions", ""]],
    ),
    "mentions": (
        ["channel", "external_id", "at", "author_handle", "text", "contact_external_id"],
        [
            ["mastodon", "p1", "2026-01-04T09:00:00Z", "@alice@social.example", "love it", "c1"],
            ["bluesky", "p2", "2026-01-04T10:00:00Z", "@x.bsky.social", "meh", ""],
        ],
    ),
}
TABLES = {
    "contacts": "contacts",
    "identities": "channel_identities",
    "consent": "consent_events",
    "events": "events",
    "edges": "social_edges",
    "mentions": "mentions",
}
ORDER = ["contacts", "identities", "consent", "events", "edges", "mentions"]


def write_table(path: Path, columns: list[str], rows: list[list[Any]]) -> Path:
    """Write rows as CSV, JSON Lines (empty cells left out) or Parquet (strings), by extension."""
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                item = {c: v for c, v in zip(columns, row, strict=True) if v != ""}
                handle.write(json.dumps(item) + "\n")
    else:
        data = {c: [row[i] or None for row in rows] for i, c in enumerate(columns)}
        pq.write_table(pa.table(data), path)
    return path


def dump(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


def import_all(engine: Engine, directory: Path, suffix: str) -> dict[str, ImportReport]:
    reports = {}
    for kind in ORDER:
        columns, rows = ROWS[kind]
        path = write_table(directory / f"{kind}{suffix}", columns, rows)
        reports[kind] = import_file(engine, kind, path, clock=FrozenClock(T0), batch_size=2)
    return reports


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_kind_imports_from_every_format(engine: Engine, tmp_path: Path, suffix: str) -> None:
    reports = import_all(engine, tmp_path, suffix)
    for kind in ORDER:
        report = reports[kind]
        assert report.rejected == 0, (kind, report.top_reasons)
        assert report.inserted == len(ROWS[kind][1]), kind
        extra = 3 if kind == "identities" else 0  # three came from the contacts' email/phone
        assert len(dump(engine, TABLES[kind])) == len(ROWS[kind][1]) + extra, kind
    assert reports["contacts"].identities_added == 3
    with engine.connect() as connection:
        identities = set(
            connection.execute(
                select(models.ChannelIdentity.channel, models.ChannelIdentity.address)
            )
        )
        contact = connection.execute(
            select(models.Contact).where(models.Contact.external_id == "c1")
        ).one()
        consent_at = connection.scalars(
            select(models.ConsentEvent.at).order_by(models.ConsentEvent.id)
        ).all()
        event_ids = connection.scalars(
            select(models.Event.provider_event_id).order_by(models.Event.id)
        ).all()
    assert identities == {
        ("email", "alice@example.org"),
        ("sms", "+49301234567"),
        ("email", "bob@example.org"),
        ("mastodon", "@alice@social.example"),
        ("email", "c3@example.org"),
    }
    assert contact.attributes == {"city": "Berlin", "score": 3}
    assert contact.time_zone == "Europe/Berlin"
    assert contact.stage == "customer"
    assert consent_at == [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 31, 23, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    ]
    assert event_ids[:2] == ["e-1", "e-2"]
    assert event_ids[2].startswith("derived:")


def test_reimporting_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    import_all(engine, tmp_path, ".csv")
    before = {table: dump(engine, table) for table in TABLES.values()}
    later = FrozenClock(T0 + timedelta(days=1))
    for kind in ORDER:
        report = import_file(engine, kind, tmp_path / f"{kind}.csv", clock=later, batch_size=2)
        assert (report.inserted, report.updated) == (0, 0), kind
        assert report.unchanged == report.accepted == len(ROWS[kind][1]), kind
    assert {table: dump(engine, table) for table in TABLES.values()} == before


def test_contacts_update_only_what_changed(engine: Engine, tmp_path: Path) -> None:
    path = write_table(tmp_path / "c.csv", *CONTACTS)
    import_file(engine, "contacts", path, clock=FrozenClock(T0))
    changed = write_table(
        tmp_path / "c2.csv",
        ["external_id", "stage", "score", "tier"],
        [["c1", "advocate", "3", "gold"], ["c2", "", "2.5", ""]],
    )
    later = T0 + timedelta(days=2)
    report = import_file(engine, "contacts", changed, clock=FrozenClock(later))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    with engine.connect() as connection:
        rows = {c.external_id: c for c in connection.execute(select(models.Contact)).all()}
    assert rows["c1"].stage == "advocate"
    assert rows["c1"].attributes == {"city": "Berlin", "score": 3, "tier": "gold"}
    assert rows["c1"].time_zone == "Europe/Berlin"
    assert rows["c1"].updated_at == later
    assert rows["c2"].updated_at == T0


def test_duplicate_contacts_in_one_file_later_row_wins(engine: Engine, tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "dup.csv",
        ["external_id", "stage", "city"],
        [["d1", "prospect", "Rome"], ["d1", "customer", ""], ["d2", "lapsed", "Oslo"]],
    )
    report = import_file(engine, "contacts", path, clock=FrozenClock(T0))
    assert (report.accepted, report.inserted, report.rejected) == (3, 2, 0)
    with engine.connect() as connection:
        stage, attributes = connection.execute(
            select(models.Contact.stage, models.Contact.attributes).where(
                models.Contact.external_id == "d1"
            )
        ).one()
    assert (stage, attributes) == ("customer", {"city": "Rome"})


def test_duplicate_event_ids_keep_the_first(engine: Engine, tmp_path: Path) -> None:
    import_file(
        engine, "contacts", write_table(tmp_path / "c.csv", *CONTACTS), clock=FrozenClock(T0)
    )
    path = write_table(
        tmp_path / "e.csv",
        ["contact_external_id", "type", "at", "provider_event_id"],
        [["c1", "clicked", "2026-01-01", "x"], ["c2", "opened", "2026-01-02", "x"]],
    )
    report = import_file(engine, "events", path)
    assert (report.inserted, report.unchanged) == (1, 1)
    assert [row[1] for row in dump(engine, "events")] == [1]  # contact of c1


def test_a_refused_batch_leaves_nothing_and_earlier_batches_stay(
    engine: Engine, tmp_path: Path
) -> None:
    import_file(
        engine, "contacts", write_table(tmp_path / "c.csv", *CONTACTS), clock=FrozenClock(T0)
    )
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON events "
                    "WHEN NEW.provider_event_id = 'poison' "
                    "BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.provider_event_id = 'poison' THEN RAISE EXCEPTION 'poison refused'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON events "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                )
            )
    rows = [["c1", "clicked", f"2026-01-0{i}", f"ok-{i}"] for i in range(1, 7)]
    rows[4][3] = "poison"  # third batch of two: lines 6 and 7
    path = write_table(
        tmp_path / "e.csv", ["contact_external_id", "type", "at", "provider_event_id"], rows
    )
    with pytest.raises(StoreError, match=r"lines 6–7 .*2 batch\(es\) before it are committed"):
        import_file(engine, "events", path, batch_size=2)
    assert sorted(row[-1] for row in dump(engine, "events")) == ["ok-1", "ok-2", "ok-3", "ok-4"]


def test_one_contact_query_per_chunk(engine: Engine, tmp_path: Path) -> None:
    import_file(
        engine, "contacts", write_table(tmp_path / "c.csv", *CONTACTS), clock=FrozenClock(T0)
    )
    rows = [["c1" if i % 2 else "c2", "clicked", f"2026-01-01T00:00:{i:02d}Z"] for i in range(10)]
    path = write_table(tmp_path / "e.csv", ["contact_external_id", "type", "at"], rows)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM contacts" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        report = import_file(engine, "events", path, batch_size=3)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert report.batches == 4
    assert len(statements) == 4
    assert report.inserted == 10


def test_unreadable_files_are_refused_before_any_write(engine: Engine, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    missing = write_table(tmp_path / "m.csv", ["id", "type", "when"], [["c1", "clicked", "2026"]])
    with pytest.raises(InputError, match="empty file"):
        import_file(engine, "contacts", empty)
    with pytest.raises(InputError, match="not a text file"):
        import_file(engine, "contacts", binary)
    with pytest.raises(
        InputError,
        match=r"missing required columns 'contact_external_id', 'at'; the file has: id, type, when",
    ):
        import_file(engine, "events", missing)
    assert dump(engine, "contacts") == []
    assert not (tmp_path / "m.rejects.csv").exists()


def test_example_data_imports_cleanly(engine: Engine, tmp_path: Path) -> None:
    files = write_example_data(tmp_path, seed=3, contacts=40)
    for kind, path in files.in_import_order():
        report = import_file(engine, kind, path, clock=FrozenClock(T0))
        assert report.rejected == 0, (kind, report.top_reasons)
        assert report.inserted == report.rows_read > 0, kind


def test_an_address_held_by_another_contact_is_reported_not_dropped(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_table(
        tmp_path / "contacts.csv",
        ["external_id", "email", "phone"],
        [
            ["k1", "Same@Example.org", "+49 30 1234567"],
            ["k2", "same@example.org", "+49301234567"],
            ["k3", "other@example.org", ""],
        ],
    )
    report = import_file(engine, "contacts", path, clock=FrozenClock(T0))
    assert (report.accepted, report.rejected, report.identities_added) == (3, 0, 3)
    [warning] = report.warnings
    assert (warning.rows, warning.lines) == (1, (3,))
    assert "already belongs to another contact" in warning.message
    rows = read_rejects(tmp_path / "contacts.rejects.csv")
    assert [(r["line"], r["field"], r["value"], r["outcome"]) for r in rows] == [
        ("3", "email", "same@example.org", "imported"),
        ("3", "phone", "+49301234567", "imported"),
    ]
    assert all("already belongs to contact k1" in r["reason"] for r in rows)
    before = dump(engine, "channel_identities")
    again = import_file(engine, "contacts", path, clock=FrozenClock(T0 + timedelta(days=1)))
    assert (again.inserted, again.updated, again.identities_added) == (0, 0, 0)
    assert [(w.rows, w.lines) for w in again.warnings] == [(1, (3,))]
    assert dump(engine, "channel_identities") == before

    identities = write_table(
        tmp_path / "identities.csv",
        ["contact_external_id", "channel", "address"],
        [["k3", "email", "same@example.org"], ["k1", "email", "SAME@example.org"]],
    )
    report = import_file(engine, "identities", identities, clock=FrozenClock(T0))
    assert (report.accepted, report.unchanged, report.rejected) == (1, 1, 1)
    [reject] = read_rejects(tmp_path / "identities.rejects.csv")
    assert (reject["line"], reject["field"], reject["outcome"]) == ("2", "address", "rejected")
    assert "already belongs to contact k1: an address belongs to one person" in reject["reason"]
    assert dump(engine, "channel_identities") == before


def test_a_forgotten_person_given_twice_is_suppressed_and_quoted_nowhere(
    engine: Engine, tmp_path: Path
) -> None:
    """Suppression comes before the repeated-id warning: the rejects file never names them."""
    from tummler.app.privacy import forget_person
    from tummler.core.randomness import make_rng

    first = write_table(tmp_path / "first.csv", ["external_id"], [["gone"], ["kept"]])
    import_file(engine, "contacts", first, clock=FrozenClock(T0))
    forget_person(engine, person="gone", actor="dpo", clock=FrozenClock(T0), rng=make_rng(1))
    path = write_table(
        tmp_path / "contacts.csv",
        ["external_id", "stage"],
        [["gone", "customer"], ["kept", "customer"], ["gone", "lapsed"], ["kept", "lapsed"]],
    )
    report = import_file(engine, "contacts", path, clock=FrozenClock(T0 + timedelta(hours=1)))
    assert (report.suppressed, report.accepted, report.rejected) == (2, 2, 0)
    [warning] = report.warnings
    assert (warning.rows, warning.lines) == (1, (5,))
    rows = read_rejects(tmp_path / "contacts.rejects.csv")
    assert [(r["line"], r["value"]) for r in rows] == [("5", "kept")]
    assert "gone" not in (tmp_path / "contacts.rejects.csv").read_text(encoding="utf-8")
