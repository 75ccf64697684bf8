"""The strategy service and CLI: audiences measured in the store, campaigns synced, `strategy check`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from tummler.app.strategy import (
    audience_baselines,
    check_workspace_strategy,
    load_contacts,
    read_workspace_strategy,
    sync_campaigns,
    write_example_strategy,
)
from tummler.cli.main import app
from tummler.core.clock import FrozenClock
from tummler.core.errors import StrategyError
from tummler.store.database import connect, session_scope
from tummler.store.models import (
    Campaign,
    ChannelIdentity,
    ConsentEvent,
    Contact,
    Decision,
    Event,
    Message,
    Variant,
)
from tummler.strategy import evaluate, load_campaign, load_strategy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

STRATEGY = """\
brand:
  name: Acme
  pillars: [{id: quality, promise: Tools built to last.}]
attributes:
  country: {type: string}
objectives:
  - id: repeat
    kpi: {event: converted}
    attribution_window: 14d
    target: {relative_lift: 0.5}
    horizon: 42d
audiences:
  - id: german-customers
    filter: stage == "customer" and attributes.country == "DE"
channels:
  - {id: email, kind: email, public: false}
"""
CAMPAIGN = """\
id: spring
objective: repeat
audience: german-customers
holdout_share: 0.2
variants:
  email: [{id: a, body: Tools built to last.}, {id: b, body: "Built to last, tools for life."}]
