"""Stored mentions get the sentiment model's score; planning's feature reads it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select

from tummler.app.listening.models import load_model
from tummler.app.listening.scoring import score_mentions
from tummler.core.errors import TummlerError
from tummler.store import models

AT = datetime(2026, 11, 1, tzinfo=UTC)
POSTS = [
    ("m1", "Two hours late again and nobody at the gate", None),
    ("m2", "Thanks for the quick refund, lovely crew", None),
    ("m3", "Der Flug wurde schon wieder gestrichen und niemand hilft uns", None),
    ("m4", None, None),
    ("m5", "imported with its own score", 0.25),
]


def _mentions(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(models.Mention),
            [
                {"channel": "mastodon", "external_id": e, "text": t, "at": AT, "sentiment": s}
                for e, t, s in POSTS
            ],
        )


def _scores(engine: Engine) -> dict[str, float | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(models.Mention.external_id, models.Mention.sentiment))
        return {row.external_id: row.sentiment for row in rows}


def test_mentions_without_a_score_are_scored_once(engine: Engine) -> None:
    _mentions(engine)
    seen: list[tuple[int, int]] = []
    report = score_mentions(engine, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert (report.scored, report.unknown_language) == (2, 1)
    scores = _scores(engine)
    model = load_model("sentiment")
    p = model.predict_proba([POSTS[0][1], POSTS[1][1]])  # type: ignore[list-item]
    neg, pos = model.labels.index("negative"), model.labels.index("positive")
    assert scores["m1"] == pytest.approx(p[0, pos] - p[0, neg])
    assert scores["m2"] == pytest.approx(p[1, pos] - p[1, neg])
    assert (scores["m1"] or 0.0) < -0.5
    assert (scores["m2"] or 0.0) > 0.5
    assert scores["m3"] is None  # German: not guessed
    assert scores["m4"] is None  # no text
    assert scores["m5"] == 0.25  # an imported score is kept
    assert seen[-1] == (3, 3)  # m1, m2, m3 in batches of two
    again = score_mentions(engine)
    assert (again.scored, again.unknown_language) == (0, 1)  # only the German one is read again


def test_rescore_replaces_imported_scores(engine: Engine) -> None:
    _mentions(engine)
    report = score_mentions(engine, rescore=True)
    assert report.scored == 3
    assert _scores(engine)["m5"] != 0.25


def test_a_model_without_polarity_is_refused(engine: Engine) -> None:
    with pytest.raises(TummlerError, match="'emotion' has no negative and positive labels"):
        score_mentions(engine, model="emotion")
