"""The listening report: a seeded month of mentions with a known spike and a known complaint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, insert

from browser import assert_self_contained, dump_dom
from tummler.app.listening.report import THEMES_FILE, listen_report
from tummler.core.clock import FrozenClock
from tummler.store import models
from tummler.web.listening import write_listen_html

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SPIKE = datetime(2026, 11, 27, 15, tzinfo=UTC)
TOPICS = {
    "lost": (["lost", "bag", "luggage", "baggage", "claim", "missing"], -0.8),
    "app": (["app", "login", "update", "crash", "password", "screen"], -0.1),
    "crew": (["crew", "friendly", "lovely", "staff", "smile", "service"], 0.8),
}


def _month(engine: Engine) -> None:
    rng = np.random.default_rng(3)
    rows: list[dict[str, object]] = []
    hours = 40 * 24
    for h in range(hours):
        at = NOW - timedelta(hours=hours - h)
        count = rng.poisson(2.0 * (1.5 if 9 <= at.hour <= 20 else 0.5))
        if at == SPIKE:
            count += 40
        for _ in range(count):
            topic = list(TOPICS)[int(rng.integers(3))]
            words, mood = TOPICS[topic]
            text = " ".join(rng.choice(words, size=4, replace=False)) + " today"
            rows.append(
                {
                    "channel": "mastodon",
                    "external_id": f"m{len(rows)}",
                    "text": text,
                    "at": at + timedelta(minutes=int(rng.integers(60))),
                    "sentiment": mood + float(rng.normal(0, 0.1)),
                }
            )
    with engine.begin() as connection:
        connection.execute(insert(models.Mention), rows)


def test_the_report_finds_the_spike_and_the_complaint(engine: Engine, tmp_path: Path) -> None:
    _month(engine)
    report = listen_report(engine, workspace=tmp_path, days=7, clock=FrozenClock(NOW))
    assert report.spikes is not None
    assert [s.hour for s in report.spikes] == ["2026-11-27T15"]
    worst = report.what_to_fix()[0]
    assert set(worst.label.split(" / ")) <= set(TOPICS["lost"][0])
    assert worst.negative_share == 1.0
    assert len(report.days) == 8  # the 7 days of the period touch 8 calendar days
    assert sum(d.mentions for d in report.days) == report.mentions
    assert (tmp_path / THEMES_FILE).is_file()
    json.dumps(report.to_dict())  # the JSON form is plain data
    again = listen_report(engine, workspace=tmp_path, days=7, clock=FrozenClock(NOW))
    assert [t.label for t in again.themes] == [t.label for t in report.themes]


def test_without_history_there_is_no_spike_verdict(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(models.Mention),
            [
                {"channel": "x", "external_id": "1", "text": "hi", "at": NOW - timedelta(days=1)},
            ],
        )
    report = listen_report(engine, workspace=tmp_path, clock=FrozenClock(NOW))
    assert report.spikes is None
    assert "spikes need 28 days of mentions before the period" in report.spike_note
    assert report.themes == ()
    assert report.mean_sentiment is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_html_page_opens_offline_in_chromium(
    engine: Engine, chromium: str, serve: tuple[str, list[str]], tmp_path: Path
) -> None:
    _month(engine)
    report = listen_report(engine, workspace=tmp_path, days=7, clock=FrozenClock(NOW))
    base, requests = serve
    page = write_listen_html(report, tmp_path / "site" / "listening.html")
    assert_self_contained(page.read_text(encoding="utf-8"))
    dom = dump_dom(chromium, f"{base}/listening.html", tmp_path / "profile")
    assert requests == ["/listening.html"]
    for section in (
        "overview",
        "what-to-fix",
        "themes",
        "spikes",
        "plot-mentions",
        "plot-sentiment",
    ):
        assert f'id="{section}"' in dom, section
    assert "2026-11-27T15" in dom
