"""One round of the demo, as it really happens: plan, deliver, respond, learn, promote; and the
baselines played in their own copies of the world, for the same audience with the same seed.

:func:`play_round` drives the services for one round's campaign (:func:`plan_campaign`,
:func:`enqueue` and the outbox, :func:`record_events`, :func:`learn_from_store`, the promotion)
and says what happened in a :class:`DemoRound`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from tummler.app.callbacks import record_events
from tummler.app.learning import learn_from_store
from tummler.app.outbox import SendRules, Unsubscribe, enqueue
from tummler.app.planning import plan_campaign
from tummler.core.clock import FrozenClock
from tummler.core.randomness import make_rng
from tummler.deliver import Connector
from tummler.demo.brand import (
    OBJECTIVE,
    DemoBrand,
    channel_index,
    round_key,
    variant_index,
)
from tummler.demo.round import (
    SentDeliveries,
    deliver_round,
    move_stages,
    outcome_reports,
    planned_audience,
    promote_if_better,
    sent_deliveries,
)
from tummler.simulate import (
    BaselineWorlds,
    Message,
    Outcomes,
    Population,
    ResponseModel,
    RoundValues,
    SimulationState,
    outcome_events,
    respond,
)
from tummler.strategy import ComplaintScope

__all__ = ["ROUND_INTERVAL", "DemoRound", "RoundContext", "Stopwatch", "play_round"]

#: One round a day.
ROUND_INTERVAL = timedelta(days=1)
_EVENT_CHUNK = 2_000
#: Outbox outcomes that end a delivery without sending it.
_NOT_SENT = frozenset({"skipped", "failed", "dead", "unknown"})


@dataclass(frozen=True)
class DemoRound:
    """One round, as it really happened.

    Attributes
    ----------
    number, campaign, cohort
        1-based round number, its campaign's key and the cohort it addressed.
    audience, holdout, planned
        Contacts planned, held out, and decisions that send.
    sent, skipped
        Deliveries the outbox sent, and those it ended without sending (skipped at send time by
        consent, quiet hours or a cap; failed; given up).
    clicks, unsubscribes, complaints
        What the simulated people did with tummler's messages.
    revoked, stages_moved
        Consent revocations the unsubscribes and complaints wrote, and contacts whose stage moved.
    tummler, baselines
        True expected reward (clicks − unsubscribes − 2 × complaints − cost) of tummler's sends,
        and of each baseline's sends in its own copy of the world (the state its own earlier rounds
        left: its unsubscribes, its fatigue), for the same contacts (the cohort less tummler's
        holdout, whom nobody messages) with the same seed for the responses.
    realized
        The reward tummler's sends actually earned in the simulation.
    policy
        The policy version that planned the round.
    learned, promoted
        The version learned after the round, and whether it was promoted.
    evaluation
        The promotion's evidence in words.
    """

    number: int
    campaign: str
    cohort: int
    audience: int
    holdout: int
    planned: int
    sent: int
    skipped: int
    clicks: int
    unsubscribes: int
    complaints: int
    revoked: int
    stages_moved: int
    tummler: float
    baselines: Mapping[str, float]
    realized: float
    policy: str
    learned: str | None
    promoted: bool
    evaluation: str


class Stopwatch:
    """Seconds spent per named step, summed over the rounds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class RoundContext:
    """What every round of one demo run shares: the store and workspace, the simulated brand and
    its people, the send rules, the seeds and random streams, and the progress reporting."""

    engine: Engine
    directory: Path
    brand: DemoBrand
    population: Population
    model: ResponseModel
    cohorts: int
    clock: FrozenClock
    rules: SendRules
    #: What a simulated complaint revokes: the strategy's ``consent.on_complaint``.
    on_complaint: ComplaintScope
    unsubscribe: Unsubscribe
    connectors: Callable[[], dict[str, Connector]]
    #: External id → the person's index in the population.
    index: Mapping[str, int]
    seed: int
    #: Draws the event details (times, ids) of tummler's responses.
    response_rng: np.random.Generator
    #: Each baseline in its own copy of the world.
    worlds: BaselineWorlds
    watch: Stopwatch
    step: Callable[[str], None]


