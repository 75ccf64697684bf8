"""The schema: migrations match the models, constraints hold, times come back in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from tummler.store.database import current_revision, head_revision, session_scope
from tummler.store.models import Base, ChannelIdentity, Contact, Event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _contact(external_id: str = "c-1") -> Contact:
    return Contact(external_id=external_id, created_at=NOW, updated_at=NOW)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_fresh_store_is_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_indexes_for_the_hot_queries(engine: Engine) -> None:
    indexed = {
        (table, tuple(index["column_names"]))
        for table in ("events", "decisions")
        for index in inspect(engine).get_indexes(table)
    }
    assert ("events", ("contact_id", "at")) in indexed
    assert ("decisions", ("contact_id", "decided_at")) in indexed
    uniques = {
        tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("decisions")
    }
    assert ("campaign_id", "contact_id", "lever") in uniques


def test_times_round_trip_as_utc(engine: Engine) -> None:
    paris = timezone(timedelta(hours=1))
    with session_scope(engine) as session:
        contact = _contact()
        contact.created_at = datetime(2026, 3, 1, 13, 0, tzinfo=paris)
        session.add(contact)
    with session_scope(engine) as session:
        stored = session.scalars(select(Contact)).one()
    assert stored.created_at == NOW
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), session_scope(engine) as session:
        contact = _contact()
        contact.created_at = datetime(2026, 3, 1, 12, 0)
        session.add(contact)


def test_identity_is_unique_per_channel_and_address(engine: Engine) -> None:
    with session_scope(engine) as session:
        one, two = _contact("a"), _contact("b")
        session.add_all([one, two])
        session.flush()
        session.add(
            ChannelIdentity(
                contact_id=one.id, channel="email", address="x@example.org", created_at=NOW
            )
        )
        session.add(
            ChannelIdentity(
                contact_id=two.id, channel="sms", address="x@example.org", created_at=NOW
            )
        )
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(
            ChannelIdentity(
                contact_id=two.id, channel="email", address="x@example.org", created_at=NOW
            )
        )


def test_unknown_event_type_is_refused_by_the_database(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact = _contact()
        session.add(contact)
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(
            Event(
                contact_id=contact.id,
                type="teleported",
                at=NOW,
                source="test",
                provider_event_id="1",
            )
        )


def test_events_are_unique_per_source_and_provider_id(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact = _contact()
        session.add(contact)
        session.flush()
        session.add(
            Event(
                contact_id=contact.id, type="clicked", at=NOW, source="esp", provider_event_id="e1"
            )
        )
        session.add(
            Event(
                contact_id=contact.id, type="clicked", at=NOW, source="crm", provider_event_id="e1"
            )
        )
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(
            Event(
                contact_id=contact.id, type="clicked", at=NOW, source="esp", provider_event_id="e1"
            )
        )
