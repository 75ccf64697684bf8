"""A person's rights: `person show` holds everything about them and nothing else; `person forget`
leaves no personal data anywhere, keeps the aggregates and audits itself without naming them."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner, Result

from seeding import workspace_store
from tummler.app.privacy import (
    FORGET_ACTION,
    REDACTED,
    contact_subject,
    forget_person,
    person_record,
)
from tummler.cli.main import app
from tummler.core.clock import FrozenClock
from tummler.core.errors import InputError, NotFoundError
from tummler.store.database import connect, session_scope
from tummler.store.models import (
    AuditEntry,
    Base,
    Campaign,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    ContactChange,
    Decision,
    Delivery,
    Event,
    Mention,
    SocialEdge,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)

#: Everything that identifies Ana; none of it may survive `forget`.
ANA = {
    "old_attribute": "Old-Nickname-Zebra",
    "external_id": "crm-ana-7731",
    "email": "ana.target@example.org",
    "phone": "+33612345678",
    "handle": "@ana_t@masto.example",
    "attribute": "Zanzibar-Loyalty-7731",
    "mention_text": "Ana's honest review of the spring jacket",
    "post": "https://masto.example/@ana_t/111",
    "error": "550 mailbox unavailable",
    "provider_message_id": "<20260301.abc@mail.example>",
}
BOB = {"external_id": "crm-bob-4242", "email": "bob.other@example.org", "handle": "@bobby@x.y"}


@dataclass(frozen=True)
class People:
    ana: int
    bob: int
    cy: int


def populate(engine: Engine, *, ana: dict[str, str] = ANA, suffix: str = "") -> People:
    """Ana (to be forgotten), Bob and Cy, with rows in every table that can hold a person."""
    with session_scope(engine) as session:
        a = Contact(
            external_id=ana["external_id"],
            attributes={"nickname": ana["attribute"], "score": 5},
            time_zone="Europe/Paris",
            locale="fr-FR",
            stage="customer",
            created_at=NOW,
            updated_at=NOW,
        )
        b = Contact(
            external_id=BOB["external_id"] + suffix,
            attributes={"city": "Oslo"},
            created_at=NOW,
            updated_at=NOW,
        )
        c = Contact(external_id="crm-cy" + suffix, created_at=NOW, updated_at=NOW)
        session.add_all([a, b, c])
        session.flush()
        session.add_all(
            [
                ChannelIdentity(
                    contact_id=a.id, channel="email", address=ana["email"], created_at=NOW
                ),
                ChannelIdentity(
                    contact_id=a.id, channel="sms", address=ana["phone"], created_at=NOW
                ),
                ChannelIdentity(
                    contact_id=a.id, channel="mastodon", address=ana["handle"], created_at=NOW
                ),
                ChannelIdentity(
                    contact_id=b.id, channel="email", address=BOB["email"] + suffix, created_at=NOW
                ),
            ]
        )
        session.add_all(
            [
                ContactChange(  # her history: an old nickname, a file named after her
                    contact_id=a.id,
                    changed_at=NOW - timedelta(days=9),
                    stage="prospect",
                    attributes={"nickname": ana["old_attribute"], "score": 1},
                    source=f"import:{ana['external_id']}.csv",
                ),
                ContactChange(
                    contact_id=a.id,
                    changed_at=NOW,
                    stage_before="prospect",
                    stage="customer",
                    attributes={"nickname": ana["attribute"], "score": 5},
                    source="import:crm.csv",
                ),
                ContactChange(
                    contact_id=b.id,
                    changed_at=NOW,
                    stage="prospect",
                    attributes={"city": "Oslo"},
                    source="import:crm.csv",
                ),
            ]
        )
        session.add_all(
            [
                ConsentEvent(
                    contact_id=a.id,
                    channel="email",
                    status="granted",
                    source=f"signup form {ana['email']}",
                    at=NOW,
                    recorded_at=NOW,
                ),
                ConsentEvent(
                    contact_id=a.id,
                    channel="sms",
                    status="revoked",
                    source="sms STOP",
                    at=NOW + timedelta(days=1),
                    recorded_at=NOW,
                ),
                ConsentEvent(
                    contact_id=b.id,
                    channel="email",
                    status="granted",
                    source="form",
                    at=NOW,
                    recorded_at=NOW,
                ),
            ]
        )
        session.add_all(
            [
                SocialEdge(source_contact_id=a.id, target_contact_id=b.id, kind="follows"),
                SocialEdge(source_contact_id=b.id, target_contact_id=a.id, kind="mentions"),
                SocialEdge(source_contact_id=c.id, target_contact_id=b.id, kind="follows"),
            ]
        )
        campaign = Campaign(
            key="spring" + suffix, objective="sales", created_at=NOW, updated_at=NOW
        )
        session.add(campaign)
        session.flush()
        decision_a = Decision(
            campaign_id=campaign.id,
            contact_id=a.id,
            channel="email",
            action=1,
            propensity=0.5,
            reasons={"segment": "vip", "note": f"matched {ana['external_id']}"},
            decided_at=NOW,
        )
        decision_b = Decision(
            campaign_id=campaign.id,
            contact_id=b.id,
            channel="sms",
            action=2,
            propensity=0.4,
            reasons={"segment": "new"},
            decided_at=NOW,
        )
        session.add_all([decision_a, decision_b])
        session.flush()
        session.add_all(
            [
                Delivery(
                    decision_id=decision_a.id,
                    idempotency_key=f"spring:{ana['external_id']}:0{suffix}",
                    channel="email",
                    status="failed",
                    attempts=2,
                    last_error=f"{ana['error']}: {ana['email']}",
                    provider_message_id=ana["provider_message_id"],
                    scheduled_at=NOW,
                    updated_at=NOW,
                ),
                Delivery(
                    decision_id=decision_b.id,
                    idempotency_key=f"spring:{b.id}:0{suffix}",
                    channel="sms",
                    status="sent",
                    attempts=1,
                    provider_message_id="bob-msg-1" + suffix,
                    scheduled_at=NOW,
                    sent_at=NOW,
                    updated_at=NOW,
                ),
            ]
        )
        for i, (contact, kind, value) in enumerate(
            [
                (a, "sent", None),
                (a, "delivered", None),
                (a, "clicked", None),
                (a, "converted", 80.0),
                (b, "sent", None),
                (b, "converted", 20.0),
            ]
        ):
            session.add(
                Event(
                    contact_id=contact.id,
                    decision_id=decision_a.id if contact is a else decision_b.id,
                    channel="email",
                    type=kind,
                    value=value,
                    at=NOW + timedelta(hours=i),
                    source="mailgun",
                    provider_event_id=f"mg-{ana['email'] if contact is a else 'b'}-{i}{suffix}",
                )
            )
        session.add_all(
            [
                Mention(
                    channel="mastodon",
                    external_id=ana["post"],
                    author_handle=ana["handle"],
                    text=ana["mention_text"],
                    at=NOW,
                    contact_id=a.id,
                    sentiment=0.8,
                    topic="product",
                ),
                Mention(  # Ana's post, not linked to her contact, found by her handle
                    channel="mastodon",
                    external_id=ana["post"] + "-2",
                    author_handle=ana["handle"].upper(),
                    text="second post",
                    at=NOW,
                    sentiment=0.1,
                ),
                Mention(  # Bob talking about Ana
                    channel="mastodon",
                    external_id="bob-post-1" + suffix,
                    author_handle=BOB["handle"] + suffix,
                    text=f"hey {ana['handle']} look at this",
                    at=NOW,
                    contact_id=b.id,
                    sentiment=0.0,
                ),
                Mention(
                    channel="mastodon",
                    external_id="bob-post-2" + suffix,
                    author_handle=BOB["handle"] + suffix,
                    text="just Bob, alone",
                    at=NOW,
                    contact_id=b.id,
                    sentiment=-0.5,
                ),
            ]
        )
        session.add_all(
            [
                AuditEntry(
                    at=NOW,
                    actor="importer",
                    action="contact.merge",
                    subject=ana["external_id"],
                    details={"email": ana["email"], "file": "crm.csv"},
                ),
                AuditEntry(
                    at=NOW,
                    actor="importer",
                    action="contact.rename",
                    subject="nickname",
                    details={"was": ana["old_attribute"]},
                ),
                AuditEntry(
                    at=NOW,
                    actor=ana["email"],
                    action="consent.revoke",
                    subject="self-service",
                    details={},
                ),
                AuditEntry(
                    at=NOW,
                    actor="ops",
                    action="send.force",
                    subject=contact_subject(b.id),
                    details={"reason": "vip"},
                ),
            ]
        )
        return People(ana=a.id, bob=b.id, cy=c.id)


def _rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as dicts."""
    with engine.connect() as connection:
        return {
            table.name: [dict(row._mapping) for row in connection.execute(select(table))]
            for table in Base.metadata.sorted_tables
        }


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _leaks(engine: Engine, identifiers: list[str]) -> list[str]:
    """Every (table, column) whose value holds one of ``identifiers``, in any case."""
    found = []
    for table, rows in _rows(engine).items():
        for row in rows:
            for column, value in row.items():
                text = _text(value).lower()
                found += [
                    f"{table}.{column}: {identifier}"
                    for identifier in identifiers
                    if identifier.lower() in text
                ]
    return found


