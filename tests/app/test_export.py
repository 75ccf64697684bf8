"""`tummler export`: files match the rows, chunking changes nothing, forgotten people stay forgotten."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from typer.testing import CliRunner

from seeding import workspace_store
from tummler.app.csv_cells import neutralize_formula
from tummler.app.export import (
    ExportFormat,
    ExportKind,
    count_rows,
    default_export_path,
    export_table,
)
from tummler.cli.main import app
from tummler.core.errors import InputError
from tummler.store.database import connect, session_scope
from tummler.store.models import (
    Campaign,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    Decision,
    Event,
    Message,
    PolicyVersion,
    Variant,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHANNELS = ["email", "sms", "mastodon", "bluesky", "linkedin", "webhook"]
CONTACT_HEADER = [
    "external_id",
    "time_zone",
    "locale",
    "stage",
    *(channel if channel != "sms" else "phone" for channel in CHANNELS),
    "other_identities",
    *(f"consent_{channel}" for channel in CHANNELS),
    # attributes, sorted by key; "email" collides with a channel column and is renamed
    "city",
    "attributes.email",
    "ltv",
    "score",
    "tags",
    "vip",
]


def _contact(external_id: str, **fields: Any) -> Contact:
    return Contact(external_id=external_id, created_at=NOW, updated_at=NOW, **fields)


def populate(engine: Engine) -> None:
    """Three contacts (one forgotten, with leftovers it should not have), decisions and events."""
    with session_scope(engine) as session:
        ana = _contact(
            "ana",
            time_zone="Europe/Paris",
            locale="fr-FR",
            stage="customer",
            attributes={
                "city": "Lyon",
                "score": 7,
                "vip": True,
                "ltv": 10,
                "tags": ["a", "b"],
                "email": "legacy",
            },
        )
        bob = _contact("bob", attributes={"city": "Oslo, Norway", "ltv": 2.5, "score": None})
        gone = _contact(
            "forgotten-0123",
            locale="de-DE",
            time_zone="Europe/Berlin",
            attributes={"city": "Berlin"},
            forgotten_at=NOW,
        )
        session.add_all([ana, bob, gone])
        session.flush()
        session.add_all(
            [
                ChannelIdentity(
                    contact_id=ana.id, channel="email", address="ana@example.org", created_at=NOW
                ),
                ChannelIdentity(
                    contact_id=ana.id, channel="email", address="ana@work.example", created_at=NOW
                ),
                ChannelIdentity(
                    contact_id=ana.id, channel="sms", address="+33612345678", created_at=NOW
                ),
                ChannelIdentity(
                    contact_id=bob.id, channel="email", address="bob@example.org", created_at=NOW
                ),
                ChannelIdentity(
                    contact_id=gone.id, channel="email", address="gone@example.org", created_at=NOW
                ),
            ]
        )
        # The later consent event is inserted first: the state follows time, not insertion order.
        session.add_all(
            [
                _consent(ana.id, "email", "revoked", NOW + timedelta(days=2)),
                _consent(ana.id, "email", "granted", NOW),
                _consent(ana.id, "sms", "granted", NOW),
                _consent(bob.id, "email", "granted", NOW),
                _consent(gone.id, "email", "granted", NOW),
            ]
        )
        campaign = Campaign(key="spring", objective="sales", created_at=NOW, updated_at=NOW)
        session.add(campaign)
        session.flush()
        message = Message(campaign_id=campaign.id, key="launch")
        session.add(message)
        session.flush()
        variant = Variant(message_id=message.id, channel="email", key="v1", body="Hello")
        policy = PolicyVersion(name="thompson", version=3, kind="bandit", created_at=NOW)
        session.add_all([variant, policy])
        session.flush()
        first = Decision(
            campaign_id=campaign.id,
            contact_id=ana.id,
            channel="email",
            send_at=NOW + timedelta(hours=1),
            variant_id=variant.id,
            action=2,
            propensity=0.25,
            expected_value=1.5,
            policy_version_id=policy.id,
            reasons={"why": ["relevant", "consent"], "score": 0.9},
            decided_at=NOW,
        )
        second = Decision(
            campaign_id=campaign.id,
            contact_id=bob.id,
            channel=None,
            action=0,
            propensity=1.0,
            holdout=True,
            decided_at=NOW,
        )
        session.add_all([first, second])
        session.flush()
        session.add_all(
            [
                Event(
                    contact_id=ana.id,
                    decision_id=first.id,
                    channel="email",
                    type="clicked",
                    at=NOW + timedelta(hours=2),
                    source="mailgun",
                    provider_event_id="mg-1",
                ),
                Event(
                    contact_id=bob.id,
                    type="converted",
                    value=49.9,
                    at=NOW + timedelta(hours=3),
                    source="shop",
                    provider_event_id="order-7",
                ),
            ]
        )


def _consent(contact_id: int, channel: str, status: str, at: datetime) -> ConsentEvent:
    return ConsentEvent(
        contact_id=contact_id, channel=channel, status=status, source="form", at=at, recorded_at=at
    )


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


# --- contacts ----------------------------------------------------------------------------------


def test_contacts_csv_holds_profile_identities_consent_and_attributes(
    engine: Engine, tmp_path: Path
) -> None:
    populate(engine)
    path = tmp_path / "contacts.csv"
    summary = export_table(
        engine, kind=ExportKind.CONTACTS, path=path, export_format=ExportFormat.CSV
    )
    header, rows = _read_csv(path)
    assert header == CONTACT_HEADER
    assert summary.rows == 3
    assert summary.columns == tuple(CONTACT_HEADER)
    assert summary.bytes == path.stat().st_size
    ana, bob, _ = rows
    assert ana["external_id"] == "ana"
    assert (ana["time_zone"], ana["locale"], ana["stage"]) == ("Europe/Paris", "fr-FR", "customer")
    assert ana["email"] == "ana@example.org"
    assert ana["other_identities"] == "email:ana@work.example"
    assert ana["phone"] == "+33612345678"
    assert ana["mastodon"] == ""
    assert ana["consent_email"] == "revoked"
    assert ana["consent_sms"] == "granted"
    assert ana["consent_mastodon"] == ""
    assert ana["city"] == "Lyon"
    assert ana["score"] == "7"
    assert ana["vip"] == "true"
    assert ana["ltv"] == "10"
    assert ana["tags"] == '["a","b"]'
    assert ana["attributes.email"] == "legacy"
    assert bob["city"] == "Oslo, Norway"
    assert (bob["ltv"], bob["score"], bob["vip"]) == ("2.5", "", "")
    assert (bob["locale"], bob["time_zone"], bob["stage"]) == ("", "UTC", "prospect")
    assert bob["consent_email"] == "granted"


def test_forgotten_contacts_export_without_personal_data(engine: Engine, tmp_path: Path) -> None:
    populate(engine)
    for export_format in ExportFormat:
        path = tmp_path / f"contacts.{export_format.value}"
        export_table(engine, kind=ExportKind.CONTACTS, path=path, export_format=export_format)
        text = path.read_bytes()
        assert b"gone@example.org" not in text
        assert b"Berlin" not in text
        assert b"de-DE" not in text
    _, rows = _read_csv(tmp_path / "contacts.csv")
    gone = rows[2]
    assert gone["external_id"] == "forgotten-0123"
    assert gone["time_zone"] == "UTC"
    personal = {k: v for k, v in gone.items() if k not in {"external_id", "time_zone", "stage"}}
    assert set(personal.values()) == {""}


def test_contacts_parquet_has_typed_attribute_columns(engine: Engine, tmp_path: Path) -> None:
    populate(engine)
    path = tmp_path / "contacts.parquet"
    export_table(engine, kind=ExportKind.CONTACTS, path=path, export_format=ExportFormat.PARQUET)
    table = pq.read_table(path)
    assert table.column_names == CONTACT_HEADER
    schema = table.schema
    assert schema.field("score").type == pa.int64()
    assert schema.field("vip").type == pa.bool_()
    assert schema.field("ltv").type == pa.float64()
    assert schema.field("city").type == pa.string()
    assert schema.field("tags").type == pa.string()
    ana, bob, _ = table.to_pylist()
    assert (ana["score"], ana["vip"], ana["ltv"], ana["tags"]) == (7, True, 10.0, '["a","b"]')
    assert (bob["score"], bob["vip"], bob["ltv"]) == (None, None, 2.5)
    assert (ana["email"], ana["other_identities"]) == ("ana@example.org", "email:ana@work.example")
    assert (bob["email"], bob["other_identities"]) == ("bob@example.org", None)
    assert ana["consent_email"] == "revoked"


# --- decisions and events --------------------------------------------------------------------


def test_decisions_csv_names_the_contact_campaign_variant_and_policy(
    engine: Engine, tmp_path: Path
) -> None:
    populate(engine)
    path = tmp_path / "decisions.csv"
    export_table(engine, kind=ExportKind.DECISIONS, path=path, export_format=ExportFormat.CSV)
    header, rows = _read_csv(path)
    assert header[:5] == ["id", "campaign_id", "campaign", "contact_id", "contact_external_id"]
    first, second = rows
    assert first["contact_external_id"] == "ana"
    assert (first["campaign"], first["variant"], first["policy"]) == ("spring", "v1", "thompson")
    assert first["policy_version"] == "3"
    assert first["send_at"] == "2026-03-01T13:00:00+00:00"
    assert first["decided_at"] == "2026-03-01T12:00:00+00:00"
    assert (first["propensity"], first["expected_value"], first["holdout"]) == (
        "0.25",
        "1.5",
        "false",
    )
    assert json.loads(first["reasons"]) == {"why": ["relevant", "consent"], "score": 0.9}
    assert second["contact_external_id"] == "bob"
    assert (second["channel"], second["variant"], second["policy"]) == ("", "", "")
    assert (second["holdout"], second["send_at"]) == ("true", "")


def test_events_parquet_has_utc_timestamps_and_external_ids(engine: Engine, tmp_path: Path) -> None:
    populate(engine)
    path = tmp_path / "events.parquet"
    summary = export_table(
        engine, kind=ExportKind.EVENTS, path=path, export_format=ExportFormat.PARQUET
    )
    table = pq.read_table(path)
    assert summary.rows == table.num_rows == 2
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    clicked, converted = table.to_pylist()
    assert clicked["contact_external_id"] == "ana"
    assert clicked["at"] == NOW + timedelta(hours=2)
    assert (clicked["type"], clicked["value"], clicked["provider_event_id"]) == (
        "clicked",
        None,
        "mg-1",
    )
    assert (converted["contact_external_id"], converted["value"]) == ("bob", 49.9)
    assert converted["decision_id"] is None


def test_events_csv_times_are_iso_8601_utc(engine: Engine, tmp_path: Path) -> None:
    populate(engine)
    path = tmp_path / "events.csv"
    export_table(engine, kind=ExportKind.EVENTS, path=path, export_format=ExportFormat.CSV)
    _, rows = _read_csv(path)
    assert [row["at"] for row in rows] == [
        "2026-03-01T14:00:00+00:00",
        "2026-03-01T15:00:00+00:00",
    ]
    assert [datetime.fromisoformat(row["at"]).utcoffset() for row in rows] == [timedelta(0)] * 2


def test_an_empty_table_exports_a_header_or_a_schema(engine: Engine, tmp_path: Path) -> None:
    csv_path, parquet_path = tmp_path / "e.csv", tmp_path / "e.parquet"
    assert (
        export_table(
            engine, kind=ExportKind.EVENTS, path=csv_path, export_format=ExportFormat.CSV
        ).rows
        == 0
    )
    assert csv_path.read_text(encoding="utf-8").splitlines() == [
        "id,contact_id,contact_external_id,decision_id,channel,type,value,at,source,provider_event_id"
    ]
    export_table(
        engine, kind=ExportKind.EVENTS, path=parquet_path, export_format=ExportFormat.PARQUET
    )
    table = pq.read_table(parquet_path)
    assert table.num_rows == 0
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")


# --- chunking --------------------------------------------------------------------------------


def _bulk(engine: Engine, n: int) -> None:
    """``n`` contacts, every third with an e-mail and consent, each with one event."""
    with session_scope(engine) as session:
        contacts = [
            _contact(f"c{i:04d}", attributes={"n": i, "group": f"g{i % 3}"}) for i in range(n)
        ]
        session.add_all(contacts)
        session.flush()
        for i, contact in enumerate(contacts):
            if i % 3 == 0:
                session.add(
                    ChannelIdentity(
                        contact_id=contact.id,
                        channel="email",
                        address=f"c{i}@example.org",
                        created_at=NOW,
                    )
                )
                session.add(_consent(contact.id, "email", "granted", NOW))
            session.add(
                Event(
                    contact_id=contact.id,
                    type="visited",
                    at=NOW + timedelta(minutes=i),
                    source="web",
                    provider_event_id=f"v{i}",
                )
            )


@pytest.mark.parametrize("kind", list(ExportKind))
def test_chunk_size_does_not_change_the_file(
    engine: Engine, tmp_path: Path, kind: ExportKind
) -> None:
    populate(engine)
    _bulk(engine, 23)
    outputs = {}
    for chunk_size in (1, 4, 1000):
        path = tmp_path / f"{kind.value}-{chunk_size}.csv"
        export_table(
            engine, kind=kind, path=path, export_format=ExportFormat.CSV, chunk_size=chunk_size
        )
        outputs[chunk_size] = path.read_bytes()
    assert outputs[1] == outputs[4] == outputs[1000]
    assert outputs[1].count(b"\n") == count_rows(engine, kind=kind) + 1


def test_parquet_writes_one_row_group_per_chunk(engine: Engine, tmp_path: Path) -> None:
    _bulk(engine, 25)
    small, large = tmp_path / "small.parquet", tmp_path / "large.parquet"
    export_table(
        engine,
        kind=ExportKind.CONTACTS,
        path=small,
        export_format=ExportFormat.PARQUET,
        chunk_size=10,
    )
    export_table(engine, kind=ExportKind.CONTACTS, path=large, export_format=ExportFormat.PARQUET)
    assert pq.ParquetFile(small).metadata.num_row_groups == 3
    assert pq.ParquetFile(large).metadata.num_row_groups == 1
    assert pq.read_table(small).equals(pq.read_table(large))
    rows = pq.read_table(small).to_pylist()
    assert [row["email"] is not None for row in rows] == [i % 3 == 0 for i in range(25)]
    assert all((row["consent_email"] == "granted") == (row["email"] is not None) for row in rows)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunk_size=st.integers(min_value=1, max_value=40))
def test_any_chunk_size_gives_the_same_parquet_rows(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, chunk_size: int
) -> None:
    if count_rows(engine, kind=ExportKind.CONTACTS) == 0:
        _bulk(engine, 31)
    directory = tmp_path_factory.mktemp("chunks")
    reference, chunked = directory / "ref.parquet", directory / "chunked.parquet"
    export_table(
        engine, kind=ExportKind.CONTACTS, path=reference, export_format=ExportFormat.PARQUET
    )
    export_table(
        engine,
        kind=ExportKind.CONTACTS,
        path=chunked,
        export_format=ExportFormat.PARQUET,
        chunk_size=chunk_size,
    )
    assert pq.read_table(chunked).to_pylist() == pq.read_table(reference).to_pylist()
    on_chunks: list[int] = []
    export_table(
        engine,
        kind=ExportKind.EVENTS,
        path=directory / "events.csv",
        export_format=ExportFormat.CSV,
        chunk_size=chunk_size,
        on_chunk=on_chunks.append,
    )
    assert sum(on_chunks) == 31
    assert max(on_chunks) <= chunk_size


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "export_format", "relative", "chunk_size", "message"),
    [
        ("events", "csv", "out.csv", 0, "chunk_size.*positive number of rows, got 0"),
        ("events", "csv", "missing/out.csv", 10, r"missing.*does not exist: create it or choose"),
        ("people", "csv", "out.csv", 10, r"'kind'.*'people': use one of contacts, decisions"),
        ("events", "xlsx", "out.csv", 10, r"'export_format'.*'xlsx': use one of csv, parquet"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(
    engine: Engine,
    tmp_path: Path,
    kind: str,
    export_format: str,
    relative: str,
    chunk_size: int,
    message: str,
) -> None:
    with pytest.raises(InputError, match=message):
        export_table(
            engine,
            kind=kind,
            path=tmp_path / relative,
            export_format=export_format,
            chunk_size=chunk_size,
        )
    assert list(tmp_path.glob("*.csv")) == []


def test_export_leaves_no_partial_file(engine: Engine, tmp_path: Path) -> None:
    populate(engine)
    export_table(
        engine, kind=ExportKind.EVENTS, path=tmp_path / "e.csv", export_format=ExportFormat.CSV
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".csv")) == ["e.csv"]
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_kind_and_format_may_be_given_as_text(engine: Engine, tmp_path: Path) -> None:
    populate(engine)
    summary = export_table(
        engine, kind="decisions", path=tmp_path / "d.pq", export_format="parquet"
    )
    assert (summary.kind, summary.format, summary.rows) == (
        ExportKind.DECISIONS,
        ExportFormat.PARQUET,
        2,
    )
    assert count_rows(engine, kind="contacts") == 3


def test_format_follows_the_file_name() -> None:
    assert ExportFormat.from_path(Path("x.PARQUET")) is ExportFormat.PARQUET
    assert ExportFormat.from_path(Path("x.pq")) is ExportFormat.PARQUET
    assert ExportFormat.from_path(Path("x.csv")) is ExportFormat.CSV
    assert ExportFormat.from_path(Path("x")) is ExportFormat.CSV


# --- formulas and existing files ---------------------------------------------------------------

#: What a hostile source can leave in the store, by column of the contacts export.
HOSTILE_CONTACT = {
    "external_id": "=cmd|' /C calc'!A0",
    "locale": "@x",
    "mastodon": "@sum(1)@evil.example",
    "phone": "+33698765432",
    "note": "=1+2",
    "code": "-7",
    "debt": "-3.5",
    "rank": "-2",
}


def populate_hostile(engine: Engine) -> None:
    """One contact and one event whose text a spreadsheet would run, beside negative numbers."""
    with session_scope(engine) as session:
        eve = _contact(
            HOSTILE_CONTACT["external_id"],
            locale=HOSTILE_CONTACT["locale"],
            attributes={"note": "=1+2", "code": "-7", "debt": -3.5, "rank": -2},
        )
        session.add(eve)
        session.flush()
        session.add_all(
            [
                ChannelIdentity(
                    contact_id=eve.id,
                    channel="mastodon",
                    address=HOSTILE_CONTACT["mastodon"],
                    created_at=NOW,
                ),
                ChannelIdentity(
                    contact_id=eve.id, channel="sms", address="+33698765432", created_at=NOW
                ),
                Event(
                    contact_id=eve.id,
                    channel="email",
                    type="converted",
                    value=-3.5,
                    at=NOW,
                    source="+shop",
                    provider_event_id="-1+2",
                ),
            ]
        )


def settings_url(workspace: Path) -> str:
    from tummler.core.settings import load_settings

    return load_settings(workspace).resolved_database_url


def test_csv_exports_write_formulas_as_text_and_numbers_as_numbers(
    engine: Engine, tmp_path: Path
) -> None:
    populate(engine)
    populate_hostile(engine)
    rows = {}
    for kind in ExportKind:
        path = tmp_path / f"{kind.value}.csv"
        export_table(engine, kind=kind, path=path, export_format=ExportFormat.CSV)
        rows[kind] = _read_csv(path)[1]
    eve = rows[ExportKind.CONTACTS][-1]
    assert {key: eve[key] for key in HOSTILE_CONTACT} == {
        key: neutralize_formula(value) for key, value in HOSTILE_CONTACT.items()
    }
    assert (eve["external_id"], eve["mastodon"], eve["debt"], eve["phone"]) == (
        "'=cmd|' /C calc'!A0",
        "'@sum(1)@evil.example",
        "-3.5",
        "+33698765432",
    )
    event = rows[ExportKind.EVENTS][-1]
    assert (event["contact_external_id"], event["source"], event["provider_event_id"]) == (
        "'=cmd|' /C calc'!A0",
        "'+shop",
        "'-1+2",
    )
    assert event["value"] == "-3.5"
    # No cell of any export is left that a spreadsheet would run.
    for kind_rows in rows.values():
        for row in kind_rows:
            for cell in row.values():
                assert neutralize_formula(cell) == cell


def test_formulas_can_be_written_as_they_are(engine: Engine, tmp_path: Path) -> None:
    """For a file read by a program, not a spreadsheet (``--no-escape-formulas``)."""
    populate_hostile(engine)
    path = tmp_path / "contacts.csv"
    export_table(
        engine,
        kind=ExportKind.CONTACTS,
        path=path,
        export_format=ExportFormat.CSV,
        escape_formulas=False,
    )
    [eve] = _read_csv(path)[1]
    assert {key: eve[key] for key in HOSTILE_CONTACT} == HOSTILE_CONTACT


def test_parquet_keeps_the_values_as_they_are(engine: Engine, tmp_path: Path) -> None:
    """Parquet is typed: no cell is read as a formula, so nothing is changed."""
    populate_hostile(engine)
    path = tmp_path / "contacts.parquet"
    export_table(engine, kind=ExportKind.CONTACTS, path=path, export_format=ExportFormat.PARQUET)
    [eve] = pq.read_table(path).to_pylist()
    assert (eve["external_id"], eve["mastodon"], eve["note"], eve["debt"]) == (
        "=cmd|' /C calc'!A0",
        "@sum(1)@evil.example",
        "=1+2",
        -3.5,
    )


@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_an_existing_file_is_never_replaced_unless_asked(
    engine: Engine, tmp_path: Path, export_format: ExportFormat
) -> None:
    populate(engine)
    path = tmp_path / "out" / f"contacts.{export_format.value}"
    path.parent.mkdir()
    path.write_text("mine\n", encoding="utf-8")
    message = re.escape(str(path)) + r".* already exists.*--out.*--force"
    with pytest.raises(InputError, match=message):
        export_table(engine, kind=ExportKind.CONTACTS, path=path, export_format=export_format)
    assert path.read_text(encoding="utf-8") == "mine\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    # A file that appears while the export runs is not replaced either.
    path.unlink()

    def someone_writes_it(_: int) -> None:
        path.write_text("theirs\n", encoding="utf-8")

    with pytest.raises(InputError, match=message):
        export_table(
            engine,
            kind=ExportKind.CONTACTS,
            path=path,
            export_format=export_format,
            on_chunk=someone_writes_it,
        )
    assert path.read_text(encoding="utf-8") == "theirs\n"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    summary = export_table(
        engine, kind=ExportKind.CONTACTS, path=path, export_format=export_format, overwrite=True
    )
    assert summary.rows == 3
    assert path.read_bytes() != b"mine\n"


# --- CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def populated_workspace(workspace: Path) -> None:
    """Puts :func:`populate`'s people in the workspace's store."""
    with workspace_store(workspace) as engine:
        populate(engine)


@pytest.mark.usefixtures("populated_workspace")
def test_cli_writes_into_the_workspace_exports_folder_and_leaves_its_files_alone(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tour imports ``contacts.csv`` in the workspace: an export must not replace it."""
    own = workspace / "contacts.csv"
    own.write_text("external_id,email\nk1,k1@example.org\n", encoding="utf-8")
    monkeypatch.chdir(workspace)
    result = CliRunner().invoke(app, ["export", "contacts"])
    assert result.exit_code == 0, result.output
    assert own.read_text(encoding="utf-8") == "external_id,email\nk1,k1@example.org\n"
    [written] = (workspace / "exports").iterdir()
    assert re.fullmatch(r"contacts-\d{8}T\d{6}Z\.csv", written.name)
    assert "exported 3 contacts to" in result.output
    assert f"exports/{written.name}" in "".join(result.output.split())
    result = CliRunner().invoke(
        app, ["--workspace", str(workspace), "export", "decisions", "--format", "parquet"]
    )
    assert result.exit_code == 0, result.output
    [decisions] = (workspace / "exports").glob("decisions-*.parquet")
    assert pq.read_table(decisions).num_rows == 2


