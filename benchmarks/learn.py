"""Benchmark: learning from logs and off-policy evaluation, on real data and at scale.

    .venv/bin/python benchmarks/learn.py [--data ../shared/data] [--rounds 1000000] [--repeat 3]
                                         [--skip obd,hillstrom,throughput,simulator]
                                         [--contacts 5000] [--sim-seeds 0,1,2]

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
(d) ``simulator``: cumulative true expected reward over ``--sim-rounds`` rounds
    ``--sim-interval`` days apart (default 30 rounds, 3 days) of a synthetic brand of
    ``--contacts`` people (5,000), after 90 days of simulated legacy blasts (``--sim-cold``: none),
    for Thompson sampling with one posterior draw per contact (``--sim-learner``: ``logistic`` on
    the binary click, the default, or ``linear`` on the simulator's reward), against random,
    send-to-all, the best single channel and the (myopic, per-round) oracle; and the share of the
    best baseline → oracle gap the learner closes, per seed of ``--sim-seeds`` (``0,1,2``) and
    their median, the headline. The learner sees only what a brand sees (attributes, stage,
    consent, its own send log, provider events), never the hidden truth; see
    :class:`ThompsonLearner` for what it does with them. Median over seeds 0–2 with everything on:
    about 56 % (the issue asks for one half). Without the channel harm in each send's price
    (``--sim-no-channel-harm``) also 56 %, without learning from the legacy blasts
    (``--sim-no-pretrain``) 48 %, without the pooled-click-rate prior
    (``--sim-no-informed-prior``) 53 %; with the policy's default prior precision of 1
    (``--sim-prior-precision 1``) 34 % on seed 0. The earlier learner (none of these, prior
    precision 1) closed 32–34 % on seed 0.

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
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
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
from tummler.learn.harm import ChannelHarm, clipped_harm

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

#: The learner's prior precision per weight (``--sim-prior-precision``): a prior standard deviation
#: of 0.07 per weight. With about 55 context features × 28 action features, the policy's default of
#: 1 lets a fresh weight swing a contact's log-odds by several units, so Thompson sampling keeps
#: exploring channels that the logs already show to be poor; 50, 200 and 1,000 were tried on seeds
#: 0–2 (gap closed 56 % on seed 0, 59 % and 59 % median), 200 kept.
SIM_PRIOR_PRECISION = 200.0


@dataclasses.dataclass
class SimulatedBrand:
    """The synthetic brand of section (d): who, how they respond, what is sent, and its past.

    ``events`` are the provider events of the 90 days of legacy blasts (``None`` on a cold
    start): the logged bandit data a brand switching to tummler would already have.
    """

    population: Any
    model: Any
    message: Any
    space: Any
    actions: Any
    state: Any
    start: Any
    events: Any


def simulated_brand(n_contacts: int, seed: int, *, warm_start: bool) -> SimulatedBrand:
    from datetime import UTC, datetime, timedelta

    from tummler.decide import build_action_set
    from tummler.simulate import (
        CHANNELS,
        ActionSpace,
        Message,
        ResponseModel,
        Variant,
        history,
        make_population,
    )

    origin = datetime(2026, 1, 1, tzinfo=UTC)
    population = make_population(n_contacts, np.random.default_rng(seed), origin=origin)
    model = ResponseModel()
    message = Message(
        "launch",
        topic="product",
        variants=(
            Variant("plain"),
            Variant("happy", emotion="joy"),
            Variant("long", length="long"),
        ),
    )
    space = ActionSpace.for_message(message)
    actions = build_action_set(
        [CHANNELS[c].value for c in space.channels], list(space.hours), space.n_variants
    )
    if not warm_start:
        return SimulatedBrand(
            population, model, message, space, actions, None, origin + timedelta(days=1), None
        )
    past = history(population, model, np.random.default_rng(seed + 4), days=90)
    return SimulatedBrand(
        population,
        model,
        message,
        space,
        actions,
        past.state,
        past.state.at + timedelta(days=1),
        past.events,
    )


#: Stage codes, in the order of ``tummler.simulate.STAGES``.
PROSPECT, SUBSCRIBER, CUSTOMER, ADVOCATE, LAPSED = range(5)


class BrandView:
    """What the brand has seen, kept up to date from provider events; never the hidden truth.

    Per person: deliveries and responses (clicks, replies) per channel, responses per local hour
    of day, unsubscribes + complaints, the CRM's lifecycle stage and consent, and the send log
    (for the fatigue window). Per channel: sends, clicks, and tummler's
    :class:`~tummler.learn.harm.ChannelHarm` of them: the penalties that followed the sends which
    a click reward clipped to [0, 1] cannot carry, with the brand's penalties for an unsubscribe
    and a complaint (the simulator's reward weights, as a brand's strategy would state them).
    """

    def __init__(self, brand: SimulatedBrand) -> None:
        from tummler.simulate import CHANNELS

        population = brand.population
        n, c = population.n, len(brand.space.channels)
        self.brand = brand
        self.channel_names = [CHANNELS[i].value for i in brand.space.channels]
        self.codes = population.attribute_codes()
        self.sent = np.zeros((n, c))
        self.responded = np.zeros((n, c))
        self.hour = np.zeros((n, 24))
        self.harm = np.zeros(n)
        self.stage = population.stage.copy()
        self.consent = population.consent.copy()
        self.conversions = np.zeros(n, dtype=np.int64)
        self.send_contact = np.zeros(0, dtype=np.int64)
        self.send_time = np.zeros(0, dtype=np.int64)
        # per channel: allowed sends and their clicks, and the harm tummler's planner prices in
        self.channel_sends = np.zeros(c)
        self.channel_clicks = np.zeros(c)
        self.channel_harm = ChannelHarm()

    def recent_sends(self, now: int) -> np.ndarray:
        window = int(self.brand.model.fatigue_window.total_seconds())
        recent = self.send_contact[(self.send_time > now - window) & (self.send_time <= now)]
        return np.bincount(recent, minlength=self.brand.population.n).astype(np.float64)

    def contexts(self, now: int) -> np.ndarray:
        """What a learner may see: attributes, stage, consent, recent sends, tenure, and what the
        brand saw of each person's responses per channel and per time of day."""
        from tummler.simulate import ATTRIBUTES, STAGES

        population = self.brand.population
        n = population.n
        blocks = [np.eye(len(ATTRIBUTES[name]))[self.codes[name]] for name in self.codes]
        blocks.append(np.eye(len(STAGES))[self.stage])
        blocks.append(self.consent.astype(np.float64))
        sent = self.recent_sends(now)
        blocks.append(np.stack([np.log1p(sent), np.log1p(population.tenure_days)], axis=1))
        rate = np.clip((self.responded + 0.1) / (self.sent + 1.0), 0.01, 0.99)
        blocks.append(np.log(rate / (1.0 - rate)))  # log-odds: the logistic model's own scale
        # peak response hour as a point on the clock, weighted by how sure it is
        angle = 2 * np.pi * np.arange(24) / 24
        total = self.hour.sum(axis=1, keepdims=True)
        share = self.hour / np.maximum(total, 1.0)
        blocks.append(np.stack([share @ np.cos(angle), share @ np.sin(angle)], axis=1))
        blocks.append((self.harm / (self.sent.sum(axis=1) + 1.0))[:, None])
        blocks.append(np.ones((n, 1)))
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def record(
        self,
        contact: np.ndarray,
        column: np.ndarray,
        local_hour: np.ndarray,
        sent_at: np.ndarray,
        outcome: dict[str, np.ndarray],
        response_hour: np.ndarray | None = None,
    ) -> None:
        """Add the allowed sends of one round (or one legacy blast) and what followed them."""
        weights = self.brand.model.reward
        delivered, clicked, replied = outcome["delivered"], outcome["clicked"], outcome["replied"]
        unsubscribed, complained = outcome["unsubscribed"], outcome["complained"]
        responded = (clicked | replied).astype(np.float64)
        harmed = (unsubscribed | complained).astype(np.float64)
        np.add.at(self.sent, (contact, column), delivered.astype(np.float64))
        np.add.at(self.responded, (contact, column), responded)
        hours = local_hour if response_hour is None else response_hour
        np.add.at(self.hour, (contact, hours.astype(np.int64) % 24), responded)
        np.add.at(self.harm, contact, harmed)
        np.add.at(self.channel_sends, column, 1.0)
        np.add.at(self.channel_clicks, column, clicked.astype(np.float64))
        # the learner's reward (the click) with the brand's penalties, as tummler attributes it
        reward = clicked + weights.unsubscribed * unsubscribed + weights.complained * complained
        self.channel_harm = self.channel_harm.add(
            np.asarray(self.channel_names, object)[column], clipped_harm(reward)
        )
        # the CRM's lifecycle: engaged prospects and lapsed people subscribe, a conversion makes a
        # customer (three: an advocate), an unsubscribe or complaint makes anyone lapsed
        engaged = np.zeros(self.stage.shape[0], bool)
        engaged[contact[clicked | replied]] = True
        stage = self.stage
        stage[engaged & ((stage == PROSPECT) | (stage == LAPSED))] = SUBSCRIBER
        converted = np.bincount(contact[outcome["converted"]], minlength=stage.shape[0])
        self.conversions += converted
        stage[(converted > 0) & (stage != ADVOCATE)] = CUSTOMER
        stage[(self.conversions >= self.brand.model.advocate_after) & (stage == CUSTOMER)] = (
            ADVOCATE
        )
        stage[contact[unsubscribed | complained]] = LAPSED
        self.consent[
            contact[unsubscribed], np.asarray(self.brand.space.channels)[column[unsubscribed]]
        ] = False
        self.send_contact = np.concatenate([self.send_contact, contact])
        self.send_time = np.concatenate([self.send_time, sent_at])


