"""One consent rule: planning (in bulk), the outbox and `person show` (one contact) agree.

The rule: for a contact and a channel, the latest consent event up to now (by time, then row id)
among those recorded under the channel's id or its kind decides; no event is no consent; an event
dated in the future does not count yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from tummler.app.consent import consent_log, consent_names, current_consent, latest_granted
from tummler.app.privacy import person_record
from tummler.core.clock import FrozenClock
from tummler.store.database import session_scope
from tummler.store.models import ConsentEvent, Contact

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: Channel id → kind, as a strategy declares them: two e-mail channels share the kind's consent.
CHANNELS = {"newsletter": "email", "email": "email", "sms": "sms"}
NAMES = ("newsletter", "email", "sms")


def _add_contacts(engine: Engine, n: int) -> list[int]:
    with session_scope(engine) as session:
        rows = [Contact(external_id=f"c{i}", created_at=NOW, updated_at=NOW) for i in range(n)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _log(engine: Engine, contact_id: int, channel: str, status: str, at: datetime) -> None:
    with session_scope(engine) as session:
        session.add(
            ConsentEvent(
                contact_id=contact_id,
                channel=channel,
                status=status,
                source="test",
                at=at,
                recorded_at=NOW,
            )
        )


def test_person_show_states_consent_as_the_outbox_and_planning_see_it(engine: Engine) -> None:
    (ana,) = _add_contacts(engine, 1)
    _log(engine, ana, "email", "granted", NOW - timedelta(days=30))
    _log(engine, ana, "newsletter", "revoked", NOW - timedelta(days=2))
    # dated in the future: an import typo or a clock that runs ahead; it must not count now
    _log(engine, ana, "email", "granted", NOW + timedelta(days=300))
    _log(engine, ana, "sms", "granted", NOW + timedelta(days=1))

    record = person_record(engine, person="c0", channels=CHANNELS, clock=FrozenClock(NOW))
    current = record["consent"]["current"]
    assert {channel: state["status"] for channel, state in current.items()} == {
        "email": "granted",
        "newsletter": "revoked",
        "sms": "none",
    }
    assert current["newsletter"]["recorded_under"] == "newsletter"
    assert current["email"]["at"] == (NOW - timedelta(days=30)).isoformat()
    assert len(record["consent"]["log"]) == 4  # the log shows everything, future rows included

    with engine.connect() as connection:
        events = consent_log(connection, now=NOW)
    names = [consent_names(c, k) for c, k in CHANNELS.items()]
    bulk = latest_granted(events, names, {ana: 0}, 1)[0]
    assert dict(zip(CHANNELS, bulk.tolist(), strict=True)) == {
        channel: state["granted"] for channel, state in current.items()
    }


_EVENT = st.tuples(
    st.integers(0, 2),  # contact
    st.sampled_from(NAMES),
    st.sampled_from(["granted", "revoked"]),
    st.integers(-5, 2),  # days from now: a few in the future
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_EVENT, max_size=14))
def test_the_bulk_rule_and_the_one_contact_rule_agree(
    engine: Engine, log: list[tuple[int, str, str, int]]
) -> None:
    with session_scope(engine) as session:
        session.execute(delete(ConsentEvent))
        session.execute(delete(Contact))
    ids = _add_contacts(engine, 3)
    for contact, channel, status, days in log:
        _log(engine, ids[contact], channel, status, NOW + timedelta(days=days))
    with engine.connect() as connection:
        events = consent_log(connection, now=NOW)
        names = [consent_names(c, k) for c, k in CHANNELS.items()]
        bulk = latest_granted(events, names, {cid: i for i, cid in enumerate(ids)}, len(ids))
        one_by_one = [
            [current_consent(connection, contact_id=cid, names=n, now=NOW).granted for n in names]
            for cid in ids
        ]
    assert bulk.tolist() == one_by_one
