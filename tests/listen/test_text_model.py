"""The text model: it learns what it is shown, survives its file format, and refuses what it does not know."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tummler.core.errors import TummlerError
from tummler.listen import (
    UNKNOWN_LANGUAGE,
    TextFeaturizer,
    TextModel,
    fit_text_model,
    normalize_post,
    recalibrate_priors,
    score_labels,
)

GOOD = [
    "love this, great service and friendly crew",
    "thank you so much, wonderful flight",
    "awesome support, they fixed it fast",
    "great job, really happy with the upgrade",
    "best trip ever, thanks for the lovely staff",
    "so happy with the quick answer, thanks",
]
BAD = [
    "terrible service, my bag is lost again",
    "worst flight ever, delayed for five hours",
    "awful support, nobody answers the phone",
    "the app crashed and I lost my booking, horrible",
    "rude staff and a dirty plane, never again",
    "cancelled again without notice, so angry",
]


@pytest.fixture(scope="module")
def toy_model() -> TextModel:
    texts = GOOD * 3 + BAD * 3
    labels = ["positive"] * len(GOOD) * 3 + ["negative"] * len(BAD) * 3
    return fit_text_model("toy", texts, labels, featurizer=TextFeaturizer(hash_bits=12), c=10.0)


def test_it_learns_a_separable_task(toy_model: TextModel) -> None:
    assert toy_model.labels == ("negative", "positive")
    assert toy_model.predict(["great service, thank you", "lost my bag, terrible"]) == [
        "positive",
        "negative",
    ]
    probabilities = toy_model.predict_proba(["wonderful friendly crew"])
    assert probabilities.shape == (1, 2)
    assert probabilities[0].sum() == pytest.approx(1.0)
    assert probabilities[0, 1] > 0.7


def test_the_file_keeps_its_predictions(toy_model: TextModel, tmp_path: Path) -> None:
    path = tmp_path / "toy.npz"
    toy_model.save(path)
    loaded = TextModel.load(path)
    posts = GOOD + BAD + ["something else entirely"]
    assert loaded.labels == toy_model.labels
    assert loaded.featurizer == toy_model.featurizer
    # float16 weights: probabilities agree to about three digits
    np.testing.assert_allclose(
        loaded.predict_proba(posts), toy_model.predict_proba(posts), atol=2e-3
    )
    assert loaded.predict(posts) == toy_model.predict(posts)
    assert np.array_equal(loaded.known_words, toy_model.known_words)


def test_a_file_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(TummlerError, match=r"bad\.npz: not a tummler text model"):
        TextModel.load(path)


@pytest.mark.parametrize(
    "post",
    [
        "Der Flug wurde schon wieder gestrichen und niemand hilft uns weiter",
        "El vuelo fue cancelado otra vez y nadie nos ayuda con las maletas",
        "フライトがまたキャンセルされました",
        "Рейс снова отменили, и никто не помогает",
    ],
)
def test_posts_in_an_unknown_language_are_marked_not_guessed(
    toy_model: TextModel, post: str
) -> None:
    assert toy_model.predict([post]) == [UNKNOWN_LANGUAGE]


def test_short_posts_and_known_words_are_classified(toy_model: TextModel) -> None:
    assert toy_model.predict(["terrible!!", "thanks so much, great staff"]) == [
        "negative",
        "positive",
    ]


def test_normalization_makes_links_users_and_letter_runs_uniform() -> None:
    assert normalize_post("@Delta SOOOO late https://t.co/abc") == "@user soo late url"
    assert normalize_post("www.example.com is   down") == "url is down"


def test_scores_are_the_textbook_ones() -> None:
    # 3 classes; hand-counted: a recall 2/3, b 1/2, c 1/1
    true = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", UNKNOWN_LANGUAGE, "c"]
    scores = score_labels(true, predicted, ["a", "b", "c"])
    assert scores.recall == pytest.approx((2 / 3, 1 / 2, 1.0))
    assert scores.precision == pytest.approx((1.0, 1 / 2, 1.0))
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 1.0]
    assert scores.macro_f1 == pytest.approx(sum(f1) / 3)
    assert scores.unknown == 1
    assert scores.confusion == ((2, 1, 0), (0, 1, 0), (0, 0, 1))


def test_training_refuses_a_single_class() -> None:
    with pytest.raises(TummlerError, match="one class only"):
        fit_text_model("x", ["a b c", "d e f"], ["same", "same"])


def test_recalibration_moves_only_the_intercepts_toward_the_new_balance(
    toy_model: TextModel,
) -> None:
    # the toy model saw as many good posts as bad; the posts it will meet are 5 bad to 1 good
    posts = BAD * 5 + GOOD
    labels = ["negative"] * len(BAD) * 5 + ["positive"] * len(GOOD)
    shifted = recalibrate_priors(toy_model, posts, labels)
    assert (shifted.weights != toy_model.weights).nnz == 0
    assert shifted.intercept[0] == toy_model.intercept[0]
    # the maximum-likelihood shift makes the mean predicted share of each class its observed share
    mean = shifted.predict_proba(posts).mean(axis=0)
    assert mean[0] == pytest.approx(5 / 6, abs=1e-4)
    assert shifted.intercept[1] < toy_model.intercept[1]
