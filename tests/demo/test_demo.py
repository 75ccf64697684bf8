"""`tummler demo`: the whole loop on a simulated brand, through the real store and services.

Ground truth comes from the simulator: every round's true expected reward is known for tummler's
sends and for each baseline on the same state. The store must hold what the loop did (one decision
per planned contact, one delivery per send, the simulated responses attached to their decisions,
one new policy version per round), the HTML report must carry the curve, and a seed must give the
same run twice.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from tummler.app.workspace import open_store
from tummler.cli import demo as demo_cli
from tummler.cli.main import app
from tummler.core.clock import FrozenClock
from tummler.core.errors import ConfigError, InputError
from tummler.core.settings import load_settings
from tummler.core.vocabulary import ChannelKind, DeliveryStatus
from tummler.demo import (
    DEMO_MARKER,
    DemoReport,
    SeedsReport,
    paired_differences,
    run_demo,
    run_seeds,
    totals,
)
from tummler.demo.brand import DEMO_BRAND, DemoBrand
from tummler.demo.round import RESPONSE_SOURCE, STAGE_SOURCE
from tummler.simulate import (
    BASELINE_NAMES,
    ResponseModel,
    baseline_values,
    initial_state,
    make_population,
)
from tummler.store.models import (
    Campaign,
    ConsentEvent,
    ContactChange,
    Decision,
    Delivery,
    Event,
    PolicyVersion,
)

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
#: Fewer levers than the demo's own brand (e-mail and SMS at two hours, both variants): the same
#: loop, with a smaller action space for learning and evaluation to chew on.
TINY = DemoBrand(channels=(ChannelKind.EMAIL, ChannelKind.SMS), hours=(8, 19))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    directory = tmp_path_factory.mktemp("demo") / "ws"
    return run_demo(directory, clock=FrozenClock(NOW), contacts=400, rounds=3, seed=3, brand=TINY)


def _count(directory: Path, model: type, *where: object) -> int:
    engine = open_store(load_settings(directory))
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(model)
            if where:
                query = query.where(*where)  # type: ignore[arg-type]
            return int(connection.scalar(query) or 0)
    finally:
        engine.dispose()


def test_the_store_holds_what_each_step_did(small: DemoReport) -> None:
    ws = small.workspace
    rounds = small.rounds
    assert [r.number for r in rounds] == [1, 2, 3]
    assert _count(ws, Campaign) == 3
    # one lever per contact: one decision per planned contact, holdouts included
    assert _count(ws, Decision) == sum(r.audience for r in rounds)
    assert _count(ws, Decision, Decision.holdout.is_(True)) == sum(r.holdout for r in rounds)
    assert _count(ws, Delivery) == sum(r.planned for r in rounds)
    sent = _count(ws, Delivery, Delivery.status == DeliveryStatus.SENT.value)
    bounced = _count(ws, Delivery, Delivery.status == DeliveryStatus.FAILED.value)
    assert sent + bounced == sum(r.sent for r in rounds) > 0
    # every simulated response came back through the callbacks, attached to its decision
    clicks = _count(ws, Event, Event.type == "clicked", Event.source == RESPONSE_SOURCE)
    assert clicks == sum(r.clicks for r in rounds) > 0
    assert _count(ws, Event, Event.source == RESPONSE_SOURCE, Event.decision_id.is_(None)) == 0
    # unsubscribes and complaints revoked consent as they came back; stages moved, with history
    withdrew = _count(
        ws, Event, Event.type.in_(["unsubscribed", "complained"]), Event.source == RESPONSE_SOURCE
    )
    assert sum(r.revoked for r in rounds) == withdrew > 0
    assert _count(ws, ConsentEvent, ConsentEvent.source.like(f"%:{RESPONSE_SOURCE}")) == withdrew
    assert _count(ws, ContactChange, ContactChange.source == STAGE_SOURCE) == sum(
        r.stages_moved for r in rounds
    )
    assert sum(r.stages_moved for r in rounds) > 0
    # version 0 (the prior) and one learned version per round
    assert _count(ws, PolicyVersion) == 1 + len(rounds)
    assert all(r.learned == f"engagement@{r.number}" for r in rounds)


def test_the_curve_has_every_baseline_and_the_oracle_is_best(small: DemoReport) -> None:
    for r in small.rounds:
        assert set(r.baselines) == set(BASELINE_NAMES)
        assert r.baselines["oracle"] > 0
    # the first round starts every world from the same state: there no one-lever policy beats
    # the myopic oracle; later rounds are played each in its own world
    first = small.rounds[0]
    for name in ("random", "best single action"):
        assert first.baselines["oracle"] >= first.baselines[name] - 1e-9, name
    assert first.baselines["oracle"] >= first.tummler - 1e-9


def test_paired_differences_over_the_seeds() -> None:
    one = paired_differences([{"tummler": 5.0, "send to all": 7.0, "oracle": 9.0}])
    assert [d.baseline for d in one] == ["send to all", "oracle"]
    assert one[0].per_seed == (-2.0,)
    assert one[0].wins == 0
    assert np.isnan(one[0].low)
    assert np.isnan(one[0].high)
    with pytest.raises(InputError, match="at least one seed"):
        paired_differences([])
    with pytest.raises(InputError, match="confidence"):
        paired_differences([{"tummler": 1.0}], confidence=1.0)


def test_several_seeds_keep_the_first_workspace_and_compare_every_baseline(tmp_path: Path) -> None:
    seen: list[int] = []
    report = run_seeds(
        tmp_path / "ws",
        seeds=2,
        seed=21,
        clock=FrozenClock(NOW),
        contacts=150,
        rounds=2,
        brand=TINY,
        on_seed=lambda number, _done: seen.append(number),
    )
    assert seen == [21, 22]
    assert report.seeds == (21, 22)
    assert report.first.workspace == tmp_path / "ws"
    assert report.first.html.is_file()
    assert report.totals[0] == totals(report.first)
    assert report.totals[0] != report.totals[1]
    by_name = {d.baseline: d for d in report.differences}
    assert next(iter(by_name)) == "send to all"
    for name, d in by_name.items():
        assert d.per_seed == pytest.approx(tuple(t["tummler"] - t[name] for t in report.totals))
        assert d.low <= d.mean <= d.high
    with pytest.raises(InputError, match="seeds must be between 1 and 20"):
        run_seeds(tmp_path / "other", seeds=0, clock=FrozenClock(NOW))


def test_the_html_report_carries_the_curve(small: DemoReport) -> None:
    text = small.html.read_text(encoding="utf-8")
    assert small.html == small.workspace / "report.html"
    assert 'id="plot-simulated-learning"' in text
    start = text.index('<section id="simulated-learning">')
    section = text[start : text.index("</section>", start)]
    for name in ("tummler", *BASELINE_NAMES):
        assert name in section
    assert (small.workspace / DEMO_MARKER).is_file()


def test_the_same_seed_gives_the_same_run(tmp_path: Path) -> None:
    def run(name: str, seed: int) -> DemoReport:
        return run_demo(
            tmp_path / name, clock=FrozenClock(NOW), contacts=150, rounds=2, seed=seed, brand=TINY
        )

    one, two = run("a", 11), run("b", 11)
    assert [replace(r, evaluation="") for r in one.rounds] == [
        replace(r, evaluation="") for r in two.rounds
    ]
    other = run("c", 12)
    assert [r.tummler for r in other.rounds] != [r.tummler for r in one.rounds]


def test_smtp_sends_the_e_mails_to_the_loopback_server(tmp_path: Path) -> None:
    report = run_demo(
        tmp_path / "ws",
        clock=FrozenClock(NOW),
        contacts=150,
        rounds=1,
        seed=5,
        smtp=True,
        brand=TINY,
    )
    emails = _count(
        report.workspace,
        Delivery,
        Delivery.channel == "email",
        Delivery.status.in_([DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value]),
    )
    assert report.smtp_received == emails > 0


def test_baselines_are_valued_only_for_the_audience() -> None:
    population = make_population(300, np.random.default_rng(1), origin=NOW)
    model = ResponseModel()
    message = DEMO_BRAND.message("m")
    nobody = baseline_values(
        population,
        model,
        initial_state(population),
        message,
        DEMO_BRAND.action_space(),
        NOW,
        audience=np.zeros(population.n, bool),
        rng=np.random.default_rng(2),
    )
    assert all(v == 0.0 for v in nobody.value.values())
    assert all(n == 0 for n in nobody.sends.values())


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"contacts": 10}, InputError, "contacts must be at least 50"),
        ({"rounds": 0}, InputError, "rounds must be between 1 and 60"),
        ({"rounds": 61}, InputError, "rounds must be between 1 and 60"),
        ({"cohorts": 0}, InputError, "cohorts must be between"),
    ],
)
def test_bad_arguments(
    tmp_path: Path, options: dict[str, int], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        run_demo(
            tmp_path / "ws",
            clock=FrozenClock(NOW),
            contacts=options.get("contacts", 100),
            rounds=options.get("rounds", 2),
            cohorts=options.get("cohorts"),
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"channels": ()}, "needs at least one channel kind"),
        ({"hours": (7, 12)}, "hours must be distinct local hours from 8 to 20"),
        ({"hours": (12, 12)}, "hours must be distinct"),
        ({"variants": DEMO_BRAND.variants[:1] * 2}, "variant keys must be distinct"),
        ({"attributes": ("shoe_size",)}, "unknown contact attribute"),
    ],
)
def test_bad_brands(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        replace(DEMO_BRAND, **options)


def test_a_store_that_holds_data_is_refused(
    small: DemoReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUMMLER_DATABASE_URL", f"sqlite:///{small.workspace / 'tummler.db'}")
    with pytest.raises(ConfigError, match="already holds 400 contacts"):
        run_demo(tmp_path / "ws", clock=FrozenClock(NOW), contacts=100, rounds=1, brand=TINY)
    assert _count(small.workspace, Campaign) == 3


def test_a_directory_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("not a demo", encoding="utf-8")
    with pytest.raises(ConfigError, match="not empty and was not made by `tummler demo`"):
        run_demo(tmp_path, clock=FrozenClock(NOW), contacts=100, rounds=1)
    assert (tmp_path / "mine.txt").read_text(encoding="utf-8") == "not a demo"


def test_running_again_starts_afresh_and_says_so(tmp_path: Path) -> None:
    steps: list[str] = []
    first = run_demo(tmp_path / "ws", clock=FrozenClock(NOW), contacts=120, rounds=1, brand=TINY)
    again = run_demo(
        tmp_path / "ws",
        clock=FrozenClock(NOW),
        contacts=120,
        rounds=1,
        brand=TINY,
        on_step=steps.append,
    )
    assert not first.started_fresh
    assert again.started_fresh
    assert any(step.startswith("starting fresh") for step in steps)
    assert _count(again.workspace, Campaign) == 1
    assert _count(again.workspace, Decision) == again.rounds[0].audience


def test_the_command(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    result = CliRunner().invoke(app, ["demo", str(target), "--contacts", "150", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    for words in ("oracle", "True value", "report.html", "tummler explain", "tummler minus each"):
        assert words in result.output
    assert (target / "report.html").is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine", encoding="utf-8")
    refused = CliRunner().invoke(app, ["demo", str(tmp_path / "other"), "--rounds", "1"])
    assert refused.exit_code != 0
    assert isinstance(refused.exception, ConfigError)


@pytest.mark.parametrize("scale", [1, 150])
def test_the_results_table_fits_80_columns(
    small: DemoReport, scale: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 60 rounds (the most the command allows) of the small run's rounds, at their own size and at
    # about the size of a million-contact brand's (15,000 sends a round): every round on one
    # line, no cell cut short ("12,3…"), nothing past column 80 (a pipe's or CI's width).
    rounds = tuple(
        replace(
            small.rounds[i % len(small.rounds)],
            number=i + 1,
            sent=small.rounds[i % len(small.rounds)].sent * scale,
            clicks=small.rounds[i % len(small.rounds)].clicks * scale,
            tummler=-small.rounds[i % len(small.rounds)].tummler * scale,
            baselines={
                k: v * scale for k, v in small.rounds[i % len(small.rounds)].baselines.items()
            },
            policy=f"demo@{i}",
            learned=f"demo@{i + 1}",
            promoted=i % 2 == 1,
        )
        for i in range(60)
    )
    screen = io.StringIO()
    terminal = Console(width=80, file=screen, color_system=None)
    monkeypatch.setattr(demo_cli, "console", terminal)
    demo_cli._show(replace(small, rounds=rounds))
    shown = screen.getvalue()
    assert "…" not in shown
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    rule = next(i for i, line in enumerate(lines) if line.startswith("───"))
    rows = [line.split() for line in lines[rule + 1 : rule + 1 + len(rounds)]]
    for r, row in zip(rounds, rows, strict=True):
        policy = f"v{r.number - 1}→v{r.number}" if r.promoted else f"v{r.number - 1}"
        assert row[:2] == [str(r.number), policy]
        assert len(row) == 5 + len(BASELINE_NAMES)
    assert lines[rule + 1 + len(rounds)].split()[0] == "total"
    assert "oracle" in shown


def test_the_progress_line_keeps_the_brackets_of_a_path(
    small: DemoReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each step is both printed and shown as the progress bar's description, which Rich also
    # reads as markup: "[eu]" in a directory's name must reach the terminal in both
    directory = tmp_path / "brand[eu]"

    def steps_only(where: Path, *, on_step: Any, **_: Any) -> SeedsReport:
        on_step(f"starting fresh: removing the earlier demo run in {where}")
        summed = (totals(small),)
        return SeedsReport(small, (7,), summed, paired_differences(summed), (1.0,))

    screen = io.StringIO()
    terminal = Console(width=200, file=screen, force_terminal=True, color_system=None)
    monkeypatch.setattr(demo_cli, "console", terminal)
    monkeypatch.setattr("tummler.demo.run_seeds", steps_only)
    demo_cli.demo(directory, contacts=50, rounds=1, seed=7, seeds=1, smtp=False, html=None)
    shown = screen.getvalue()
    line = f"starting fresh: removing the earlier demo run in {directory}"
    assert shown.count(line) == 2, shown  # the printed line and the progress bar's last frame


@pytest.mark.slow
def test_tummler_learns_to_beat_random(tmp_path: Path) -> None:
    report = run_demo(
        tmp_path / "ws", clock=FrozenClock(NOW), contacts=1_200, rounds=3, seed=7, brand=TINY
    )
    ours = [r.tummler for r in report.rounds]
    random = [r.baselines["random"] for r in report.rounds]
    assert sum(ours) > sum(random)
    assert report.rounds[0].promoted
