"""Benchmark: the shipped text models against VADER on held-out posts, and their speed.

    .venv/bin/python benchmarks/listen.py [--data ../shared/data] [--workers 2] [--repeat 3]

For every shipped model (``tummler listen train`` writes them), the posts its training kept
aside are rebuilt from the data with the seed recorded in the model's card (the same recipe, so
the same split) and scored: macro-F1 of the model and, for sentiment, of VADER on the same posts.
Speed is posts per second classifying every held-out sentiment post, by the model (features,
VADER's lexicon among them, and the prediction) and by VADER alone, each on ``--workers``
processes, median of ``--repeat`` interleaved runs. The last line is one JSON object with every
figure; ``f1_gain_over_vader`` and ``speed_ratio_to_vader`` are the headline ratios. Themes: the
negative airline tweets clustered into 10 themes, and the normalized mutual information of the
themes with the reasons people labeled them with (late flight, lost luggage...), against the same
reasons shuffled.

The data directory is ``--data``, else ``TUMMLER_DATA_DIR``, else ``../shared/data`` beside the
repository; without it the benchmark says so and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tummler.app.listening.models import load_model
from tummler.app.listening.training import MODEL_NAMES, recipes
from tummler.listen import fit_themes, score_labels, vader_sentiment

console = Console()


def _default_data_dir() -> Path:
    env = os.environ.get("TUMMLER_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _classify(chunk: list[str]) -> int:
    return len(load_model("sentiment").predict(chunk))


def _vader(chunk: list[str]) -> int:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return len(vader_sentiment([analyzer.polarity_scores(t)["compound"] for t in chunk]))


def _rate(pool: ProcessPoolExecutor, job: Any, texts: list[str], workers: int) -> float:
    size = -(-len(texts) // workers)
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    started = time.perf_counter()
    done: int = sum(pool.map(job, chunks))
    return done / (time.perf_counter() - started)


def quality(directory: Path) -> list[dict[str, Any]]:
    """Macro-F1 of every shipped model (and VADER for sentiment) on its held-out posts."""
    rows = []
    seeds = {name: load_model(name).card.get("seed", 0) for name in MODEL_NAMES}
    for recipe in recipes(directory, seed=int(seeds["sentiment"])):
        model = load_model(recipe.name)
        for part in recipe.held_out:
            row: dict[str, Any] = {"model": recipe.name, "data": part.source, "n": len(part)}
            predicted = model.predict(part.texts)
            row["macro_f1"] = score_labels(part.labels, predicted, model.labels).macro_f1
            if recipe.name == "sentiment":
                compound = model.featurizer.lexicon_scores(part.texts)[:, 3]
                row["vader_macro_f1"] = score_labels(
                    part.labels, vader_sentiment(compound), model.labels
                ).macro_f1
            rows.append(row)
    return rows


def themes(directory: Path, n_themes: int = 10) -> dict[str, Any]:
    """Themes of the negative airline tweets against their hand-given reasons (NMI), and a shuffle."""
    import csv

    import numpy as np
    from sklearn.metrics import normalized_mutual_info_score

    with (directory / "airline_tweets.csv").open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["negativereason"]]
    texts, reasons = [r["text"] for r in rows], [r["negativereason"] for r in rows]
    started = time.perf_counter()
    model, found = fit_themes(texts, n_themes, rng=0)
    seconds = time.perf_counter() - started
    shuffled = np.random.default_rng(0).permutation(np.asarray(reasons))
    return {
        "posts": len(texts),
        "reasons": len(set(reasons)),
        "themes": list(model.labels),
        "nmi": normalized_mutual_info_score(reasons, found),
        "nmi_shuffled_reasons": normalized_mutual_info_score(shuffled, found),
        "seconds": seconds,
    }


def speed(texts: list[str], workers: int, repeat: int) -> dict[str, float]:
    """Median posts/s of the sentiment model and of VADER, interleaved, on ``workers`` processes."""
    rates: dict[str, list[float]] = {"model": [], "vader": []}
    with ProcessPoolExecutor(workers) as pool:
        _rate(pool, _classify, texts[: workers * 50], workers)  # load the model in every worker
        _rate(pool, _vader, texts[: workers * 50], workers)
        for _ in range(repeat):
            rates["model"].append(_rate(pool, _classify, texts, workers))
            rates["vader"].append(_rate(pool, _vader, texts, workers))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    directory = (args.data or _default_data_dir()) / "sentiment"
    if not directory.is_dir():
        console.print(f"no sentiment data at {directory}: set --data or TUMMLER_DATA_DIR")
        sys.exit(0)
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    rows = quality(directory)
    table = Table(title="Held-out posts (the splits training did not use)")
    for column in ("model", "data", "posts", "macro-F1", "VADER macro-F1", "gain"):
        table.add_column(column, justify="left" if column in ("model", "data") else "right")
    for row in rows:
        vader = row.get("vader_macro_f1")
        table.add_row(
            row["model"],
            row["data"],
            f"{row['n']:,}",
            f"{row['macro_f1']:.3f}",
            "" if vader is None else f"{vader:.3f}",
            "" if vader is None else f"{row['macro_f1'] - vader:+.3f}",
        )
    console.print(table)
    sentiment = [r for r in rows if r["model"] == "sentiment"]
    topics = themes(directory)
    console.print(
        f"themes of {topics['posts']:,} negative airline tweets ({topics['seconds']:.1f} s): "
        f"NMI with their {topics['reasons']} hand-given reasons {topics['nmi']:.3f} "
        f"(reasons shuffled: {topics['nmi_shuffled_reasons']:.3f})"
    )
    for number, label in enumerate(topics["themes"]):
        console.print(f"  theme {number}: {label}")
    texts = [t for part in recipes(directory)[0].held_out for t in part.texts]
    rates = speed(texts, args.workers, args.repeat)
    console.print(
        f"sentiment model {rates['model']:,.0f} posts/s, VADER {rates['vader']:,.0f} posts/s "
        f"({args.workers} processes, {len(texts):,} posts, median of {args.repeat}); {load}"
    )
    gains = [r["macro_f1"] - r["vader_macro_f1"] for r in sentiment]
    print(
        json.dumps(
            {
                "uptime": load,
                "quality": rows,
                "themes": topics,
                "posts_per_s": rates,
                "workers": args.workers,
                "f1_gain_over_vader": dict(zip((r["data"] for r in sentiment), gains, strict=True)),
                "speed_ratio_to_vader": rates["model"] / rates["vader"],
            }
        )
    )


if __name__ == "__main__":
    main()
