"""How a short social post becomes features: normalized text, hashed n-grams, lexicon scores.

Posts are normalized the way tweet classifiers usually are (links, user names and letter runs
made uniform: "sooooo" and "soo" are one word) and turned into two hashed bag-of-n-gram blocks,
word 1–2-grams and character 2–5-grams within words, each ``log``-damped and L2-normalized.
Hashing keeps the shipped model small and needs no vocabulary file; the price is collisions,
which at 2**18 buckets a block cost well under a point of F1 on these data (measured in the model
cards). VADER's lexicon scores (Hutto & Gilbert 2014) are appended as a few dense columns: they
carry polarity for words the training tweets never used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

__all__ = ["TextFeaturizer", "normalize_post"]

_LINK = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")
_RUN = re.compile(r"(.)\1{2,}")
_SPACE = re.compile(r"\s+")
#: Words (with a leading # or @ kept), punctuation runs such as "!!" or ":(", and lone ! and ?.
TOKEN_PATTERN = r"(?u)[@#]?\w+|[^\w\s]{2,}|[!?]"


def normalize_post(text: str) -> str:
    """Lower-case a post with links, user names and letter runs made uniform.

    >>> normalize_post("@Delta sooooo late!!! https://t.co/x")
    '@user soo late!! url'
    """
    text = _LINK.sub(" URL ", text)
    text = _USER.sub(" @USER ", text)
    text = _RUN.sub(r"\1\1", text)
    return _SPACE.sub(" ", text).strip().lower()


@dataclass(frozen=True)
class TextFeaturizer:
    """Turns posts into a sparse feature matrix; its fields are stored with every model.

    Attributes
    ----------
    hash_bits
        Each hashed block has ``2**hash_bits`` columns.
    lexicon_scale
        Weight of the VADER columns next to the unit-norm n-gram blocks; 0 leaves them out.
    """

    hash_bits: int = 18
    lexicon_scale: float = 3.0

    @property
    def n_features(self) -> int:
        """Columns of :meth:`transform`'s matrix."""
        return 2 * (1 << self.hash_bits) + (len(_LEXICON_COLUMNS) if self.lexicon_scale else 0)

    @cached_property
    def _vectorizers(self) -> tuple[Any, Any]:
        from sklearn.feature_extraction.text import HashingVectorizer

        common: dict[str, Any] = {
            "n_features": 1 << self.hash_bits,
            "alternate_sign": False,
            "norm": None,
            "lowercase": False,
        }
        words = HashingVectorizer(ngram_range=(1, 2), token_pattern=TOKEN_PATTERN, **common)
        chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)
        return words, chars

    @cached_property
    def _lexicon(self) -> Any:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()

    def lexicon_scores(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """VADER's ``neg, neu, pos, compound`` for each post, shape ``(n, 4)``."""
        scores = [self._lexicon.polarity_scores(text) for text in texts]
        return np.array([[s[c] for c in _LEXICON_COLUMNS] for s in scores], dtype=np.float64)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The ``(n, n_features)`` matrix of the posts ``texts``."""
        from sklearn.preprocessing import normalize

        normalized = [normalize_post(text) for text in texts]
        blocks = []
        for vectorizer in self._vectorizers:
            counts = vectorizer.transform(normalized).astype(np.float64)
            np.log(counts.data, out=counts.data)
            counts.data += 1.0
            blocks.append(normalize(counts))
        if self.lexicon_scale:
            blocks.append(sparse.csr_matrix(self.lexicon_scores(texts) * self.lexicon_scale))
        return sparse.hstack(blocks, format="csr")

    def word_buckets(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Counts of each post's single words by hash bucket (for the known-language check)."""
        from sklearn.feature_extraction.text import HashingVectorizer

        words = HashingVectorizer(
            n_features=1 << self.hash_bits,
            alternate_sign=False,
            norm=None,
            lowercase=False,
            token_pattern=r"(?u)\b[^\W\d_]{2,}\b",
        )
        return sparse.csr_matrix(words.transform([normalize_post(t) for t in texts]))


_LEXICON_COLUMNS = ("neg", "neu", "pos", "compound")
