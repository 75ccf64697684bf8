"""The text models tummler ships, loaded on demand, and their evaluation on a team's labeled posts."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tummler.core.errors import InputError, TummlerError
from tummler.listen import ClassificationScores, TextModel, score_labels, vader_sentiment

__all__ = [
    "ClassificationScores",
    "ModelEvaluation",
    "evaluate_model",
    "load_model",
    "read_labeled_csv",
]

#: Where the trained models live inside the package (``tummler listen train --out`` writes there).
SHIPPED = "tummler.listen.models"


@cache
def _shipped(name: str) -> TextModel:
    source = resources.files(SHIPPED) / f"{name}.npz"
    with resources.as_file(source) as path:
        if not path.is_file():
            raise TummlerError(
                f"no shipped text model {name!r}; run `tummler listen train --data DIR` "
                f"or pass a model file"
            )
        return TextModel.load(path)


def load_model(name_or_path: str | Path) -> TextModel:
    """A shipped model by name (``sentiment``, ``emotion``...) or a model file by path."""
    path = Path(name_or_path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise InputError("no such model file", file=path)
        return TextModel.load(path)
    return _shipped(str(name_or_path))


def read_labeled_csv(path: Path) -> tuple[list[str], list[str]]:
    """The ``text,label`` rows of a CSV file, each checked for both cells."""
    if not path.is_file():
        raise InputError("no such file", file=path)
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "label"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(
                f"needs the columns text and label; missing {', '.join(sorted(missing))}", file=path
            )
        for line, row in enumerate(reader, start=2):
            for column in ("text", "label"):
                if not (row.get(column) or "").strip():
                    raise InputError("empty cell", file=path, line=line, field=column)
            texts.append(row["text"])
            labels.append(row["label"].strip())
    if not texts:
        raise InputError("no rows to evaluate on", file=path)
    return texts, labels


@dataclass(frozen=True)
class ModelEvaluation:
    """A model's scores on labeled posts, with VADER's beside them for sentiment."""

    model: str
    scores: ClassificationScores
    vader: ClassificationScores | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``tummler listen evaluate --json``."""
        return {
            "model": self.model,
            "scores": self.scores.to_dict(),
            "vader": None if self.vader is None else self.vader.to_dict(),
        }


def evaluate_model(path: Path, model: str | Path = "sentiment") -> ModelEvaluation:
    """Score a model on the ``text,label`` CSV at ``path``; VADER beside it for sentiment."""
    texts, labels = read_labeled_csv(path)
    classifier = load_model(model)
    unknown = sorted(set(labels) - set(classifier.labels))
    if unknown:
        raise InputError(
            f"labels {', '.join(map(repr, unknown))} are not among the model's "
            f"({', '.join(classifier.labels)})",
            file=path,
            field="label",
        )
    scores = score_labels(labels, classifier.predict(texts), classifier.labels)
    vader = None
    if classifier.labels == ("negative", "neutral", "positive"):
        compound = classifier.featurizer.lexicon_scores(texts)[:, 3]
        vader = score_labels(labels, vader_sentiment(compound), classifier.labels)
    return ModelEvaluation(classifier.name, scores, vader)