def replay_history(view: BrandView, learn: Callable[[np.ndarray, Any], None] | None) -> int:
    """Feed the legacy blasts to ``view`` in time order, each blast after ``learn`` saw it.

    The events name each send by (contact, channel, send time); a blast is every send at one
    time. ``learn(contexts, blast)`` gets the contexts as the brand saw them *before* the blast
    (stage, consent, recent sends, response history up to then) and the blast's sends and
    outcomes, so a policy can be pre-trained on the legacy policy's logged decisions exactly as
    it learns from its own rounds. Returns the number of sends replayed.
    """
    from datetime import UTC, datetime

    from tummler.core.vocabulary import EventType
    from tummler.simulate import EVENT_TYPES, local_hours

    brand = view.brand
    events = brand.events
    if events is None:
        return 0
    population = brand.population
    n, c_all = population.n, 64
    column_of = np.full(c_all, -1, dtype=np.int64)
    column_of[np.asarray(brand.space.channels)] = np.arange(len(brand.space.channels))

    def keys(rows: np.ndarray) -> np.ndarray:
        key: np.ndarray = (
            events.send_at[rows] * n + events.contact[rows]
        ) * c_all + events.channel[rows]
        return key

    def of(*types: EventType) -> np.ndarray:
        rows: np.ndarray = np.isin(events.type, [EVENT_TYPES.index(t) for t in types]) & (
            events.channel >= 0
        )
        return rows

    sends = np.flatnonzero(of(EventType.DELIVERED, EventType.BOUNCED))
    send_key = keys(sends)
    outcome = {
        name: np.isin(send_key, keys(np.flatnonzero(of(event))))
        for name, event in (
            ("delivered", EventType.DELIVERED),
            ("clicked", EventType.CLICKED),
            ("replied", EventType.REPLIED),
            ("converted", EventType.CONVERTED),
            ("unsubscribed", EventType.UNSUBSCRIBED),
            ("complained", EventType.COMPLAINED),
        )
    }
    # The local hour of the first response to each send (clicks come around the person's peak).
    responses = np.flatnonzero(of(EventType.CLICKED, EventType.REPLIED))
    first: dict[int, int] = {}
    for key, at in zip(keys(responses).tolist(), events.at[responses].tolist(), strict=True):
        first.setdefault(key, at)
    send_at = events.send_at[sends]
    contact = events.contact[sends]
    column = column_of[events.channel[sends]]
    for blast_at in np.unique(send_at):
        rows = np.flatnonzero((send_at == blast_at) & (column >= 0))
        at = datetime.fromtimestamp(int(blast_at), UTC)
        who = contact[rows]
        local = local_hours(population, at)[who]
        # the time zone's offset does not change between a send and its response, hours later
        response_at = np.asarray([first.get(k, int(blast_at)) for k in send_key[rows].tolist()])
        response_hour = (local + (response_at - int(blast_at)) / 3600.0) % 24.0
        blast = {
            "contact": who,
            "column": column[rows],
            "hour": local,
            **{name: flags[rows] for name, flags in outcome.items()},
        }
        if learn is not None:
            learn(view.contexts(int(blast_at)), blast)
        view.record(
            who,
            column[rows],
            local,
            np.full(rows.shape[0], int(blast_at), dtype=np.int64),
            {name: flags[rows] for name, flags in outcome.items()},
            response_hour,
        )
    return int(sends.shape[0])


