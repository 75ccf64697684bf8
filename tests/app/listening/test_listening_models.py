"""Training data readers, model loading and evaluation on a team's labeled posts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tummler.app.listening.corpora import read_airline, read_tweeteval
from tummler.app.listening.models import evaluate_model, load_model, read_labeled_csv
from tummler.cli.main import app
from tummler.core.errors import InputError
from tummler.listen import TextFeaturizer, fit_text_model

POSTS = {
    "negative": [
        "my bag is lost, terrible",
        "delayed five hours, awful",
        "rude staff, never again",
    ],
    "neutral": [
        "what time does the gate open",
        "flying to Boston tomorrow",
        "is there wifi on board",
    ],
    "positive": ["great crew, thank you", "lovely flight, thanks", "awesome service, so happy"],
}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [t for posts in POSTS.values() for t in posts] * 4
    labels = [label for label, posts in POSTS.items() for _ in posts] * 4
    model = fit_text_model(
        "sentiment", texts, labels, featurizer=TextFeaturizer(hash_bits=12), c=10.0
    )
    path = tmp_path_factory.mktemp("models") / "toy.npz"
    model.save(path)
    return path


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labeled.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_evaluation_scores_the_model_and_vader_on_the_same_posts(
    model_file: Path, tmp_path: Path
) -> None:
    rows = "\n".join(f'"{t}",{label}' for label, posts in POSTS.items() for t in posts)
    result = evaluate_model(_csv(tmp_path, "text,label\n" + rows + "\n"), model_file)
    assert result.scores.n == 9
    assert result.scores.macro_f1 == 1.0  # the training posts themselves
    assert result.vader is not None
    # VADER's figures are VADER's own labels, thresholded at ±0.05 as its README says
    analyzer = SentimentIntensityAnalyzer()
    texts = [t for posts in POSTS.values() for t in posts]
    labels = [label for label, posts in POSTS.items() for _ in posts]
    compound = [analyzer.polarity_scores(t)["compound"] for t in texts]
    own = ["negative" if c <= -0.05 else "positive" if c >= 0.05 else "neutral" for c in compound]
    hits = sum(a == b for a, b in zip(own, labels, strict=True))
    assert sum(result.vader.confusion[i][i] for i in range(3)) == hits


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("body,label\nhi,positive\n", "missing text"),
        ("text,label\nhi,\n", "line 2: .*field label.*empty cell|line 2.*label"),
        ("text,label\n", "no rows to evaluate on"),
        ("text,label\nhello,angry\n", "labels 'angry' are not among the model's"),
    ],
)
def test_bad_labeled_files_are_named(
    model_file: Path, tmp_path: Path, content: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as raised:
        evaluate_model(_csv(tmp_path, content), model_file)
    assert "labeled.csv" in str(raised.value)


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such model file"):
        load_model(tmp_path / "absent.npz")


def test_labeled_rows_are_read_in_order(tmp_path: Path) -> None:
    texts, labels = read_labeled_csv(_csv(tmp_path, 'text,label\n"a, b",x\nc,y\n'))
    assert (texts, labels) == (["a, b", "c"], ["x", "y"])


def test_tweeteval_labels_are_named_by_the_mapping(tmp_path: Path) -> None:
    folder = tmp_path / "tweeteval" / "emotion"
    folder.mkdir(parents=True)
    (folder / "mapping.txt").write_text("0\tanger\n1\tjoy\n", encoding="utf-8")
    (folder / "train_text.txt").write_text("grr\nyay\n", encoding="utf-8")
    (folder / "train_labels.txt").write_text("0\n1\n", encoding="utf-8")
    posts = read_tweeteval(tmp_path, "emotion", "train")
    assert posts.labels == ("anger", "joy")
    (folder / "train_labels.txt").write_text("0\n7\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"train_labels.txt.*line 2.*label '7' is not in mapping"):
        read_tweeteval(tmp_path, "emotion", "train")


def test_a_bad_airline_row_is_named(tmp_path: Path) -> None:
    (tmp_path / "airline_tweets.csv").write_text(
        "airline_sentiment,text\npositive,great\nhappy,hmm\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"line 3.*airline_sentiment"):
        read_airline(tmp_path)


def test_missing_training_data_says_where_to_point(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="point --data at a directory"):
        read_airline(tmp_path)


def test_the_split_is_seeded_and_complete(tmp_path: Path) -> None:
    (tmp_path / "airline_tweets.csv").write_text(
        "airline_sentiment,text\n" + "".join(f"neutral,post {i}\n" for i in range(10)),
        encoding="utf-8",
    )
    posts = read_airline(tmp_path)
    train, held = posts.split(0.3, np.random.default_rng(5))
    again, _ = posts.split(0.3, np.random.default_rng(5))
    assert (len(train), len(held)) == (7, 3)
    assert sorted(train.texts + held.texts) == sorted(posts.texts)
    assert train.texts == again.texts


def test_cli_classifies_and_evaluates(model_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["listen", "classify", "--model", str(model_file), "--json", "great crew, thanks"]
    )
    assert result.exit_code == 0, result.output
    posts = json.loads(result.output)["posts"]
    assert posts[0]["label"] == "positive"
    assert sum(posts[0]["probabilities"].values()) == pytest.approx(1.0)
    labeled = _csv(tmp_path, "text,label\nrude staff,negative\nlovely flight,positive\n")
    result = runner.invoke(
        app, ["listen", "evaluate", "--data", str(labeled), "--model", str(model_file)]
    )
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output
    assert "against VADER on the same posts" in result.output
