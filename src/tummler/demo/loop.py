"""``tummler demo``: the whole loop on a simulated brand, through the real store and services.

The demo makes a workspace for the simulator's brand (:mod:`tummler.simulate`: about 20,000
contacts, their channels, consent and social graph, and 90 days of legacy blasts and mentions,
imported with the real importer), writes a strategy with one objective and a campaign per round,
and then, round after round:

1. **plan** the round's campaign with the objective's promoted policy (:func:`plan_campaign`);
2. **deliver** it through the outbox (:func:`enqueue`, :func:`run_outbox`) to the file sink, and
   e-mails to a loopback SMTP server when asked, each delivery when it falls due;
3. let the simulated people **respond** to what was really sent, and record their responses as
   provider reports carrying each delivery's message id (:func:`record_events`), whose
   unsubscribes and complaints revoke consent as they are stored; stages move
   (:func:`set_stages`);
4. **learn** a new policy version from the attributed rewards (:func:`learn_from_store`), and
   **promote** it only when off-policy evaluation says it is better (:func:`promote`, never
   forced), so that the next round plans with it;
5. **measure** the round: the true expected reward of tummler's sends (the simulator knows it)
   against random, send-to-all, best single action and the (myopic) oracle, each played for the
   same audience in its own copy of the simulated world (:class:`BaselineWorlds`: the same
   people, history and response seeds), so that the unsubscribes and fatigue a policy causes
   cost it in later rounds.

Each round addresses one cohort of the brand (a contiguous run of external ids, so a random share;
about 1,000 people by default): a different audience every round, as a brand's sends have, and what
keeps a round's outbox, learning and evaluation proportionate. The HTML report
(:func:`store_report` + :mod:`tummler.web`) ends it, with the learning curve against
the baselines.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from tummler.app.connectors import build_connectors
from tummler.app.ingest import ImportReport
from tummler.app.outbox import SendRules, Unsubscribe
from tummler.app.reporting import objective_specs, store_report
from tummler.app.strategy import check_workspace_strategy
from tummler.app.unsubscribe import unsubscribe_key
from tummler.app.workspace import StoreStatus, init_workspace, open_store, store_status
from tummler.core.clock import Clock, FrozenClock
from tummler.core.errors import ConfigError, InputError
from tummler.core.settings import Settings
from tummler.core.vocabulary import ChannelKind
from tummler.deliver import Connector, SmtpConnector
from tummler.demo.brand import (
    DEMO_BRAND,
    DemoBrand,
    cohort_bounds,
    import_brand,
    write_round_campaign,
    write_strategy,
)
from tummler.demo.play import ROUND_INTERVAL, DemoRound, RoundContext, Stopwatch, play_round
from tummler.demo.smtp import LoopbackSmtp
from tummler.simulate import (
    BASELINE_NAMES,
    BaselineWorlds,
    History,
    LegacyPolicy,
    Population,
    ResponseModel,
    SimulationState,
    history,
    make_population,
)
from tummler.strategy import Finding, Severity, Strategy
from tummler.web import SimulatedCurve, write_html

__all__ = ["BASELINE_NAMES", "DEMO_MARKER", "DemoReport", "DemoRound", "run_demo"]

#: The file that marks a directory as a demo workspace (a later run may then start it afresh).
DEMO_MARKER = ".tummler-demo"
#: Days of legacy history before the first round.
HISTORY_DAYS = 90
#: Where the demo's unsubscribe links point: ``tummler serve`` in its workspace, on its default port.
DEMO_PUBLIC_URL = "http://127.0.0.1:8000"
#: The legacy schedule: a weekly newsletter and a monthly SMS to everyone who consented.
_LEGACY = LegacyPolicy(email_weekdays=(1,))
#: About how many people a round addresses by default (the brand is split into cohorts this big).
_COHORT_SIZE = 1_000


@dataclass(frozen=True)
class DemoReport:
    """What the demo did: the imports, the strategy check, every round, the report, the time."""

    workspace: Path
    contacts: int
    imports: tuple[ImportReport, ...]
    findings: tuple[Finding, ...]
    rounds: tuple[DemoRound, ...]
    html: Path
    status: StoreStatus
    smtp_received: int | None
    seconds: Mapping[str, float] = field(default_factory=dict)
    started_fresh: bool = False
    #: A contact the last round decided for, to try ``tummler explain`` on.
    example_contact: str = ""


def _prepare(directory: Path, step: Callable[[str], None]) -> bool:
    """Refuse a directory that holds anything but an earlier demo; clear an earlier demo."""
    if not directory.exists() or not any(directory.iterdir()):
        return False
    if not (directory / DEMO_MARKER).is_file():
        raise ConfigError(
            f"{directory} is not empty and was not made by `tummler demo`: give the demo a new "
            "or empty directory (it never mixes its data with yours)"
        )
    step(f"starting fresh: removing the earlier demo run in {directory}")
    shutil.rmtree(directory)
    return True


def run_demo(
    directory: Path,
    *,
    clock: Clock,
    seed: int = 7,
    contacts: int = 20_000,
    rounds: int = 20,
    cohorts: int | None = None,
    smtp: bool = False,
    html: Path | None = None,
    brand: DemoBrand = DEMO_BRAND,
    on_step: Callable[[str], None] | None = None,
    on_round: Callable[[DemoRound], None] | None = None,
) -> DemoReport:
    """Make a demo workspace in ``directory`` and run ``rounds`` rounds of the whole loop.

    Parameters
    ----------
    directory
        The workspace to make. An earlier demo there is removed first (``on_step`` says so); any
        other non-empty directory is refused.
    clock
        "Now": the rounds end the day before it (so ``tummler report`` sees them all), the
        history runs 90 days before the first. Only its date matters: the same seed on the same
        day gives the same run.
    seed
        Seeds the population, its history, every plan and every response.
    contacts
        Size of the brand (at least 50).
    rounds
        Plan → deliver → respond → learn → evaluate cycles (1 to 60), one a day.
    cohorts
        How many cohorts the brand is split into (each round addresses the next one, in turn);
        default: cohorts of about 1,000 people, at most one per round.
    smtp
        Send the e-mails through the SMTP connector to a loopback SMTP server.
    html
        Where to write the HTML report; default ``<directory>/report.html``.
    brand
        The levers the strategy offers (channels, hours, variants, costs).
    on_step, on_round
        Told a short description before each step, and each round once it is done.

    Raises
    ------
    InputError
        When ``contacts`` or ``rounds`` is out of range.
    ConfigError
        When ``directory`` is not empty and holds no earlier demo.
    """
    cohorts = _checked_sizes(contacts, rounds, cohorts)
    step = on_step or (lambda _message: None)
    watch = Stopwatch()
    fresh = _prepare(directory, step)
    start = _first_round(clock, rounds)
    population_rng, history_rng, response_rng, baseline_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    with watch("simulate the brand"):
        step(f"simulating {contacts:,} people and {HISTORY_DAYS} days of history")
        model, population, past = _simulate(brand, contacts, start, population_rng, history_rng)

    store_clock = FrozenClock(start)
    with watch("workspace and import"):
        settings, engine, imports = _make_workspace(
            directory,
            brand,
            population,
            past,
            rounds=rounds,
            cohorts=cohorts,
            clock=store_clock,
            step=step,
        )

    with _disposed(engine), _loopback_smtp(smtp) as smtp_server:
        with watch("strategy check"):
            step("checking the strategy and its campaigns")
            strategy, findings = _checked_strategy(directory, engine, store_clock)
        run = RoundContext(
            engine=engine,
            directory=directory,
            brand=brand,
            population=population,
            model=model,
            cohorts=cohorts,
            clock=store_clock,
            rules=SendRules.from_strategy(strategy),
            on_complaint=strategy.consent.on_complaint,
            # e-mails carry working unsubscribe links: `tummler serve` in the demo's workspace
            unsubscribe=Unsubscribe(DEMO_PUBLIC_URL, unsubscribe_key(settings)),
            connectors=_connectors(settings, brand, store_clock, smtp_server),
            index={str(e): i for i, e in enumerate(population.external_id.tolist())},
            seed=seed,
            response_rng=response_rng,
            worlds=BaselineWorlds(population, model, past.state, baseline_rng),
            watch=watch,
            step=step,
        )
        done = _play(run, rounds, start=start, state=past.state, on_round=on_round)
        with watch("report"):
            step("writing the HTML report")
            target = html or directory / "report.html"
            as_of = start + (rounds + 1) * ROUND_INTERVAL
            _write_report(engine, strategy, done, target, as_of=as_of, seed=seed)
            status = store_status(engine)
        received = None if smtp_server is None else len(smtp_server.received)
    return DemoReport(
        workspace=directory,
        contacts=contacts,
        imports=imports,
        findings=findings,
        rounds=tuple(done),
        html=target,
        status=status,
        smtp_received=received,
        seconds=dict(watch.seconds),
        started_fresh=fresh,
        example_contact=cohort_bounds(population, cohorts, (rounds - 1) % cohorts)[0],
    )


@contextmanager
def _disposed(engine: Engine) -> Iterator[Engine]:
    """``engine``, disposed of on the way out, however the demo ends."""
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _loopback_smtp(wanted: bool) -> Iterator[LoopbackSmtp | None]:
    """A running loopback SMTP server when ``wanted`` (stopped on the way out), else ``None``."""
    if not wanted:
        yield None
        return
    with LoopbackSmtp() as server:
        yield server


def _simulate(
    brand: DemoBrand,
    contacts: int,
    start: datetime,
    population_rng: np.random.Generator,
    history_rng: np.random.Generator,
) -> tuple[ResponseModel, Population, History]:
    """The brand's response model, its people, and their legacy history over the days before
    ``start``."""
    model = brand.model()
    origin = start - timedelta(days=HISTORY_DAYS)
    population = make_population(contacts, population_rng, origin=origin)
    past = history(
        population, model, history_rng, days=HISTORY_DAYS, legacy=_LEGACY, brand=brand.name
    )
    return model, population, past


def _first_round(clock: Clock, rounds: int) -> datetime:
    """When the first round starts: the rounds end the day before ``clock``'s date (midnight UTC),
    so that ``tummler report`` sees them all."""
    today = clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - (rounds + 2) * ROUND_INTERVAL


def _connectors(
    settings: Settings, brand: DemoBrand, clock: Clock, smtp_server: LoopbackSmtp | None
) -> Callable[[], dict[str, Connector]]:
    """What the outbox sends through: the dry-run sinks, and the loopback SMTP server for e-mail
    when the demo runs one."""

    def chosen() -> dict[str, Connector]:
        built = build_connectors(settings, clock=clock, dry_run=True)
        if smtp_server is not None:
            built[ChannelKind.EMAIL.value] = SmtpConnector(
                host=smtp_server.host,
                port=smtp_server.port,
                sender=f"{brand.name} <news@northwind.example>",
                clock=clock,
            )
        return built

    return chosen


def _play(
    run: RoundContext,
    rounds: int,
    *,
    start: datetime,
    state: SimulationState,
    on_round: Callable[[DemoRound], None] | None,
) -> list[DemoRound]:
    """Play the rounds one a day from ``start``, each from the state the last one left."""
    done: list[DemoRound] = []
    for r in range(rounds):
        at = start + r * ROUND_INTERVAL
        run.clock.advance(at - run.clock.now())
        played, state = play_round(run, r, state=state, at=at)
        done.append(played)
        if on_round is not None:
            on_round(played)
    return done


def _checked_sizes(contacts: int, rounds: int, cohorts: int | None) -> int:
    """Refuse sizes out of range; the number of cohorts (by default, about 1,000 people each,
    at most one per round).

    Raises
    ------
    InputError
        When ``contacts``, ``rounds`` or ``cohorts`` is out of range.
    """
    if contacts < 50:
        raise InputError(f"contacts must be at least 50, got {contacts}", field="contacts")
    if not 1 <= rounds <= 60:
        raise InputError(f"rounds must be between 1 and 60, got {rounds}", field="rounds")
    if cohorts is None:
        cohorts = max(1, min(rounds, contacts // _COHORT_SIZE))
    if not 1 <= cohorts <= contacts // 10:
        raise InputError(
            f"cohorts must be between 1 and {contacts // 10}, got {cohorts}", field="cohorts"
        )
    return cohorts


def _make_workspace(
    directory: Path,
    brand: DemoBrand,
    population: Population,
    past: History,
    *,
    rounds: int,
    cohorts: int,
    clock: FrozenClock,
    step: Callable[[str], None],
) -> tuple[Settings, Engine, tuple[ImportReport, ...]]:
    """The demo's workspace with its strategy, a campaign per round, and the brand imported into
    its store (which must hold no contacts yet: the demo never mixes its data with a brand's).

    Raises
    ------
    ConfigError
        When the store already holds contacts.
    """
    step("making the workspace")
    settings = init_workspace(directory)
    (directory / DEMO_MARKER).write_text(
        "made by `tummler demo`; running it again here starts afresh\n", encoding="utf-8"
    )
    write_strategy(directory, brand, cohorts=cohorts, population=population)
    for r in range(rounds):
        write_round_campaign(directory, brand, index=r, cohort=r % cohorts)
    engine = open_store(settings)
    before = store_status(engine)
    held = before.counts.get("contacts", 0)
    if held:
        engine.dispose()
        raise ConfigError(
            f"the store at {before.database} already holds {held:,} contacts: "
            "the demo needs an empty store of its own (unset TUMMLER_DATABASE_URL to use "
            "the workspace's SQLite file)"
        )
    imports = import_brand(engine, directory / "data", population, past, clock=clock, step=step)
    return settings, engine, imports


def _checked_strategy(
    directory: Path, engine: Engine, clock: Clock
) -> tuple[Strategy, tuple[Finding, ...]]:
    """The demo's strategy and the check's findings; an error there is the demo's own bug.

    Raises
    ------
    ConfigError
        When the check finds an error.
    """
    loaded, findings = check_workspace_strategy(directory, engine=engine, clock=clock)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors or loaded.strategy is None:
        raise ConfigError(
            f"the demo's own strategy has errors (first: {errors[0] if errors else 'none'}); "
            "this is a bug in the demo, please report it"
        )
    return loaded.strategy.strategy, tuple(findings)


def _write_report(
    engine: Engine,
    strategy: Strategy,
    rounds: list[DemoRound],
    target: Path,
    *,
    as_of: datetime,
    seed: int,
) -> None:
    """The store's report as of ``as_of``, written as HTML with the rounds' simulated curve."""
    report = store_report(
        engine,
        as_of=as_of,
        specs=objective_specs(strategy),
        channel_costs={c.id: c.cost_per_send for c in strategy.channels},
        rng=seed,
    )
    write_html(report, target, simulated=_curve(rounds))


def _curve(rounds: list[DemoRound]) -> SimulatedCurve:
    series = [("tummler", tuple(r.tummler for r in rounds))]
    series += [(name, tuple(r.baselines[name] for r in rounds)) for name in BASELINE_NAMES]
    return SimulatedCurve(
        rounds=tuple(r.number for r in rounds),
        series=tuple(series),
        note=(
            "True expected reward per round (clicks − unsubscribes − 2 × complaints − cost), "
            "computed by the simulator, for the same contacts: the round's cohort less "
            "tummler's holdout. Each baseline is played in its own copy of the simulated world "
            "(same people, same response seeds), so the unsubscribes and fatigue it causes "
            "count against it in later rounds."
        ),
    )
