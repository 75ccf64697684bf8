"""Convert the Hillstrom e-mail experiment to the logged-bandit format (docs/logged-bandit-format.md).

    .venv/bin/python benchmarks/hillstrom_to_log.py [--data ../shared/data] [--out DIR]
                                                    [--reward conversion|spend|both]

Kevin Hillstrom's MineThatData challenge: 64,000 customers were randomly given the men's e-mail, the
women's e-mail or none, a third each, and their visits, conversions and spend over the next two
weeks were recorded. As a logged bandit: the action is the ``segment`` (``Mens E-Mail``,
``Womens E-Mail``, ``No E-Mail``), the propensity is 1/3 for every row (the assignment was uniform),
the reward is the conversion (0/1) or the spend (dollars), and the context is every other column
except the outcomes ``visit``, ``conversion`` and ``spend``, which the sender could not have known.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

#: The outcome columns of the file: never context.
OUTCOMES = ("visit", "conversion", "spend")
#: The three arms of the experiment, in the order of the logged-bandit file's action names.
SEGMENTS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
PROPENSITY = 1.0 / 3.0


def default_data_dir() -> Path:
    """``--data``, else ``TUMMLER_DATA_DIR``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("TUMMLER_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def convert(source: str | Path, out: str | Path, *, reward: str = "conversion") -> Path:
    """Write ``hillstrom.csv`` as a logged-bandit CSV with ``reward`` as the reward.

    Parameters
    ----------
    source
        The original ``hillstrom.csv``.
    out
        The logged-bandit file to write (CSV).
    reward
        ``conversion`` (0/1) or ``spend`` (dollars).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    if reward not in ("conversion", "spend"):
        raise ValueError(f"reward = {reward!r}: choose 'conversion' or 'spend'")
    table = pa_csv.read_csv(source)
    missing = {"segment", *OUTCOMES} - set(table.schema.names)
    if missing:
        raise ValueError(f"{source}: not the Hillstrom file, it lacks {sorted(missing)}")
    context = [n for n in table.schema.names if n not in ("segment", *OUTCOMES)]
    n = table.num_rows
    converted = pa.table(
        {
            "action": table.column("segment"),
            "reward": table.column(reward).cast(pa.float64()),
            "propensity": pa.array([PROPENSITY] * n, type=pa.float64()),
            **{name: table.column(name) for name in context},
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pa_csv.write_csv(converted, out)
    return out


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Convert from the command line; return the files written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="the shared data directory")
    parser.add_argument("--out", type=Path, default=Path("hillstrom-logs"), help="output folder")
    parser.add_argument("--reward", choices=("conversion", "spend", "both"), default="both")
    args = parser.parse_args(argv)
    source = (args.data or default_data_dir()) / "hillstrom" / "hillstrom.csv"
    if not source.is_file():
        parser.error(f"{source} not found; pass --data or set TUMMLER_DATA_DIR")
    rewards = ("conversion", "spend") if args.reward == "both" else (args.reward,)
    written = [convert(source, args.out / f"hillstrom_{r}.csv", reward=r) for r in rewards]
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