class ThompsonLearner:
    """tummler's learner in the simulator: Thompson sampling with one posterior draw per contact.

    ``learner``: ``logistic`` Thompson sampling on the binary click, or ``linear`` on the
    simulator's reward. Contexts are :meth:`BrandView.contexts`. Options, each something a real
    deployment has, none of them the simulator's hidden truth or its response model:

    - ``pretrain``: before the first round, the policy learns from the legacy blasts' logged
      decisions (:func:`replay_history`: every send, with the contexts as they were before its
      blast, and whether it was clicked) in one batch update of its posterior
      (:func:`tummler.learn.warm_start.fit_logistic_posterior`, the policy's own update solved by
      Newton on the weights the logs touch). The old policy used e-mail and SMS only, at one UTC
      time — so at every local hour somewhere — with one variant.
    - ``informed_prior``: every channel's intercept starts at the click rate pooled over the
      logs instead of at even odds, so a channel the brand never used is not assumed to be
      clicked half the time.
    - ``channel_harm`` (logistic only): a send is worth its sampled click probability minus the
      channel's harm per send and its cost, as tummler's planner prices it
      (:mod:`tummler.learn.harm`: the unsubscribe and complaint penalties the clipped click reward
      cannot carry, per channel, shrunk toward the pooled rate); without it, the click
      probability minus the cost.
    - ``prior_precision``: of every weight (:data:`SIM_PRIOR_PRECISION`).
    """

    def __init__(
        self,
        brand: SimulatedBrand,
        rng: np.random.Generator,
        *,
        learner: str = "logistic",
        pretrain: bool = True,
        channel_harm: bool = True,
        informed_prior: bool = True,
        prior_precision: float = SIM_PRIOR_PRECISION,
    ) -> None:
        from tummler.decide import LinearThompson, LogisticThompson, build_action_set

        self.brand, self.rng, self.learner = brand, rng, learner
        self.price_harm = channel_harm and learner == "logistic"
        self.view = BrandView(brand)
        actions, space = brand.actions, brand.space
        # The same action features with a slot for every local hour: the legacy blasts went out
        # at one UTC time, so at every local hour somewhere.
        self.hourly = build_action_set(actions.channel_names, list(range(24)), space.n_variants)
        self.x: np.ndarray | None = None
        d_x = self.view.contexts(0).shape[1]
        self.policy: LinearThompson | LogisticThompson
        if learner == "logistic":
            self.policy = LogisticThompson(
                d_x, actions.n_features, actions.n_channels, prior_precision=prior_precision
            )
        else:
            self.policy = LinearThompson(
                d_x, actions.n_features, actions.n_channels, prior_precision=prior_precision
            )
        self.logged: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.replayed = replay_history(self.view, self._collect if pretrain else None)
        if informed_prior:
            self._informed_prior()
        if pretrain:
            self._pretrain()

    def _reward(self, outcome: dict[str, np.ndarray], column: np.ndarray) -> np.ndarray:
        if self.learner == "logistic":
            return outcome["clicked"].astype(np.float64)
        w = self.brand.model.reward
        cost = np.asarray(w.channel_cost)[np.asarray(self.brand.space.channels)[column]]
        reward: np.ndarray = (
            w.clicked * outcome["clicked"]
            + w.replied * outcome["replied"]
            + w.unsubscribed * outcome["unsubscribed"]
            + w.complained * outcome["complained"]
            - cost
        )
        return reward

    def _informed_prior(self) -> None:
        """Start every channel's intercept at the click rate pooled over the brand's logs."""
        from tummler.decide import LogisticThompson

        policy, view = self.policy, self.view
        sends = view.channel_sends.sum()
        if not isinstance(policy, LogisticThompson) or sends == 0:
            return
        rate = float(np.clip(view.channel_clicks.sum() / sends, 0.005, 0.5))
        bias = (policy.n_context_features - 1) * policy.n_action_features
        policy.m[bias : bias + policy.n_channels] = math.log(rate / (1.0 - rate))

    def _collect(self, x: np.ndarray, blast: dict[str, np.ndarray]) -> None:
        """Keep a legacy blast's contexts (as they were before it), actions and outcomes."""
        slot = np.rint(blast["hour"]).astype(np.int64) % 24
        index = (blast["column"] * 24 + slot) * self.brand.space.n_variants
        self.logged.append((x[blast["contact"]], index, self._reward(blast, blast["column"])))

    def _pretrain(self) -> None:
        """Learn from the legacy blasts: one batch update of the posterior with all of them.

        The logistic policy's posterior is fitted by :func:`tummler.learn.warm_start
        .fit_logistic_posterior` (the policy's own update, solved by Newton on the weights the
        logs touch); the linear one by its own ``update``, blast by blast (for Bayesian ridge that
        is the batch update).
        """
        from tummler.decide import LogisticThompson
        from tummler.learn.warm_start import fit_logistic_posterior

        if not self.logged:
            return
        parts, self.logged = self.logged, []
        policy = self.policy
        if not isinstance(policy, LogisticThompson):
            for x, index, reward in parts:  # Bayesian ridge: blast by blast is the batch update
                policy.update(x, self.hourly, index, reward)
            return
        x = np.concatenate([part[0] for part in parts])
        index = np.concatenate([part[1] for part in parts])
        reward = np.concatenate([part[2] for part in parts])
        posterior = fit_logistic_posterior(
            x, self.hourly.features[index], reward, policy.m, policy.q
        )
        policy.m, policy.q = posterior.mean, posterior.precision
        policy.version += 1

    def decide(self, round_: Any) -> np.ndarray:
        brand, view, actions = self.brand, self.view, self.brand.actions
        x = view.contexts(int(round_.at.timestamp()))
        self.x = x
        values = self.policy.factor_scores(x, actions, self.rng).expected_dense()
        k, n = actions.k, x.shape[0]
        weights = brand.model.reward
        if self.learner == "logistic":
            cost = np.asarray(weights.channel_cost)[np.asarray(brand.space.channels)]
            if self.price_harm:
                cost = cost + view.channel_harm.per_send(view.channel_names)
            values = values - cost[actions.channel]
        values = np.where(round_.eligible[:, :k], values, -np.inf)
        best = values.argmax(axis=1)
        send = values[np.arange(n), best] > 0.0
        chosen: np.ndarray = np.where(send, best, k)
        return chosen

    def learn(self, round_: Any, sends: Any, outcomes: Any) -> None:
        if self.x is None or not len(outcomes):
            return
        space = self.brand.space
        kept = outcomes.allowed
        column = np.searchsorted(np.asarray(space.channels), outcomes.channel[kept])
        hour = np.searchsorted(np.asarray(space.hours), outcomes.hour[kept].astype(np.int64))
        index = (column * len(space.hours) + hour) * space.n_variants + outcomes.variant[kept]
        contact = outcomes.contact[kept]
        outcome = {
            name: getattr(outcomes, name)[kept]
            for name in (
                "delivered",
                "clicked",
                "replied",
                "converted",
                "unsubscribed",
                "complained",
            )
        }
        self.policy.update(
            self.x[contact], self.brand.actions, index, self._reward(outcome, column)
        )
        self.view.record(contact, column, outcomes.hour[kept], outcomes.sent_at[kept], outcome)


