"""For any interleaving of planning, sending, withdrawals and forgetting, nothing is sent after a
withdrawal or a forget.

A Hypothesis state machine drives the real services against the example brand (:mod:`ways_in`):
it plans the two one-channel campaigns, runs the outbox at times it chooses, withdraws people's
consent by every way in (the events API, SendGrid and Mailgun webhooks, an SMS ``STOP``, an
imported events file, an unsubscribe link, complaints), and forgets people. After every step it
reads what the outbox handed to its connector (a file sink) and what the store says was sent, and
checks that no message reached a person on a channel after tummler learned of the withdrawal, and
none at all after they were forgotten.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from sqlalchemy import select

from tummler.app.outbox import Unsubscribe, enqueue, run_outbox
from tummler.app.planning import plan_campaign
from tummler.app.privacy import forget_person
from tummler.app.unsubscribe import unsubscribe_key
from tummler.core.clock import FrozenClock
from tummler.core.randomness import make_rng
from tummler.core.settings import Settings
from tummler.deliver import FileSinkConnector
from tummler.store.database import connect
from tummler.store.models import Decision, Delivery
from ways_in import WAYS, Brand, open_brand, via_api, via_import, via_sendgrid

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
#: Time moves between a send and what follows it, so that "after" is told by the clock.
_TICK = timedelta(seconds=1)
PEOPLE = 6
#: Every way in, and the channel its withdrawal is for (complaints revoke their channel: the
#: example strategy says ``on_complaint: channel``).
WITHDRAWALS = {
    **{name: (way, channel, {}) for name, (way, channel) in WAYS.items()},
    "api-complaint": (via_api, "email", {"kind": "complained"}),
    "sendgrid-spamreport": (via_sendgrid, "email", {"kind": "spamreport"}),
    "import-complaint": (via_import, "sms", {"kind": "complained"}),
}


class Trust(RuleBasedStateMachine):
    """One brand per run, on SQLite (the template the test suite migrated once)."""

    template: Path

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="tummler-trust-"))
        shutil.copyfile(self.template, self.root / "tummler.db")
        self.engine = connect(f"sqlite:///{self.root / 'tummler.db'}")
        self.clock = FrozenClock(NOW)
        self.stack = ExitStack()
        self.brand: Brand = self.stack.enter_context(
            open_brand(self.engine, self.root, self.clock, people=PEOPLE)
        )
        self.sink = self.root / "handed-over.jsonl"
        self.planned: set[str] = set()
        self.withdrawn: dict[tuple[int, str], datetime] = {}
        self.forgotten: dict[int, datetime] = {}

    def teardown(self) -> None:
        self.stack.close()
        self.engine.dispose()
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize(channel=st.sampled_from(["email", "sms"]))
    def plan_first(self, channel: str) -> None:
        self.plan(channel)

    @rule(channel=st.sampled_from(["email", "sms"]))
    def plan(self, channel: str) -> None:
        campaign = f"trust-{channel}"
        if campaign in self.planned:
            return
        plan_campaign(
            self.engine,
            workspace=self.brand.workspace,
            campaign_key=campaign,
            clock=self.clock,
            seed=11,
        )
        enqueue(self.engine, campaign, clock=self.clock)
        self.planned.add(campaign)

    @rule(days=st.integers(0, 1), hour=st.integers(10, 19))
    def send(self, days: int, hour: int) -> None:
        """Run the outbox at ``hour`` o'clock (UTC, the people's zone) ``days`` later: daytime,
        when neither channel's quiet hours hold sends back."""
        now = self.clock.now()
        target = now.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
        if target <= now:
            target += timedelta(days=1)
        self.clock.advance(target - now)
        key = unsubscribe_key(Settings(workspace=self.brand.workspace))
        connectors = {
            "email": FileSinkConnector(self.sink, clock=self.clock),
            "sms": FileSinkConnector(self.sink, clock=self.clock),
        }
        asyncio.run(
            run_outbox(
                self.engine,
                connectors,
                clock=self.clock,
                rng=make_rng(hour),
                unsubscribe=Unsubscribe("https://brand.example/u", key),
            )
        )

    @rule(person=st.integers(0, PEOPLE - 1), way=st.sampled_from(sorted(WITHDRAWALS)))
    def withdraw(self, person: int, way: str) -> None:
        self.clock.advance(_TICK)
        call, channel, options = WITHDRAWALS[way]
        call(self.brand, self.brand.people[person], channel, **options)
        self.withdrawn.setdefault((person, channel), self.clock.now())

    @rule(person=st.integers(0, PEOPLE - 1))
    def forget(self, person: int) -> None:
        if person in self.forgotten:
            return
        self.clock.advance(_TICK)
        who = self.brand.people[person].external_id
        forget_person(self.engine, person=who, actor="dpo", clock=self.clock, rng=make_rng(person))
        self.forgotten[person] = self.clock.now()

    def _stop(self, person: int, channel: str) -> datetime | None:
        """Since when nothing may reach ``person`` on ``channel``."""
        times = [
            t for t in (self.withdrawn.get((person, channel)), self.forgotten.get(person)) if t
        ]
        return min(times) if times else None

    @invariant()
    def nothing_reached_anyone_after_they_withdrew_or_were_forgotten(self) -> None:
        if not self.sink.exists():
            return
        whom: dict[tuple[str, str], int] = {}
        for index, person in enumerate(self.brand.people):
            whom[("email", person.email)] = index
            whom[("sms", person.phone)] = index
        for line in self.sink.read_text(encoding="utf-8").splitlines():
            message = json.loads(line)
            who = whom[(message["channel"], message["to"])]
            stop = self._stop(who, message["channel"])
            handed = datetime.fromisoformat(message["written_at"])
            assert stop is None or handed < stop, (who, message["channel"], handed, stop)

    @invariant()
    def the_store_agrees(self) -> None:
        with self.engine.connect() as connection:
            sent = connection.execute(
                select(Decision.contact_id, Delivery.channel, Delivery.sent_at)
                .join(Delivery, Delivery.decision_id == Decision.id)
                .where(Delivery.status == "sent")
            ).all()
        index = {person.id: i for i, person in enumerate(self.brand.people)}
        for contact_id, channel, sent_at in sent:
            stop = self._stop(index[contact_id], channel)
            assert stop is None or sent_at < stop, (contact_id, channel, sent_at, stop)


@pytest.mark.slow
def test_no_send_follows_a_withdrawal_or_a_forget_in_any_order(sqlite_template: Path) -> None:
    Trust.template = sqlite_template
    case = Trust.TestCase
    case.settings = settings(max_examples=30, stateful_step_count=12, deadline=None)
    case().runTest()