def _forget(engine: Engine, person: str, **options: Any) -> Any:
    return forget_person(
        engine,
        person=person,
        actor="dpo@brand",
        clock=FrozenClock(LATER),
        rng=np.random.default_rng(7),
        **options,
    )


# --- show --------------------------------------------------------------------------------------


def test_show_holds_every_table_about_the_person_and_nobody_else(engine: Engine) -> None:
    people = populate(engine)
    record = person_record(engine, person=ANA["external_id"])
    assert record["contact"]["id"] == people.ana
    assert record["contact"]["attributes"] == {"nickname": ANA["attribute"], "score": 5}
    assert record["contact"]["created_at"] == "2026-03-01T12:00:00+00:00"
    assert {(i["channel"], i["address"]) for i in record["identities"]} == {
        ("email", ANA["email"]),
        ("sms", ANA["phone"]),
        ("mastodon", ANA["handle"]),
    }
    assert [c["status"] for c in record["consent"]["log"]] == ["granted", "revoked"]
    assert {k: v["status"] for k, v in record["consent"]["current"].items()} == {
        "email": "granted",
        "sms": "revoked",
    }
    assert Counter(e["type"] for e in record["events"]) == Counter(
        ["sent", "delivered", "clicked", "converted"]
    )
    [decision] = record["decisions"]
    assert decision["campaign"] == "spring"
    assert decision["reasons"]["segment"] == "vip"
    [delivery] = record["deliveries"]
    assert delivery["provider_message_id"] == ANA["provider_message_id"]
    assert sorted(m["external_id"] for m in record["mentions"]) == [
        ANA["post"],
        ANA["post"] + "-2",
    ]
    assert record["social_edges"] == {
        "out": [{"contact_id": people.bob, "kind": "follows", "weight": 1.0, "at": None}],
        "in": [{"contact_id": people.bob, "kind": "mentions", "weight": 1.0, "at": None}],
    }
    assert [a["action"] for a in record["audit"]] == [
        "contact.merge",
        "contact.rename",
        "consent.revoke",
    ]
    assert [
        (h["stage_before"], h["stage"], h["attributes"]["nickname"]) for h in record["history"]
    ] == [
        (None, "prospect", ANA["old_attribute"]),
        ("prospect", "customer", ANA["attribute"]),
    ]
    document = json.dumps(record, ensure_ascii=False)
    for value in [*BOB.values(), "crm-cy", "just Bob", "bob-msg-1", "new", "Oslo"]:
        assert value not in document, value
    json.loads(document)  # one JSON document