"""


def _seed(engine: Engine) -> dict[str, int]:
    """Twelve German customers (two revoked e-mail consent, one was forgotten), a French customer,
    three German prospects, and conversions placed in known windows."""
    ids: dict[str, int] = {}
    with session_scope(engine) as session:

        def contact(key: str, stage: str, country: str, *, forgotten: bool = False) -> Contact:
            row = Contact(
                external_id=key,
                stage=stage,
                attributes={"country": country},
                created_at=NOW - 100 * DAY,
                updated_at=NOW - 100 * DAY,
                forgotten_at=NOW - DAY if forgotten else None,
            )
            session.add(row)
            session.flush()
            ids[key] = row.id
            session.add(
                ChannelIdentity(
                    contact_id=row.id,
                    channel="email",
                    address=f"{key}@example.org",
                    created_at=NOW - 100 * DAY,
                )
            )
            session.add(
                ConsentEvent(
                    contact_id=row.id,
                    channel="email",
                    status="granted",
                    source="signup",
                    at=NOW - 90 * DAY,
                    recorded_at=NOW - 90 * DAY,
                )
            )
            return row

        for i in range(12):
            contact(f"de-{i}", "customer", "DE", forgotten=i == 11)
        for i in (9, 10):
            session.add(
                ConsentEvent(
                    contact_id=ids[f"de-{i}"],
                    channel="email",
                    status="revoked",
                    source="unsubscribe link",
                    at=NOW - 5 * DAY,
                    recorded_at=NOW - 5 * DAY,
                )
            )
        contact("fr-0", "customer", "FR")
        for i in range(3):
            contact(f"prospect-{i}", "prospect", "DE")
        events = [
            ("de-0", "converted", NOW - 2 * DAY),  # window 0: [now - 14d, now)
            ("de-0", "converted", NOW - 3 * DAY),  # the same contact twice counts once
            ("de-1", "converted", NOW - 13 * DAY),
            ("de-2", "converted", NOW - 20 * DAY),  # window 1: [now - 28d, now - 14d)
            ("de-3", "converted", NOW - 50 * DAY),  # before the horizon
            ("de-4", "clicked", NOW - 1 * DAY),  # not the KPI
            ("de-9", "converted", NOW - 1 * DAY),  # revoked consent: not in the audience
            ("fr-0", "converted", NOW - 1 * DAY),  # not in the audience
            ("de-5", "converted", NOW + DAY),  # in the future of `now`
        ]
        for n, (key, kind, at) in enumerate(events):
            session.add(
                Event(
                    contact_id=ids[key],
                    type=kind,
                    value=10.0 if kind == "converted" else None,
                    at=at,
                    source="shop",
                    provider_event_id=f"e{n}",
                )
            )
    return ids


def test_audience_baseline_is_counted_per_window_from_the_store(engine: Engine) -> None:
    _seed(engine)
    strategy = load_strategy(STRATEGY)
    campaign = load_campaign(CAMPAIGN)
    baselines = audience_baselines(engine, strategy, [campaign], now=NOW)
    baseline = baselines["spring"]
    # de-0 .. de-8: customers in DE with an e-mail address and consent (de-9, de-10 revoked, de-11
    # forgotten)
    assert baseline.audience_size == 9
    # window 0: de-0, de-1; window 1: de-2; window 2: nobody
    assert baseline.window_rates == pytest.approx((2 / 9, 1 / 9, 0.0))


def test_windows_before_the_store_history_are_left_out(engine: Engine) -> None:
    _seed(engine)
    with session_scope(engine) as session:
        session.execute(delete(Event).where(Event.at < NOW - 14 * DAY))
    baseline = audience_baselines(
        engine, load_strategy(STRATEGY), [load_campaign(CAMPAIGN)], now=NOW
    )["spring"]
    # the store's first event is 13 days old: only the newest 14-day window is known
    assert baseline.window_rates == pytest.approx((2 / 9,))


def test_contacts_load_as_a_view_the_evaluator_reads(engine: Engine) -> None:
    ids = _seed(engine)
    contacts = load_contacts(engine, now=NOW)
    assert len(contacts.ids) == 15  # the forgotten one is left out
    selected = set(contacts.ids[evaluate('engaged_within("36h")', contacts.view)].tolist())
    assert selected == {ids["de-4"], ids["de-9"], ids["fr-0"]}  # clicked or converted a day ago
    revoked = set(contacts.ids[evaluate('not consent("email")', contacts.view)].tolist())
    assert revoked == {ids["de-9"], ids["de-10"]}


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_contacts_read_in_chunks_are_the_same_view(engine: Engine, chunk_size: int) -> None:
    _seed(engine)
    whole = load_contacts(engine, now=NOW)
    chunked = load_contacts(engine, now=NOW, chunk_size=chunk_size)
    assert chunked.ids.tolist() == whole.ids.tolist()
    for expression in (
        'engaged_within("36h")',
        'not consent("email")',
        'has_identity("email") and consent("email")',
        'engaged_within("30d") or stage == "customer"',
    ):
        assert evaluate(expression, chunked.view).tolist() == (
            evaluate(expression, whole.view).tolist()
        )


def test_check_with_the_store_warns_about_realism(engine: Engine, tmp_path: Path) -> None:
    _seed(engine)
    (tmp_path / "strategy.yaml").write_text(STRATEGY, encoding="utf-8")
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "spring.yaml").write_text(CAMPAIGN, encoding="utf-8")
    _, findings = check_workspace_strategy(tmp_path, engine=engine, clock=FrozenClock(NOW))
    codes = {f.code for f in findings}
    assert "realism-audience-too-small" in codes
    [small] = [f for f in findings if f.code == "realism-audience-too-small"]
    assert small.file == str(tmp_path / "campaigns" / "spring.yaml")
    assert small.line == 2
    assert "audience 'german-customers' has 9" in small.message


def test_sync_writes_campaigns_messages_and_variants_keyed_by_id(
    engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "strategy.yaml").write_text(STRATEGY, encoding="utf-8")
    (tmp_path / "campaigns").mkdir()
    path = tmp_path / "campaigns" / "spring.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    clock = FrozenClock(NOW)
    report, _ = sync_campaigns(engine, tmp_path, clock=clock)
    assert report.created == ("spring",)
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert (campaign.key, campaign.objective, campaign.audience) == (
            "spring",
            "repeat",
            "german-customers",
        )
        assert campaign.holdout_share == pytest.approx(0.2)
        assert campaign.definition["variants"]["email"][0]["body"] == "Tools built to last."
        message = session.scalars(select(Message)).one()
        assert message.attributes["visibility"] == "private"
        variant_b = session.scalars(select(Variant).where(Variant.key == "b")).one()
        session.add(
            Decision(
                campaign_id=campaign.id,
                contact_id=_one_contact(session),
                channel="email",
                variant_id=variant_b.id,
                action=1,
                propensity=0.5,
                decided_at=NOW,
            )
        )
    # variant b is removed from the file, but a decision refers to it: it is kept and reported
    path.write_text(
        CAMPAIGN.replace(', {id: b, body: "Built to last, tools for life."}', ""), encoding="utf-8"
    )
    report, _ = sync_campaigns(engine, tmp_path, clock=clock.advance(DAY))
    assert report.updated == ("spring",)
    assert report.variants_kept == ("spring/email/b",)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Campaign)) == 1
        assert connection.scalar(select(func.count()).select_from(Variant)) == 2


def _one_contact(session: Session) -> int:
    row = Contact(external_id="x", created_at=NOW, updated_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def test_sync_refuses_a_workspace_with_errors(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "strategy.yaml").write_text(STRATEGY, encoding="utf-8")
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "spring.yaml").write_text(
        CAMPAIGN.replace("objective: repeat", "objective: growth"), encoding="utf-8"
    )
    with pytest.raises(StrategyError, match="objective 'growth' is not in"):
        sync_campaigns(engine, tmp_path, clock=FrozenClock(NOW))
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Campaign)) == 0


def test_missing_strategy_is_an_error_naming_init(tmp_path: Path) -> None:
    loaded = read_workspace_strategy(tmp_path)
    assert loaded.strategy is None
    [finding] = loaded.findings
    assert finding.code == "no-strategy"
    assert f"tummler init {tmp_path}" in finding.message


def test_examples_are_written_once_and_existing_files_kept(tmp_path: Path) -> None:
    written = write_example_strategy(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "campaigns/first-order-welcome.yaml",
        "campaigns/fresh-roast-reorder.yaml",
        "strategy.yaml",
    ]
    (tmp_path / "strategy.yaml").write_text("# mine\n", encoding="utf-8")
    assert write_example_strategy(tmp_path) == []
    assert (tmp_path / "strategy.yaml").read_text(encoding="utf-8") == "# mine\n"


# ---------------------------------------------------------------------------------------- CLI


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _said(result: Result) -> str:
    return " ".join(result.output.split())


def test_init_writes_a_strategy_that_passes_the_check(workspace: Path) -> None:
    result = _run("--workspace", str(workspace), "strategy", "check")
    assert result.exit_code == 0, result.output
    assert "strategy check passed: 0 error(s), 0 warning(s)" in _said(result)
    result = _run("--workspace", str(workspace), "strategy", "check", "--strict")
    assert result.exit_code == 0, result.output


def test_check_measures_as_of_a_given_time(workspace: Path) -> None:
    result = _run("--workspace", str(workspace), "strategy", "check", "--as-of", "2026-02-02")
    assert result.exit_code == 0, result.output
    result = _run("--workspace", str(workspace), "strategy", "check", "--as-of", "yesterday")
    assert result.exit_code == 2
    assert "--as-of" in _said(result)


def test_check_exits_non_zero_and_names_file_and_line(workspace: Path) -> None:
    path = workspace / "campaigns" / "fresh-roast-reorder.yaml"
    text = path.read_text(encoding="utf-8").replace("pillar: freshness", "pillar: cheapness")
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index(next(x for x in text.splitlines() if "cheapness" in x)) + 1
    result = _run("--workspace", str(workspace), "strategy", "check")
    assert result.exit_code == 1
    assert f"fresh-roast-reorder.yaml:{line}:9: error [unknown-pillar]" in _said(result)
    result = _run("--workspace", str(workspace), "strategy", "check", "--json", "--offline")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    assert [(f["code"], f["line"]) for f in findings] == [("unknown-pillar", line)]


def test_check_with_a_yaml_error_reports_line_and_column(workspace: Path) -> None:
    (workspace / "strategy.yaml").write_text("brand:\n  name: [Acme\n", encoding="utf-8")
    result = _run("--workspace", str(workspace), "strategy", "check", "--offline")
    assert result.exit_code == 1
    assert "strategy.yaml:3:1: error [yaml-syntax]" in _said(result)


def test_show_prints_the_map_as_a_tree_and_as_json(workspace: Path) -> None:
    result = _run("--workspace", str(workspace), "strategy", "show")
    assert result.exit_code == 0, result.output
    said = _said(result)
    for part in ("repeat-purchase", "fresh-roast-reorder", "email", "sms", "mastodon"):
        assert part in said
    assert "an unsubscribe costs 1, a complaint 2" in " ".join(said.split())
    result = _run("--workspace", str(workspace), "strategy", "show", "--json")
    mapping = json.loads(result.stdout)
    assert [o["id"] for o in mapping["objectives"]] == ["repeat-purchase", "first-order"]
    assert mapping["objectives"][0]["penalties"] == {"unsubscribed": 1.0, "complained": 2.0}
    assert mapping["objectives"][0]["campaigns"][0]["id"] == "fresh-roast-reorder"


def test_schema_prints_json_schema(workspace: Path) -> None:
    result = _run("--workspace", str(workspace), "strategy", "schema")
    assert json.loads(result.stdout)["title"] == "tummler strategy"
    result = _run("--workspace", str(workspace), "strategy", "schema", "campaign")
    assert "objective" in json.loads(result.stdout)["required"]


def test_sync_command_writes_the_examples_into_the_store(workspace: Path) -> None:
    result = _run("--workspace", str(workspace), "strategy", "sync")
    assert result.exit_code == 0, result.output
    assert "2 created" in _said(result)
    engine = connect(f"sqlite:///{workspace / 'tummler.db'}")
    try:
        with engine.connect() as connection:
            keys = connection.scalars(select(Campaign.key).order_by(Campaign.key)).all()
    finally:
        engine.dispose()
    assert keys == ["first-order-welcome", "fresh-roast-reorder"]


def test_check_without_a_store_still_checks_the_files(tmp_path: Path) -> None:
    write_example_strategy(tmp_path)
    result = _run("--workspace", str(tmp_path), "strategy", "check")
    assert result.exit_code == 0, result.output
    assert "realism not checked" in _said(result)
    assert "strategy check passed" in _said(result)