def simulate_policy(
    brand: SimulatedBrand,
    decide: Any,
    learn: Any,
    *,
    rounds: int,
    interval_days: int,
    seed: int,
) -> float:
    """Cumulative true expected reward of a policy over ``rounds`` rounds from the brand's start."""
    from datetime import timedelta

    from tummler.simulate import run_rounds

    result = run_rounds(
        brand.population,
        brand.model,
        decide,
        messages=brand.message,
        rounds=rounds,
        start=brand.start,
        rng=np.random.default_rng(seed + 3),
        state=brand.state,
        interval=timedelta(days=interval_days),
        learn=learn,
    )
    return float(result.expected.sum())


BASELINE_POLICIES = ("random", "send to all", "best single channel", "oracle")


def simulator_run(
    n_contacts: int,
    rounds: int,
    seed: int,
    *,
    interval_days: int = 3,
    warm_start: bool = True,
    learner: str = "logistic",
    baselines: dict[str, float] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One seed of section (d): every policy's cumulative expected reward and the gap closed.

    ``options`` go to :class:`ThompsonLearner`; ``baselines``, when given, are the baselines'
    totals of an earlier run with the same seed and settings (they do not depend on the learner).
    """
    from tummler.simulate import BestSingleAction, OraclePolicy, RandomPolicy, SendToAll

    brand = simulated_brand(n_contacts, seed, warm_start=warm_start)
    start = time.perf_counter()
    if not warm_start:
        options["pretrain"] = False
    thompson = ThompsonLearner(brand, np.random.default_rng(seed + 1), learner=learner, **options)
    pretrain_s = time.perf_counter() - start
    label = f"tummler {learner} Thompson"
    settings = {"rounds": rounds, "interval_days": interval_days, "seed": seed}
    totals = {label: simulate_policy(brand, thompson.decide, thompson.learn, **settings)}
    learner_s = time.perf_counter() - start
    if baselines is None:
        policies = {
            "random": RandomPolicy(np.random.default_rng(seed + 2)),
            "send to all": SendToAll(),
            "best single channel": BestSingleAction(brand.model),
            "oracle": OraclePolicy(brand.model),
        }
        baselines = {
            name: simulate_policy(brand, decide, None, **settings)
            for name, decide in policies.items()
        }
    totals.update(baselines)
    ours = totals[label]
    best_baseline = max(totals[k] for k in BASELINE_POLICIES[:-1])
    gap = totals["oracle"] - best_baseline
    return {
        "seed": seed,
        "cumulative": totals,
        "gap_closed": (ours - best_baseline) / gap if gap > 0 else math.nan,
        "history_sends": thompson.replayed,
        "pretrain_s": pretrain_s,
        "learner_s": learner_s,
    }


def simulator_section(
    n_contacts: int,
    rounds: int,
    seeds: list[int],
    *,
    interval_days: int = 3,
    warm_start: bool = True,
    learner: str = "logistic",
    pretrain: bool = True,
    channel_harm: bool = True,
    informed_prior: bool = True,
    prior_precision: float = SIM_PRIOR_PRECISION,
) -> dict[str, Any]:
    """Section (d) over several seeds (each its own population, history and responses).

    ``warm_start``: the rounds begin after 90 days of the simulator's legacy blasts, and the
    learner starts from what a brand would have seen of them; see :class:`ThompsonLearner` for
    the other options. Every policy, the oracle included, acts in the same world: the same start
    state, rounds ``interval_days`` apart. The headline figure is the median over the seeds of
    the share of the best baseline → oracle gap that the learner closes.
    """
    runs = [
        simulator_run(
            n_contacts,
            rounds,
            seed,
            interval_days=interval_days,
            warm_start=warm_start,
            learner=learner,
            pretrain=pretrain,
            channel_harm=channel_harm,
            informed_prior=informed_prior,
            prior_precision=prior_precision,
        )
        for seed in seeds
    ]
    label = f"tummler {learner} Thompson"
    title = (
        f"(d) simulator: {rounds} rounds {interval_days} day(s) apart, {n_contacts:,} contacts, "
        f"{'after 90 days of history' if warm_start else 'cold start'}; cumulative expected reward"
    )
    out = Table(title=title)
    out.add_column("policy")
    for run in runs:
        out.add_column(f"seed {run['seed']}", justify="right")
    for name in (label, *BASELINE_POLICIES):
        out.add_row(name, *(f"{run['cumulative'][name]:,.1f}" for run in runs))
    out.add_row(
        "share of the best baseline → oracle gap closed",
        *(f"{run['gap_closed']:.0%}" for run in runs),
    )
    closed = statistics.median(run["gap_closed"] for run in runs)
    console.print(out)
    console.print(f"median share of the gap closed over {len(runs)} seed(s): {closed:.0%}")
    return {
        "contacts": n_contacts,
        "rounds": rounds,
        "interval_days": interval_days,
        "warm_start": warm_start,
        "learner": learner,
        "pretrain": pretrain and warm_start,
        "channel_harm": channel_harm and learner == "logistic",
        "informed_prior": informed_prior,
        "prior_precision": prior_precision,
        "seeds": [run["seed"] for run in runs],
        "runs": runs,
        "gap_closed": closed,
    }


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contacts", type=int, default=5000, help="simulated contacts")
    parser.add_argument("--sim-rounds", type=int, default=30, help="simulated rounds")
    parser.add_argument("--sim-interval", type=int, default=3, help="days between rounds")
    parser.add_argument("--sim-learner", choices=("linear", "logistic"), default="logistic")
    parser.add_argument("--sim-cold", action="store_true", help="no simulated history first")
    parser.add_argument(
        "--sim-seeds", default="0,1,2", help="comma-separated seeds; the median is reported"
    )
    parser.add_argument(
        "--sim-no-pretrain", action="store_true", help="do not learn from the legacy blasts"
    )
    parser.add_argument(
        "--sim-no-channel-harm",
        action="store_true",
        help="send on click probability minus cost, without the channel's harm per send",
    )
    parser.add_argument(
        "--sim-no-informed-prior",
        action="store_true",
        help="start every channel's intercept at even odds",
    )
    parser.add_argument("--sim-prior-precision", type=float, default=SIM_PRIOR_PRECISION)
    parser.add_argument("--skip", default="", help="comma-separated sections to skip")
    parser.add_argument("--no-vw", action="store_true", help="do not run Vowpal Wabbit")
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
            interval_days=args.sim_interval,
            warm_start=not args.sim_cold,
            learner=args.sim_learner,
            pretrain=not args.sim_no_pretrain,
            channel_harm=not args.sim_no_channel_harm,
            informed_prior=not args.sim_no_informed_prior,
            prior_precision=args.sim_prior_precision,
        )
    for name, section in figures.items():
        if isinstance(section, dict) and "skipped" in section:
            console.print(f"[yellow]{name}: skipped: {section['skipped']}[/yellow]")
    print(json.dumps(figures, default=float))
    return figures


if __name__ == "__main__":
    main()
