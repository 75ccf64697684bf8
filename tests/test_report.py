"""`tummler report`: the service on a store seeded with a known effect, --json, --log, and --html
opened in headless Chromium (it renders, its plots are there, it asks the network for nothing)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from typer.testing import CliRunner

from tummler.app.logs import experiment_to_log
from tummler.app.report_html import render_store_html, write_html
from tummler.app.reporting import ObjectiveSpec, log_report, parse_as_of, store_report
from tummler.app.workspace import init_workspace, open_store
from tummler.cli import report as report_cli
from tummler.cli.main import _root
from tummler.core.errors import InputError, NotFoundError
from tummler.measure import Verdict
from tummler.store.database import session_scope
from tummler.store.models import (
    Campaign,
    Contact,
    Decision,
    Event,
    Message,
    PolicyVersion,
    Variant,
)

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
AS_OF = datetime(2026, 4, 1, tzinfo=UTC)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: The truth the store is seeded with: conversion rate of treated and held-out people.
SPRING = {"treated": 0.15, "holdout": 0.05, "n": 2400, "holdout_share": 0.25}
QUIET = {"treated": 0.10, "holdout": 0.10, "n": 1200, "holdout_share": 0.5}
SPECS = {
    "sales": ObjectiveSpec("sales", "converted", "rate", relative_lift=0.5),
    "retention": ObjectiveSpec("retention", "converted", "rate", relative_lift=0.2),
}
COSTS = {"email": 0.05, "sms": 0.20}

runner = CliRunner()


def _cli() -> typer.Typer:
    """The command as the lead registers it, on the real root callback (``--workspace``)."""
    app = typer.Typer()
    app.callback()(_root)
    app.command()(report_cli.report)
    return app


def seed(engine: Engine, seed: int = 7) -> None:
    """Two campaigns: ``spring`` raises conversion from 5 % to 15 %; ``quiet`` changes nothing.

    ``spring`` sends by e-mail or SMS (each with propensity 1/2) at a random hour of the week,
    with variants A and B (same true rate), from policy v1 in the first half and v2 after.
    """
    rng = np.random.default_rng(seed)
    with session_scope(engine) as session:
        v1 = PolicyVersion(name="spring", version=1, kind="thompson", created_at=T0)
        v2 = PolicyVersion(
            name="spring", version=2, kind="thompson", created_at=T0 + timedelta(days=3)
        )
        session.add_all([v1, v2])
        session.flush()
        for key, objective, truth in (("spring", "sales", SPRING), ("quiet", "retention", QUIET)):
            campaign = Campaign(
                key=key,
                objective=objective,
                holdout_share=truth["holdout_share"],
                created_at=T0,
                updated_at=T0,
            )
            session.add(campaign)
            session.flush()
            message = Message(campaign_id=campaign.id, key="main", attributes={})
            session.add(message)
            session.flush()
            variants = [
                Variant(message_id=message.id, channel="email", key=k, body=f"body {k}")
                for k in ("A", "B")
            ]
            contacts = [
                Contact(external_id=f"{key}-{i}", created_at=T0, updated_at=T0, stage="subscriber")
                for i in range(int(truth["n"]))
            ]
            session.add_all([*variants, *contacts])
            session.flush()
            decisions = []
            for i, contact in enumerate(contacts):
                holdout = bool(rng.random() < truth["holdout_share"])
                decided = T0 + timedelta(days=int(i * 7 / len(contacts)), minutes=i % 600)
                # Sends go out in one of three daily slots, today or tomorrow.
                slot = int(rng.choice([9, 13, 18])) + 24 * int(rng.integers(0, 2))
                send_at = decided.replace(hour=0, minute=0) + timedelta(hours=slot)
                policy = v1 if i < len(contacts) // 2 else v2
                decisions.append(
                    Decision(
                        campaign_id=campaign.id,
                        contact_id=contact.id,
                        channel=None if holdout else str(rng.choice(["email", "sms"])),
                        send_at=None if holdout else send_at,
                        variant_id=None if holdout else variants[int(rng.integers(0, 2))].id,
                        action=0 if holdout else 1,
                        propensity=0.5,
                        policy_version_id=policy.id if key == "spring" else None,
                        holdout=holdout,
                        reasons={},
                        decided_at=decided,
                    )
                )
            session.add_all(decisions)
            session.flush()
            events = []
            for decision in decisions:
                rate = truth["holdout"] if decision.holdout else truth["treated"]
                at = decision.decided_at + timedelta(hours=50)
                if rng.random() < rate:
                    events.append((decision, "converted", 20.0, at))
                if not decision.holdout and rng.random() < 0.3:
                    events.append((decision, "clicked", None, at))
            session.add_all(
                Event(
                    contact_id=d.contact_id,
                    decision_id=d.id,
                    channel=d.channel,
                    type=kind,
                    value=value,
                    at=at,
                    source="test",
                    provider_event_id=f"{d.id}-{kind}",
                )
                for d, kind, value, at in events
            )


# ------------------------------------------------------------------------------- store report


def test_store_report_recovers_the_seeded_effect(engine: Engine) -> None:
    seed(engine)
    report = store_report(
        engine, as_of=AS_OF, specs=SPECS, channel_costs=COSTS, rng=np.random.default_rng(1)
    )
    by_key = {c.key: c for c in report.campaigns}
    assert sorted(by_key) == ["quiet", "spring"]

    spring = by_key["spring"]
    assert spring.lift is not None
    truth = SPRING["treated"] - SPRING["holdout"]
    assert spring.lift.difference_interval.contains(truth)
    assert spring.lift.verdict is Verdict.EFFECT
    assert spring.lift.message.startswith("campaign spring raised the share who converted by")
    assert spring.n_treated + spring.n_holdout == SPRING["n"] == spring.n_decisions
    # Variants A and B have the same true rate: neither is a sure winner.
    assert spring.variants is not None
    assert spring.variants.labels == ("A", "B")
    assert sum(spring.variants.probability_best) == pytest.approx(1.0)
    assert max(spring.variants.probability_best) < 0.99
    assert spring.sequential is not None
    # Randomized channel and send time, with propensities: causal, and the rates are near 15 %.
    assert spring.channels is not None
    assert spring.channels.causal
    assert set(spring.channels.cells) == {"email", "sms"}
    for low, high in zip(spring.channels.ci_low, spring.channels.ci_high, strict=True):
        assert low < SPRING["treated"] < high
    assert spring.send_time is not None
    assert spring.send_time.causal
    assert spring.roi is not None
    assert spring.roi.incremental_value > 0
    assert spring.breadth is not None
    assert spring.breadth.audience == SPRING["n"]
    assert spring.stages == {"subscriber": SPRING["n"]}
    assert spring.goal is not None

    quiet = by_key["quiet"]
    assert quiet.lift is not None
    assert quiet.lift.difference_interval.contains(0.0)
    assert quiet.lift.verdict in (Verdict.NO_EFFECT, Verdict.UNDERPOWERED)
    assert quiet.sequential is not None
    assert quiet.lift.message.split(" ")[0] in ("no", "too")

    assert [(p.policy, p.version) for p in report.learning_curve] == [("spring", 1), ("spring", 2)]
    assert {o.id for o in report.objectives} == {"sales", "retention"}
    sales = next(o for o in report.objectives if o.id == "sales")
    assert sales.campaigns == ("spring",)
    assert sales.goal is not None


@SQLITE_ONLY
def test_store_report_as_of_and_one_campaign(engine: Engine) -> None:
    seed(engine)
    early = store_report(engine, as_of=T0 + timedelta(days=1), campaign="spring", specs=SPECS)
    assert [c.key for c in early.campaigns] == ["spring"]
    assert 0 < early.campaigns[0].n_decisions < SPRING["n"]
    # Events happen 50 hours after the decision: none has happened yet one day in.
    assert early.campaigns[0].lift is not None
    assert early.campaigns[0].lift.treated_mean == 0.0
    with pytest.raises(NotFoundError, match=r"no campaign 'winter'.*known: quiet, spring"):
        store_report(engine, as_of=AS_OF, campaign="winter")


@SQLITE_ONLY
def test_a_campaign_without_decisions_reports_nothing_to_measure(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Campaign(key="new", objective="sales", created_at=T0, updated_at=T0))
    report = store_report(engine, as_of=AS_OF, specs=SPECS)
    (campaign,) = report.campaigns
    assert (campaign.n_decisions, campaign.lift, campaign.breadth) == (0, None, None)
    assert (campaign.variants, campaign.channels, campaign.goal) == (None, None, None)
    assert report.objectives[0].goal is None
    page = render_store_html(report)
    assert "No holdout to compare with yet" in page
    assert "No campaign has both treated and held-out people yet" in page


@SQLITE_ONLY
def test_store_report_of_an_empty_store_and_bad_arguments(engine: Engine) -> None:
    report = store_report(engine, as_of=AS_OF)
    assert report.campaigns == ()
    assert report.learning_curve == ()
    assert json.loads(json.dumps(report.to_dict()))["campaigns"] == []
    assert 'id="plot-lift"' not in render_store_html(report)
    with pytest.raises(InputError, match="alpha = 2"):
        store_report(engine, as_of=AS_OF, alpha=2)
    with pytest.raises(InputError, match="mixture_sd = 0"):
        store_report(engine, as_of=AS_OF, mixture_sd=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-31", datetime(2026, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        ("2026-03-31T12:00:00Z", datetime(2026, 3, 31, 12, tzinfo=UTC)),
        (None, T0),
    ],
)
def test_parse_as_of(text: str | None, expected: datetime) -> None:
    assert parse_as_of(text, now=T0) == expected


def test_parse_as_of_rejects_what_is_not_a_date() -> None:
    with pytest.raises(InputError, match="--as-of 'yesterday' is not a date"):
        parse_as_of("yesterday", now=T0)


# -------------------------------------------------------------------------------------- CLI


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    engine = open_store(init_workspace(directory))
    try:
        seed(engine)
    finally:
        engine.dispose()
    return directory


def test_cli_json_and_tables(workspace: Path, tmp_path: Path) -> None:
    app = _cli()
    args = ["-w", str(workspace), "report"]
    page = tmp_path / "out" / "report.html"
    result = runner.invoke(app, [*args, "--json", "--as-of", "2026-03-31", "--html", str(page)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kind"] == "store"
    assert data["as_of"] == "2026-03-31T23:59:59.999999+00:00"
    spring = next(c for c in data["campaigns"] if c["key"] == "spring")
    assert set(spring) >= {"lift", "variants", "sequential", "send_time", "channels", "goal"}
    assert spring["lift"]["verdict"] == "effect"
    assert spring["lift"]["difference_interval"]["low"] > 0
    assert spring["channels"]["causal"] is True
    assert len(data["learning_curve"]) == 2
    assert 'id="plot-lift"' in page.read_text(encoding="utf-8")

    result = runner.invoke(app, [*args, "spring"])
    assert result.exit_code == 0, result.output
    assert "holdout lift" in result.output
    assert "campaign spring" in result.output
    assert "causal" in result.output

    result = runner.invoke(app, [*args, "winter"])
    assert result.exit_code != 0
    assert "no campaign 'winter'" in str(result.exception)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--log", "x.csv"], "--log needs --control ACTION"),
        (["--log", "x.csv", "--control", "a", "spring"], "leave out CAMPAIGN and --as-of"),
        (["--control", "a"], "--control goes with --log FILE"),
    ],
)
def test_cli_rejects_mixed_options(argv: list[str], message: str) -> None:
    result = runner.invoke(_cli(), ["report", *argv])
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)


# ------------------------------------------------------------------------------- logged bandit


def _write_log(
    path: Path, actions: list[str], rewards: list[float], propensity: list[float]
) -> Path:
    table = pa.table(
        {
            "action": actions,
            "reward": pa.array(rewards, pa.float64()),
            "propensity": pa.array(propensity, pa.float64()),
            "x": pa.array([float(i % 3) for i in range(len(actions))]),
        }
    )
    pa_csv.write_csv(table, path)
    return path


def test_log_report_weights_by_propensity(tmp_path: Path) -> None:
    # Arm "b" was shown with propensity 0.2 to half the people it reached and 0.8 to the other
    # half, whose rewards differ: the weighted mean leans to the rarely chosen rows.
    log = _write_log(
        tmp_path / "log.csv",
        ["a", "a", "b", "b"],
        [1.0, 0.0, 1.0, 0.0],
        [0.5, 0.5, 0.2, 0.8],
    )
    report = log_report(log, control="a")
    means = {a.action: a.mean for a in report.actions}
    assert means["a"] == pytest.approx(0.5)
    assert means["b"] == pytest.approx((1 / 0.2) / (1 / 0.2 + 1 / 0.8))
    (lift,) = report.lifts
    assert lift.action == "b"
    assert lift.difference == pytest.approx(means["b"] - 0.5)
    with pytest.raises(InputError, match="--control 'c' is not an action of the log; its actions"):
        log_report(log, control="c")
    with pytest.raises(InputError, match="alpha = 0"):
        log_report(log, control="a", alpha=0)


def test_log_report_finds_a_seeded_lift(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 6000
    action = rng.choice(["control", "mail"], size=n)
    reward = (rng.random(n) < np.where(action == "mail", 0.12, 0.08)).astype(float)
    log = _write_log(tmp_path / "log.csv", list(action), list(reward), [0.5] * n)
    report = log_report(log, control="control")
    (lift,) = report.lifts
    assert lift.interval.contains(0.04)
    assert lift.significant
    assert lift.relative_interval is not None
    assert lift.relative_interval.contains(0.5)
    assert lift.message.startswith("mail raised the reward by")


@settings(max_examples=40, deadline=None)
@given(
    rewards=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 100, allow_nan=False)),
        min_size=2,
        max_size=40,
    ),
    propensity=st.floats(0.05, 1.0),
)
def test_log_means_equal_arm_means_when_propensities_are_constant(
    rewards: list[tuple[str, float]], propensity: float
) -> None:
    """With one propensity for every row the weighted mean is the plain arm mean, whatever it is."""
    actions = [a for a, _ in rewards]
    if "a" not in actions:
        actions[0] = "a"
    with tempfile.TemporaryDirectory() as directory:
        log = _write_log(
            Path(directory) / "log.csv",
            actions,
            [r for _, r in rewards],
            [propensity] * len(rewards),
        )
        report = log_report(log, control="a")
    for mean in report.actions:
        values = [r for a, (_, r) in zip(actions, rewards, strict=True) if a == mean.action]
        assert mean.mean == pytest.approx(float(np.mean(values)), rel=1e-9, abs=1e-9)
        assert mean.n == len(values)
        assert mean.interval.low <= mean.mean <= mean.interval.high
    assert json.loads(json.dumps(report.to_dict()))["control"] == "a"


@pytest.fixture
def hillstrom_log(data_dir: Path, tmp_path: Path) -> Path:
    """The Hillstrom experiment as a logged bandit, with the visit as reward."""
    return experiment_to_log(
        data_dir / "hillstrom" / "hillstrom.csv",
        tmp_path / "hillstrom-visit.csv",
        action="segment",
        reward="visit",
        outcomes=("conversion", "spend"),
    )


def test_hillstrom_reproduces_the_published_visit_means(hillstrom_log: Path) -> None:
    result = runner.invoke(
        _cli(), ["report", "--log", str(hillstrom_log), "--control", "No E-Mail", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    means = {a["action"]: round(a["mean"], 4) for a in data["actions"]}
    assert means == {"Mens E-Mail": 0.1828, "Womens E-Mail": 0.1514, "No E-Mail": 0.1062}
    lifts = {item["action"]: item for item in data["lifts"]}
    assert set(lifts) == {"Mens E-Mail", "Womens E-Mail"}
    for lift in lifts.values():
        assert lift["control"] == "No E-Mail"
        assert lift["interval"]["low"] > 0
        assert lift["significant"] is True


# -------------------------------------------------------------------------------- HTML page


class _LoggingHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        type(self).requests.append(self.path)


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: apt-get install -y chromium")
        pytest.skip("chromium not found: apt-get install -y chromium to open the HTML report")
    return found


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback web server over ``tmp_path/site`` that records every path asked for."""
    site = tmp_path / "site"
    site.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_LoggingHandler,), {"requests": requests})

    def factory(*args: Any) -> _LoggingHandler:
        return handler(*args, directory=str(site))

    server = ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _dump_dom(chromium: str, url: str, profile: Path) -> str:
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _assert_self_contained(text: str) -> None:
    """Nothing in the page points outside it: no script, no import, only inline data links."""
    for marker in ("<script", "@import", "url(", "<iframe", "<object", "<embed"):
        assert marker not in text, marker
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", text)
    assert all(link.startswith(("data:", "#")) for link in links), links


