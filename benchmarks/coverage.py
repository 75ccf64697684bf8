"""Benchmark: do the 95 % intervals of every estimator hold the truth on real logs?

    .venv/bin/python benchmarks/coverage.py [--data ../shared/data] [--repeat 200] [--rounds 4000]
                                            [--skip hillstrom,obd] [--seed 0]

Each repetition draws a subset of a real randomized experiment, evaluates several policies on it
with IPS, SNIPS, DM, DR and switch-DR through the path ``tummler evaluate --log`` takes (one
cross-fitted reward model, DM's interval from :func:`tummler.evaluate.refit_dm_replicates`
shared by the policies, the default switch-DR guard), and records whether each 95 % interval
held the policy's true value. A table per data set gives the coverage per estimator and policy;
an honest interval covers in about 95 % of repetitions (the issue's acceptance band: 90–98 %).

(a) ``hillstrom``: the MineThatData e-mail RCT (64,000 customers, three arms at 1/3 each), the
    reward a visit. Two logging designs, ``--rounds`` customers drawn without replacement per
    repetition: ``uniform`` (the RCT as it is) and ``skewed`` (a rejection subsample that keeps
    every ``Mens E-Mail`` row and a quarter of the others, so that arm gets two thirds of the
    traffic; the propensities it implies, 2/3, 1/6, 1/6, are logged). Truth: each policy's
    on-policy mean on the full randomized data, ``Σ_i π(a_i | x_i) r_i / (1/3) / N`` (for a
    context-free policy, its mix of the arms' means). Policies: ``uniform``, ``logged`` (the
    logging policy itself: under ``skewed`` its truth is 2/3 · men + 1/6 · women + 1/6 · none),
    ``mens`` (always the Mens e-mail), ``targeted`` (the Womens e-mail to those who bought only
    women's goods, the Mens e-mail to the rest: a contextual policy).
(b) ``obd``: the Open Bandit Dataset's uniform-random log (``random/all/all.csv``, 10,000
    impressions, 80 items at 3 positions), a quarter of the rounds per repetition. Policies:
    ``uniform`` (the logging policy; truth: the full log's click rate) and ``bts`` (the Thompson
    sampling policy, its distribution per position read off its own log; truth: its on-policy
    click rate in ``bts/all/all.csv``, on the same traffic). The reward model sees the positions
    only (the hashed user features make a logistic fit with 80 actions slow, and the clicks are
    too rare, about 40 per 10,000, for it to learn from them). A quarter of a small log shares
    much of its randomness with the whole, so the uniform policy's coverage reads high there.

Baseline for the ratio: a plain NumPy IPS (weights times rewards, its mean and a normal
interval) over the same subsets; the ratio is the product's time over the baseline's. The last
line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tummler.app.ingest import LoggedBandit, experiment_to_log, read_logged_bandit
from tummler.evaluate import (
    ESTIMATORS,
    baseline_action_dist,
    context_free_policy,
    evaluate_policy,
    fit_reward_model,
    refit_dm_replicates,
)

console = Console()
FloatArray = np.ndarray


@dataclass(frozen=True)
class Design:
    """One logging design on one data set: the rows it may draw and their propensities."""

    name: str
    logs: LoggedBandit
    rows: np.ndarray  # the rows of the full log this design may draw from
    propensity: np.ndarray  # (len(rows),) the logging probability the design implies
    truth: dict[str, float]  # policy name -> true value
    policies: Callable[[LoggedBandit, np.ndarray, np.ndarray], dict[str, FloatArray]]


def _default_data_dir() -> Path:
    """``TUMMLER_DATA_DIR``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("TUMMLER_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def evaluate_subset(
    logs: LoggedBandit,
    rows: np.ndarray,
    propensity: np.ndarray,
    dists: dict[str, FloatArray],
    seed: int,
) -> dict[str, dict[str, tuple[float | None, float | None]]]:
    """Every policy's intervals on one subset, as ``tummler evaluate --log`` computes them."""
    context, action, reward = logs.context[rows], logs.action[rows], logs.reward[rows]
    position = None if logs.position is None else logs.position[rows]
    model: dict[str, Any] = {"n_actions": logs.n_actions, "position": position, "kind": "auto"}
    estimated = fit_reward_model(context, action, reward, n_folds=3, rng=seed, **model)
    replicates = refit_dm_replicates(
        context, action, reward, list(dists.values()), rng=seed + 1, **model
    )
    out = {}
    for j, (name, dist) in enumerate(dists.items()):
        result = evaluate_policy(
            reward,
            action,
            propensity,
            dist,
            position=position,
            estimated_rewards=estimated,
            dm_replicates=replicates[:, j],
            n_bootstrap=200,
            rng=seed,
        )
        out[name] = {e.name: (e.ci_low, e.ci_high) for e in result.estimates}
    return out


