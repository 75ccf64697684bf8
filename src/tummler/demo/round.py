"""One round of the demo, between the store and the simulator: deliver, read back, answer.

The outbox sends each delivery when it is due, so the demo moves its clock from one due time to
the next (:func:`deliver_round`) instead of waiting a day; what was really sent is read back from
the store (:func:`sent_deliveries`) and played to the simulator; the simulator's outcomes come back
as provider reports carrying each delivery's provider message id (:func:`outcome_reports`), so they
attach to their delivery and decision the way a real provider's callbacks do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from tummler.app.callbacks import IncomingEvent
from tummler.app.campaign_sends import addressed_contacts, next_due, sends
from tummler.app.contacts import set_stages
from tummler.app.learning import promote
from tummler.app.outbox import OutboxReport, SendRules, Unsubscribe, run_outbox
from tummler.core.clock import Clock, FrozenClock
from tummler.core.errors import PolicyError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver import Connector
from tummler.simulate import (
    CHANNELS,
    STAGES,
    EventLog,
    Population,
    Sends,
    SimulationState,
)

__all__ = [
    "RESPONSE_SOURCE",
    "STAGE_SOURCE",
    "SentDeliveries",
    "deliver_round",
    "move_stages",
    "outcome_reports",
    "planned_audience",
    "promote_if_better",
    "sent_deliveries",
]

#: The ``source`` of the events the simulated people's responses are recorded under (the
#: imported history's events have the simulator's own, ``simulator``).
RESPONSE_SOURCE = "demo-provider"
#: The ``source`` of the stage changes the simulation makes (``contact_changes``).
STAGE_SOURCE = "simulation"


def deliver_round(
    engine: Engine,
    connectors: Callable[[], Mapping[str, Connector]],
    *,
    campaign: str,
    clock: FrozenClock,
    until: datetime,
    rules: SendRules,
    rng: np.random.Generator,
    unsubscribe: Unsubscribe,
) -> OutboxReport:
    """Work off ``campaign``'s deliveries as they fall due, up to ``until``.

    The clock jumps to the earliest pending delivery's ``scheduled_at`` and the outbox sends what
    is due then, with every send-time check (consent, quiet hours, caps) made at that moment;
    deferred deliveries come round again at their new time. One event loop serves the whole round,
    and ``connectors`` builds the connectors inside it (some hold asyncio primitives bound to the
    loop that first uses them).
    """

    async def work_off() -> OutboxReport:
        built = connectors()
        total = OutboxReport()
        while True:
            at = next_due(engine, campaign)
            if at is None:
                return total
            if at >= until:
                return total
            clock.advance(max(at - clock.now(), timedelta(0)))
            report = await run_outbox(
                engine,
                built,
                clock=clock,
                rng=rng,
                rules=rules,
                campaign=campaign,
                batch=500,
                concurrency=16,
                unsubscribe=unsubscribe,
            )
            total.outcomes += report.outcomes
            total.recovered += report.recovered
            if not report.outcomes:  # nothing was due after all (a connector missing): stop
                return total

    return asyncio.run(work_off())


@dataclass(frozen=True, eq=False)
class SentDeliveries:
    """A round's deliveries the outbox marked ``sent``, as the simulator's sends.

    ``contact``, ``channel`` (index into ``CHANNELS``), ``hour`` (local hour it went out at) and
    ``variant`` are aligned; ``message_id`` is each delivery's provider message id.
    """

    contact: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    hour: npt.NDArray[np.float64]
    variant: npt.NDArray[np.int64]
    message_id: tuple[str, ...]

    def sends(self) -> Sends:
        """The simulator's :class:`~tummler.simulate.Sends`."""
        return Sends(
            contact=self.contact, channel=self.channel, hour=self.hour, variant=self.variant
        )

    def message_ids(self) -> dict[tuple[int, str], str]:
        """(contact, channel id) → provider message id: one delivery per contact and channel."""
        return {
            (int(c), CHANNELS[ch].value): m
            for c, ch, m in zip(
                self.contact.tolist(), self.channel.tolist(), self.message_id, strict=True
            )
        }


