"""Benchmark: learning from logs and off-policy evaluation, on real data and at scale.

    .venv/bin/python benchmarks/learn.py [--data ../shared/data] [--rounds 1000000] [--repeat 3]
                                         [--skip obd,hillstrom,throughput,simulator,randomized]
                                         [--contacts 5000] [--sim-rounds 20]
                                         [--sim-seeds 0,1,2,3,4] [--sim-jobs 1]
                                         [--email-cost 0.5] [--randomized-rows N]

Sections, each printed as a table; the last line is one JSON object with every figure:

(a) ``obd``: the Open Bandit Dataset sample. The value of the ``bts`` policy (context-free, its
    action distribution per position read off its own logs' propensities) estimated from the
    ``random`` logs, against the on-policy click rate of the ``bts`` logs: relative error per
    estimator.
(b) ``hillstrom``: the e-mail experiment as a logged bandit (``tummler.app.ingest.experiment_to_log``).
    Learn on half the customers, evaluate on the other half with IPS and DR against "everyone gets
    the best e-mail" and "nobody gets one": conversions and spend per 1,000 customers, with 95 %
    bootstrap intervals.
(c) ``throughput``: learning from ``--rounds`` synthetic logged decisions (seeded, known true
    reward model) in examples per second, against Vowpal Wabbit's command line
    (``--cb_explore_adf``, run as ``python -m vowpalwabbit``) on the same data in the same run,
    with each learner's greedy policy value on held-out contexts under the true model; and IPS /
    DR on ``--rounds`` rounds against a plain vectorized NumPy implementation, interleaved, medians
    of ``max(--repeat, 7)`` runs (:func:`estimator_speed`). The headline ratio is tummler's
    *checked-once* path — logs checked once as a ``LoggedData``, the policy once by
    ``LoggedData.rounds``, then ``tummler.evaluate.estimate`` — over NumPy; the array-taking
    ``ips`` / ``dr``, which check every array on every call, and the two checks' own cost are
    reported beside it.
(d) ``simulator``: the product's own loop on the simulator. ``tummler demo``'s rounds
    (:func:`tummler.demo.run_demo`) on a brand of ``--contacts`` people (5,000) after 90 days of
    legacy blasts, ``--sim-rounds`` daily rounds (20): plan_campaign, the outbox, the people's
    responses recorded as provider reports, ``learn_from_store`` and promotion when off-policy
    evaluation says so. Send to all, the best single action, random and the (myopic) oracle are
    each played in their own copy of the simulated world (same people, audience and response
    seeds: :class:`tummler.simulate.BaselineWorlds`), so the unsubscribes and fatigue a policy
    causes cost it in later rounds. Per seed of ``--sim-seeds`` (``0,1,2,3,4``; ``--sim-jobs``
    of them at once) each policy's total true expected reward; over the seeds, tummler minus
    each baseline with a Student t interval and the seeds won. The headline ratio is tummler over
    send-to-all. Measured: see benchmarks/README.md.
(e) ``randomized``: on every randomized experiment in the data (Hillstrom), policies learned on
    one half — linear (``tummler learn``'s) and gradient-boosted greedy, and the one chosen by DR
    on a validation part of that half — against the best single arm and uniform on the other
    half, with paired bootstrap intervals of the differences (benchmarks/_randomized.py).

The data directory is ``--data``, else ``TUMMLER_DATA_DIR``, else ``../shared/data`` beside the
repository; a section whose data is absent is skipped with a message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _randomized import randomized_section
from rich.console import Console
from rich.table import Table

from tummler import evaluate
from tummler.app.ingest import LoggedBandit, experiment_to_log, read_logged_bandit
from tummler.app.learning import fit_policy
from tummler.evaluate import (
    LoggedData,
    context_free_policy,
    dr,
    evaluate_policy,
    fit_reward_model,
    ips,
)

console = Console(width=120)
OBD_COLUMNS = {"action": "item_id", "reward": "click", "propensity": "propensity_score"}


def median_time(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def subset(logs: LoggedBandit, rows: np.ndarray) -> LoggedBandit:
    """The rounds ``rows`` of a log, as a log of their own."""
    return dataclasses.replace(
        logs,
        context=logs.context[rows],
        action=logs.action[rows],
        reward=logs.reward[rows],
        propensity=logs.propensity[rows],
        position=None if logs.position is None else logs.position[rows],
        timestamp=None if logs.timestamp is None else logs.timestamp[rows],
    )


# --- (a) Open Bandit Dataset ------------------------------------------------------------------


def obd_section(data: Path) -> dict[str, Any]:
    root = data / "obd"
    random_log, bts_log = root / "random" / "all" / "all.csv", root / "bts" / "all" / "all.csv"
    if not (random_log.is_file() and bts_log.is_file()):
        return {"skipped": f"Open Bandit Dataset sample not found under {root}"}
    logs = read_logged_bandit(random_log, columns=OBD_COLUMNS)
    bts = read_logged_bandit(bts_log, columns=OBD_COLUMNS)
    if bts.action_names != logs.action_names:
        return {"skipped": "the bts and random logs list different items"}
    on_policy = float(bts.reward.mean())
    table = context_free_policy(
        bts.action,
        bts.propensity,
        n_actions=bts.n_actions,
        position=bts.position,
        n_positions=logs.n_positions,
    )
    action_dist = np.broadcast_to(table, (logs.n_rounds, *table.shape))
    user = [i for i, name in enumerate(logs.feature_names) if name.startswith("user_feature")]
    result = evaluate_policy(
        logs.reward,
        logs.action,
        logs.propensity,
        action_dist,
        context=logs.context[:, user],
        position=logs.position,
        policy="bts",
        n_bootstrap=300,
        rng=0,
    )
    rows = {}
    out = Table(title=f"(a) OBD: bts from random logs; on-policy CTR {on_policy:.5f}")
    for column in ("estimator", "estimate", "95% interval", "relative error", "ESS"):
        out.add_column(column, justify="left" if column == "estimator" else "right")
    for estimate in result.estimates:
        error = abs(estimate.value - on_policy) / on_policy
        rows[estimate.name] = {
            "estimate": estimate.value,
            "ci_low": estimate.ci_low,
            "ci_high": estimate.ci_high,
            "relative_error": error,
            "effective_sample_size": estimate.effective_sample_size,
        }
        out.add_row(
            estimate.name,
            f"{estimate.value:.5f}",
            f"[{estimate.ci_low:.5f}, {estimate.ci_high:.5f}]",
            f"{error:.1%}",
            f"{estimate.effective_sample_size:,.0f}",
        )
    console.print(out)
    return {"on_policy_ctr": on_policy, "n_rounds": logs.n_rounds, "estimators": rows}


def _default_data_dir() -> Path:
    """``TUMMLER_DATA_DIR``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("TUMMLER_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --- (b) Hillstrom ----------------------------------------------------------------------------


def hillstrom_run(path: Path, reward: str, seed: int) -> dict[str, Any]:
    logs = read_logged_bandit(path)
    rng = np.random.default_rng(seed)
    order = rng.permutation(logs.n_rounds)
    half = logs.n_rounds // 2
    train, test = subset(logs, np.sort(order[:half])), subset(logs, np.sort(order[half:]))
    kind = "logistic_thompson" if reward == "conversion" else "linear_thompson"
    # Spend is in dollars: a noise variance on that scale keeps the linear posterior honest.
    params = {} if reward == "conversion" else {"noise_variance": float(np.var(train.reward))}
    start = time.perf_counter()
    learned = fit_policy(train, kind=kind, params=params)
    learn_s = time.perf_counter() - start
    names = logs.action_names
    emails = [i for i, name in enumerate(names) if name != "No E-Mail"]
    nobody = names.index("No E-Mail")
    train_value = np.bincount(train.action, weights=train.reward / train.propensity, minlength=3)
    best_email = max(emails, key=lambda a: train_value[a])

    def fixed(action: int) -> np.ndarray:
        dist = np.zeros((test.n_rounds, test.n_actions))
        dist[:, action] = 1.0
        return dist

    # The greedy policy: the posterior mean's best action, what a team would deploy after
    # exploring (the Thompson policy keeps exploring, which costs on this small effect).
    greedy = learned.policy.scores(learned.contexts(test), learned.action_set()).argmax(axis=1)
    policies = {
        f"tummler {kind}": learned.action_dist(test, draws=64, rng=seed),
        "tummler greedy": np.eye(test.n_actions)[greedy],
        f"everyone: {names[best_email]}": fixed(best_email),
        "nobody": fixed(nobody),
    }
    estimated = fit_reward_model(
        test.context, test.action, test.reward, n_actions=test.n_actions, rng=seed
    )
    figures: dict[str, Any] = {}
    for label, dist in policies.items():
        result = evaluate_policy(
            test.reward,
            test.action,
            test.propensity,
            dist,
            estimated_rewards=estimated,
            policy=label,
            n_bootstrap=500,
            rng=seed,
        )
        figures[label] = {
            name: {
                "per_1000": 1000 * result[name].value,
                "ci_low": 1000 * (result[name].ci_low or math.nan),
                "ci_high": 1000 * (result[name].ci_high or math.nan),
            }
            for name in ("ips", "dr")
        }
        figures[label]["share_best_email"] = float(dist[:, best_email].mean())
        figures[label]["share_nobody"] = float(dist[:, nobody].mean())
    return {
        "reward": reward,
        "train": train.n_rounds,
        "test": test.n_rounds,
        "learn_s": learn_s,
        "policies": figures,
    }


def hillstrom_section(data: Path, seed: int) -> dict[str, Any]:
    source = data / "hillstrom" / "hillstrom.csv"
    if not source.is_file():
        return {"skipped": f"Hillstrom data not found at {source}"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for reward in ("conversion", "spend"):
            path = experiment_to_log(
                source,
                Path(tmp) / f"hillstrom_{reward}.csv",
                action="segment",
                reward=reward,
                outcomes=("visit", "conversion", "spend"),
            )
            results[reward] = hillstrom_run(path, reward, seed)
    out = Table(title="(b) Hillstrom: learn on half, evaluate on the other half (per 1,000)")
    for column in ("reward", "policy", "IPS [95%]", "DR [95%]", "best e-mail / nobody"):
        out.add_column(column, justify="left" if column in ("reward", "policy") else "right")
    for reward, run in results.items():
        for index, (label, row) in enumerate(run["policies"].items()):
            ips_, dr_ = row["ips"], row["dr"]
            out.add_row(
                reward if index == 0 else "",
                label,
                f"{ips_['per_1000']:.2f} [{ips_['ci_low']:.2f}, {ips_['ci_high']:.2f}]",
                f"{dr_['per_1000']:.2f} [{dr_['ci_low']:.2f}, {dr_['ci_high']:.2f}]",
                f"{row['share_best_email']:.0%} / {row['share_nobody']:.0%}",
                end_section=index == len(run["policies"]) - 1,
            )
    console.print(out)
    return results


# --- (c) throughput ---------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    """A seeded contextual bandit with a known logistic reward model; logging is uniform."""

    intercept: np.ndarray
    theta: np.ndarray

    @classmethod
    def make(cls, d: int, k: int, rng: np.random.Generator) -> World:
        return cls(intercept=rng.normal(-1.5, 0.4, size=k), theta=rng.normal(0, 0.5, size=(k, d)))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        p: np.ndarray = 1.0 / (1.0 + np.exp(-(self.intercept + x @ self.theta.T)))
        return p

    def log(self, n: int, rng: np.random.Generator) -> LoggedBandit:
        k, d = self.theta.shape
        x = rng.normal(size=(n, d))
        action = rng.integers(0, k, size=n)
        p = self.probabilities(x)[np.arange(n), action]
        reward = (rng.random(n) < p).astype(np.float64)
        return LoggedBandit(
            context=x,
            action=action.astype(np.int64),
            reward=reward,
            propensity=np.full(n, 1.0 / k),
            feature_names=tuple(f"f{j}" for j in range(d)),
            action_names=tuple(str(a) for a in range(k)),
        )


def write_vw(path: Path, logs: LoggedBandit, *, labels: bool) -> None:
    """The rounds in Vowpal Wabbit's ADF text format (cost = −reward on the logged action)."""
    k = logs.n_actions
    action_lines = [f"|a a{a}" for a in range(k)]
    with path.open("w", encoding="ascii") as out:
        for start in range(0, logs.n_rounds, 100_000):
            stop = min(logs.n_rounds, start + 100_000)
            lines = []
            for i in range(start, stop):
                features = " ".join(f"f{j}:{v:.5f}" for j, v in enumerate(logs.context[i]))
                lines.append(f"shared |s {features}")
                for a in range(k):
                    if labels and a == logs.action[i]:
                        cost = -logs.reward[i]
                        lines.append(f"{a}:{cost:g}:{logs.propensity[i]:.6f} {action_lines[a]}")
                    else:
                        lines.append(action_lines[a])
                lines.append("")
            out.write("\n".join(lines) + "\n")


def vw_section(
    train: LoggedBandit, held_out: LoggedBandit, world: World, tmp: Path
) -> dict[str, Any]:
    """Vowpal Wabbit's command line on the same data, or why it could not run."""
    try:
        import vowpalwabbit
    except ImportError:
        return {"skipped": "vowpalwabbit is not installed (pip install vowpalwabbit)"}
    binary = shutil.which("vw")
    command = [binary] if binary else [sys.executable, "-m", "vowpalwabbit"]
    data, test, model, preds = (tmp / n for n in ("train.vw", "test.vw", "model.vw", "pred.txt"))
    write_vw(data, train, labels=True)
    write_vw(test, held_out, labels=False)
    start = time.perf_counter()
    subprocess.run(
        [*command, "--cb_explore_adf", "-q", "sa", "-d", str(data), "-f", str(model), "--quiet"],
        check=True,
    )
    learn_s = time.perf_counter() - start
    subprocess.run(
        [*command, "-t", "-i", str(model), "-d", str(test), "-p", str(preds), "--quiet"],
        check=True,
    )
    greedy = []
    for line in preds.read_text().splitlines():
        if not line.strip():
            continue
        pairs = [item.split(":") for item in line.split(",")]
        greedy.append(int(max(pairs, key=lambda pair: float(pair[1]))[0]))
    chosen = np.asarray(greedy, dtype=np.int64)
    truth = world.probabilities(held_out.context)
    return {
        "version": getattr(vowpalwabbit, "__version__", "?"),
        "command": " ".join(Path(c).name for c in command) + " --cb_explore_adf -q sa",
        "learn_s": learn_s,
        "examples_per_s": train.n_rounds / learn_s,
        "held_out_value": float(truth[np.arange(held_out.n_rounds), chosen].mean()),
    }


def estimator_speed(
    train: LoggedBandit, dist: np.ndarray, estimated: np.ndarray, repeat: int
) -> dict[str, Any]:
    """IPS and DR on ``train`` against a plain vectorized NumPy implementation, in one run.

    tummler is timed two ways: *checked once* — the logs checked as a :class:`LoggedData` and
    the policy (with the model's predictions) by :meth:`LoggedData.rounds` before the clock
    starts, then :func:`tummler.evaluate.estimate` on a fresh :class:`LoggedRounds` each time
    (no weight is cached from an earlier call) — and *on arrays*, the public ``ips`` / ``dr``
    that check every array on every call. The NumPy baseline is what one would write by hand
    (fancy indexing, ``einsum`` per row, ``mean``), with no checks. Runs are interleaved and each
    figure is the median of ``max(repeat, 7)`` runs.
    """
    reward, action, propensity = train.reward, train.action, train.propensity
    n = reward.shape[0]
    rows = np.arange(n)

    def numpy_ips() -> float:
        weight = dist[rows, action] / propensity
        return float(np.mean(weight * reward))

    def numpy_dr() -> float:
        weight = dist[rows, action] / propensity
        baseline = np.einsum("ij,ij->i", dist, estimated)
        residual = reward - estimated[rows, action]
        return float(np.mean(baseline + weight * residual))

    runs = max(repeat, 7)

    def check_logs() -> LoggedData:
        logged = LoggedData(reward, action, propensity)
        logged.flat_index(dist.shape[1])  # made once per log and number of actions
        return logged

    check_logs_s, logged = median_time(check_logs, runs)
    check_policy_s, checked = median_time(
        lambda: logged.rounds(dist, estimated_rewards=estimated), runs
    )
    arrays = {
        "ips": lambda: ips(reward, action, propensity, dist, n_bootstrap=0),
        "dr": lambda: dr(reward, action, propensity, dist, estimated, n_bootstrap=0),
    }
    plain = {"ips": numpy_ips, "dr": numpy_dr}
    timings: dict[str, Any] = {"check_logs_s": check_logs_s, "check_policy_s": check_policy_s}
    for name in ("ips", "dr"):
        times: dict[str, list[float]] = {"tummler": [], "numpy": [], "arrays": []}
        values: dict[str, float] = {}
        for _ in range(runs):
            fresh = dataclasses.replace(checked)  # nothing cached from the last run
            calls: tuple[tuple[str, Callable[[], float]], ...] = (
                ("tummler", lambda: evaluate.estimate(fresh, name, n_bootstrap=0).value),  # noqa: B023
                ("numpy", plain[name]),
                ("arrays", lambda: arrays[name]().value),  # noqa: B023
            )
            for label, call in calls:
                begin = time.perf_counter()
                values[label] = call()
                times[label].append(time.perf_counter() - begin)
        medians = {label: statistics.median(t) for label, t in times.items()}
        timings[name] = {
            "tummler_s": medians["tummler"],
            "numpy_s": medians["numpy"],
            "arrays_s": medians["arrays"],
            "ratio": medians["tummler"] / medians["numpy"],
            "arrays_ratio": medians["arrays"] / medians["numpy"],
            "agree": bool(
                abs(values["tummler"] - values["numpy"]) < 1e-9
                and abs(values["arrays"] - values["numpy"]) < 1e-9
            ),
        }
    return timings


def throughput_section(n: int, repeat: int, seed: int, with_vw: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    world = World.make(8, 5, rng)
    train = world.log(n, rng)
    held_out = world.log(100_000, rng)
    truth = world.probabilities(held_out.context)
    results: dict[str, Any] = {"rounds": n, "features": 8, "actions": 5}

    fit_s, learned = median_time(lambda: fit_policy(train), repeat)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        parquet = tmp / "train.parquet"
        columns = {
            "action": pa.array(train.action),
            "reward": pa.array(train.reward),
            "propensity": pa.array(train.propensity),
            **{name: pa.array(train.context[:, j]) for j, name in enumerate(train.feature_names)},
        }
        pq.write_table(pa.table(columns), parquet)
        file_s, _ = median_time(lambda: fit_policy(read_logged_bandit(parquet)), repeat)
        scores = learned.policy.scores(learned.contexts(held_out), learned.action_set())
        chosen = np.asarray(scores.argmax(axis=1))
        # Action names sort as 0..4, the world's own order.
        value = float(truth[np.arange(held_out.n_rounds), chosen].mean())
        results["tummler"] = {
            "kind": learned.kind,
            "fit_s": fit_s,
            "examples_per_s": n / fit_s,
            "file_to_policy_s": file_s,
            "file_examples_per_s": n / file_s,
            "held_out_value": value,
        }
        if with_vw:
            try:
                results["vw"] = vw_section(train, held_out, world, tmp)
            except (OSError, subprocess.CalledProcessError) as exc:
                results["vw"] = {"skipped": f"Vowpal Wabbit failed: {exc}"}
        else:
            results["vw"] = {"skipped": "--no-vw"}
    results["held_out_best_value"] = float(truth.max(axis=1).mean())
    results["held_out_uniform_value"] = float(truth.mean())

    # IPS and DR on n rounds against plain NumPy.
    k = train.n_actions
    logits = rng.normal(size=(n, k))
    dist = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    estimated = np.clip(world.probabilities(train.context) + rng.normal(0, 0.05, (n, k)), 0, 1)
    results["estimators"] = estimator_speed(train, dist, estimated, repeat)
    timings = results["estimators"]

    out = Table(title=f"(c) throughput on {n:,} logged decisions (8 features, 5 actions)")
    for column in ("what", "seconds", "examples/s", "held-out value"):
        out.add_column(column, justify="left" if column == "what" else "right")
    t = results["tummler"]
    out.add_row(
        f"tummler {t['kind']} (arrays)",
        f"{t['fit_s']:.2f}",
        f"{t['examples_per_s']:,.0f}",
        f"{t['held_out_value']:.4f}",
    )
    out.add_row(
        "tummler (Parquet file → policy)",
        f"{t['file_to_policy_s']:.2f}",
        f"{t['file_examples_per_s']:,.0f}",
        "",
    )
    vw = results["vw"]
    if "skipped" in vw:
        out.add_row("Vowpal Wabbit", "", "", vw["skipped"])
    else:
        out.add_row(
            f"VW {vw['version']} CLI (text file → model)",
            f"{vw['learn_s']:.2f}",
            f"{vw['examples_per_s']:,.0f}",
            f"{vw['held_out_value']:.4f}",
        )
    out.add_row(
        "best possible / uniform",
        "",
        "",
        f"{results['held_out_best_value']:.4f} / {results['held_out_uniform_value']:.4f}",
    )
    for name in ("ips", "dr"):
        row = timings[name]
        out.add_row(
            f"{name.upper()} checked once: tummler / NumPy",
            f"{row['tummler_s']:.4f} / {row['numpy_s']:.4f}",
            f"{n / row['tummler_s']:,.0f}",
            f"×{row['ratio']:.2f}, agree={row['agree']}",
        )
        out.add_row(
            f"{name.upper()} on arrays (checked per call)",
            f"{row['arrays_s']:.4f}",
            f"{n / row['arrays_s']:,.0f}",
            f"×{row['arrays_ratio']:.2f}",
        )
    out.add_row(
        "checks: LoggedData / one policy (+ model)",
        f"{timings['check_logs_s']:.4f} / {timings['check_policy_s']:.4f}",
        "",
        "",
    )
    console.print(out)
    return results


# --- (d) simulator ----------------------------------------------------------------------------

#: "Today" for the simulator's runs: the rounds end the day before (only the date matters).
SIM_TODAY = datetime(2026, 3, 1, tzinfo=UTC)


def simulator_run(n_contacts: int, rounds: int, seed: int) -> dict[str, Any]:
    """One seed of section (d): ``tummler demo``'s loop, with every baseline in its own world.

    The demo (:func:`tummler.demo.run_demo`) imports the simulated brand and its 90 days of
    legacy blasts with the real importer, then plays every round through the product: plan,
    the outbox, the people's responses as provider reports, ``learn_from_store`` (which warm
    starts the first learned version from the legacy sends) and promotion when off-policy
    evaluation says so. Random, send to all, the best single action and the (myopic) oracle are
    each played in their own copy of the simulated world (same people, audience and response
    seeds), so the unsubscribes and fatigue they cause cost them in later rounds; here each
    policy's true expected reward is summed over the rounds.
    """
    from tummler.core.clock import FrozenClock
    from tummler.demo import run_demo, totals

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        report = run_demo(
            Path(directory) / "demo",
            clock=FrozenClock(SIM_TODAY),
            seed=seed,
            contacts=n_contacts,
            rounds=rounds,
        )
    summed = totals(report)
    return {
        "seed": seed,
        "cumulative": summed,
        "per_round": {
            "tummler": [r.tummler for r in report.rounds],
            **{
                name: [r.baselines[name] for r in report.rounds]
                for name in summed
                if name != "tummler"
            },
        },
        "of_oracle": summed["tummler"] / summed["oracle"] if summed["oracle"] else math.nan,
        "promoted": sum(r.promoted for r in report.rounds),
        "seconds": time.perf_counter() - start,
    }


def _simulator_runs(
    n_contacts: int, rounds: int, seeds: list[int], jobs: int
) -> list[dict[str, Any]]:
    """Every seed's run, ``jobs`` at a time (each seed is independent: its own brand and store)."""
    if jobs <= 1 or len(seeds) == 1:
        return [simulator_run(n_contacts, rounds, seed) for seed in seeds]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        n = len(seeds)
        return list(pool.map(simulator_run, [n_contacts] * n, [rounds] * n, seeds))


def simulator_section(
    n_contacts: int, rounds: int, seeds: list[int], jobs: int = 1
) -> dict[str, Any]:
    """Section (d) over several seeds (each its own brand, history and responses): tummler minus
    each baseline, paired by seed, with a Student t interval over the seeds and the seeds won;
    the headline is the difference with send-to-all and its ratio."""
    from tummler.demo import COMPARED, paired_differences

    runs = _simulator_runs(n_contacts, rounds, seeds, jobs)
    title = (
        f"(d) simulator through the product (tummler demo's loop): {rounds} daily rounds, "
        f"{n_contacts:,} contacts after 90 days of legacy blasts; cumulative true expected "
        "reward, every baseline played in its own world"
    )
    out = Table(title=title)
    out.add_column("policy")
    for run in runs:
        out.add_column(f"seed {run['seed']}", justify="right")
    for name in ("tummler", *COMPARED):
        out.add_row(name, *(f"{run['cumulative'][name]:,.1f}" for run in runs))
    out.add_row("tummler % of oracle", *(f"{run['of_oracle']:.0%}" for run in runs))
    out.add_row("versions promoted", *(str(run["promoted"]) for run in runs))
    out.add_row("seconds", *(f"{run['seconds']:.0f}" for run in runs))
    console.print(out)
    differences = paired_differences([run["cumulative"] for run in runs])
    diff = Table(title=f"(d) tummler minus each baseline over {len(runs)} seed(s), paired by seed")
    for column in ("baseline", "mean", "95% interval (t)", "seeds won", "ratio"):
        diff.add_column(column, justify="left" if column == "baseline" else "right")
    summary: dict[str, Any] = {}
    for d in differences:
        ratio = statistics.mean(
            run["cumulative"]["tummler"] / run["cumulative"][d.baseline] for run in runs
        )
        summary[d.baseline] = {
            "per_seed": list(d.per_seed),
            "mean": d.mean,
            "ci_low": d.low,
            "ci_high": d.high,
            "wins": d.wins,
            "seeds": d.seeds,
            "ratio": ratio,
        }
        diff.add_row(
            d.baseline,
            f"{d.mean:+,.1f}",
            f"[{d.low:+,.1f}, {d.high:+,.1f}]",
            f"{d.wins}/{d.seeds}",
            f"{ratio:.3f}",
        )
    console.print(diff)
    return {
        "contacts": n_contacts,
        "rounds": rounds,
        "loop": "product",
        "baselines": "each played in its own world (common random numbers)",
        "seeds": [run["seed"] for run in runs],
        "runs": runs,
        "differences": summary,
        "headline": "tummler / send to all, mean over seeds",
        "ratio_vs_send_to_all": summary["send to all"]["ratio"],
        "of_oracle": statistics.median(run["of_oracle"] for run in runs),
    }


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contacts", type=int, default=5000, help="simulated contacts")
    parser.add_argument("--sim-rounds", type=int, default=20, help="simulated daily rounds")
    parser.add_argument(
        "--sim-seeds",
        default="0,1,2,3,4",
        help="comma-separated seeds; tummler minus each baseline is paired over them",
    )
    parser.add_argument("--sim-jobs", type=int, default=1, help="seeds run at once (processes)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip")
    parser.add_argument("--no-vw", action="store_true", help="do not run Vowpal Wabbit")
    parser.add_argument(
        "--email-cost", type=float, default=0.5, help="(e): assumed cost per e-mail, dollars"
    )
    parser.add_argument(
        "--randomized-rows", type=int, default=None, help="(e): a random subset, for a quick run"
    )
    args = parser.parse_args(argv)
    data = args.data or _default_data_dir()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    figures: dict[str, Any] = {"data": str(data)}
    if "obd" not in skip:
        figures["obd"] = obd_section(data)
    if "hillstrom" not in skip:
        figures["hillstrom"] = hillstrom_section(data, args.seed)
    if "throughput" not in skip:
        figures["throughput"] = throughput_section(
            args.rounds, args.repeat, args.seed, with_vw=not args.no_vw
        )
    if "simulator" not in skip:
        figures["simulator"] = simulator_section(
            args.contacts,
            args.sim_rounds,
            [int(seed) for seed in args.sim_seeds.split(",") if seed.strip()],
            jobs=args.sim_jobs,
        )
    if "randomized" not in skip:
        figures["randomized"] = randomized_section(
            data,
            seed=args.seed,
            email_cost=args.email_cost,
            n_bootstrap=1000,
            rows=args.randomized_rows,
        )
    for name, section in figures.items():
        if isinstance(section, dict) and "skipped" in section:
            console.print(f"[yellow]{name}: skipped: {section['skipped']}[/yellow]")
    print(json.dumps(figures, default=float))
    return figures


if __name__ == "__main__":
    main()
