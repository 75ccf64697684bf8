"""Row validation and the rejects file: each kind of malformed input, where it is, why; never a crash."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from tummler.app.ingest import import_file
from tummler.app.ingest.schemas import (
    FieldError,
    normalize_email,
    normalize_phone,
    parse_timestamp,
)
from tummler.core.clock import FrozenClock
from tummler.core.errors import InputError
from tummler.store.database import connect

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A SQLite store holding contacts c1 and c2: validation does not depend on the backend."""
    path = tmp_path / "store.db"
    shutil.copyfile(sqlite_template, path)
    engine = connect(f"sqlite:///{path}")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("external_id\nc1\nc2\n", encoding="utf-8")
    import_file(engine, "contacts", contacts, clock=FrozenClock(T0))
    yield engine
    engine.dispose()


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# (kind, header, bad line, field, reason fragment)
MALFORMED = [
    ("contacts", "external_id,email", "x1,not-an-email", "email", "not a valid e-mail address"),
    ("contacts", "external_id,phone", "x1,12", "phone", "national number without a country"),
    ("contacts", "external_id,time_zone", "x1,Mars/Olympus", "time_zone", "unknown time zone"),
    ("contacts", "external_id,stage", "x1,vip", "stage", "not one of: advocate"),
    ("contacts", "external_id,locale", "x1,english!", "locale", "not a language tag"),
    ("contacts", "external_id,stage", ",customer", "external_id", "missing required value"),
    ("identities", "contact_external_id,channel,address", "c1,email,a@", "address", "e-mail"),
    ("identities", "contact_external_id,channel,address", "c1,fax,123", "channel", "not one of"),
    ("identities", "contact_external_id,channel,address", "c9,email,a@b.org", "contact_external_id", "unknown contact"),
    ("consent", "contact_external_id,channel,status,at", "c1,email,maybe,2026-01-01", "status", "not one of: granted, revoked"),
    ("consent", "contact_external_id,channel,status,at", "c1,email,granted,yesterday", "at", "not an ISO 8601 timestamp"),
    ("events", "contact_external_id,type,at,value", "c1,clicked,2026-01-01,ten", "value", "not a number"),
    ("events", "contact_external_id,type,at,value", "c1,clicked,2026-01-01,inf", "value", "not a finite number"),
    ("events", "contact_external_id,type,at", "c1,clicked,99999999999999", "at", "out of range"),
    ("events", "contact_external_id,type,at", "c1,clicked,3026-01-01", "at", "year 3026"),
    ("events", "contact_external_id,type,at", "c1,teleported,2026-01-01", "type", "not one of"),
    ("events", "contact_external_id,type,at", "c1,clicked", "", "expected 3 columns, found 2 (truncated row?)"),
    ("events", "contact_external_id,type,at", "c1,clicked,2026-01-01,extra", "", "expected 3 columns, found 4"),
    ("edges", "source_external_id,target_external_id,kind", "c1,c1,follows", "target_external_id", "to itself"),
    ("edges", "source_external_id,target_external_id,kind,weight", "c1,c2,follows,-1", "weight", "outside"),
    ("mentions", "channel,external_id,at,sentiment", "mastodon,p1,2026-01-01,2", "sentiment", "outside [-1, 1]"),
    ("mentions", "channel,external_id,at,contact_external_id", "mastodon,p1,2026-01-01,ghost", "contact_external_id", "unknown contact"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "header", "line", "field", "reason"), MALFORMED)
