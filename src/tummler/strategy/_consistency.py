"""Do a campaign's variants say the same thing on every channel, and is it the pillar's promise?

The default scorer is TF-IDF cosine similarity in plain NumPy: fast, deterministic, no model to
download. It measures shared vocabulary, not meaning, so its thresholds are low. The optional
``embeddings`` extra (sentence-transformers) measures meaning instead; asking for it without the extra
raises :class:`~tummler.core.errors.MissingDependencyError` naming the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tummler.core.errors import MissingDependencyError
from tummler.strategy._findings import Finding, Severity
from tummler.strategy._loading import CampaignDocument
from tummler.strategy._models import Campaign, Strategy

__all__ = [
    "ChannelConsistency",
    "Vectorizer",
    "campaign_texts",
    "check_consistency",
    "consistency_scores",
    "cosine_matrix",
    "embedding_vectorizer",
    "pillar_text",
    "tfidf_vectorizer",
    "tokenize",
]

#: Texts in, one row vector per text out.
Vectorizer = Callable[[Sequence[str]], NDArray[np.float64]]

_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "to",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
        "yours",
        "der",
        "die",
        "das",
        "und",
        "ist",
        "ein",
        "eine",
        "le",
        "la",
        "les",
        "et",
        "un",
        "une",
        "de",
        "des",
        "du",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-case words without template fields, digits or common stop words."""
    text = _TEMPLATE.sub(" ", text)
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOP_WORDS]


def tfidf_vectorizer(corpus: Sequence[str]) -> Vectorizer:
    """A TF-IDF vectorizer whose vocabulary and IDF are fit on ``corpus``.

    Fit on every text of the workspace (all variants and pillars), so that words every campaign uses
    weigh little. Sublinear term frequency, smooth IDF ``ln((1 + n) / (1 + df)) + 1``, rows L2-normed.
    """
    documents = [set(tokenize(t)) for t in corpus]
    vocabulary = {w: i for i, w in enumerate(sorted(set().union(*documents)))}
    df = np.zeros(len(vocabulary))
    for words in documents:
        for word in words:
            df[vocabulary[word]] += 1
    idf = np.log((1.0 + len(documents)) / (1.0 + df)) + 1.0

    def vectorize(texts: Sequence[str]) -> NDArray[np.float64]:
        matrix = np.zeros((len(texts), len(vocabulary)))
        for row, text in enumerate(texts):
            for word in tokenize(text):
                column = vocabulary.get(word)
                if column is not None:
                    matrix[row, column] += 1.0
        matrix = np.where(matrix > 0, 1.0 + np.log(np.maximum(matrix, 1.0)), 0.0) * idf
        return matrix

    return vectorize


def embedding_vectorizer(model_name: str) -> Vectorizer:
    """Sentence embeddings from ``sentence-transformers`` (the ``embeddings`` extra).

    Raises
    ------
    MissingDependencyError
        When sentence-transformers is not installed.
    """
    if importlib.util.find_spec("sentence_transformers") is None:
        raise MissingDependencyError("sentence-transformers", "embeddings")
    module: Any = importlib.import_module("sentence_transformers")
    model = module.SentenceTransformer(model_name)

    def vectorize(texts: Sequence[str]) -> NDArray[np.float64]:
        return np.asarray(model.encode(list(texts)), dtype=np.float64)

    return vectorize


