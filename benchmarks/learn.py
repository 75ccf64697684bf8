"""Benchmark: learning from logs and off-policy evaluation, on real data and at scale.

    .venv/bin/python benchmarks/learn.py [--data ../shared/data] [--rounds 1000000] [--repeat 3]
                                         [--skip obd,hillstrom,throughput,simulator]

Sections, each printed as a table; the last line is one JSON object with every figure:

(a) ``obd``: the Open Bandit Dataset sample. The value of the ``bts`` policy (context-free, its
    action distribution per position read off its own logs' propensities) estimated from the
    ``random`` logs, against the on-policy click rate of the ``bts`` logs: relative error per
    estimator.
(b) ``hillstrom``: the e-mail experiment as a logged bandit (``tummler.app.logs.experiment_to_log``).
    Learn on half the customers, evaluate on the other half with IPS and DR against "everyone gets
    the best e-mail" and "nobody gets one": conversions and spend per 1,000 customers, with 95 %
    bootstrap intervals.
(c) ``throughput``: learning from ``--rounds`` synthetic logged decisions (seeded, known true
    reward model) in examples per second, against Vowpal Wabbit's command line
    (``--cb_explore_adf``, run as ``python -m vowpalwabbit``) on the same data in the same run,
    with each learner's greedy policy value on held-out contexts under the true model; and IPS /
    DR on ``--rounds`` rounds against a plain vectorized NumPy implementation (medians of
    ``--repeat`` runs).
(d) ``simulator``: cumulative true expected reward over ``--sim-rounds`` rounds
    ``--sim-interval`` days apart (default 30 rounds, 3 days) of a synthetic brand, after 90 days
    of simulated legacy blasts (``--sim-cold``: none), for Thompson sampling with one posterior
    draw per contact (``--sim-learner``: ``logistic`` on the binary click, the default, or
    ``linear`` on the simulator's reward), against random, send-to-all, the best single channel
    and the oracle; and the share of the best baseline → oracle gap it closes. Seed 0, 5,000
    contacts: cold daily linear 5 %, warm daily linear 9 %, warm 3-day linear 26 %, warm 3-day
    logistic 34 % — short of the issue's one half.

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

from tummler.app.learning import fit_policy
from tummler.app.logs import LoggedBandit, experiment_to_log, read_logged_bandit
from tummler.evaluate import (
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
        return 1.0 / (1.0 + np.exp(-(self.intercept + x @ self.theta.T)))

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
    rows = np.arange(n)

    def numpy_ips() -> float:
        weight = dist[rows, train.action] / train.propensity
        return float(np.mean(weight * train.reward))

    def numpy_dr() -> float:
        weight = dist[rows, train.action] / train.propensity
        baseline = np.einsum("ij,ij->i", dist, estimated)
        residual = train.reward - estimated[rows, train.action]
        return float(np.mean(baseline + weight * residual))

    timings = {}
    for name, ours, plain in (
        (
            "ips",
            lambda: ips(train.reward, train.action, train.propensity, dist, n_bootstrap=0),
            numpy_ips,
        ),
        (
            "dr",
            lambda: dr(
                train.reward, train.action, train.propensity, dist, estimated, n_bootstrap=0
            ),
            numpy_dr,
        ),
    ):
        ours_s, estimate = median_time(ours, repeat)
        plain_s, value = median_time(plain, repeat)
        timings[name] = {
            "tummler_s": ours_s,
            "numpy_s": plain_s,
            "ratio": ours_s / plain_s,
            "agree": bool(abs(estimate.value - value) < 1e-9),
        }
    results["estimators"] = timings

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
    for name, row in timings.items():
        out.add_row(
            f"{name.upper()}: tummler / NumPy",
            f"{row['tummler_s']:.3f} / {row['numpy_s']:.3f}",
            f"{n / row['tummler_s']:,.0f}",
            f"×{row['ratio']:.2f}, agree={row['agree']}",
        )
    console.print(out)
    return results


# --- (d) simulator ----------------------------------------------------------------------------


def simulator_section(
    n_contacts: int,
    rounds: int,
    seed: int,
    *,
    interval_days: int = 1,
    warm_start: bool = True,
    learner: str = "linear",
) -> dict[str, Any]:
    """Cumulative true expected reward over ``rounds`` rounds of a synthetic brand.

    ``warm_start``: the rounds begin after 90 days of the simulator's legacy blasts, and the
    learner starts from what a brand would have seen of them (each person's deliveries and
    responses per channel, and per local hour of the response). ``learner``: ``linear`` Thompson
    sampling on the simulator's reward, or ``logistic`` Thompson sampling on the binary click,
    sending when the sampled click probability beats the risk of an unsubscribe or complaint as
    the brand has seen it (their observed rate times their penalties). Every policy, the oracle
    included, acts in the same world: the same start state, rounds ``interval_days`` apart.
    """
    from datetime import UTC, datetime, timedelta

    from tummler.core.vocabulary import EventType
    from tummler.decide import LinearThompson, LogisticThompson, build_action_set
    from tummler.simulate import (
        ATTRIBUTES,
        CHANNELS,
        EVENT_TYPES,
        STAGES,
        ActionSpace,
        BestSingleAction,
        Message,
        OraclePolicy,
        RandomPolicy,
        ResponseModel,
        SendToAll,
        Variant,
        history,
        local_hours,
        make_population,
        run_rounds,
    )

    origin = datetime(2026, 1, 1, tzinfo=UTC)
    population = make_population(n_contacts, np.random.default_rng(seed), origin=origin)
    model = ResponseModel()
    weights = model.reward
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
    fatigue = int(model.fatigue_window.total_seconds())
    codes = population.attribute_codes()
    n_channels = len(space.channels)
    # Per person: deliveries and responses per channel, responses per local hour of day, and
    # unsubscribes + complaints (what the brand saw, from the past and from its own rounds).
    seen = {
        "sent": np.zeros((population.n, n_channels)),
        "responded": np.zeros((population.n, n_channels)),
        "hour": np.zeros((population.n, 24)),
        "harm": np.zeros(population.n),
    }
    state = None
    start = origin + timedelta(days=1)
    if warm_start:
        past = history(population, model, np.random.default_rng(seed + 4), days=90)
        state, start = past.state, past.state.at + timedelta(days=1)
        events = past.events
        code = {t: EVENT_TYPES.index(t) for t in EventType}
        channel_index = {int(c): i for i, c in enumerate(space.channels)}
        column = np.array([channel_index.get(int(c), -1) for c in events.channel], np.int64)
        for name, types in (
            ("sent", (EventType.DELIVERED,)),
            ("responded", (EventType.CLICKED, EventType.REPLIED)),
        ):
            rows = np.isin(events.type, [code[t] for t in types]) & (column >= 0)
            np.add.at(seen[name], (events.contact[rows], column[rows]), 1.0)
        harm = np.isin(events.type, [code[EventType.UNSUBSCRIBED], code[EventType.COMPLAINED]])
        np.add.at(seen["harm"], events.contact[harm], 1.0)
        responded = np.isin(events.type, [code[EventType.CLICKED], code[EventType.REPLIED]])
        for at in np.unique(events.at[responded]):
            rows = responded & (events.at == at)
            hours = local_hours(population, datetime.fromtimestamp(int(at), UTC))
            who = events.contact[rows]
            np.add.at(seen["hour"], (who, hours[who].astype(np.int64) % 24), 1.0)

    def contexts(round_: Any) -> np.ndarray:
        """What a learner may see: attributes, stage, consent, recent sends, tenure, and what the
        brand saw of each person's responses per channel and per time of day."""
        current = round_.state
        blocks = [np.eye(len(ATTRIBUTES[name]))[codes[name]] for name in codes]
        blocks.append(np.eye(len(STAGES))[current.stage])
        blocks.append(current.consent.astype(np.float64))
        recent = current.send_contact[current.send_time > current.now - fatigue]
        sent = np.bincount(recent, minlength=population.n).astype(np.float64)
        blocks.append(np.stack([np.log1p(sent), np.log1p(population.tenure_days)], axis=1))
        rate = np.clip((seen["responded"] + 0.1) / (seen["sent"] + 1.0), 0.01, 0.99)
        blocks.append(np.log(rate / (1.0 - rate)))  # log-odds: the logistic model's own scale
        # peak response hour as a point on the clock, weighted by how sure it is
        angle = 2 * np.pi * np.arange(24) / 24
        total = seen["hour"].sum(axis=1, keepdims=True)
        share = seen["hour"] / np.maximum(total, 1.0)
        blocks.append(np.stack([share @ np.cos(angle), share @ np.sin(angle)], axis=1))
        blocks.append((seen["harm"] / (seen["sent"].sum(axis=1) + 1.0))[:, None])
        blocks.append(np.ones((population.n, 1)))
        return np.concatenate(blocks, axis=1).astype(np.float32)

    harm_cost = -(weights.unsubscribed + weights.complained) / 2

    class Thompson:
        """Thompson sampling with one independent posterior draw per contact."""

        def __init__(self, rng: np.random.Generator) -> None:
            self.rng = rng
            self.policy: LinearThompson | LogisticThompson | None = None
            self.x: np.ndarray | None = None

        def decide(self, round_: Any) -> np.ndarray:
            x = contexts(round_)
            if self.policy is None:
                kind = LogisticThompson if learner == "logistic" else LinearThompson
                self.policy = kind(x.shape[1], actions.n_features, actions.n_channels)
            self.x = x
            values = self.policy.factor_scores(x, actions, self.rng).expected_dense()
            k = actions.k
            if learner == "logistic":  # a click is worth 1; the brand's observed harm rate costs
                risk = (seen["harm"] + 0.1) / (seen["sent"].sum(axis=1) + 1.0)
                values = values - (harm_cost * risk)[:, None]
            values = np.where(round_.eligible[:, :k], values, -np.inf)
            best = values.argmax(axis=1)
            send = values[np.arange(population.n), best] > 0.0
            return np.where(send, best, k)

        def learn(self, round_: Any, sends: Any, outcomes: Any) -> None:
            if self.policy is None or self.x is None or not len(outcomes):
                return
            kept = outcomes.allowed
            channel = np.searchsorted(np.asarray(space.channels), outcomes.channel[kept])
            hour = np.searchsorted(np.asarray(space.hours), outcomes.hour[kept].astype(np.int64))
            index = (channel * len(space.hours) + hour) * space.n_variants + outcomes.variant[kept]
            contact = outcomes.contact[kept]
            clicked = outcomes.clicked[kept]
            reward = clicked.astype(np.float64) if learner == "logistic" else outcomes.reward[kept]
            self.policy.update(self.x[contact], actions, index, reward)
            responded = (clicked | outcomes.replied[kept]).astype(np.float64)
            np.add.at(seen["responded"], (contact, channel), responded)
            np.add.at(seen["sent"], (contact, channel), outcomes.delivered[kept].astype(float))
            local = outcomes.hour[kept].astype(np.int64) % 24
            np.add.at(seen["hour"], (contact, local), responded)
            harmed = (outcomes.unsubscribed | outcomes.complained)[kept].astype(np.float64)
            np.add.at(seen["harm"], contact, harmed)

    label = f"tummler {learner} Thompson"
    thompson = Thompson(np.random.default_rng(seed + 1))
    runs: dict[str, Any] = {
        label: (thompson.decide, thompson.learn),
        "random": (RandomPolicy(np.random.default_rng(seed + 2)), None),
        "send to all": (SendToAll(), None),
        "best single channel": (BestSingleAction(model), None),
        "oracle": (OraclePolicy(model), None),
    }
    totals: dict[str, float] = {}
    for name, (decide, learn) in runs.items():
        result = run_rounds(
            population,
            model,
            decide,
            messages=message,
            rounds=rounds,
            start=start,
            rng=np.random.default_rng(seed + 3),
            state=state,
            interval=timedelta(days=interval_days),
            learn=learn,
        )
        totals[name] = float(result.expected.sum())
    ours = totals[label]
    best_baseline = max(totals[k] for k in ("random", "send to all", "best single channel"))
    gap = totals["oracle"] - best_baseline
    closed = (ours - best_baseline) / gap if gap > 0 else math.nan
    title = (
        f"(d) simulator: {rounds} rounds {interval_days} day(s) apart, {n_contacts:,} contacts, "
        f"{'after 90 days of history' if warm_start else 'cold start'}"
    )
    out = Table(title=title)
    out.add_column("policy")
    out.add_column("cumulative expected reward", justify="right")
    for name, total in totals.items():
        out.add_row(name, f"{total:,.1f}")
    out.add_row("share of the best baseline → oracle gap closed", f"{closed:.0%}")
    console.print(out)
    return {
        "contacts": n_contacts,
        "rounds": rounds,
        "interval_days": interval_days,
        "warm_start": warm_start,
        "learner": learner,
        "cumulative": totals,
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
            args.seed,
            interval_days=args.sim_interval,
            warm_start=not args.sim_cold,
            learner=args.sim_learner,
        )
    for name, section in figures.items():
        if isinstance(section, dict) and "skipped" in section:
            console.print(f"[yellow]{name}: skipped: {section['skipped']}[/yellow]")
    print(json.dumps(figures, default=float))
    return figures


if __name__ == "__main__":
    main()
