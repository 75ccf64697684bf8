"""What people said about the brand over a period: volume and sentiment by day, themes, spikes.

``tummler listen report`` reads the stored mentions of the last ``days`` days, the themes that
``themes.json`` in the workspace keeps from one report to the next (so theme numbers stay put),
and the hourly counts before the period as the spike baseline's history. Sentiment is what
``tummler listen score`` (or the import) stored: ``P(positive) − P(negative)`` in ``[-1, 1]``; a
mention counts as negative below :data:`NEGATIVE_BELOW`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import TummlerError
from tummler.listen import (
    MIN_HISTORY_DAYS,
    ThemeModel,
    detect_spikes,
    fit_hourly_baseline,
    fit_themes,
)
from tummler.store import models

__all__ = ["NEGATIVE_BELOW", "ListenReport", "listen_report"]

#: A mention whose sentiment is below this counts as negative.
NEGATIVE_BELOW = -0.25
#: Posts per theme, on average, when the report chooses how many themes to fit (at most 8).
POSTS_PER_THEME = 25
THEMES_FILE = "themes.json"


@dataclass(frozen=True)
class Day:
    """One day's mentions."""

    day: str
    mentions: int
    mean_sentiment: float | None
    negative_share: float | None


@dataclass(frozen=True)
class Theme:
    """One theme over the period, with the most negative posts as examples."""

    number: int
    label: str
    mentions: int
    mean_sentiment: float | None
    negative_share: float | None
    examples: tuple[str, ...]


@dataclass(frozen=True)
class SpikeHour:
    """An hour with far more mentions than its weekday and hour would have."""

    hour: str
    mentions: int
    expected: float
    p_value: float


@dataclass(frozen=True)
class ListenReport:
    """The listening report; ``spikes`` is None when there was too little history to judge."""

    since: str
    until: str
    mentions: int
    scored: int
    mean_sentiment: float | None
    negative_share: float | None
    days: tuple[Day, ...]
    themes: tuple[Theme, ...]
    spikes: tuple[SpikeHour, ...] | None
    spike_note: str
    false_alarms_per_30_days: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``tummler listen report --json``."""
        return asdict(self)

    def what_to_fix(self) -> list[Theme]:
        """Themes ranked by negative mentions (count × negative share), the worst first."""
        hurting = [t for t in self.themes if t.negative_share]
        return sorted(hurting, key=lambda t: -(t.mentions * (t.negative_share or 0.0)))


def _mean(values: np.ndarray) -> float | None:
    scored = values[np.isfinite(values)]
    return float(scored.mean()) if scored.size else None


def _negative(values: np.ndarray) -> float | None:
    scored = values[np.isfinite(values)]
    return float((scored < NEGATIVE_BELOW).mean()) if scored.size else None


def listen_report(
    engine: Engine,
    *,
    workspace: Path,
    days: int = 7,
    false_alarms_per_30_days: float = 1.0,
    clock: Clock | None = None,
) -> ListenReport:
    """Build the listening report of the last ``days`` days (see the module's docstring)."""
    until = (clock or SystemClock()).now()
    since = until - timedelta(days=days)
    history_start = since - timedelta(days=MIN_HISTORY_DAYS)
    with engine.connect() as connection:
        rows = connection.execute(
            select(models.Mention.at, models.Mention.text, models.Mention.sentiment)
            .where(models.Mention.at >= history_start, models.Mention.at < until)
            .order_by(models.Mention.at)
        ).all()
    at = np.array([_utc(r.at) for r in rows], dtype="datetime64[s]")
    recent = at >= np.datetime64(_utc(since), "s")
    sentiment = np.array([math.nan if r.sentiment is None else r.sentiment for r in rows])[recent]
    texts = [r.text for r, keep in zip(rows, recent, strict=True) if keep]
    spikes, note = _spikes(at, since, until, history_start, false_alarms_per_30_days)
    return ListenReport(
        since=since.isoformat(),
        until=until.isoformat(),
        mentions=int(recent.sum()),
        scored=int(np.isfinite(sentiment).sum()),
        mean_sentiment=_mean(sentiment),
        negative_share=_negative(sentiment),
        days=_days(at[recent], sentiment),
        themes=_themes(workspace / THEMES_FILE, texts, sentiment),
        spikes=spikes,
        spike_note=note,
        false_alarms_per_30_days=false_alarms_per_30_days,
    )


def _utc(moment: datetime) -> datetime:
    """A naive UTC time, as NumPy's datetime64 wants it (the store and clock give aware ones)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _days(at: np.ndarray, sentiment: np.ndarray) -> tuple[Day, ...]:
    day = at.astype("datetime64[D]")
    out = []
    for d in np.unique(day):
        mask = day == d
        out.append(Day(str(d), int(mask.sum()), _mean(sentiment[mask]), _negative(sentiment[mask])))
    return tuple(out)


def _themes(path: Path, texts: list[str | None], sentiment: np.ndarray) -> tuple[Theme, ...]:
    """Fit (from the kept themes) and describe the period's themes; keep them for next time."""
    with_text = [i for i, t in enumerate(texts) if t]
    n_themes = min(8, len(with_text) // POSTS_PER_THEME)
    if n_themes < 2:
        return ()
    posts = [texts[i] or "" for i in with_text]
    previous = ThemeModel.from_dict(json.loads(path.read_text())) if path.is_file() else None
    try:
        model, found = fit_themes(posts, n_themes, previous=previous, rng=0)
    except TummlerError:  # too few words shared by two posts: a report without themes
        return ()
    path.write_text(json.dumps(model.to_dict()))
    scores = sentiment[with_text]
    themes = []
    for number, label in enumerate(model.labels):
        members = np.flatnonzero(found == number)
        if not members.size:
            continue
        worst = members[np.argsort(np.nan_to_num(scores[members], nan=0.0))[:3]]
        themes.append(
            Theme(
                number,
                label,
                int(members.size),
                _mean(scores[members]),
                _negative(scores[members]),
                tuple(posts[i] for i in worst),
            )
        )
    return tuple(sorted(themes, key=lambda t: -t.mentions))


def _spikes(
    at: np.ndarray, since: datetime, until: datetime, start: datetime, rate: float
) -> tuple[tuple[SpikeHour, ...] | None, str]:
    hours = at.astype("datetime64[h]")
    first = np.datetime64(_utc(start), "h")
    cut = np.datetime64(_utc(since), "h")
    end = np.datetime64(_utc(until), "h")
    if hours.size == 0 or hours.min() > first:
        days_seen = 0.0 if hours.size == 0 else float((cut - hours.min()) / np.timedelta64(24, "h"))
        return None, (
            f"spikes need {MIN_HISTORY_DAYS} days of mentions before the period; "
            f"{max(days_seen, 0.0):.0f} found"
        )
    grid = np.arange(first, end, dtype="datetime64[h]")
    counts = np.bincount((hours - first).astype(np.int64), minlength=grid.size)[: grid.size]
    history = grid < cut
    baseline = fit_hourly_baseline(grid[history], counts[history])
    found = detect_spikes(baseline, grid[~history], counts[~history], false_alarms_per_30_days=rate)
    spikes = tuple(SpikeHour(str(s.hour), s.observed, s.expected, s.p_value) for s in found)
    return spikes, f"judged against the {MIN_HISTORY_DAYS} days before, by weekday and hour"