def cosine_matrix(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    """Pairwise cosine similarity of the rows; a row of zeros is similar to nothing (0)."""
    norms = np.linalg.norm(vectors, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    unit = vectors / safe[:, None]
    similarity: NDArray[np.float64] = np.clip(unit @ unit.T, -1.0, 1.0)
    return similarity


@dataclass(frozen=True, slots=True)
class ChannelConsistency:
    """How close one channel's wording is to the campaign's other channels and to its pillar.

    ``to_others`` is the cosine to the mean of the other channels' vectors (``None`` with one channel);
    ``to_pillar`` the cosine to the pillar's text (``None`` without a pillar).
    """

    channel: str
    to_others: float | None
    to_pillar: float | None


def consistency_scores(
    channel_texts: Mapping[str, str], pillar_text: str | None, vectorize: Vectorizer
) -> list[ChannelConsistency]:
    """Score each channel's text against the other channels (leave-one-out) and the pillar.

    Leave-one-out names the outlier: with three channels of which one says something else, that one
    scores low while the two that agree score higher.
    """
    channels = list(channel_texts)
    if not channels:
        return []
    texts = [channel_texts[c] for c in channels]
    if pillar_text is not None:
        texts.append(pillar_text)
    vectors = np.asarray(vectorize(texts), dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    channel_vectors = unit[: len(channels)]
    scores: list[ChannelConsistency] = []
    for i, channel in enumerate(channels):
        to_others: float | None = None
        if len(channels) > 1:
            others = np.delete(channel_vectors, i, axis=0).mean(axis=0)
            to_others = _cosine(channel_vectors[i], others)
        to_pillar = _cosine(channel_vectors[i], unit[-1]) if pillar_text is not None else None
        scores.append(ChannelConsistency(channel, to_others, to_pillar))
    return scores


def _cosine(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.clip(a @ b / norm, -1.0, 1.0)) if norm > 0 else 0.0


def pillar_text(strategy: Strategy, pillar_id: str | None) -> str | None:
    """The pillar's promise and phrases as one text, ``None`` without a (known) pillar."""
    pillar = strategy.pillar(pillar_id) if pillar_id else None
    if pillar is None:
        return None
    return " ".join([pillar.promise, *pillar.phrases])


def campaign_texts(campaign: Campaign) -> dict[str, str]:
    """Per channel, everything its variants say (subjects, headlines and bodies joined)."""
    return {
        channel: " ".join(
            part for v in variants for part in (v.subject, v.headline, v.body) if part is not None
        )
        for channel, variants in campaign.variants.items()
    }


def check_consistency(
    documents: Sequence[CampaignDocument],
    strategy: Strategy,
    *,
    vectorizer: Vectorizer | None = None,
) -> list[Finding]:
    """Warn where a channel's variants say something else than the campaign's other channels, or
    than its pillar; the outlier channel is named with its score.

    ``vectorizer`` defaults to the strategy's ``checks.consistency_method``: TF-IDF fit on every
    variant and pillar of the workspace, or sentence embeddings (the ``embeddings`` extra).
    """
    config = strategy.checks
    if vectorizer is None:
        if config.consistency_method == "embeddings":
            vectorizer = embedding_vectorizer(config.embedding_model)
        else:
            corpus = [t for d in documents for t in campaign_texts(d.campaign).values()]
            corpus += [" ".join([p.promise, *p.phrases]) for p in strategy.brand.pillars]
            vectorizer = tfidf_vectorizer(corpus)
    findings: list[Finding] = []
    for document in documents:
        campaign = document.campaign
        scores = consistency_scores(
            campaign_texts(campaign), pillar_text(strategy, campaign.pillar), vectorizer
        )
        for score in scores:
            others = [c for c in campaign.variants if c != score.channel]
            if score.to_others is not None and score.to_others < config.min_channel_similarity:
                findings.append(
                    document.source.finding(
                        Severity.WARNING,
                        "consistency-channels",
                        f"campaign {campaign.id!r}: the {score.channel!r} variants say something "
                        f"else than {', '.join(repr(o) for o in others)} (similarity "
                        f"{score.to_others:.2f} < {config.min_channel_similarity:.2f}); one "
                        "campaign should carry one message on every channel",
                        "variants",
                        score.channel,
                        key=True,
                    )
                )
            if score.to_pillar is not None and score.to_pillar < config.min_pillar_similarity:
                findings.append(
                    document.source.finding(
                        Severity.WARNING,
                        "consistency-pillar",
                        f"campaign {campaign.id!r}: the {score.channel!r} variants are far from "
                        f"pillar {campaign.pillar!r} (similarity {score.to_pillar:.2f} < "
                        f"{config.min_pillar_similarity:.2f}); say what the pillar promises",
                        "variants",
                        score.channel,
                        key=True,
                    )
                )
    return findings