def test_the_default_file_is_named_by_kind_and_utc_time() -> None:
    paris = timezone(timedelta(hours=1))
    at = datetime(2026, 3, 1, 14, 4, 5, tzinfo=paris)
    path = default_export_path(Path("ws"), ExportKind.EVENTS, ExportFormat.PARQUET, now=at)
    assert path == Path("ws", "exports", "events-20260301T130405Z.parquet")


@pytest.mark.usefixtures("populated_workspace")
def test_cli_takes_the_format_from_out(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "people.parquet"
    result = CliRunner().invoke(
        app,
        [
            "--workspace",
            str(workspace),
            "export",
            "contacts",
            "--out",
            str(out),
            "--chunk-size",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).column("external_id").to_pylist() == ["ana", "bob", "forgotten-0123"]
    assert "exported 3 contacts" in result.output


@pytest.mark.usefixtures("populated_workspace")
def test_cli_refuses_an_unknown_format(workspace: Path) -> None:
    result = CliRunner().invoke(
        app, ["--workspace", str(workspace), "export", "events", "--format", "xlsx"]
    )
    assert result.exit_code == 2
    assert "xlsx" in result.output


def test_cli_help_says_where_the_file_goes() -> None:
    result = CliRunner().invoke(app, ["export", "contacts", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "exports/<kind>-<UTC time>.<format>" in text
    assert "--force" in text
    assert "--no-escape-formulas" in text


@pytest.mark.usefixtures("populated_workspace")
def test_cli_refuses_to_replace_a_file_without_force(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "people.csv"
    out.write_text("mine\n", encoding="utf-8")
    command = ["--workspace", str(workspace), "export", "contacts", "--out", str(out)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert isinstance(result.exception, InputError)
    message = str(result.exception)
    assert str(out) in message
    assert "--out" in message
    assert "--force" in message
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.csv", "ws"]
    result = CliRunner().invoke(app, [*command, "--force"])
    assert result.exit_code == 0, result.output
    assert _read_csv(out)[0] == CONTACT_HEADER


@pytest.mark.usefixtures("populated_workspace")
def test_cli_writes_formulas_as_text_unless_told_not_to(workspace: Path, tmp_path: Path) -> None:
    engine = connect(settings_url(workspace))
    try:
        populate_hostile(engine)
    finally:
        engine.dispose()
    out = tmp_path / "events.csv"
    command = ["--workspace", str(workspace), "export", "events", "--out", str(out)]
    assert CliRunner().invoke(app, command).exit_code == 0
    assert _read_csv(out)[1][-1]["source"] == "'+shop"
    result = CliRunner().invoke(app, [*command, "--force", "--no-escape-formulas"])
    assert result.exit_code == 0, result.output
    assert _read_csv(out)[1][-1]["source"] == "+shop"


def test_a_contacts_export_imports_back_into_an_empty_store(
    engine: Engine, tmp_path: Path, sqlite_template: Path
) -> None:
    """Profile, e-mail, phone and attributes survive export → import → export; consent does not
    travel this way (its log, with times, comes in through `tummler import consent`)."""
    from shutil import copyfile

    from tummler.app.ingest import import_file

    populate(engine)
    first = tmp_path / "first.csv"
    export_table(engine, kind=ExportKind.CONTACTS, path=first, export_format=ExportFormat.CSV)

    copyfile(sqlite_template, tmp_path / "fresh.db")
    fresh = connect(f"sqlite:///{tmp_path / 'fresh.db'}")
    report = import_file(fresh, "contacts", first)
    assert report.rejected == 0
    second = tmp_path / "second.csv"
    export_table(fresh, kind=ExportKind.CONTACTS, path=second, export_format=ExportFormat.CSV)
    fresh.dispose()

    kept = [
        "external_id",
        "time_zone",
        "locale",
        "stage",
        "email",
        "phone",
        "city",
        "attributes.email",
        "ltv",
        "score",
        "tags",
        "vip",
    ]
    before = [{k: row[k] for k in kept} for row in _read_csv(first)[1]]
    after = [{k: row.get(k, "") for k in kept} for row in _read_csv(second)[1]]
    assert after == before