@pytest.mark.parametrize(
    "person",
    [
        ANA["external_id"],
        f"email:{ANA['email'].upper()}",
        "sms:+33 6 12 34 56 78",
        f"sms:{ANA['phone']}",
        "mastodon:ana_t@masto.example",
        f"mastodon:{ANA['handle']}",
    ],
)
def test_a_person_is_found_by_external_id_or_identity(engine: Engine, person: str) -> None:
    people = populate(engine)
    assert person_record(engine, person=person)["contact"]["id"] == people.ana


@pytest.mark.parametrize(
    ("person", "message"),
    [
        ("nobody", r"no contact with external id or identity 'nobody'"),
        ("email:nobody@example.org", r"CHANNEL:ADDRESS such as email:"),
        ("sms:not a number", r"'sms:not a number'"),
    ],
)
def test_an_unknown_person_is_not_found(engine: Engine, person: str, message: str) -> None:
    populate(engine)
    with pytest.raises(NotFoundError, match=message):
        person_record(engine, person=person)
    with pytest.raises(NotFoundError, match=message):
        _forget(engine, person)


# --- forget --------------------------------------------------------------------------------------


def test_forget_leaves_no_personal_data_anywhere(engine: Engine) -> None:
    populate(engine)
    assert len(_leaks(engine, list(ANA.values()))) > 10  # the search finds what is there
    report = _forget(engine, f"email:{ANA['email']}")
    assert _leaks(engine, list(ANA.values())) == []
    assert _leaks(engine, ["ana_t"]) == []
    assert report.identities == (
        f"email:{ANA['email']}",
        f"sms:{ANA['phone']}",
        f"mastodon:{ANA['handle']}",
    )