def sent_deliveries(
    engine: Engine,
    campaign: str,
    *,
    contacts: Mapping[str, int],
    channels: Mapping[str, int],
    variants: Mapping[str, int],
) -> SentDeliveries:
    """Read ``campaign``'s sent deliveries and say, for each, whom (the population's index), on
    which channel, at which local hour (from the time it was really sent, in the contact's time
    zone) and with which variant."""
    sent = sends(engine, campaign)
    return SentDeliveries(
        contact=np.array([contacts[s.contact] for s in sent], np.int64),
        channel=np.array([channels[s.channel] for s in sent], np.int64),
        hour=np.array([_hour_of_day(s.sent_local) for s in sent], np.float64),
        variant=np.array([variants[s.variant] for s in sent], np.int64),
        message_id=tuple(s.message_id for s in sent),
    )


def _hour_of_day(at: datetime) -> float:
    """The local time of day of ``at`` in hours (09:30 is 9.5)."""
    return at.hour + at.minute / 60.0 + at.second / 3600.0


def outcome_reports(
    population: Population,
    events: EventLog,
    message_ids: Mapping[tuple[int, str], str],
    *,
    campaign: str,
) -> list[IncomingEvent]:
    """The simulator's events as provider reports: each names its delivery by provider message id
    (and its contact by external id, should the id match nothing), with a stable event id."""
    return [
        IncomingEvent(
            record.type,
            record.at,
            contact=str(population.external_id[record.contact]),
            channel=None if record.channel is None else ChannelKind(record.channel),
            value=record.value,
            source=RESPONSE_SOURCE,
            provider_event_id=record.provider_event_id,
            provider_message_id=(
                None
                if record.channel is None
                else message_ids.get((record.contact, record.channel))
            ),
        )
        for record in events.records(prefix=f"demo-{campaign}")
    ]


def planned_audience(
    engine: Engine, campaign: str, *, contacts: Mapping[str, int], size: int
) -> npt.NDArray[np.bool_]:
    """``(size,)``: the population's contacts ``campaign`` decided for and did not hold out."""
    external = addressed_contacts(engine, campaign)
    mask = np.zeros(size, np.bool_)
    mask[[contacts[e] for e in external]] = True
    return mask


def promote_if_better(
    engine: Engine, directory: Path, stored: str | None, *, clock: Clock, seed: int
) -> tuple[bool, str]:
    """Promote ``stored`` when the off-policy evaluation says it is better; never force."""
    if stored is None:
        return False, "nothing new to learn from"
    try:
        report = promote(engine, stored, workspace=directory, clock=clock, seed=seed, actor="demo")
    except PolicyError as exc:
        return False, f"kept the promoted version: {exc}"
    if report.promoted is None:  # not better: a tie with the promoted version
        return False, report.message
    previous = (
        "first promotion"
        if report.previous_estimate is None
        else f"{report.previous} estimated {report.previous_estimate:.4f}"
    )
    low = "" if report.candidate_ci_low is None else f", lower bound {report.candidate_ci_low:.4f}"
    return True, (
        f"promoted {report.promoted}: {report.estimator} estimate "
        f"{report.candidate_estimate:.4f}{low} ({previous})"
    )


def move_stages(
    engine: Engine,
    population: Population,
    before: SimulationState,
    after: SimulationState,
    *,
    at: datetime,
) -> int:
    """Write the stages the round moved, with their history (:func:`set_stages`); return how many
    contacts moved."""
    moved = np.flatnonzero(before.stage != after.stage)
    if moved.size == 0:
        return 0
    update = set_stages(
        engine,
        {str(population.external_id[i]): STAGES[int(after.stage[i])].value for i in moved.tolist()},
        at=at,
        source=STAGE_SOURCE,
    )
    return update.changed
