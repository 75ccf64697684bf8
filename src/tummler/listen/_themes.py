"""Themes: what mentions are about, labelled by their top terms, stable from one day to the next.

Posts become TF-IDF vectors of words and word pairs (English stop words out, links and user names
made uniform) and are clustered by k-means on the unit sphere (spherical k-means: cosine
similarity). A theme is named by the terms that weigh most in its centre. The fitted vocabulary,
IDF weights and centres are kept (:meth:`ThemeModel.to_dict`), so that a new day's mentions are
assigned to yesterday's themes rather than clustered afresh; a post near no centre gets no theme.
Refitting on more posts (:func:`fit_themes` with ``previous``) starts from the previous centres and
keeps each theme's number where its centre moved little, so that a theme's history stays one line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from tummler.core.errors import TummlerError
from tummler.core.randomness import make_rng
from tummler.listen._text import normalize_post

__all__ = ["NO_THEME", "ThemeModel", "fit_themes"]

#: The theme of a post close to no theme's centre.
NO_THEME = -1
#: A post joins a theme when its cosine similarity to the centre is at least this.
MIN_SIMILARITY = 0.1
#: Terms that name a theme.
LABEL_TERMS = 4
_PLACEHOLDERS = re.compile(r"@user\b|\burl\b")
#: Words that name no theme, beyond scikit-learn's English stop words (contractions' halves).
_MORE_STOP_WORDS = (
    "don",
    "didn",
    "doesn",
    "isn",
    "wasn",
    "won",
    "ve",
    "ll",
    "re",
    "im",
    "just",
    "amp",
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ThemeModel:
    """Fitted themes: the vocabulary and IDF weights that make vectors, and each theme's centre.

    Attributes
    ----------
    vocabulary
        Term → column.
    idf
        Inverse document frequency of each column.
    centres
        ``(n_themes, n_terms)`` unit-length centres.
    labels
        Each theme's top terms, joined by " / ".
    """

    vocabulary: dict[str, int]
    idf: FloatArray
    centres: FloatArray
    labels: tuple[str, ...]

    def vectors(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Unit-length TF-IDF vectors of ``texts`` over the fitted vocabulary."""
        return _vectorizer(self.vocabulary, self.idf).transform([_words(t) for t in texts])

    def assign(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Each post's theme (or :data:`NO_THEME`) and its similarity to that theme's centre."""
        similarity = np.asarray(self.vectors(texts) @ self.centres.T)
        best = similarity.argmax(axis=1)
        score = similarity[np.arange(best.size), best]
        return np.where(score >= MIN_SIMILARITY, best, NO_THEME).astype(np.int64), score

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, read back by :meth:`from_dict`."""
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            "terms": terms,
            "idf": self.idf.tolist(),
            "centres": [
                {str(j): round(float(v), 6) for j, v in enumerate(row) if v} for row in self.centres
            ],
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThemeModel:
        """The model :meth:`to_dict` wrote."""
        terms = data["terms"]
        centres = np.zeros((len(data["centres"]), len(terms)))
        for i, row in enumerate(data["centres"]):
            for j, v in row.items():
                centres[i, int(j)] = v
        return cls(
            {t: j for j, t in enumerate(terms)},
            np.asarray(data["idf"], dtype=np.float64),
            centres,
            tuple(data["labels"]),
        )


def _words(text: str) -> str:
    """A post as the words that can name a theme: normalized, without link and user placeholders."""
    return _PLACEHOLDERS.sub(" ", normalize_post(text))


def _vectorizer(vocabulary: dict[str, int] | None = None, idf: FloatArray | None = None) -> Any:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        stop_words=sorted(ENGLISH_STOP_WORDS.union(_MORE_STOP_WORDS)),
        min_df=2,
        max_df=0.5,
        sublinear_tf=True,
        lowercase=False,
        vocabulary=vocabulary,
        token_pattern=r"(?u)\b[^\W\d_]{2,}\b",
    )
    if idf is not None:
        vectorizer.idf_ = idf
    return vectorizer


