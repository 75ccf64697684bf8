"""A trained text classifier: fitting, predicting, and the small file it ships as.

A model is multinomial logistic regression over :class:`TextFeaturizer`'s features. It is saved
as one ``.npz`` file holding only the buckets that training ever used (indices and float16
weights), the labels, the featurizer's settings, the set of word buckets seen in training (for
the known-language check) and a model card (data, metrics, known limits) as JSON text. No pickle:
loading a model file runs no code from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from tummler.core.errors import TummlerError
from tummler.core.randomness import make_rng
from tummler.listen._text import TextFeaturizer

__all__ = ["UNKNOWN_LANGUAGE", "TextModel", "fit_text_model", "recalibrate_priors"]

#: The label a model gives a post written in a language its training data did not cover.
UNKNOWN_LANGUAGE = "unknown-language"
#: A post is in a language the model knows when at least this share of its words were seen in training.
KNOWN_WORD_SHARE = 0.5
#: ... judged only on posts with at least this many words; shorter ones are classified as they are.
MIN_WORDS_TO_JUDGE = 3
FORMAT_VERSION = 1

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class TextModel:
    """A text classifier with the featurizer it was trained with.

    Attributes
    ----------
    name
        What it predicts: ``sentiment``, ``emotion``, ``offensive``, ``hate``.
    labels
        The classes, in the order of :meth:`predict_proba`'s columns.
    featurizer
        How posts become features.
    weights
        ``(n_features, k)`` sparse weights, one column per label.
    intercept
        ``(k,)`` intercepts.
    known_words
        Booleans over the word-hash buckets: the words seen in the training posts.
    card
        The model card: data, metrics, known limits.
    """

    name: str
    labels: tuple[str, ...]
    featurizer: TextFeaturizer
    weights: sparse.csr_matrix
    intercept: FloatArray
    known_words: npt.NDArray[np.bool_]
    card: Mapping[str, Any] = field(default_factory=dict)

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """``(n, k)`` class probabilities of the posts ``texts``."""
        scores = (self.featurizer.transform(texts) @ self.weights).toarray() + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return np.asarray(scores, dtype=np.float64)

    def known_language(self, texts: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Whether each post is written mostly in words the training posts used.

        A post with :data:`MIN_WORDS_TO_JUDGE` or more words counts as unknown when fewer than
        :data:`KNOWN_WORD_SHARE` of them were seen in training, or when most of its letters are
        outside the Latin alphabet (the training data are English tweets).
        """
        counts = self.featurizer.word_buckets(texts)
        known = counts.multiply(self.known_words[None, :].astype(np.float64)).sum(axis=1)
        total = np.asarray(counts.sum(axis=1)).reshape(-1)
        share = np.asarray(known).reshape(-1) / np.maximum(total, 1.0)
        judged = total >= MIN_WORDS_TO_JUDGE
        latin = np.array([_mostly_latin(text) for text in texts], dtype=bool)
        return np.asarray(latin & (~judged | (share >= KNOWN_WORD_SHARE)), dtype=np.bool_)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label of each post, or :data:`UNKNOWN_LANGUAGE`."""
        if not texts:
            return []
        best = self.predict_proba(texts).argmax(axis=1)
        known = self.known_language(texts)
        return [self.labels[b] if k else UNKNOWN_LANGUAGE for b, k in zip(best, known, strict=True)]

    def save(self, path: Path) -> None:
        """Write the model as one ``.npz`` file (float16 weights of the used buckets only)."""
        coo = self.weights.tocoo()
        rows = np.unique(coo.row)
        dense = self.weights[rows].toarray()
        meta = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "featurizer": {
                "hash_bits": self.featurizer.hash_bits,
                "lexicon_scale": self.featurizer.lexicon_scale,
            },
            "card": dict(self.card),
        }
        with path.open("wb") as out:
            np.savez_compressed(
                out,
                rows=rows.astype(np.uint32),
                values=dense.astype(np.float16),
                intercept=self.intercept,
                known_words=np.packbits(self.known_words),
                meta=np.array(json.dumps(meta)),
            )

    @classmethod
    def load(cls, path: Path) -> TextModel:
        """Read a model written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                rows, values = data["rows"], data["values"].astype(np.float64)
                intercept = data["intercept"].astype(np.float64)
                bits = data["known_words"]
        except (OSError, KeyError, ValueError) as exc:
            raise TummlerError(f"{path}: not a tummler text model ({exc})") from exc
        if meta.get("format") != FORMAT_VERSION:
            raise TummlerError(
                f"{path}: text model format {meta.get('format')!r}, this tummler reads "
                f"{FORMAT_VERSION}; retrain it with `tummler listen train`"
            )
        featurizer = TextFeaturizer(**meta["featurizer"])
        k = len(meta["labels"])
        weights = sparse.csr_matrix(
            (values.reshape(-1), (np.repeat(rows, k), np.tile(np.arange(k), rows.size))),
            shape=(featurizer.n_features, k),
        )
        buckets = 1 << featurizer.hash_bits
        return cls(
            name=meta["name"],
            labels=tuple(meta["labels"]),
            featurizer=featurizer,
            weights=weights,
            intercept=intercept,
            known_words=np.unpackbits(bits)[:buckets].astype(bool),
            card=meta["card"],
        )


