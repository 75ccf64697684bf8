"""The models in the package: they load offline, and they still score what their cards say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tummler.app.listening.models import load_model
from tummler.app.listening.training import MODEL_NAMES, recipes
from tummler.listen import score_labels, vader_sentiment


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_shipped_model_loads_with_its_card(name: str) -> None:
    model = load_model(name)
    assert model.name == name
    assert model.card["model"] == name
    assert model.card["held_out"], "a model card without held-out figures"
    assert model.card["known_limits"]


def test_the_shipped_sentiment_model_reads_plain_complaints_and_thanks() -> None:
    model = load_model("sentiment")
    assert model.predict(
        ["Two hours late again and nobody at the gate", "Thanks for the quick refund, lovely crew"]
    ) == ["negative", "positive"]


def test_shipped_models_reproduce_their_cards_on_the_posts_kept_aside(data_dir: Path) -> None:
    """Held-out macro-F1 as recorded at training: catches a featurizer that changed under a model."""
    for recipe in recipes(data_dir / "sentiment", seed=0):
        model = load_model(recipe.name)
        assert model.card["seed"] == 0
        for part, recorded in zip(recipe.held_out, model.card["held_out"], strict=True):
            assert part.source == recorded["data"]
            scores = score_labels(part.labels, model.predict(part.texts), model.labels)
            assert scores.macro_f1 == pytest.approx(recorded["model"]["macro_f1"], abs=0.005)
            if recipe.name == "sentiment":
                compound = model.featurizer.lexicon_scores(part.texts)[:, 3]
                vader = score_labels(part.labels, vader_sentiment(compound), model.labels)
                assert scores.macro_f1 > vader.macro_f1