def test_forget_keeps_the_aggregates_and_other_people(engine: Engine) -> None:
    people = populate(engine)
    before = _rows(engine)
    bob_before = person_record(engine, person=BOB["external_id"])
    _forget(engine, ANA["external_id"])
    after = _rows(engine)

    def per_type(rows: dict[str, list[dict[str, Any]]]) -> Counter[tuple[int, str]]:
        return Counter((e["contact_id"], e["type"]) for e in rows["events"])

    assert per_type(after) == per_type(before)
    assert sum(e["value"] or 0 for e in after["events"]) == 100.0
    for table in ("contacts", "decisions", "deliveries", "events", "mentions", "audit_log"):
        minimum = len(before[table]) + (table == "audit_log")
        assert len(after[table]) == minimum, table
    assert len(after["channel_identities"]) == 1
    assert len(after["consent_events"]) == 1
    assert [(e["source_contact_id"], e["target_contact_id"]) for e in after["social_edges"]] == [
        (people.cy, people.bob)
    ]

    bob_after = person_record(engine, person=BOB["external_id"])
    assert bob_after["social_edges"] == {
        "out": [],
        "in": [{"contact_id": people.cy, "kind": "follows", "weight": 1.0, "at": None}],
    }
    texts = {m["external_id"]: m["text"] for m in bob_after["mentions"]}
    assert texts == {"bob-post-1": f"hey {REDACTED} look at this", "bob-post-2": "just Bob, alone"}
    for key in ("contact", "identities", "consent", "events", "decisions", "deliveries", "audit"):
        assert bob_after[key] == bob_before[key], key

    ana = next(c for c in after["contacts"] if c["id"] == people.ana)
    assert re.fullmatch(r"forgotten-[0-9a-f]{32}", ana["external_id"])
    assert (ana["attributes"], ana["locale"], ana["time_zone"]) == ({}, None, "UTC")
    assert (ana["stage"], ana["forgotten_at"]) == ("customer", LATER)
    kept = [m for m in after["mentions"] if m["sentiment"] in (0.8, 0.1)]
    assert [(m["text"], m["author_handle"]) for m in kept] == [(None, None)] * 2
    assert sorted(m["sentiment"] for m in kept) == [0.1, 0.8]


def test_forget_keeps_the_stage_movements_without_what_the_person_was(engine: Engine) -> None:
    people = populate(engine)
    _forget(engine, ANA["external_id"])
    history = [
        (row["contact_id"], row["stage_before"], row["stage"], row["attributes"], row["source"])
        for row in sorted(_rows(engine)["contact_changes"], key=lambda row: row["id"])
    ]
    assert history == [
        (people.ana, None, "prospect", {}, REDACTED),
        (people.ana, "prospect", "customer", {}, "import:crm.csv"),
        (people.bob, None, "prospect", {"city": "Oslo"}, "import:crm.csv"),
    ]


