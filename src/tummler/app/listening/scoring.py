"""Score the stored mentions' sentiment with a text model, so that planning can read it.

Planning already reads each contact's mean mention sentiment as a context feature; a mention
imported without a ``sentiment`` cell had none. :func:`score_mentions` fills it with the sentiment
model's ``P(positive) − P(negative)``, a number in ``[-1, 1]`` on the scale an import may give.
Mentions are read in batches by id, and each batch's scores are written in one transaction, so an
interrupted run keeps what it wrote and the next one goes on from there. A mention in a language
the model does not know keeps no score and is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, Engine, and_, bindparam, func, select, update

from tummler.app.listening.models import load_model
from tummler.core.errors import TummlerError
from tummler.store import models

__all__ = ["ScoringReport", "score_mentions"]


@dataclass(frozen=True)
class ScoringReport:
    """What one scoring run did."""

    scored: int
    unknown_language: int
    model: str


def score_mentions(
    engine: Engine,
    *,
    model: str | Path = "sentiment",
    rescore: bool = False,
    batch_size: int = 5_000,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> ScoringReport:
    """Fill the sentiment of stored mentions that have text and no sentiment yet.

    Parameters
    ----------
    model
        A shipped model's name or a model file; it must have ``negative`` and ``positive``
        among its labels.
    rescore
        Score every mention with text again, replacing earlier scores (an imported score too).
    batch_size
        Mentions read, scored and written per transaction.
    progress
        Called with (mentions done, mentions to do) after each batch.
    """
    classifier = load_model(model)
    if not {"negative", "positive"} <= set(classifier.labels):
        raise TummlerError(
            f"model {classifier.name!r} has no negative and positive labels "
            f"({', '.join(classifier.labels)}); score sentiment with a sentiment model"
        )
    negative, positive = classifier.labels.index("negative"), classifier.labels.index("positive")
    wanted: ColumnElement[bool] = models.Mention.text.is_not(None)
    if not rescore:
        wanted = and_(wanted, models.Mention.sentiment.is_(None))
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).where(wanted)).scalar_one())
    write = (
        update(models.Mention)
        .where(models.Mention.id == bindparam("mention_id"))
        .values(sentiment=bindparam("score"))
    )
    done = scored = unknown = 0
    last = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                select(models.Mention.id, models.Mention.text)
                .where(wanted, models.Mention.id > last)
                .order_by(models.Mention.id)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            texts = [row.text for row in rows]
            probabilities = classifier.predict_proba(texts)
            known = classifier.known_language(texts)
            score = probabilities[:, positive] - probabilities[:, negative]
            values = [
                {"mention_id": row.id, "score": float(s)}
                for row, s, k in zip(rows, score, known, strict=True)
                if k
            ]
            if values:
                connection.execute(write, values)
        last = rows[-1].id
        done += len(rows)
        scored += len(values)
        unknown += int(np.count_nonzero(~known))
        progress(done, total)
    return ScoringReport(scored=scored, unknown_language=unknown, model=classifier.name)