def test_malformed_rows_are_rejected_with_line_field_and_reason(
    store: Engine, tmp_path: Path, kind: str, header: str, line: str, field: str, reason: str
) -> None:
    good = {
        "contacts": "ok1" + "," * header.count(","),
        "identities": "c2,sms,+4930123456",
        "consent": "c2,sms,granted,2026-01-01",
        "events": "c2,opened,2026-01-01" + ",1" * (header.count(",") - 2),
        "edges": "c2,c1,follows" + ",1" * (header.count(",") - 2),
        "mentions": "bluesky,p9,2026-01-01" + "," * (header.count(",") - 2),
    }[kind]
    path = tmp_path / "input.csv"
    path.write_text(f"{header}\n{good}\n{line}\n", encoding="utf-8")
    report = import_file(store, kind, path)
    assert (report.rows_read, report.accepted, report.rejected) == (2, 1, 1)
    assert report.rejects_path == str(tmp_path / "input.rejects.csv")
    rejects = read_rejects(tmp_path / "input.rejects.csv")
    assert len(rejects) == 1
    assert rejects[0]["line"] == "3"
    assert rejects[0]["field"] == field
    assert reason in rejects[0]["reason"]


def test_bytes_that_are_not_utf8_reject_only_their_row(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"contact_external_id,type,at,source\n"
        b"c1,clicked,2026-01-01,caf\xc3\xa9\n"
        b"c1,clicked,2026-01-02,caf\xe9\n"
        b"c2,opened,2026-01-03,x\n"
    )
    report = import_file(store, "events", path, rejects_path=tmp_path / "bad.csv")
    assert (report.accepted, report.rejected) == (2, 1)
    [reject] = read_rejects(tmp_path / "bad.csv")
    assert reject["line"] == "3"
    assert reject["reason"] == "not valid UTF-8: re-save the file as UTF-8"
    assert "\\xe9" in reject["value"]


def test_jsonl_lines_that_are_not_objects_are_rejected(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"contact_external_id": "c1", "type": "clicked", "at": "2026-01-01T00:00:00Z"}\n'
        "\n"
        '{"contact_external_id": "c1", "type": \n'
        "[1, 2]\n"
        '{"contact_external_id": "c2", "type": "opened", "at": 1767225600, "value": true}\n'
        '{"type": "opened", "at": "2026-01-01"}\n',
        encoding="utf-8",
    )
    report = import_file(store, "events", path)
    assert (report.rows_read, report.accepted, report.rejected) == (5, 1, 4)
    rejects = {
        (r["line"], r["field"]): r["reason"] for r in read_rejects(tmp_path / "events.rejects.csv")
    }
    assert rejects[("3", "")].startswith("not JSON")
    assert rejects[("4", "")] == "not a JSON object"
    assert rejects[("5", "value")] == "expected a number, got a boolean"
    assert rejects[("6", "contact_external_id")] == "missing required value"


def test_quoted_newlines_keep_physical_line_numbers(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "mentions.csv"
    path.write_text(
        'channel,external_id,at,text\nmastodon,p1,2026-01-01,"two\nlines"\nmastodon,p2,never,x\n',
        encoding="utf-8",
    )
    report = import_file(store, "mentions", path)
    assert report.accepted == 1
    [reject] = read_rejects(tmp_path / "mentions.rejects.csv")
    assert (reject["line"], reject["field"]) == ("4", "at")
    with store.connect() as connection:
        assert connection.scalar(text("SELECT text FROM mentions")) == "two\nlines"


def test_mapping_renames_columns(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("customer_id,tz,Loyalty\nk1,Europe/Paris,12\n", encoding="utf-8")
    report = import_file(
        store, "contacts", path, mapping={"external_id": "customer_id", "time_zone": "tz"}
    )
    assert report.inserted == 1
    with store.connect() as connection:
        row = connection.execute(
            text("SELECT time_zone, attributes FROM contacts WHERE external_id = 'k1'")
        ).one()
    assert row[0] == "Europe/Paris"
    assert json.loads(row[1]) == {"Loyalty": 12}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"external_id": "nope"}, "the file has no column 'nope'; its columns are: customer_id"),
        ({"contact": "customer_id"}, "unknown field 'contact'"),
    ],
)
def test_bad_mappings_are_refused(
    store: Engine, tmp_path: Path, mapping: dict[str, str], message: str
) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("customer_id\nk1\n", encoding="utf-8")
    kind = "events" if "contact" in mapping else "contacts"
    with pytest.raises(InputError, match=message):
        import_file(store, kind, path, mapping=mapping)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+49 30 1234567", None, "+49301234567"),
        ("030 1234567", "DE", "+49301234567"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("+1 202-555-0143", "DE", "+12025550143"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Alice@Example.ORG", "alice@example.org"),
        ("BOB.smith@mail.example.com", "bob.smith@mail.example.com"),
    ],
)
def test_email_addresses_are_lower_case(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["a@", "@b.org", "a b@c.org", "a@b", 42])
def test_bad_email_addresses_are_refused(raw: object) -> None:
    with pytest.raises(FieldError):
        normalize_email(raw)