def _mostly_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    latin = sum(1 for c in letters if c < "\u0250")
    return latin * 2 >= len(letters)


def fit_text_model(
    name: str,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    sample_weight: npt.ArrayLike | None = None,
    featurizer: TextFeaturizer | None = None,
    c: float = 2.0,
    min_word_posts: int = 2,
    rng: np.random.Generator | int = 0,
) -> TextModel:
    """Fit a :class:`TextModel` by L2-penalized multinomial logistic regression.

    Parameters
    ----------
    name
        What the model predicts.
    texts, labels
        The training posts and their labels (any strings; the classes are their sorted set).
    sample_weight
        Optional weight per post, e.g. to let a small hand-labeled set count more than a large
        distantly labeled one.
    featurizer
        How posts become features (default :class:`TextFeaturizer`'s defaults).
    c
        Inverse penalty strength, as scikit-learn's ``C``.
    min_word_posts
        A word counts as known to the model when this many training posts used it.
    rng
        Seeds the solver's shuffling, so that training is reproducible.
    """
    from sklearn.linear_model import LogisticRegression

    if len(texts) != len(labels) or not texts:
        raise TummlerError(f"{name}: need as many labels as texts, and at least one ({len(texts)})")
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise TummlerError(f"{name}: the training labels have one class only ({classes})")
    featurizer = featurizer or TextFeaturizer()
    x = featurizer.transform(texts)
    y = np.array([classes.index(label) for label in labels])
    seed = int(make_rng(rng).integers(2**31 - 1))
    fitted = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    fitted.fit(x, y, sample_weight=None if weight is None else weight / weight.mean())
    coef = np.asarray(fitted.coef_, dtype=np.float64)
    intercept = np.asarray(fitted.intercept_, dtype=np.float64)
    if len(classes) == 2:  # one row for the second class: as softmax over (0, z)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    used = coef.T.copy()
    used[np.abs(used) < 1e-8] = 0.0
    word_posts = np.asarray((featurizer.word_buckets(texts) > 0).sum(axis=0)).reshape(-1)
    return TextModel(
        name=name,
        labels=classes,
        featurizer=featurizer,
        weights=sparse.csr_matrix(used),
        intercept=intercept,
        known_words=word_posts >= min_word_posts,
    )


def recalibrate_priors(model: TextModel, texts: Sequence[str], labels: Sequence[str]) -> TextModel:
    """Shift the model's intercepts to the class balance of the posts it will meet.

    A model trained on several sources learns their mixed class balance: airline complaints are
    two-thirds negative, everyday tweets far less so. Only the ``k`` intercepts move (the first
    stays fixed), to maximize the likelihood of ``labels`` given the model's scores; the
    weights, and so what the model has learned about words, do not change. This is the prior
    shift correction of Saerens, Latinne & Decaestecker (2002) with labels at hand.
    """
    from scipy.optimize import minimize

    scores = (model.featurizer.transform(texts) @ model.weights).toarray() + model.intercept
    y = np.array([model.labels.index(label) for label in labels])

    def loss(shift: FloatArray) -> tuple[float, FloatArray]:
        z = scores + np.concatenate([[0.0], shift])
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        value = -float(np.log(p[np.arange(y.size), y]).sum())
        gradient = p.sum(axis=0) - np.bincount(y, minlength=len(model.labels))
        return value, np.asarray(gradient[1:], dtype=np.float64)

    shift = minimize(loss, np.zeros(len(model.labels) - 1), jac=True, method="L-BFGS-B").x
    return replace(model, intercept=model.intercept + np.concatenate([[0.0], shift]))