def test_forget_is_audited_without_naming_the_person(engine: Engine) -> None:
    people = populate(engine)
    report = _forget(engine, ANA["external_id"])
    with session_scope(engine) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == FORGET_ACTION)).one()
        merged = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "contact.merge")
        ).one()
    assert entry.id == report.audit_entry_id
    assert (entry.actor, entry.at, entry.subject) == ("dpo@brand", LATER, f"contact:{people.ana}")
    assert entry.details["contact_id"] == people.ana
    assert entry.details["erased"] == {
        "mentions": 2,
        "mention_texts_redacted": 1,
        "identities": 3,
        "consent_events": 2,
        "social_edges": 2,
        "decision_reasons_redacted": 1,
        "deliveries_cleared": 1,
        "audit_entries_redacted": 3,
        "contact_changes": 2,
        "attributes": 2,
        "file_records": 0,
    }
    assert entry.details["kept"] == {
        "events": 4,
        "decisions": 1,
        "deliveries": 1,
        "suppressed_identifiers": 4,  # the external id and three identities
    }
    # The earlier entry about her now names her by internal id only.
    assert merged.subject == contact_subject(people.ana)
    assert merged.details == {"email": REDACTED, "file": "crm.csv"}


def test_forgetting_twice_changes_nothing(engine: Engine) -> None:
    populate(engine)
    first = _forget(engine, ANA["external_id"])
    snapshot = _rows(engine)
    again = _forget(engine, first.token)
    assert again.already_forgotten
    assert (again.contact_id, again.token) == (first.contact_id, first.token)
    assert _rows(engine) == snapshot
    with pytest.raises(NotFoundError, match="crm-ana-7731"):
        _forget(engine, ANA["external_id"])
    with pytest.raises(NotFoundError):
        _forget(engine, f"email:{ANA['email']}")


def test_a_dry_run_reports_the_same_and_changes_nothing(engine: Engine) -> None:
    populate(engine)
    snapshot = _rows(engine)
    preview = _forget(engine, ANA["external_id"], dry_run=True)
    assert _rows(engine) == snapshot
    assert preview.dry_run
    assert preview.audit_entry_id is None
    done = _forget(engine, ANA["external_id"])
    assert (preview.erased, preview.kept) == (done.erased, done.kept)
    assert preview.token == done.token  # same seed, same token


def test_show_after_forget_holds_no_personal_data(engine: Engine) -> None:
    people = populate(engine)
    report = _forget(engine, ANA["external_id"])
    record = person_record(engine, person=report.token)
    assert record["contact"]["id"] == people.ana
    assert record["identities"] == []
    assert record["consent"] == {"current": {}, "log": []}
    assert len(record["events"]) == 4
    assert [a["action"] for a in record["audit"]] == ["contact.merge", FORGET_ACTION]
    document = json.dumps(record, ensure_ascii=False).lower()
    assert [v for v in ANA.values() if v.lower() in document] == []