@SQLITE_ONLY
def test_html_report_renders_offline_in_chromium(
    engine: Engine,
    chromium: str,
    serve: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    seed(engine)
    report = store_report(engine, as_of=AS_OF, specs=SPECS, channel_costs=COSTS)
    base, requests = serve
    page = write_html(report, tmp_path / "site" / "report.html")
    text = page.read_text(encoding="utf-8")
    _assert_self_contained(text)

    dom = _dump_dom(chromium, f"{base}/report.html", tmp_path / "profile")
    assert requests == ["/report.html"]
    for plot in (
        "plot-lift",
        "plot-goals",
        "plot-learning",
        "plot-send-time-spring",
        "plot-channels-spring",
        "plot-channels-quiet",
    ):
        assert f'id="{plot}"' in dom, plot
    assert "campaign spring raised the share who converted" in dom
    assert dom.count("<svg") >= 6


def test_html_log_report_renders_offline_in_chromium(
    chromium: str, serve: tuple[str, list[str]], tmp_path: Path
) -> None:
    log = _write_log(tmp_path / "log.csv", ["a", "b"] * 50, [1.0, 0.0] * 50, [0.5] * 100)
    base, requests = serve
    result = runner.invoke(
        _cli(),
        [
            "report",
            "--log",
            str(log),
            "--control",
            "a",
            "--html",
            str(tmp_path / "site" / "x.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    _assert_self_contained((tmp_path / "site" / "x.html").read_text(encoding="utf-8"))
    dom = _dump_dom(chromium, f"{base}/x.html", tmp_path / "profile")
    assert requests == ["/x.html"]
    assert 'id="plot-means"' in dom
    assert 'id="plot-lift"' in dom