def numpy_ips(reward: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """The baseline: IPS and a normal 95 % interval, in plain NumPy."""
    terms = weight * reward
    mean = float(terms.mean())
    half = 1.96 * float(terms.std()) / np.sqrt(terms.size)
    return mean - half, mean + half


# --- (a) Hillstrom ------------------------------------------------------------------------------


def hillstrom_designs(path: Path) -> list[Design]:
    with tempfile.TemporaryDirectory() as tmp:
        log_path = experiment_to_log(
            path,
            Path(tmp) / "hillstrom.csv",
            action="segment",
            reward="visit",
            outcomes=["conversion", "spend"],
        )
        logs = read_logged_bandit(log_path)
    names = list(logs.action_names)
    mens, womens = names.index("Mens E-Mail"), names.index("Womens E-Mail")
    columns = list(logs.feature_names)
    bought_mens, bought_womens = columns.index("mens"), columns.index("womens")

    def policies(
        logs: LoggedBandit, rows: np.ndarray, propensity: np.ndarray
    ) -> dict[str, FloatArray]:
        n, k = rows.size, logs.n_actions
        x = logs.context[rows]
        only_women = (x[:, bought_womens] == 1) & (x[:, bought_mens] == 0)
        targeted = np.zeros((n, k))
        targeted[np.arange(n), np.where(only_women, womens, mens)] = 1.0
        return {
            "uniform": np.full((n, k), 1.0 / k),
            "logged": baseline_action_dist(
                "logged",
                reward=logs.reward[rows],
                action=logs.action[rows],
                propensity=propensity,
                n_actions=k,
            ),
            "mens": np.eye(k)[np.full(n, mens)],
            "targeted": targeted,
        }

    everyone = np.arange(logs.n_rounds)

    def truth(shares: np.ndarray) -> dict[str, float]:
        """On-policy means on the full RCT (propensity 1/3): IPS over all 64,000 customers."""
        full = policies(logs, everyone, logs.propensity)
        full["logged"] = np.tile(shares, (logs.n_rounds, 1))
        weight_of = {
            name: dist[everyone, logs.action] / logs.propensity for name, dist in full.items()
        }
        return {name: float((w * logs.reward).mean()) for name, w in weight_of.items()}

    k = logs.n_actions
    uniform_shares = np.full(k, 1.0 / k)
    kept = np.where(logs.action == mens, 1.0, 0.25)
    rng = np.random.default_rng(12345)
    skewed_rows = everyone[rng.uniform(size=logs.n_rounds) < kept]
    skewed_shares = np.where(np.arange(k) == mens, 1.0, 0.25)
    skewed_shares /= skewed_shares.sum()
    return [
        Design("uniform", logs, everyone, logs.propensity, truth(uniform_shares), policies),
        Design(
            "skewed",
            logs,
            skewed_rows,
            skewed_shares[logs.action[skewed_rows]],
            truth(skewed_shares),
            policies,
        ),
    ]


# --- (b) Open Bandit ----------------------------------------------------------------------------


def obd_design(data: Path) -> Design:
    columns = {"action": "item_id", "reward": "click", "propensity": "propensity_score"}
    keep = ["item_id", "position", "click", "propensity_score"]

    def read(policy: str) -> LoggedBandit:
        path = data / "obd" / policy / "all" / "all.csv"
        ignore = [c for c in _header(path) if c not in keep and c]
        return read_logged_bandit(path, columns=columns, ignore=ignore)

    random, bts = read("random"), read("bts")
    assert random.position is not None
    assert bts.position is not None
    table = context_free_policy(
        bts.action, bts.propensity, n_actions=bts.n_actions, position=bts.position, n_positions=3
    )

    def policies(
        logs: LoggedBandit, rows: np.ndarray, propensity: np.ndarray
    ) -> dict[str, FloatArray]:
        n = rows.size
        return {
            "uniform": np.full((n, logs.n_actions, 3), 1.0 / logs.n_actions),
            "bts": np.broadcast_to(table, (n, *table.shape)).copy(),
        }

    truth = {"uniform": float(random.reward.mean()), "bts": float(bts.reward.mean())}
    everyone = np.arange(random.n_rounds)
    return Design("uniform", random, everyone, random.propensity, truth, policies)


def _header(path: Path) -> list[str]:
    with path.open() as handle:
        return handle.readline().rstrip("\n").split(",")


# --- the repetitions ----------------------------------------------------------------------------


def coverage(design: Design, *, rounds: int, repeat: int, seed: int) -> dict[str, Any]:
    """Coverage per policy and estimator over ``repeat`` subsets, and the two timings."""
    rng = np.random.default_rng(seed)
    hits: dict[str, dict[str, int]] = {}
    product_s = numpy_s = 0.0
    numpy_hits: dict[str, int] = {}
    for r in range(repeat):
        rows = np.sort(
            rng.choice(design.rows.size, size=min(rounds, design.rows.size), replace=False)
        )
        full_rows = design.rows[rows]
        propensity = design.propensity[rows]
        dists = design.policies(design.logs, full_rows, propensity)
        start = time.perf_counter()
        intervals = evaluate_subset(design.logs, full_rows, propensity, dists, seed + r)
        product_s += time.perf_counter() - start
        start = time.perf_counter()
        plain = {
            name: numpy_ips(
                design.logs.reward[full_rows], _weight(design.logs, full_rows, propensity, dist)
            )
            for name, dist in dists.items()
        }
        numpy_s += time.perf_counter() - start
        for name, by_estimator in intervals.items():
            truth = design.truth[name]
            row = hits.setdefault(name, dict.fromkeys(ESTIMATORS, 0))
            for estimator, (low, high) in by_estimator.items():
                row[estimator] += int(low is not None and high is not None and low <= truth <= high)
            low, high = plain[name]
            numpy_hits[name] = numpy_hits.get(name, 0) + int(low <= truth <= high)
    return {
        "coverage": {
            name: {e: count / repeat for e, count in row.items()} for name, row in hits.items()
        },
        "numpy_ips_coverage": {name: count / repeat for name, count in numpy_hits.items()},
        "truth": design.truth,
        "product_s": product_s,
        "numpy_ips_s": numpy_s,
        "repeat": repeat,
        "rounds": int(min(rounds, design.rows.size)),
    }


def _weight(
    logs: LoggedBandit, rows: np.ndarray, propensity: np.ndarray, dist: FloatArray
) -> np.ndarray:
    taken = np.arange(rows.size), logs.action[rows]
    if dist.ndim == 3:
        assert logs.position is not None
        return np.asarray(dist[taken[0], taken[1], logs.position[rows]] / propensity)
    return np.asarray(dist[taken] / propensity)


def show(title: str, figures: dict[str, Any]) -> None:
    table = Table(
        title=f"{title}: {figures['repeat']} subsets of {figures['rounds']:,} rounds",
        title_justify="left",
    )
    table.add_column("policy")
    table.add_column("truth", justify="right")
    for name in ESTIMATORS:
        table.add_column(name, justify="right")
    table.add_column("numpy ips", justify="right")
    for policy, row in figures["coverage"].items():
        table.add_row(
            policy,
            f"{figures['truth'][policy]:.4f}",
            *(f"{row[e]:.2f}" for e in ESTIMATORS),
            f"{figures['numpy_ips_coverage'][policy]:.2f}",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=_default_data_dir())
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4000)
    parser.add_argument("--skip", default="")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    console.print(f"uptime: {uptime}")
    results: dict[str, Any] = {"uptime": uptime}
    hillstrom = args.data / "hillstrom" / "hillstrom.csv"
    if "hillstrom" not in skip:
        if hillstrom.is_file():
            for design in hillstrom_designs(hillstrom):
                figures = coverage(design, rounds=args.rounds, repeat=args.repeat, seed=args.seed)
                show(f"hillstrom, {design.name} logging", figures)
                results[f"hillstrom_{design.name}"] = figures
        else:
            console.print(f"hillstrom skipped: {hillstrom} not found (give --data)")
    if "obd" not in skip:
        if (args.data / "obd" / "random" / "all" / "all.csv").is_file():
            figures = coverage(
                obd_design(args.data), rounds=2500, repeat=args.repeat, seed=args.seed
            )
            show("obd random/all, uniform logging", figures)
            results["obd_random"] = figures
        else:
            console.print(f"obd skipped: {args.data / 'obd'} not found (give --data)")
    product = sum(v["product_s"] for k, v in results.items() if k != "uptime")
    baseline = sum(v["numpy_ips_s"] for k, v in results.items() if k != "uptime")
    results["product_s"] = product
    results["numpy_ips_s"] = baseline
    results["ratio_product_over_numpy_ips"] = product / baseline if baseline else None
    console.print(
        f"time: tummler (every estimator, DM refits) {product:.1f} s, plain NumPy IPS {baseline:.3f} s"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