def test_national_numbers_need_a_region(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("contact_external_id,channel,address\nc1,sms,030 1234567\n", encoding="utf-8")
    assert import_file(store, "identities", path).rejected == 1
    assert import_file(store, "identities", path, default_region="de").inserted == 1
    with pytest.raises(InputError, match="unknown region 'XX'"):
        import_file(store, "identities", path, default_region="XX")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-01T09:30:00Z", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026-03-01T09:30:00+02:00", datetime(2026, 3, 1, 7, 30, tzinfo=UTC)),
        ("2026-03-01 09:30:00.250", datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("1772357400", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        (1772357400.5, datetime(2026, 3, 1, 9, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps_naive_means_utc_numbers_mean_unix_seconds(
    raw: object, expected: datetime
) -> None:
    assert parse_timestamp(raw) == expected


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.csv", b"", "empty file"),
        ("e.csv", b"  \n\n", "empty file"),
        ("e.jsonl", b"", "empty file"),
        ("e.parquet", b"", "empty file"),
        ("e.csv", b"\x00\x01\x02binary", "not a text file"),
        ("e.parquet", b"contact_external_id,type,at\n", "not a Parquet file"),
        ("e.jsonl", b"contact_external_id,type,at\n", "not JSON Lines"),
        ("e.xlsx", b"whatever", "cannot tell the format"),
        ("e.csv", b"contact_external_id,type,,at\n", "column 3 of the header has no name"),
        ("e.csv", b"contact_external_id,type,at,type\n", "'type' appears twice"),
        ("e.csv", b"caf\xe9,type,at\n", "header line is not valid UTF-8"),
        ("e.csv", "contact_external_id,type,at\n".encode("utf-16"), "looks like UTF-16"),
    ],
)
def test_unreadable_files_raise_input_error(
    store: Engine, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_file(store, "events", path)


def test_format_can_be_forced(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.export"
    path.write_text('{"contact_external_id": "c1", "type": "sent", "at": 0}\n', encoding="utf-8")
    assert import_file(store, "events", path, file_format="jsonl").inserted == 1
    with pytest.raises(InputError, match="unknown format 'xml'"):
        import_file(store, "events", path, file_format="xml")


def test_semicolon_separated_files_are_read(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "\ufeffcontact_external_id;type;at;value\nc1;converted;2026-01-01;12.5\n", encoding="utf-8"
    )
    assert import_file(store, "events", path).inserted == 1


# --- property: whatever the rows, every row is accepted or rejected with a reason --------------------

_cell = st.one_of(
    st.sampled_from(
        ["c1", "c2", "c3", "", "clicked", "opened", "email", "sms", "2026-01-01", "1.5"]
    ),
    st.text(max_size=12),
    st.integers(-(10**15), 10**15).map(str),
)
_row = st.lists(_cell, min_size=0, max_size=7)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(_row, min_size=1, max_size=25), raw_bytes=st.binary(max_size=20))
def test_random_rows_never_crash_and_are_all_accounted_for(
    sqlite_template: Path, rows: list[list[str]], raw_bytes: bytes
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        shutil.copyfile(sqlite_template, folder / "store.db")
        engine = connect(f"sqlite:///{folder / 'store.db'}")
        try:
            seed = folder / "contacts.csv"
            seed.write_text("external_id\nc1\nc2\n", encoding="utf-8")
            import_file(engine, "contacts", seed)
            path = folder / "events.csv"
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["contact_external_id", "type", "at", "channel", "value"])
                writer.writerows(rows)
            with path.open("ab") as handle:
                handle.write(raw_bytes.replace(b"\x00", b"") + b"\n")
            report = import_file(engine, "events", path, batch_size=7)
            assert report.accepted + report.rejected == report.rows_read
            assert report.inserted + report.unchanged == report.accepted
            if report.rejected:
                assert report.rejects_path is not None
                rejects = read_rejects(Path(report.rejects_path))
                assert all(r["reason"] for r in rejects)
                assert len({r["line"] for r in rejects}) == report.rejected
            with engine.connect() as connection:
                stored = connection.scalar(text("SELECT count(*) FROM events"))
            assert stored == report.inserted
        finally:
            engine.dispose()


def test_line_numbers_hold_across_read_blocks(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tummler.app.ingest import readers

    monkeypatch.setattr(readers, "_BLOCK", 64)  # many blocks, some rows cut across them
    lines = [b"contact_external_id,type,at,source"]
    lines += [b"c1,clicked,2026-01-01T00:00:%02dZ,s%d" % (i, i) for i in range(40)]
    lines[20] = b"c1,clicked,2026-01-01T00:01:00Z,caf\xe9"
    lines[30] = b'c1,clicked,2026-01-01T00:02:00Z,"multi\r\nline"'
    lines[35] = b"c1,clicked,not-a-time,x"
    path = tmp_path / "events.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    report = import_file(store, "events", path, batch_size=7)
    assert (report.rows_read, report.accepted, report.rejected) == (40, 38, 2)
    rejects = read_rejects(tmp_path / "events.rejects.csv")
    assert [(r["line"], r["reason"][:12]) for r in rejects] == [
        ("21", "not valid UT"),
        ("37", "not an ISO 8"),
    ]


def test_parquet_rejects_name_the_row_number(store: Engine, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "contact_external_id": ["c1", "c2", "c1"],
            "type": ["clicked", "opened", "clicked"],
            "at": [datetime(2026, 1, 1), datetime(2026, 1, 2), datetime(2026, 1, 3)],
            "value": [1.0, float("nan"), None],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    report = import_file(store, "events", path, batch_size=2)
    assert (report.rows_read, report.accepted, report.rejected) == (3, 2, 1)
    [reject] = read_rejects(tmp_path / "events.rejects.csv")
    assert (reject["line"], reject["field"], reject["reason"]) == (
        "2",
        "value",
        "not a finite number",
    )


def test_rejects_never_overwrite_the_input(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("contact_external_id,type,at\nc1,clicked,2026-01-01\n", encoding="utf-8")
    with pytest.raises(InputError, match="would overwrite the input"):
        import_file(store, "events", path, rejects_path=path)
    assert path.read_text(encoding="utf-8").startswith("contact_external_id")


# --- issue 12: inputs that used to crash, pass silently or mislead -----------------------------------


# (kind, Parquet columns, field, reason fragment): a list or a struct where one value belongs
LIST_VALUES = [
    ("contacts", {"external_id": [["a"], ["b"]]}, "external_id", "expected one value, got a list"),
    ("contacts", {"external_id": ["a", "b"], "stage": [["customer"], ["lapsed"]]}, "stage", "expected one value, got a list"),
    ("contacts", {"external_id": ["a", "b"], "time_zone": [["UTC"], ["UTC"]]}, "time_zone", "expected one value, got a list"),
    ("consent", {"contact_external_id": ["c1", "c2"], "channel": [["email"], ["sms"]], "status": ["granted"] * 2, "at": ["2026-01-01"] * 2}, "channel", "expected one value, got a list"),
    ("events", {"contact_external_id": ["c1", "c2"], "type": [["clicked"], ["opened"]], "at": ["2026-01-01"] * 2}, "type", "expected one value, got a list"),
    ("events", {"contact_external_id": ["c1", "c2"], "type": ["clicked"] * 2, "at": ["2026-01-01"] * 2, "channel": [{"k": "email"}, {"k": "sms"}]}, "channel", "expected one value, got a struct"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "columns", "field", "reason"), LIST_VALUES)
def test_parquet_lists_and_structs_in_fields_are_rejected_not_a_traceback(
    store: Engine,
    tmp_path: Path,
    kind: str,
    columns: dict[str, list[object]],
    field: str,
    reason: str,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "input.parquet"
    pq.write_table(pa.table(columns), path)
    report = import_file(store, kind, path, clock=FrozenClock(T0))
    assert (report.rows_read, report.accepted, report.rejected) == (2, 0, 2)
    rejects = read_rejects(tmp_path / "input.rejects.csv")
    assert [(r["line"], r["field"]) for r in rejects] == [("1", field), ("2", field)]
    assert all(reason in r["reason"] for r in rejects)


# (declared type, raw cell, stored value or None when rejected, reason fragment)
DECLARED = [
    ("number", "abc", None, "declared a number in strategy.yaml: not a number"),
    ("number", "12.5", 12.5, ""),
    ("number", "42", 42, ""),
    ("number", "007", 7, ""),
    ("number", "true", None, "declared a number in strategy.yaml"),
    ("number", "inf", None, "declared a number in strategy.yaml: not a finite number"),
    ("boolean", "abc", None, "declared a boolean in strategy.yaml: expected true or false"),
    ("boolean", "2", None, "declared a boolean in strategy.yaml: expected true or false"),
    ("boolean", "TRUE", True, ""),
    ("boolean", "no", False, ""),
    ("boolean", "1", True, ""),
    ("string", "10115", "10115", ""),
    ("string", "Berlin", "Berlin", ""),
]


@pytest.mark.parametrize(("declared", "raw", "stored", "reason"), DECLARED)
def test_declared_attribute_types_are_checked(
    store: Engine, tmp_path: Path, declared: str, raw: str, stored: object, reason: str
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(f"external_id,attributes.trait,other\nk1,{raw},42\n", encoding="utf-8")
    report = import_file(store, "contacts", path, attribute_types={"trait": declared})
    with store.connect() as connection:
        found = connection.scalar(text("SELECT attributes FROM contacts WHERE external_id = 'k1'"))
    if stored is None:
        assert (report.accepted, report.rejected) == (0, 1)
        [reject] = read_rejects(tmp_path / "contacts.rejects.csv")
        assert (reject["line"], reject["field"], reject["value"]) == ("2", "attributes.trait", raw)
        assert reason in reject["reason"]
        assert found is None
    else:
        assert (report.accepted, report.rejected) == (1, 0)
        attributes = json.loads(found)
        assert attributes == {"trait": stored, "other": 42}  # undeclared: typed as before
        assert type(attributes["trait"]) is type(stored)


def test_undeclared_attributes_keep_their_inferred_types(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("external_id,score,vip\nk1,abc,maybe\n", encoding="utf-8")
    report = import_file(store, "contacts", path, attribute_types={"other": "number"})
    assert (report.accepted, report.rejected) == (1, 0)
    with store.connect() as connection:
        found = connection.scalar(text("SELECT attributes FROM contacts WHERE external_id = 'k1'"))
    assert json.loads(found) == {"score": "abc", "vip": "maybe"}


def test_a_repeated_external_id_is_reported_and_the_later_row_wins(
    store: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "external_id,stage\nd1,prospect\nd2,prospect\nd3,lapsed\nd1,customer\nd2,customer\n",
        encoding="utf-8",
    )
    report = import_file(store, "contacts", path, batch_size=2)  # the repeats span batches
    assert (report.accepted, report.rejected) == (5, 0)
    [warning] = report.warnings
    assert warning.rows == 2
    assert warning.lines == (5, 6)
    assert warning.message.startswith("external_id repeated within the file")
    assert "later row wins" in warning.message
    rows = read_rejects(tmp_path / "contacts.rejects.csv")
    assert [(r["line"], r["field"], r["value"], r["outcome"]) for r in rows] == [
        ("5", "external_id", "d1", "imported"),
        ("6", "external_id", "d2", "imported"),
    ]
    assert "also on line 2" in rows[0]["reason"]
    with store.connect() as connection:
        stages = dict(
            connection.execute(text("SELECT external_id, stage FROM contacts")).tuples().all()
        )
    assert (stages["d1"], stages["d2"]) == ("customer", "customer")


# (file body after the header "external_id,city,stage", rows accepted, rejects as (line, reason fragment))
UNCLOSED = [
    (
        'q1,"Berlin,customer\nq2,Rome,lapsed\nq3,Oslo,customer\n',
        0,
        [("2", "unclosed quote starting on line 2"), ("3", "unclosed quote starting on line 2"), ("4", "unclosed quote starting on line 2")],
    ),
    (
        'q0,Paris,customer\nq1,"Berlin,customer\nq2,Rome,lapsed\nq3,"Oslo",customer\nq4,Rome,lapsed\n',
        2,
        [("3", "unclosed quote starting on line 3"), ("4", "unclosed quote starting on line 3"), ("5", "unclosed quote starting on line 3")],
    ),
    (
        'q0,Paris,customer\nq1,Berlin,"customer\n\nq2,Rome,lapsed',
        1,
        [("3", "unclosed quote starting on line 3"), ("5", "unclosed quote starting on line 3")],
    ),
    ('q1,"Berlin\nMitte",customer\nq2,Rome,lapsed\n', 2, []),
]  # fmt: skip


@pytest.mark.parametrize(("body", "accepted", "expected"), UNCLOSED)
def test_an_unclosed_quote_is_named_and_the_rows_it_swallowed_are_listed(
    store: Engine, tmp_path: Path, body: str, accepted: int, expected: list[tuple[str, str]]
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("external_id,city,stage\n" + body, encoding="utf-8")
    report = import_file(store, "contacts", path)
    assert (report.accepted, report.rejected) == (accepted, len(expected))
    assert report.rows_read == accepted + len(expected)
    rejects = read_rejects(tmp_path / "contacts.rejects.csv") if expected else []
    assert [r["line"] for r in rejects] == [line for line, _ in expected]
    for reject, (_, reason) in zip(rejects, expected, strict=True):
        assert reason in reject["reason"], reject


def test_a_runaway_quote_past_the_field_limit_names_the_quote(
    store: Engine, tmp_path: Path
) -> None:
    rows = "".join(f"r{i},{'x' * 60},customer\n" for i in range(3000))  # ~200 KB after the quote
    path = tmp_path / "contacts.csv"
    path.write_text('external_id,city,stage\nq1,"Berlin,customer\n' + rows, encoding="utf-8")
    report = import_file(store, "contacts", path)
    rejects = read_rejects(tmp_path / "contacts.rejects.csv")
    assert rejects[0]["line"] == "2"
    assert "unclosed quote starting on line 2" in rejects[0]["reason"]
    assert report.rows_read == 3001
    assert report.accepted + report.rejected == 3001
    assert all("unclosed quote starting on line 2" in r["reason"] for r in rejects)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x01\x00" * 20, "not a text file"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256)), "not a text file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(200), "not a text file"),
        ("external_id,city\nk1,Berlin\n".encode("utf-16-le"), "looks like UTF-16"),
        ("external_id,city\nk1,Berlin\n".encode("utf-16-be"), "looks like UTF-16"),
        ("external_id,city\nk1,Berlin\n".encode("utf-16"), "looks like UTF-16"),
    ],
)  # fmt: skip
def test_binary_files_are_not_called_utf16(
    store: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_file(store, "contacts", path)


# (kind, header, look-alike column, the field it looks like)
LOOKALIKES = [
    ("contacts", "external_id,timezone", "timezone", "time_zone"),
    ("contacts", "external_id,tz", "tz", "time_zone"),
    ("contacts", "external_id,TimeZone", "TimeZone", "time_zone"),
    ("contacts", "external_id,phone_number", "phone_number", "phone"),
    ("contacts", "external_id,mobile", "mobile", "phone"),
    ("contacts", "external_id,e-mail", "e-mail", "email"),
    ("contacts", "external_id,Email", "Email", "email"),
    ("contacts", "external_id,email_address", "email_address", "email"),
    ("contacts", "external_id,language", "language", "locale"),
    ("events", "contact_external_id,type,at,event_id", "event_id", "provider_event_id"),
    ("events", "contact_external_id,type,at,amount", "amount", "value"),
    ("consent", "contact_external_id,channel,status,at,Source", "Source", "source"),
]


@pytest.mark.parametrize(("kind", "header", "column", "field"), LOOKALIKES)
def test_columns_that_look_like_a_field_are_warned_about(
    store: Engine, tmp_path: Path, kind: str, header: str, column: str, field: str
) -> None:
    path = tmp_path / "input.csv"
    path.write_text(header + "\n", encoding="utf-8")
    report = import_file(store, kind, path)
    [warning] = report.warnings
    assert f"column {column!r} looks like the field {field}" in warning.message
    assert f"--map {field}={column}" in warning.message


def test_a_field_given_under_its_own_name_silences_the_look_alike(
    store: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "input.csv"
    path.write_text("external_id,time_zone,tz\nk1,Europe/Berlin,CET\n", encoding="utf-8")
    assert import_file(store, "contacts", path).warnings == ()
    path.write_text("external_id,tz\nk1,Europe/Berlin\n", encoding="utf-8")
    assert import_file(store, "contacts", path, mapping={"time_zone": "tz"}).warnings == ()
    kept = import_file(store, "contacts", path, mapping={"attributes.tz": "tz"})
    assert kept.warnings == ()
    with store.connect() as connection:
        found = connection.scalar(text("SELECT attributes FROM contacts WHERE external_id = 'k1'"))
    assert json.loads(found) == {"tz": "Europe/Berlin"}


@pytest.mark.parametrize(
    ("at", "accepted"),
    [
        ("2026-03-01T00:04:59Z", True),  # inside the clock skew
        ("2026-03-01T00:05:00Z", True),
        ("2026-03-01T00:05:01Z", False),
        ("2026-03-01T01:00:00+00:30", False),
        ("2027-01-01", False),
        ("1803859200", False),  # unix seconds in 2027
    ],
)
def test_consent_dated_in_the_future_is_rejected(
    store: Engine, tmp_path: Path, at: str, accepted: bool
) -> None:
    path = tmp_path / "consent.csv"
    path.write_text(
        "contact_external_id,channel,status,at\n"
        "c1,email,granted,2026-02-01T00:00:00Z\n"
        f"c2,email,granted,{at}\n",
        encoding="utf-8",
    )
    report = import_file(store, "consent", path, clock=FrozenClock(T0))
    assert (report.accepted, report.rejected) == ((2, 0) if accepted else (1, 1))
    if not accepted:
        [reject] = read_rejects(tmp_path / "consent.rejects.csv")
        assert (reject["line"], reject["field"]) == ("3", "at")
        assert "in the future" in reject["reason"]
        assert "2026-03-01T00:05:00+00:00" in reject["reason"]
