"""How well a text classifier does on labeled posts, and the VADER baseline it is measured against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ClassificationScores", "score_labels", "vader_sentiment"]

#: VADER's own thresholds on its compound score (Hutto & Gilbert 2014, the package's README).
VADER_THRESHOLD = 0.05


@dataclass(frozen=True)
class ClassificationScores:
    """Macro-F1, per-class recall and precision, and the confusion matrix of one set of predictions.

    Attributes
    ----------
    labels
        The classes, in the order of every per-class figure.
    macro_f1
        The mean over classes of each class's F1 (a class never predicted nor present counts 0).
    recall, precision
        Per class.
    confusion
        ``confusion[i][j]``: posts of true class ``labels[i]`` predicted as ``labels[j]``.
    n
        Posts scored.
    unknown
        Posts the model declined to classify (not in a language it knows); they count as wrong.
    """

    labels: tuple[str, ...]
    macro_f1: float
    recall: tuple[float, ...]
    precision: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    n: int
    unknown: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, per-class figures keyed by label."""
        return {
            "n": self.n,
            "macro_f1": self.macro_f1,
            "recall": dict(zip(self.labels, self.recall, strict=True)),
            "precision": dict(zip(self.labels, self.precision, strict=True)),
            "confusion": {
                label: dict(zip(self.labels, row, strict=True))
                for label, row in zip(self.labels, self.confusion, strict=True)
            },
            "unknown_language": self.unknown,
        }


def score_labels(
    true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> ClassificationScores:
    """Score predictions against true labels over the classes ``labels``.

    Predictions outside ``labels`` (such as the unknown-language mark) count as wrong.

    >>> s = score_labels(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    >>> round(s.macro_f1, 4), s.recall, s.confusion
    (0.7333, (0.5, 1.0), ((1, 1), (0, 2)))
    """
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    unknown = 0
    for t, p in zip(true, predicted, strict=True):
        if p not in index:
            unknown += 1
            continue
        confusion[index[t], index[p]] += 1
    truth = np.bincount([index[t] for t in true], minlength=k).astype(np.float64)
    hits = np.diag(confusion).astype(np.float64)
    said = confusion.sum(axis=0).astype(np.float64)
    recall = _ratio(hits, truth)
    precision = _ratio(hits, said)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return ClassificationScores(
        labels=tuple(labels),
        macro_f1=float(f1.mean()),
        recall=tuple(float(v) for v in recall),
        precision=tuple(float(v) for v in precision),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        n=len(true),
        unknown=unknown,
    )


def _ratio(
    top: npt.NDArray[np.float64], bottom: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def vader_sentiment(compound: npt.ArrayLike) -> list[str]:
    """VADER's three-class label from its compound scores.

    >>> vader_sentiment([-0.6, 0.0, 0.3])
    ['negative', 'neutral', 'positive']
    """
    score = np.asarray(compound, dtype=np.float64)
    return [
        "negative" if s <= -VADER_THRESHOLD else "positive" if s >= VADER_THRESHOLD else "neutral"
        for s in score
    ]