_counter = itertools.count()
_identifier = st.text(
    alphabet=st.sampled_from("abcXYZ019.+*?()[]|\\$^-_%/"), min_size=6, max_size=20
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(external_id=_identifier, local=_identifier, attribute=_identifier)
def test_any_identifier_is_erased_even_with_regex_characters(
    engine: Engine, external_id: str, local: str, attribute: str
) -> None:
    n = next(_counter)
    ana = {
        **ANA,
        "external_id": f"{external_id}#{n}",
        "email": f"{local}{n}@example.org".lower(),
        "phone": f"+3361234{n:04d}",
        "handle": f"@{local}{n}@masto.example".lower(),
        "attribute": attribute,
        "post": f"https://masto.example/{n}",
    }
    populate(engine, ana=ana, suffix=f"-{n}")
    _forget(engine, ana["external_id"])
    identifiers = [ana[k] for k in ("external_id", "email", "phone", "handle", "post")]
    assert _leaks(engine, identifiers) == []
    with engine.connect() as connection:
        left = connection.execute(
            select(Contact.forgotten_at).join(ChannelIdentity.contact)
        ).scalars()
        assert set(left) == {None}


def test_a_short_identifier_is_matched_whole_not_inside_other_words(engine: Engine) -> None:
    with session_scope(engine) as session:
        short = Contact(external_id="a1", created_at=NOW, updated_at=NOW)
        session.add(short)
        session.add_all(
            [
                AuditEntry(at=NOW, actor="ops", action="note", subject="a1", details={"id": "a1"}),
                AuditEntry(
                    at=NOW, actor="ops", action="note", subject="a1b2", details={"id": "a1b2"}
                ),
            ]
        )
    _forget(engine, "a1")
    with session_scope(engine) as session:
        notes = session.execute(
            select(AuditEntry.subject, AuditEntry.details)
            .where(AuditEntry.action == "note")
            .order_by(AuditEntry.id)
        ).all()
        short_id = session.scalars(select(Contact.id)).one()
    assert [tuple(note) for note in notes] == [
        (contact_subject(short_id), {"id": REDACTED}),
        ("a1b2", {"id": "a1b2"}),
    ]


# --- CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def populated_workspace(workspace: Path) -> None:
    """Puts :func:`populate`'s people in the workspace's store."""
    with workspace_store(workspace) as engine:
        populate(engine)


def _said(result: Result) -> str:
    """What the command printed, with Rich's line wrapping undone."""
    return " ".join(result.output.split())


def _store(workspace: Path) -> Engine:
    return connect(f"sqlite:///{workspace / 'tummler.db'}")


@pytest.mark.usefixtures("populated_workspace")
def test_cli_show_prints_one_json_document(workspace: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--workspace", str(workspace), "person", "show", f"email:{ANA['email']}"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["contact"]["external_id"] == ANA["external_id"]
    out = tmp_path / "ana.json"
    result = CliRunner().invoke(
        app, ["--workspace", str(workspace), "person", "show", ANA["external_id"], "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8")) == record


@pytest.mark.usefixtures("populated_workspace")
def test_cli_show_refuses_an_out_it_cannot_write(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "ana.json"
    result = CliRunner().invoke(
        app, ["--workspace", str(workspace), "person", "show", ANA["external_id"], "-o", str(out)]
    )
    assert isinstance(result.exception, InputError)
    assert "choose another --out" in str(result.exception)
    assert str(out) in str(result.exception)


@pytest.mark.usefixtures("populated_workspace")
def test_cli_forget_asks_first_and_stops_on_no(workspace: Path) -> None:
    engine = _store(workspace)
    try:
        snapshot = _rows(engine)
        result = CliRunner().invoke(
            app,
            ["--workspace", str(workspace), "person", "forget", ANA["external_id"]],
            input="n\n",
        )
        assert result.exit_code == 1
        assert "identity email:" + ANA["email"] in _said(result)
        assert "identities deleted" in _said(result)
        assert "Forget this person?" in _said(result)
        assert _rows(engine) == snapshot
    finally:
        engine.dispose()


@pytest.mark.usefixtures("populated_workspace")
def test_cli_forget_on_yes_then_again_is_a_no_op(workspace: Path) -> None:
    engine = _store(workspace)
    try:
        result = CliRunner().invoke(
            app,
            ["--workspace", str(workspace), "person", "forget", ANA["external_id"]],
            input="y\n",
        )
        assert result.exit_code == 0, result.output
        token = re.search(r"forgotten-[0-9a-f]{32}", _said(result))
        assert token is not None
        assert "audit entry #" in _said(result)
        assert _leaks(engine, list(ANA.values())) == []
        with session_scope(engine) as session:
            entry = session.scalars(
                select(AuditEntry).where(AuditEntry.action == FORGET_ACTION)
            ).one()
            assert entry.actor.startswith("cli")
        result = CliRunner().invoke(
            app,
            ["--workspace", str(workspace), "person", "forget", token.group(), "--yes"],
        )
        assert result.exit_code == 0, result.output
        assert "already forgotten: nothing to do" in _said(result)
        result = CliRunner().invoke(
            app,
            ["--workspace", str(workspace), "person", "forget", "--yes", ANA["external_id"]],
        )
        assert isinstance(result.exception, NotFoundError)
    finally:
        engine.dispose()


@pytest.mark.usefixtures("populated_workspace")
def test_cli_forget_with_yes_takes_the_actor(workspace: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "--workspace",
            str(workspace),
            "person",
            "forget",
            BOB["external_id"],
            "--yes",
            "--actor",
            "dpo",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Forget this person?" not in _said(result)
    engine = _store(workspace)
    try:
        with session_scope(engine) as session:
            entry = session.scalars(
                select(AuditEntry).where(AuditEntry.action == FORGET_ACTION)
            ).one()
            assert entry.actor == "dpo"
            assert session.scalar(select(func.count()).select_from(Contact)) == 3
    finally:
        engine.dispose()
