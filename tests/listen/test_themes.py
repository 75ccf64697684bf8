"""Themes: known topics are found, named by their words, and keep their numbers from day to day."""

from __future__ import annotations

import numpy as np
import pytest

from tummler.core.errors import TummlerError
from tummler.listen import NO_THEME, ThemeModel, fit_themes

TOPICS = {
    "delivery": ["parcel", "courier", "delivery", "package", "tracking", "arrived", "late"],
    "billing": ["invoice", "charged", "refund", "payment", "billing", "card", "twice"],
    "app": ["app", "crash", "login", "update", "password", "screen", "bug"],
}
FILLER = ["the", "my", "again", "today", "really", "just", "so", "why"]


def _posts(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    names = list(TOPICS)
    topics = [names[i] for i in rng.integers(len(names), size=n)]
    posts = [
        " ".join(
            list(rng.choice(TOPICS[t], size=4, replace=False)) + list(rng.choice(FILLER, size=3))
        )
        for t in topics
    ]
    return posts, topics


def _agreement(found: np.ndarray, truth: list[str]) -> float:
    """Share of posts whose theme's majority topic is their topic."""
    hits = 0
    for theme in set(found.tolist()):
        members = [t for f, t in zip(found, truth, strict=True) if f == theme]
        hits += max(members.count(t) for t in set(members))
    return hits / len(truth)


def test_known_topics_are_found_and_named_by_their_words() -> None:
    posts, topics = _posts(np.random.default_rng(0), 300)
    model, themes = fit_themes(posts, 3, rng=1)
    assert _agreement(themes, topics) > 0.95
    for theme, label in enumerate(model.labels):
        members = [t for f, t in zip(themes, topics, strict=True) if f == theme]
        topic = max(set(members), key=members.count)
        assert set(label.split(" / ")) <= set(TOPICS[topic])


def test_new_posts_join_yesterdays_themes() -> None:
    posts, _ = _posts(np.random.default_rng(1), 300)
    model, _ = fit_themes(posts, 3, rng=1)
    today, topics = _posts(np.random.default_rng(2), 60)
    themes, similarity = model.assign([*today, "completely unrelated words here"])
    assert themes[-1] == NO_THEME
    assert _agreement(themes[:-1], topics) > 0.95
    assert (similarity[:-1] > similarity[-1]).all()


def test_a_refit_keeps_each_themes_number() -> None:
    posts, _ = _posts(np.random.default_rng(3), 300)
    first, _ = fit_themes(posts, 3, rng=4)
    more, _ = _posts(np.random.default_rng(5), 300)
    # a different seed would number the clusters differently; ``previous`` keeps them
    second, themes = fit_themes(posts + more, 3, previous=first, rng=99)
    assert second.labels == first.labels or all(
        set(a.split(" / ")) & set(b.split(" / "))
        for a, b in zip(first.labels, second.labels, strict=True)
    )
    before, _ = first.assign(more)
    assert (themes[len(posts) :] == before).mean() > 0.95


def test_the_model_survives_its_json_form() -> None:
    posts, _ = _posts(np.random.default_rng(6), 120)
    model, themes = fit_themes(posts, 3, rng=0)
    again = ThemeModel.from_dict(model.to_dict())
    assert again.labels == model.labels
    assert (again.assign(posts)[0] == themes).all()


def test_too_few_posts_are_refused() -> None:
    with pytest.raises(TummlerError, match="3 themes need at least 6 posts"):
        fit_themes(["a b", "c d"], 3)