def fit_themes(
    texts: Sequence[str],
    n_themes: int,
    *,
    previous: ThemeModel | None = None,
    iterations: int = 50,
    rng: np.random.Generator | int = 0,
) -> tuple[ThemeModel, npt.NDArray[np.int64]]:
    """Cluster posts into ``n_themes`` themes; return the model and each post's theme.

    Parameters
    ----------
    texts
        The posts.
    n_themes
        How many themes.
    previous
        Yesterday's model: its centres seed the clustering, and each new theme takes the number
        of the old theme it is closest to (one-to-one), so theme numbers stay put.
    iterations
        Rounds of spherical k-means.
    rng
        Seeds the first centres (k-means++ style) when there is no ``previous``.
    """
    if n_themes < 1 or len(texts) < 2 * n_themes:
        raise TummlerError(
            f"{n_themes} themes need at least {2 * n_themes} posts, got {len(texts)}"
        )
    vectorizer = _vectorizer()
    try:
        x = sparse.csr_matrix(vectorizer.fit_transform([_words(t) for t in texts]))
    except ValueError as exc:  # every word a stop word, or none in two posts
        raise TummlerError(f"no terms shared by two posts to build themes from ({exc})") from exc
    vocabulary = {t: int(j) for j, t in enumerate(vectorizer.get_feature_names_out())}
    centres = _seed(x, n_themes, vocabulary, previous, make_rng(rng))
    for _ in range(iterations):
        theme = np.asarray((x @ centres.T).argmax(axis=1)).reshape(-1)
        moved = _centres(x, theme, centres)
        if np.allclose(moved, centres):
            break
        centres = moved
    if previous is not None and len(previous.labels) == n_themes:
        centres = centres[_match(previous, vocabulary, centres)]
    model = ThemeModel(
        vocabulary, np.asarray(vectorizer.idf_), centres, _labels(centres, vocabulary)
    )
    return model, model.assign(texts)[0]


def _seed(
    x: sparse.csr_matrix,
    k: int,
    vocabulary: dict[str, int],
    previous: ThemeModel | None,
    rng: np.random.Generator,
) -> FloatArray:
    """First centres: the previous model's (in the new vocabulary), else k-means++ on cosine."""
    if previous is not None and len(previous.labels) == k:
        return _normalized(_translate(previous, vocabulary))
    chosen = [int(rng.integers(x.shape[0]))]
    for _ in range(1, k):
        nearest = np.asarray((x @ x[chosen].T).max(axis=1).toarray()).reshape(-1)
        distance = np.maximum(1.0 - nearest, 0.0) ** 2
        total = distance.sum()
        pick = rng.choice(x.shape[0], p=distance / total) if total > 0 else rng.integers(x.shape[0])
        chosen.append(int(pick))
    return np.asarray(x[chosen].toarray(), dtype=np.float64)


def _centres(x: sparse.csr_matrix, theme: npt.NDArray[np.int64], old: FloatArray) -> FloatArray:
    """Each theme's mean post, unit length; a theme left with no post keeps its centre."""
    k = old.shape[0]
    members = sparse.csr_matrix(
        (np.ones(theme.size), (theme, np.arange(theme.size))), shape=(k, theme.size)
    )
    sums = np.asarray((members @ x).toarray())
    empty = np.asarray(members.sum(axis=1)).reshape(-1) == 0
    sums[empty] = old[empty]
    return _normalized(sums)


def _normalized(rows: FloatArray) -> FloatArray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.where(norms > 0, norms, 1.0), dtype=np.float64)


def _translate(model: ThemeModel, vocabulary: dict[str, int]) -> FloatArray:
    """``model``'s centres over another vocabulary (terms it lacks weigh 0)."""
    out = np.zeros((model.centres.shape[0], len(vocabulary)))
    for term, j in vocabulary.items():
        old = model.vocabulary.get(term)
        if old is not None:
            out[:, j] = model.centres[:, old]
    return out


def _match(
    previous: ThemeModel, vocabulary: dict[str, int], centres: FloatArray
) -> npt.NDArray[np.int64]:
    """The order of ``centres`` that puts each next to the old theme it is most like."""
    from scipy.optimize import linear_sum_assignment

    old = _normalized(_translate(previous, vocabulary))
    rows, cols = linear_sum_assignment(-(old @ centres.T))
    order = np.arange(centres.shape[0])
    order[rows] = cols
    return order


def _labels(centres: FloatArray, vocabulary: dict[str, int]) -> tuple[str, ...]:
    terms = np.array(sorted(vocabulary, key=vocabulary.__getitem__))
    labels = []
    for row in centres:
        labels.append(" / ".join(terms[np.argsort(-row)[:LABEL_TERMS]]))
    return tuple(labels)
