"""Convert a uniformly randomized experiment to the logged-bandit format (docs/logged-bandit-format.md).

    .venv/bin/python benchmarks/experiment_to_log.py SOURCE OUT --action COLUMN --reward COLUMN
                                                     [--outcome COLUMN ...]

The propensity of every row is 1 / (number of arms); the other outcome columns are dropped; every
remaining column is context. The Hillstrom e-mail experiment in the shared data, for example (the arm
is ``segment``; ``visit``, ``conversion`` and ``spend`` are outcomes):

    .venv/bin/python benchmarks/experiment_to_log.py ../shared/data/hillstrom/hillstrom.csv \\
        hillstrom-conversion.csv --action segment --reward conversion --outcome visit --outcome spend

This is a thin command over :func:`tummler.app.ingest.experiment_to_log`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tummler.app.ingest import experiment_to_log


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the experiment's table (CSV or Parquet)")
    parser.add_argument("out", type=Path, help="the logged-bandit CSV to write")
    parser.add_argument("--action", required=True, help="the arm column")
    parser.add_argument("--reward", required=True, help="the outcome to use as reward")
    parser.add_argument("--outcome", action="append", default=[], help="another outcome to drop")
    args = parser.parse_args(argv)
    written = experiment_to_log(
        args.source, args.out, action=args.action, reward=args.reward, outcomes=args.outcome
    )
    print(written)
    return written


if __name__ == "__main__":
    main()
