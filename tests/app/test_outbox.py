"""The outbox against real loopback servers, on SQLite and PostgreSQL: every delivery ends sent
exactly once, or failed / dead / skipped / unknown with its reason — nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from cli_app import rooted_cli_app
from deliver_servers import PROVIDER_REASON, RETRY_AFTER_S, Fault, HttpServer, SmtpServer, free_port
from tummler.app.outbox import (
    IN_FLIGHT,
    ChannelRule,
    MessageComposer,
    OutboxReport,
    SendRules,
    Unsubscribe,
    enqueue,
    idempotency_key,
    run_outbox,
)
from tummler.app.unsubscribe import honour_unsubscribe
from tummler.core.clock import FrozenClock
from tummler.core.errors import ConfigError, NotFoundError
from tummler.core.randomness import make_rng
from tummler.core.vocabulary import ChannelKind, ConsentStatus, Override
from tummler.deliver import (
    BlueskyConnector,
    Connector,
    FileSinkConnector,
    SmtpConnector,
    TokenBucket,
    WebhookConnector,
)
from tummler.store import models
from tummler.store.database import session_scope

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = "pw-Zq81-never-in-a-log-line"
UNSUBSCRIBE = Unsubscribe("https://brand.test", SecretStr("unsubscribe-key-for-tests"))


# ------------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Seeded:
    campaign: str
    contact_ids: list[int]
    holdout_ids: list[int]

    def key(self, contact_id: int, channel: str = "email") -> str:
        return idempotency_key(self.campaign, contact_id, channel)


def seed_campaign(
    engine: Engine,
    *,
    n: int = 5,
    campaign: str = "spring",
    channel: str = "email",
    holdouts: int = 1,
    no_sends: int = 1,
    subject: str | None = "Hello {{ first_name }}",
    body: str = "Hi {{ first_name }}, spring is here.\n",
    address: str = "person{i}@example.org",
    time_zone: str = "UTC",
    urgency: str = "normal",
    category: str = "marketing",
    at: datetime = NOW,
) -> Seeded:
    """``n`` consenting contacts with a decision each on ``channel``, plus holdout and no-send rows."""
    with session_scope(engine) as session:
        row = models.Campaign(
            key=campaign,
            objective="growth",
            definition={"message": {"urgency": urgency, "category": category}},
            created_at=at,
            updated_at=at,
        )
        session.add(row)
        session.flush()
        message = models.Message(campaign_id=row.id, key="main", attributes={})
        session.add(message)
        session.flush()
        variant = models.Variant(
            message_id=message.id, channel=channel, key="a", subject=subject, body=body
        )
        session.add(variant)
        session.flush()
        ids: list[int] = []
        held: list[int] = []
        for i in range(n + holdouts + no_sends):
            contact = models.Contact(
                external_id=f"{campaign}-c{i}",
                attributes={"first_name": f"Person{i}"},
                time_zone=time_zone,
                created_at=at,
                updated_at=at,
            )
            session.add(contact)
            session.flush()
            session.add(
                models.ChannelIdentity(
                    contact_id=contact.id,
                    channel=channel,
                    address=address.format(i=i, campaign=campaign),
                    created_at=at,
                )
            )
            session.add(
                models.ConsentEvent(
                    contact_id=contact.id,
                    channel=channel,
                    status=ConsentStatus.GRANTED.value,
                    source="signup",
                    at=at - timedelta(days=300),
                    recorded_at=at - timedelta(days=300),
                )
            )
            holdout = n <= i < n + holdouts
            no_send = i >= n + holdouts
            session.add(
                models.Decision(
                    campaign_id=row.id,
                    contact_id=contact.id,
                    lever=0,
                    channel=None if no_send else channel,
                    send_at=None if no_send else at,
                    variant_id=None if no_send else variant.id,
                    action=0,
                    propensity=0.5,
                    holdout=holdout,
                    reasons={},
                    decided_at=at,
                )
            )
            if holdout:
                held.append(contact.id)
            elif not no_send:
                ids.append(contact.id)
    return Seeded(campaign, ids, held)


def deliveries(engine: Engine) -> dict[str, tuple[str, str | None, int]]:
    """``{key: (status, last_error, attempts)}``."""
    with engine.connect() as connection:
        return {
            row.idempotency_key: (row.status, row.last_error, row.attempts)
            for row in connection.execute(
                select(
                    models.Delivery.idempotency_key,
                    models.Delivery.status,
                    models.Delivery.last_error,
                    models.Delivery.attempts,
                )
            )
        }


def by_status(engine: Engine) -> Counter[str]:
    return Counter(status for status, _, _ in deliveries(engine).values())


def smtp(
    server: SmtpServer | None = None,
    *,
    port: int | None = None,
    timeout: float = 5.0,
    credentials: bool = False,
) -> SmtpConnector:
    return SmtpConnector(
        host="127.0.0.1",
        port=port if port is not None else server.port if server else free_port(),
        sender="Brand <news@brand.example>",
        username="brand" if credentials else None,
        password=SecretStr(SECRET) if credentials else None,
        timeout=timeout,
        clock=FrozenClock(NOW),
    )


def work(
    engine: Engine, connectors: dict[str, Connector], clock: FrozenClock, **options: Any
) -> OutboxReport:
    """One pass of the outbox in its own event loop, closing the connectors after it; e-mails get
    unsubscribe links unless ``unsubscribe=None`` is given."""
    options.setdefault("rng", make_rng(7))
    options.setdefault("unsubscribe", UNSUBSCRIBE)

    async def one_pass() -> OutboxReport:
        try:
            return await run_outbox(engine, connectors, clock=clock, **options)
        finally:
            for connector in connectors.values():
                await connector.aclose()

    return asyncio.run(one_pass())


@pytest.fixture
def smtp_server() -> Any:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture
def http_server() -> Any:
    server = HttpServer(bluesky_password=SECRET)
    yield server
    server.close()


# --------------------------------------------------------------------------------------- enqueue


def test_enqueue_makes_one_delivery_per_send_decision_and_never_a_second(engine: Engine) -> None:
    seeded = seed_campaign(engine, n=4, holdouts=2, no_sends=3)
    clock = FrozenClock(NOW)
    first = enqueue(engine, "spring", clock=clock)
    again = enqueue(engine, "spring", clock=clock)
    assert (first.decisions, first.created, first.existing) == (4, 4, 0)
    assert (again.created, again.existing) == (0, 4)
    keys = set(deliveries(engine))
    assert keys == {seeded.key(c) for c in seeded.contact_ids}
    assert not any(seeded.key(c) in keys for c in seeded.holdout_ids)


def test_enqueue_refuses_an_unknown_campaign(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="tummler plan nope"):
        enqueue(engine, "nope", clock=FrozenClock(NOW))


# ---------------------------------------------------------------------------------- happy path


def test_every_delivery_is_sent_once_rendered_with_its_unsubscribe_link(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    seeded = seed_campaign(engine, n=6)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    report = work(
        engine, {"email": smtp(smtp_server)}, clock, concurrency=3, unsubscribe=UNSUBSCRIBE
    )
    assert report.counts == Counter({"sent": 6})
    assert by_status(engine) == Counter({"sent": 6})
    received = smtp_server.received
    assert len(received) == 6
    ids = Counter(str(m.message["Message-ID"]) for m in received)
    assert max(ids.values()) == 1
    first = min(received, key=lambda m: str(m.message["To"]))
    assert str(first.message["Subject"]) == "Hello Person0"
    plain = first.message.get_body(("plain",))
    assert plain is not None
    assert "Hi Person0, spring is here." in plain.get_content()
    link = str(first.message["List-Unsubscribe"]).strip()
    assert link.startswith("<https://brand.test/unsubscribe/")
    # the link in the header is honoured: it revokes e-mail consent of exactly that contact
    token = link.strip("<>").rsplit("/", 1)[1]
    result = honour_unsubscribe(engine, token, key=UNSUBSCRIBE.key, clock=clock)
    assert result.contact_id == seeded.contact_ids[0]
    assert result.recorded
    # a second run finds nothing due and sends nothing
    again = work(engine, {"email": smtp(smtp_server)}, clock)
    assert again.outcomes == []
    assert len(smtp_server.received) == 6


def test_the_provider_message_id_is_recorded_for_callbacks(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    seeded = seed_campaign(engine, n=1)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    work(engine, {"email": smtp(smtp_server)}, clock)
    with engine.connect() as connection:
        stored = connection.scalar(select(models.Delivery.provider_message_id))
        sent_at = connection.scalar(select(models.Delivery.sent_at))
    assert stored == str(smtp_server.received[0].message["Message-ID"])
    assert sent_at == NOW
    assert seeded.key(seeded.contact_ids[0])


# --------------------------------------------------------------------------- unsubscribe links


@pytest.mark.parametrize(
    ("campaigns", "scope", "refused"),
    [
        ([("spring", "email", "marketing")], None, True),
        ([("receipts", "email", "transactional")], None, False),
        ([("spring", "webhook", "marketing")], None, False),
        # one marketing campaign among transactional ones refuses the whole run...
        ([("receipts", "email", "transactional"), ("spring", "email", "marketing")], None, True),
        # ...unless the run is for the transactional campaign only
        (
            [("receipts", "email", "transactional"), ("spring", "email", "marketing")],
            "receipts",
            False,
        ),
    ],
)
def test_marketing_email_without_an_unsubscribe_link_is_refused_before_anything_is_sent(
    engine: Engine,
    smtp_server: SmtpServer,
    http_server: HttpServer,
    campaigns: list[tuple[str, str, str]],
    scope: str | None,
    refused: bool,
) -> None:
    clock = FrozenClock(NOW)
    for key, channel, category in campaigns:
        seed_campaign(
            engine,
            n=2,
            campaign=key,
            channel=channel,
            category=category,
            holdouts=0,
            no_sends=0,
            address="{campaign}{i}@example.org",
        )
        enqueue(engine, key, clock=clock)
    http_server.webhook_secret = SECRET
    connectors: dict[str, Connector] = {
        "email": smtp(smtp_server),
        "webhook": WebhookConnector(
            url=f"{http_server.url}/hook", secret=SecretStr(SECRET), clock=clock
        ),
    }
    if refused:
        with pytest.raises(ConfigError) as raised:
            work(engine, connectors, clock, unsubscribe=None, campaign=scope)
        message = str(raised.value)
        assert "marketing e-mails would go out without an unsubscribe link" in message
        assert "--public-url" in message
        assert "category: transactional" in message
        assert smtp_server.received == []
        assert http_server.received == []
        assert set(by_status(engine)) == {"pending"}  # nothing claimed, nothing lost
        return
    report = work(engine, connectors, clock, unsubscribe=None, campaign=scope)
    assert report.counts == Counter({"sent": 2})
    for mail in smtp_server.received:
        assert "List-Unsubscribe" not in mail.message  # transactional: no link to give


def test_a_marketing_email_enqueued_after_the_refusal_check_is_skipped_not_sent(
    engine: Engine,
) -> None:
    """The send-time check backs up the refusal: a composer without links never renders one."""
    seed_campaign(engine, n=1, holdouts=0, no_sends=0)
    enqueue(engine, "spring", clock=FrozenClock(NOW))
    with engine.connect() as connection:
        delivery_id = connection.scalar(select(models.Delivery.id))
    assert delivery_id is not None
    composer = MessageComposer(engine, rules=SendRules(), clock=FrozenClock(NOW), unsubscribe=None)
    context = composer.load(delivery_id)
    rule = SendRules().rule("email")
    assert rule is not None
    verdict = composer.check(context, rule, NOW)
    assert verdict is not None
    assert verdict.status == "skipped"
    assert "without an unsubscribe link" in verdict.reason
    assert "--public-url" in verdict.reason


def test_the_one_click_link_of_a_sent_email_unsubscribes_through_the_http_app(
    engine: Engine, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """End to end: the e-mail the SMTP server received carries RFC 8058 headers, and POSTing its
    link to the app (as a mailbox provider's unsubscribe button does) revokes consent, so the
    next campaign's e-mail to that person is skipped at send time."""
    from fastapi.testclient import TestClient

    from tummler.api import ApiSettings, create_app
    from tummler.app.unsubscribe import unsubscribe_key
    from tummler.core.settings import Settings

    settings = Settings(workspace=tmp_path)
    links = Unsubscribe("https://brand.test", unsubscribe_key(settings))
    seeded = seed_campaign(engine, n=1, holdouts=0, no_sends=0)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    assert work(engine, {"email": smtp(smtp_server)}, clock, unsubscribe=links).counts == Counter(
        {"sent": 1}
    )
    [mail] = smtp_server.received
    assert str(mail.message["List-Unsubscribe-Post"]).strip() == "List-Unsubscribe=One-Click"
    link = str(mail.message["List-Unsubscribe"]).strip()
    assert link.startswith("<https://brand.test/unsubscribe/")
    assert link.endswith(">")
    path = link.strip("<>").removeprefix("https://brand.test")
    app = create_app(settings, engine, api_settings=ApiSettings(), clock=clock)
    with TestClient(app) as client:
        response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    contact = seeded.contact_ids[0]
    with engine.connect() as connection:
        latest = connection.execute(
            select(models.ConsentEvent.status, models.ConsentEvent.source)
            .where(models.ConsentEvent.contact_id == contact)
            .order_by(models.ConsentEvent.id.desc())
            .limit(1)
        ).one()
    assert tuple(latest) == ("revoked", "unsubscribe-link")
    # the next campaign for the same person: skipped at send time, never sent
    with session_scope(engine) as session:
        first = session.scalar(select(models.Decision).where(models.Decision.contact_id == contact))
        assert first is not None
        later = models.Campaign(
            key="summer", objective="growth", definition={}, created_at=NOW, updated_at=NOW
        )
        session.add(later)
        session.flush()
        session.add(
            models.Decision(
                campaign_id=later.id,
                contact_id=contact,
                lever=0,
                channel="email",
                send_at=NOW,
                variant_id=first.variant_id,
                action=0,
                propensity=0.5,
                holdout=False,
                reasons={},
                decided_at=NOW,
            )
        )
    summer = clock.advance(timedelta(hours=1))
    enqueue(engine, "summer", clock=summer)
    report = work(engine, {"email": smtp(smtp_server)}, summer, unsubscribe=links)
    assert report.counts == Counter({"skipped": 1})
    assert len(smtp_server.received) == 1


# ------------------------------------------------------------------------------- send-time checks


def test_a_revoke_between_plan_and_send_wins(engine: Engine, smtp_server: SmtpServer) -> None:
    seeded = seed_campaign(engine, n=3)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    revoked = seeded.contact_ids[1]
    with session_scope(engine) as session:
        session.add(
            models.ConsentEvent(
                contact_id=revoked,
                channel="email",
                status=ConsentStatus.REVOKED.value,
                source="unsubscribe-link",
                at=NOW - timedelta(minutes=1),
                recorded_at=NOW,
            )
        )
    work(engine, {"email": smtp(smtp_server)}, clock)
    state = deliveries(engine)
    status, reason, _ = state[seeded.key(revoked)]
    assert status == "skipped"
    assert reason is not None
    assert "consent revoked" in reason
    assert "unsubscribe-link" in reason
    assert by_status(engine) == Counter({"sent": 2, "skipped": 1})
    assert "person1@example.org" not in {m.rcpt_tos[0] for m in smtp_server.received}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_never_sends_to_a_revoked_consent_whatever_the_order_of_events(
    engine: Engine, tmp_path: Path, seed: int
) -> None:
    """Random grants and revokes before and after the send: what counts is the latest by ``at``
    up to the moment of sending, on the channel id or its kind."""
    rng = make_rng(seed)
    seeded = seed_campaign(engine, n=12, holdouts=0, no_sends=0)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    expected_sent: set[str] = set()
    with session_scope(engine) as session:
        for contact_id in seeded.contact_ids:
            latest = ("granted", NOW - timedelta(days=300))  # the grant seed_campaign wrote
            for _ in range(int(rng.integers(0, 4))):
                status = "revoked" if rng.random() < 0.5 else "granted"
                at = NOW + timedelta(minutes=float(rng.uniform(-600, 600)))
                session.add(
                    models.ConsentEvent(
                        contact_id=contact_id,
                        channel="email",
                        status=status,
                        source="test",
                        at=at,
                        recorded_at=NOW,
                    )
                )
                if at <= NOW and at >= latest[1]:
                    latest = (status, at)
            if latest[0] == "granted":
                expected_sent.add(seeded.key(contact_id))
    sink = FileSinkConnector(tmp_path / "out.jsonl", clock=clock)
    report = work(engine, {"email": sink}, clock)
    state = deliveries(engine)
    assert {k for k, (s, _, _) in state.items() if s == "sent"} == expected_sent
    assert {k for k, (s, _, _) in state.items() if s == "skipped"} == set(state) - expected_sent
    lines = (tmp_path / "out.jsonl").read_text().splitlines() if expected_sent else []
    assert len(lines) == len(expected_sent) == report.counts["sent"]


def test_a_connectors_rate_limit_paces_the_outbox(engine: Engine, tmp_path: Path) -> None:
    seed_campaign(engine, n=5, holdouts=0, no_sends=0)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(2.0, burst=1, monotonic=lambda: now[0], sleep=fake_sleep)
    sink = FileSinkConnector(tmp_path / "out.jsonl", clock=clock, rate_limit=bucket)
    report = work(engine, {"email": sink}, clock, concurrency=5)
    assert report.counts == Counter({"sent": 5})
    assert now[0] == pytest.approx(2.0)  # five sends at two a second, the first one free


def test_quiet_hours_defer_to_their_end_in_the_contacts_time_zone(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    # 12:00 UTC is 21:00 in Tokyo: inside 20:00-08:00 quiet hours, which end at 23:00 UTC.
    seed_campaign(engine, n=2, time_zone="Asia/Tokyo")
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    rules = SendRules(
        channels={
            "email": ChannelRule(ChannelKind.EMAIL, quiet_hours=(clock_time(20), clock_time(8)))
        }
    )
    report = work(engine, {"email": smtp(smtp_server)}, clock, rules=rules)
    assert report.counts == Counter({"deferred": 2})
    with engine.connect() as connection:
        due = set(connection.scalars(select(models.Delivery.scheduled_at)))
        attempts = set(connection.scalars(select(models.Delivery.attempts)))
    assert due == {datetime(2026, 3, 2, 23, 0, tzinfo=UTC)}
    assert attempts == {0}
    assert smtp_server.received == []
    clock.advance(timedelta(hours=11))
    assert work(engine, {"email": smtp(smtp_server)}, clock, rules=rules).counts == {"sent": 2}


def test_the_fatigue_cap_is_checked_again_at_send_time(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    first = seed_campaign(engine, n=2, campaign="first", address="a{i}@example.org")
    clock = FrozenClock(NOW)
    enqueue(engine, "first", clock=clock)
    work(engine, {"email": smtp(smtp_server)}, clock)
    # two more campaigns for the same people: with a cap of one send a week, only a critical
    # message (whose strategy lets it override the fatigue cap) may go out
    with session_scope(engine) as session:
        variant_id = session.scalar(select(models.Variant.id))
        for key, urgency in (("second", "normal"), ("alert", "critical")):
            campaign = models.Campaign(
                key=key,
                objective="growth",
                definition={"message": {"urgency": urgency}},
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(campaign)
            session.flush()
            for contact_id in first.contact_ids:
                session.add(
                    models.Decision(
                        campaign_id=campaign.id,
                        contact_id=contact_id,
                        lever=0,
                        channel="email",
                        send_at=NOW,
                        variant_id=variant_id,
                        action=0,
                        propensity=0.5,
                        holdout=False,
                        reasons={},
                        decided_at=NOW,
                    )
                )
    enqueue(engine, "second", clock=clock)
    enqueue(engine, "alert", clock=clock)
    rules = SendRules(
        fatigue_window=timedelta(days=7),
        fatigue_cap=1,
        critical_overrides=frozenset({Override.FATIGUE}),
    )
    report = work(engine, {"email": smtp(smtp_server)}, clock, rules=rules, campaign="second")
    assert report.counts == Counter({"skipped": 2})
    assert all("fatigue cap" in (o.reason or "") for o in report.outcomes)
    assert len(smtp_server.received) == 2
    critical = work(engine, {"email": smtp(smtp_server)}, clock, rules=rules, campaign="alert")
    assert critical.counts == Counter({"sent": 2})
    # a week later the window has passed: nothing is left to send, nothing was sent twice
    clock.advance(timedelta(days=8))
    assert work(engine, {"email": smtp(smtp_server)}, clock, rules=rules).outcomes == []
    assert len(smtp_server.received) == 4


def test_a_template_that_cannot_render_fails_with_the_field(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_campaign(engine, n=1, body="Hi {{ nickname }}")
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    report = work(engine, {"email": smtp(smtp_server)}, clock)
    assert report.counts == Counter({"failed": 1})
    ((status, reason, _),) = deliveries(engine).values()
    assert status == "failed"
    assert reason is not None
    assert "'nickname' is undefined" in reason


# ------------------------------------------------------------------------------------- faults


def test_a_rejecting_server_fails_the_delivery_with_the_providers_reason(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_campaign(engine, n=2)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    smtp_server.fault = Fault.REJECTED
    report = work(engine, {"email": smtp(smtp_server)}, clock)
    assert report.counts == Counter({"failed": 2})
    for status, reason, attempts in deliveries(engine).values():
        assert status == "failed"
        assert attempts == 1
        assert reason is not None
        assert "550" in reason
        assert PROVIDER_REASON in reason


def test_temporary_failures_back_off_with_jitter_then_go_dead(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_campaign(engine, n=2)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    smtp_server.fault = Fault.TEMPORARY
    options: dict[str, Any] = {
        "max_attempts": 3,
        "base_delay": timedelta(seconds=10),
        "rng": make_rng(3),
    }
    seen: list[timedelta] = []
    for attempt in range(1, 4):
        report = work(engine, {"email": smtp(smtp_server)}, clock, **options)
        expected = "retry" if attempt < 3 else "dead"
        assert report.counts == Counter({expected: 2}), attempt
        with engine.connect() as connection:
            due = list(connection.scalars(select(models.Delivery.scheduled_at)))
        if attempt < 3:
            waits = [d - clock.now() for d in due]
            ceiling = timedelta(seconds=10 * 2 ** (attempt - 1))
            assert all(timedelta(0) <= w <= ceiling for w in waits)
            seen += waits
            # nothing is due before its time: a run now claims nothing
            if min(waits) > timedelta(0):
                assert work(engine, {"email": smtp(smtp_server)}, clock, **options).outcomes == []
            clock.advance(ceiling)
    assert len(set(seen)) == len(seen)  # full jitter: no two waits alike
    for status, reason, attempts in deliveries(engine).values():
        assert status == "dead"
        assert attempts == 3
        assert reason is not None
        assert "451" in reason
        assert "gave up after 3 attempts" in reason
    assert smtp_server.received == []


def test_a_refused_connection_is_retried_and_later_sent(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    seed_campaign(engine, n=3)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    nobody = free_port()
    assert work(engine, {"email": smtp(port=nobody)}, clock).counts == Counter({"retry": 3})
    clock.advance(timedelta(hours=1))
    assert work(engine, {"email": smtp(smtp_server)}, clock).counts == Counter({"sent": 3})
    assert len(smtp_server.received) == 3


@pytest.mark.parametrize("fault", [Fault.DROP, Fault.HANG])
def test_smtp_in_doubt_resends_with_the_same_message_id(
    engine: Engine, smtp_server: SmtpServer, fault: Fault
) -> None:
    seed_campaign(engine, n=2)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    smtp_server.fault = fault
    report = work(engine, {"email": smtp(smtp_server, timeout=0.3)}, clock)
    assert report.counts == Counter({"retry": 2})
    assert all("may have accepted" in (o.reason or "") for o in report.outcomes)
    smtp_server.fault = None
    clock.advance(timedelta(hours=1))
    assert work(engine, {"email": smtp(smtp_server)}, clock).counts == Counter({"sent": 2})
    doubtful = Counter(str(m.message["Message-ID"]) for m in smtp_server.in_doubt)
    accepted = Counter(str(m.message["Message-ID"]) for m in smtp_server.received)
    assert set(doubtful) == set(accepted)
    assert max(accepted.values()) == 1


@pytest.mark.parametrize(
    ("fault", "outcome", "words"),
    [
        (Fault.TEMPORARY, "retry", "503"),
        (Fault.REJECTED, "failed", "422"),
        (Fault.RATE_LIMITED, "retry", "429"),
        (Fault.UNAUTHORIZED, "failed", "401"),
        (Fault.DROP, "retry", "may have accepted"),
    ],
)
def test_webhook_faults_end_sent_once_or_failed_with_the_reason(
    engine: Engine, http_server: HttpServer, fault: Fault, outcome: str, words: str
) -> None:
    seed_campaign(engine, n=3, channel="webhook", subject=None, address="subscriber-{i}")
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    http_server.webhook_secret = SECRET
    http_server.fault = fault
    http_server.fault_paths = frozenset({"/hook"})

    def connector() -> WebhookConnector:
        return WebhookConnector(
            url=f"{http_server.url}/hook", secret=SecretStr(SECRET), timeout=2.0, clock=clock
        )

    report = work(engine, {"webhook": connector()}, clock)
    assert report.counts == Counter({outcome: 3})
    assert all(
        words in (o.reason or "") and SECRET not in (o.reason or "") for o in report.outcomes
    )
    if fault is Fault.RATE_LIMITED:
        with engine.connect() as connection:
            due = list(connection.scalars(select(models.Delivery.scheduled_at)))
        assert all(d >= NOW + timedelta(seconds=RETRY_AFTER_S) for d in due)
    http_server.fault = None
    clock.advance(timedelta(hours=2))
    final = work(engine, {"webhook": connector()}, clock)
    received = Counter(r.headers["idempotency-key"] for r in http_server.posted("/hook"))
    if outcome == "failed":
        assert final.outcomes == []
        assert received == Counter()
    else:
        assert final.counts == Counter({"sent": 3})
        assert len(received) == 3
        assert max(received.values()) == 1
        # a dropped request was resent with the same key: the receiver can tell it is a copy
        doubtful = {r.headers["idempotency-key"] for r in http_server.in_doubt}
        assert doubtful <= set(received)


def test_bluesky_in_doubt_is_held_as_unknown_for_a_person(
    engine: Engine, http_server: HttpServer
) -> None:
    seed_campaign(engine, n=2, channel="bluesky", subject=None, address="@p{i}.test")
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    http_server.fault = Fault.DROP
    http_server.fault_paths = frozenset(
        {"/xrpc/com.atproto.repo.createRecord", "/xrpc/chat.bsky.convo.sendMessage"}
    )
    connector = BlueskyConnector(
        identifier="brand.test",
        app_password=SecretStr(SECRET),
        service_url=http_server.url,
        timeout=2.0,
    )
    rules = SendRules(channels={"bluesky": ChannelRule(ChannelKind.BLUESKY, public=True)})
    report = work(engine, {"bluesky": connector}, clock, rules=rules)
    assert report.counts == Counter({"unknown": 2})
    for status, reason, _ in deliveries(engine).values():
        assert status == "unknown"
        assert reason is not None
        assert "cannot de-duplicate" in reason
    # nothing is retried behind a person's back
    http_server.fault = None
    clock.advance(timedelta(days=1))
    assert work(engine, {"bluesky": connector}, clock, rules=rules).outcomes == []


def test_no_secret_reaches_a_log_line_or_the_store(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    server = SmtpServer(credentials=("brand", SECRET))
    try:
        seed_campaign(engine, n=2)
        clock = FrozenClock(NOW)
        enqueue(engine, "spring", clock=clock)
        caplog.set_level(logging.DEBUG)
        server.fault = Fault.UNAUTHORIZED
        work(engine, {"email": smtp(server, credentials=True)}, clock)
        server.fault = None
        work(engine, {"email": smtp(server, credentials=True)}, clock)
    finally:
        server.close()
    assert by_status(engine) == Counter({"failed": 2})
    assert caplog.records, "the outbox and the connector log what they do"
    for record in caplog.records:
        assert SECRET not in record.getMessage()
    for _, reason, _ in deliveries(engine).values():
        assert reason is not None
        assert SECRET not in reason
        assert "535" in reason


def test_channels_without_a_connector_stay_pending(engine: Engine, tmp_path: Path) -> None:
    seed_campaign(engine, n=2, channel="sms", subject=None, address="+1415555267{i}")
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    sink = FileSinkConnector(tmp_path / "out.jsonl", clock=clock)
    assert work(engine, {"email": sink}, clock).outcomes == []
    assert by_status(engine) == Counter({"pending": 2})
    assert work(engine, {"sms": sink}, clock).counts == Counter({"sent": 2})
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("concurrency", 0, "concurrency must be at least 1"),
        ("max_attempts", 0, "max_attempts must be at least 1"),
        ("batch", -1, "batch must be at least 1"),
        ("lease", timedelta(seconds=-1), "lease must not be negative"),
    ],
)
def test_bad_worker_options_are_refused(
    engine: Engine, tmp_path: Path, option: str, value: Any, message: str
) -> None:
    sink = FileSinkConnector(tmp_path / "out.jsonl")
    with pytest.raises(ConfigError, match=message):
        work(engine, {"email": sink}, FrozenClock(NOW), **{option: value})


# ------------------------------------------------------------------------- crash and restart


class NoIdempotencySink(FileSinkConnector):
    """A real file sink that, like Bluesky, cannot de-duplicate a resend."""

    name: ClassVar[str] = "bluesky"
    resend_in_doubt: ClassVar[bool] = False


@pytest.mark.parametrize(
    ("channel", "mark", "status", "words"),
    [
        ("email", True, "sent", None),  # in doubt, SMTP: resent with the same Message-ID
        ("email", False, "sent", None),  # only claimed: nothing went out, simply sent
        ("bluesky", True, "unknown", "cannot de-duplicate"),  # in doubt, no idempotency: held
        ("bluesky", False, "sent", None),  # only claimed: safe to send
    ],
)
def test_a_stale_lease_is_recovered_by_the_connectors_policy(
    engine: Engine,
    smtp_server: SmtpServer,
    tmp_path: Path,
    channel: str,
    mark: bool,
    status: str,
    words: str | None,
) -> None:
    address = "p{i}@example.org" if channel == "email" else "@p{i}.test"
    seeded = seed_campaign(engine, n=1, channel=channel, address=address)
    clock = FrozenClock(NOW)
    enqueue(engine, "spring", clock=clock)
    with session_scope(engine) as session:
        delivery = session.scalars(select(models.Delivery)).one()
        delivery.status = "sending"
        delivery.updated_at = NOW - timedelta(minutes=6)
        delivery.attempts = 1 if mark else 0
        delivery.last_error = f"{IN_FLIGHT}{NOW - timedelta(minutes=6)}" if mark else None
    sink: Connector = (
        smtp(smtp_server) if channel == "email" else NoIdempotencySink(tmp_path / "out.jsonl")
    )
    report = work(engine, {channel: sink}, clock, lease=timedelta(minutes=5))
    assert report.recovered == 1
    state = deliveries(engine)[seeded.key(seeded.contact_ids[0], channel)]
    assert state[0] == status
    if words is not None:
        assert state[1] is not None
        assert words in state[1]
    # a lease that has not run out is left alone
    assert work(engine, {channel: sink}, clock, lease=timedelta(minutes=5)).recovered == 0


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import timedelta
    from pydantic import SecretStr
    from tummler.app.outbox import Unsubscribe, run_outbox
    from tummler.core.clock import SystemClock
    from tummler.core.randomness import make_rng
    from tummler.deliver import SmtpConnector
    from tummler.store.database import connect

    url, port, lease = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    engine = connect(url)
    connector = SmtpConnector(host="127.0.0.1", port=port, sender="news@brand.example", timeout=5)
    links = Unsubscribe("https://brand.test", SecretStr("unsubscribe-key-for-tests"))
    report = asyncio.run(run_outbox(engine, {"email": connector}, clock=SystemClock(),
                                    rng=make_rng(1), concurrency=3, batch=10,
                                    lease=timedelta(seconds=lease), unsubscribe=links))
    print(dict(report.counts), report.recovered)
    """
)


class SlowSmtp:
    """aiosmtpd that records each message as it arrives, then takes its time to say 250: a worker
    killed meanwhile leaves the message received but its delivery ``sending``."""

    def __init__(self, delay: float) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[str] = []
        self.delay = delay
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import email

        message = email.message_from_bytes(bytes(envelope.original_content or envelope.content))
        self.received.append(str(message["Message-ID"]))
        await asyncio.sleep(self.delay)
        return "250 OK"

    def close(self) -> None:
        self._controller.stop()


def _worker(url: str, port: int, lease: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(port), str(lease)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_worker_killed_mid_batch_and_restarted_loses_and_doubles_nothing(
    engine: Engine,
) -> None:
    n = 24
    seeded = seed_campaign(engine, n=n, holdouts=0, no_sends=0)
    enqueue(engine, "spring", clock=FrozenClock(NOW))
    server = SlowSmtp(delay=0.1)
    url = engine.url.render_as_string(hide_password=False)
    try:
        first = _worker(url, server.port, 300.0)
        deadline = time.monotonic() + 30
        while len(server.received) < 6 and time.monotonic() < deadline:
            if first.poll() is not None:
                break
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        _, first_err = first.communicate(timeout=10)
        assert first.returncode == -signal.SIGKILL, first_err
        before = Counter(deliveries(engine)[k][0] for k in deliveries(engine))
        assert before["sending"] >= 1, before  # killed in the middle of a batch
        assert before["sent"] < n
        left = {k: e for k, (s, e, _) in deliveries(engine).items() if s == "sending"}
        # handed over at the kill (the only ones that may arrive twice) vs only claimed
        in_flight = {k for k, e in left.items() if (e or "").startswith(IN_FLIGHT)}
        assert in_flight, left
        # restart with a lease of zero: whatever is still `sending` belonged to the dead worker
        second = _worker(url, server.port, 0.0)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert int(out.split()[-1]) == len(left)  # every lease it found was recovered
    finally:
        server.close()
    state = deliveries(engine)
    assert Counter(s for s, _, _ in state.values()) == Counter({"sent": n})
    received = Counter(server.received)
    from tummler.deliver import stable_message_id

    expected = {stable_message_id(seeded.key(c), "brand.example") for c in seeded.contact_ids}
    assert set(received) == expected  # nothing lost
    doubled = {mid for mid, count in received.items() if count > 1}
    in_flight_ids = {stable_message_id(k, "brand.example") for k in in_flight}
    assert max(received.values()) <= 2
    assert doubled <= in_flight_ids  # only the messages in flight at the kill, same Message-ID


# ------------------------------------------------------------------------------------------ CLI


def test_tummler_send_refuses_marketing_email_without_a_public_url_then_sends_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    from typer.testing import CliRunner

    from tummler.app.workspace import init_workspace, open_store
    from tummler.cli.send import deliveries as deliveries_command
    from tummler.cli.send import send as send_command

    workspace = tmp_path / "ws"
    settings = init_workspace(workspace)
    # the example strategy's quiet hours would make this test depend on the time of day
    (workspace / "strategy.yaml").unlink()
    store = open_store(settings)
    try:
        seed_campaign(store, n=3, at=datetime.now(UTC) - timedelta(minutes=5))
    finally:
        store.dispose()
    monkeypatch.setenv("TUMMLER_WORKSPACE", str(workspace))
    monkeypatch.delenv("TUMMLER_PUBLIC_URL", raising=False)
    for name, value in {
        "TUMMLER_SMTP_HOST": "127.0.0.1",
        "TUMMLER_SMTP_PORT": str(smtp_server.port),
        "TUMMLER_SMTP_SENDER": "news@brand.example",
        "TUMMLER_SMTP_TLS": "none",
    }.items():
        monkeypatch.setenv(name, value)
    app = rooted_cli_app(send_command, deliveries_command)
    runner = CliRunner()
    refused = runner.invoke(app, ["send", "--once", "--campaign", "spring"])
    assert isinstance(refused.exception, ConfigError), refused.output
    assert "3 marketing e-mails would go out without an unsubscribe link" in str(refused.exception)
    assert "--public-url" in str(refused.exception)
    assert smtp_server.received == []
    # in production the link must be https: one-click unsubscribe (RFC 8058) takes nothing else
    with monkeypatch.context() as production:
        production.setenv("TUMMLER_ENVIRONMENT", "production")
        production.setenv("TUMMLER_SECRET_KEY", "a-long-random-production-key")
        plain = runner.invoke(app, ["send", "--once", "--public-url", "http://brand.test"])
    assert isinstance(plain.exception, ConfigError), plain.output
    assert "must be an https URL in production" in str(plain.exception)
    assert smtp_server.received == []
    result = runner.invoke(
        app, ["send", "--once", "--campaign", "spring", "--public-url", "https://brand.test"]
    )
    assert result.exit_code == 0, result.output
    assert "3 sent" in result.output
    for mail in smtp_server.received:
        link = str(mail.message["List-Unsubscribe"]).strip()
        assert link.startswith("<https://brand.test/unsubscribe/")
        assert str(mail.message["List-Unsubscribe-Post"]).strip() == "List-Unsubscribe=One-Click"
    assert len(smtp_server.received) == 3
    listed = runner.invoke(app, ["deliveries", "--status", "sent"])
    assert listed.exit_code == 0, listed.output
    assert "3 sent" in listed.output
    assert "spring" in listed.output
    bad = runner.invoke(app, ["deliveries", "--status", "lost"])
    assert bad.exit_code != 0
    assert "unknown status 'lost'" in str(bad.exception)
