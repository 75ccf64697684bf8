"""The public labeled posts the shipped text models are trained on, read from a data directory.

The layout is the one of ``../shared/data/sentiment`` (see its README): the hand-labeled airline
tweets (``airline_tweets.csv``), TweetEval's ``<task>/{train,val}_{text,labels}.txt`` with
``mapping.txt``. Every reader names the file and line it could not use.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tummler.core.errors import InputError

__all__ = ["Labeled", "read_airline", "read_tweeteval"]


@dataclass(frozen=True)
class Labeled:
    """Posts with one label each, and where they came from."""

    source: str
    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def split(self, held_out: float, rng: np.random.Generator) -> tuple[Labeled, Labeled]:
        """A seeded (train, held-out) split with ``held_out`` of the posts in the second part."""
        order = rng.permutation(len(self))
        cut = len(self) - round(held_out * len(self))
        return self._take(order[:cut], "train"), self._take(order[cut:], "held out")

    def relabeled(self, mapping: dict[str, str], source: str) -> Labeled:
        """The posts whose label ``mapping`` names, under their new labels."""
        kept = [
            (t, mapping[label])
            for t, label in zip(self.texts, self.labels, strict=True)
            if label in mapping
        ]
        return Labeled(source, tuple(t for t, _ in kept), tuple(label for _, label in kept))

    def _take(self, index: np.ndarray, part: str) -> Labeled:
        return Labeled(
            f"{self.source} ({part})",
            tuple(self.texts[i] for i in index),
            tuple(self.labels[i] for i in index),
        )


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(
            "missing; point --data at a directory laid out as ../shared/data/sentiment", file=path
        )
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def read_airline(directory: Path) -> Labeled:
    """The airline tweets: ``text`` labeled ``airline_sentiment`` (negative, neutral, positive)."""
    path = directory / "airline_tweets.csv"
    _lines(path)
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            label, text = row.get("airline_sentiment"), row.get("text")
            if label not in ("negative", "neutral", "positive") or not text:
                raise InputError(
                    f"expected a text and a label among negative, neutral, positive, got {label!r}",
                    file=path,
                    line=line,
                    field="airline_sentiment",
                )
            texts.append(text)
            labels.append(label)
    return Labeled("airline tweets", tuple(texts), tuple(labels))


def read_tweeteval(directory: Path, task: str, split: str) -> Labeled:
    """TweetEval's ``task`` posts of one ``split`` (``train`` or ``val``), with named labels."""
    folder = directory / "tweeteval" / task
    names: dict[str, str] = {}
    for line, entry in enumerate(_lines(folder / "mapping.txt"), start=1):
        number, _, name = entry.partition("\t")
        if not name:
            raise InputError("expected 'number<TAB>name'", file=folder / "mapping.txt", line=line)
        names[number.strip()] = name.strip()
    texts = _lines(folder / f"{split}_text.txt")
    codes = _lines(folder / f"{split}_labels.txt")
    if len(texts) != len(codes):
        raise InputError(
            f"{len(texts)} texts but {len(codes)} labels in {split}_labels.txt", file=folder
        )
    labels = []
    for line, code in enumerate(codes, start=1):
        if code.strip() not in names:
            raise InputError(
                f"label {code!r} is not in mapping.txt",
                file=folder / f"{split}_labels.txt",
                line=line,
            )
        labels.append(names[code.strip()])
    return Labeled(f"TweetEval {task} {split}", tuple(texts), tuple(labels))