def play_round(
    run: RoundContext, r: int, *, state: SimulationState, at: datetime
) -> tuple[DemoRound, SimulationState]:
    """Plan, deliver, respond, learn and promote one round; play the baselines' round in their
    worlds."""
    key = round_key(r)
    label = f"round {r + 1}"
    engine, clock, watch, step = run.engine, run.clock, run.watch, run.step
    with watch("plan"):
        step(f"{label}: planning {key}")
        plan = plan_campaign(
            engine,
            workspace=run.directory,
            campaign_key=key,
            clock=clock,
            seed=run.seed * 1_000 + r,
        )
    with watch("deliver"):
        step(f"{label}: delivering")
        enqueue(engine, key, clock=clock)
        outbox = deliver_round(
            engine,
            run.connectors,
            campaign=key,
            clock=clock,
            until=at + ROUND_INTERVAL,
            rules=run.rules,
            rng=make_rng(run.seed * 1_000 + r),
            unsubscribe=run.unsubscribe,
        )
    with watch("simulated responses"):
        step(f"{label}: people respond")
        sent = sent_deliveries(
            engine,
            key,
            contacts=run.index,
            channels=channel_index(run.brand),
            variants=variant_index(run.brand),
        )
        message = run.brand.message(key)
        values = _baselines(run, r, key, message, at=at)
        after, outcomes, revoked = _respond(run, r, message, sent, state=state, at=at)
        moved_at = at + ROUND_INTERVAL - timedelta(seconds=1)
        moved = move_stages(engine, run.population, state, after, at=moved_at)
    with watch("attribute and learn"):
        step(f"{label}: learning")
        clock.advance(max(moved_at - clock.now(), timedelta(0)))
        # learn_from_store attributes the new events to their decisions first
        learned = learn_from_store(
            engine, workspace=run.directory, objective=OBJECTIVE, clock=clock
        )
        stored = learned[0].stored if learned else None
    with watch("evaluate and promote"):
        step(f"{label}: evaluating {stored or 'nothing new'}")
        promoted, evaluation = promote_if_better(
            engine, run.directory, stored, clock=clock, seed=run.seed
        )
    counts = outbox.counts
    done = DemoRound(
        number=r + 1,
        campaign=key,
        cohort=r % run.cohorts + 1,
        audience=plan.audience,
        holdout=plan.holdout,
        planned=sum(plan.sends_per_channel.values()),
        sent=len(sent.message_id),
        skipped=sum(n for status, n in counts.items() if status in _NOT_SENT),
        clicks=int(outcomes.clicked.sum()),
        unsubscribes=int(outcomes.unsubscribed.sum()),
        complaints=int(outcomes.complained.sum()),
        revoked=revoked,
        stages_moved=moved,
        tummler=float(outcomes.expected.sum()),
        baselines=dict(values.value),
        realized=float(outcomes.reward.sum()),
        policy=plan.policy,
        learned=stored,
        promoted=promoted,
        evaluation=evaluation,
    )
    return done, after


def _baselines(
    run: RoundContext, r: int, key: str, message: Message, *, at: datetime
) -> RoundValues:
    """The true value of each baseline's sends for round ``r``'s planned audience, each played in
    its own world with the seed tummler's responses are drawn with."""
    return run.worlds.play(
        message,
        run.brand.action_space(),
        at,
        audience=planned_audience(run.engine, key, contacts=run.index, size=run.population.n),
        seed=response_seed(run.seed, r),
        index=r,
    )


def response_seed(seed: int, r: int) -> np.random.SeedSequence:
    """The seed round ``r``'s responses are drawn with, in tummler's world and every baseline's
    (common random numbers)."""
    return np.random.SeedSequence([seed, 7_919, r])


def _respond(
    run: RoundContext,
    r: int,
    message: Message,
    sent: SentDeliveries,
    *,
    state: SimulationState,
    at: datetime,
) -> tuple[SimulationState, Outcomes, int]:
    """The simulated people's responses to what round ``r``'s campaign really sent, recorded as provider
    reports carrying each delivery's message id; the state after them, and the consent
    revocations their unsubscribes and complaints wrote."""
    key = round_key(r)
    draws = np.random.default_rng(response_seed(run.seed, r))
    after, outcomes = respond(run.population, run.model, state, message, sent.sends(), at, draws)
    events = outcome_events(run.population, outcomes, run.response_rng)
    reports = outcome_reports(run.population, events, sent.message_ids(), campaign=key)
    revoked = 0
    for start in range(0, len(reports), _EVENT_CHUNK):  # one provider request each
        chunk = reports[start : start + _EVENT_CHUNK]
        revoked += record_events(run.engine, chunk, on_complaint=run.on_complaint).revoked
    return after, outcomes, revoked
