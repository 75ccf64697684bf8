"""Section (e) of benchmarks/learn.py: learned policies on randomized experiments, held out.

A randomized experiment is a logged bandit whose logging policy is known exactly (each arm with the
same probability), so a policy learned on one half of the people can be valued on the other half
without bias. For each reward of the Hillstrom e-mail experiment (``visit``, ``conversion``,
``spend``, and ``spend`` net of an *assumed* cost per e-mail, ``--email-cost``: the data has no
cost, the issue's promotion example had one), and for the clicks of the Open Bandit Dataset's
uniformly random logs (80 items), on a held-out half:

* ``uniform``: each arm equally often;
* ``best single arm``: the arm with the best mean on the training half, sent to everyone;
* ``linear greedy`` / ``linear thompson``: ``tummler learn --log``'s policy (``logistic_thompson``
  for 0/1 rewards, ``linear_thompson`` for amounts) fitted on the training half, its posterior
  mean's best arm per person, and its Thompson sampling distribution;
* ``boosted greedy``: the best arm per person by gradient-boosted trees, one model per arm
  (:func:`tummler.evaluate.fit_reward_predictor`, ``kind="boosting"``);
* ``chosen``: what to deploy, chosen by DR on a validation part of the *training* half (each
  candidate fitted on the rest of it), never by the fit and never on the held-out half it is
  reported on: the candidate with the highest lower 95% bound there (:func:`_choose`).

Values are IPS and DR (``tummler.evaluate.evaluate_policy``, its reward model cross-fitted on the
held-out half); differences against the best single arm and uniform are paired: DR's per-person
terms of the two policies on the same bootstrap resamples of the held-out people.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from tummler.app.ingest import LoggedBandit, experiment_to_log, read_logged_bandit
from tummler.app.learning import fit_policy
from tummler.evaluate import evaluate_policy, fit_reward_model, fit_reward_predictor

__all__ = ["randomized_section"]

console = Console(width=120)
#: The outcomes of the Hillstrom table; each is a reward in turn, the others are left out.
HILLSTROM_OUTCOMES = ("visit", "conversion", "spend")
NO_EMAIL = "No E-Mail"
#: Policies whose held-out differences against the baselines are reported.
LEARNED = ("linear greedy", "linear thompson", "boosted greedy", "chosen")
Dist = Callable[[LoggedBandit], np.ndarray]


def _subset(logs: LoggedBandit, rows: np.ndarray) -> LoggedBandit:
    return dataclasses.replace(
        logs,
        context=logs.context[rows],
        action=logs.action[rows],
        reward=logs.reward[rows],
        propensity=logs.propensity[rows],
        position=None,
        timestamp=None,
    )


def _split(logs: LoggedBandit, share: float, rng: np.random.Generator) -> tuple[LoggedBandit, ...]:
    order = rng.permutation(logs.n_rounds)
    cut = int(share * logs.n_rounds)
    return _subset(logs, np.sort(order[:cut])), _subset(logs, np.sort(order[cut:]))


def _fixed(action: int) -> Dist:
    def dist(logs: LoggedBandit) -> np.ndarray:
        out = np.zeros((logs.n_rounds, logs.n_actions))
        out[:, action] = 1.0
        return out

    return dist


def _candidates(train: LoggedBandit, seed: int) -> dict[str, Dist]:
    """Every policy fitted on ``train``, as a function from a log to its action distribution."""
    binary = bool(np.isin(train.reward, (0.0, 1.0)).all())
    kind = "logistic_thompson" if binary else "linear_thompson"
    linear = fit_policy(train, kind=kind)
    boosted = fit_reward_predictor(
        train.context,
        train.action,
        train.reward,
        n_actions=train.n_actions,
        kind="boosting",
        rng=seed,
    )
    means = np.bincount(train.action, train.reward, train.n_actions) / np.bincount(
        train.action, minlength=train.n_actions
    )

    def linear_greedy(logs: LoggedBandit) -> np.ndarray:
        scores = linear.policy.scores(linear.contexts(logs), linear.action_set())
        return np.asarray(np.eye(logs.n_actions)[np.asarray(scores).argmax(axis=1)])

    return {
        "uniform": lambda logs: np.full((logs.n_rounds, logs.n_actions), 1.0 / logs.n_actions),
        "best single arm": _fixed(int(means.argmax())),
        "linear greedy": linear_greedy,
        "linear thompson": lambda logs: linear.action_dist(logs, draws=64, rng=seed),
        "boosted greedy": lambda logs: boosted.action_dist(logs.context),
    }


def _dr_terms(logs: LoggedBandit, dist: np.ndarray, estimated: np.ndarray) -> np.ndarray:
    """DR's per-round terms: their mean is DR's estimate, their paired differences its contrast."""
    rows = np.arange(logs.n_rounds)
    weight = dist[rows, logs.action] / logs.propensity
    residual = logs.reward - estimated[rows, logs.action]
    return np.asarray(np.einsum("ij,ij->i", dist, estimated) + weight * residual)


def _choose(train: LoggedBandit, seed: int, n_bootstrap: int) -> tuple[str, dict[str, Any]]:
    """What to deploy, decided on a validation part of ``train`` (each candidate fitted on the rest).

    Pessimism: the candidate — uniform, the best single arm, the linear or the boosted greedy
    policy — whose DR value on the validation rounds has the highest lower 95% bound. A policy
    fitted and picked on one sample looks better there than it is, and the more it was fitted
    (80 items of a few clicks each, trees), the wider its interval: ranking by the lower bound
    makes it earn its place, while a clear winner (one e-mail for everyone) still wins.
    """
    fit, validation = _split(train, 0.7, np.random.default_rng(seed + 1))
    policies = _candidates(fit, seed)
    estimated = fit_reward_model(
        validation.context, validation.action, validation.reward,
        n_actions=validation.n_actions, rng=seed,
    )  # fmt: skip
    resamples = np.random.default_rng(seed + 3).integers(
        0, validation.n_rounds, size=(n_bootstrap, validation.n_rounds)
    )
    bounds = {}
    for name in ("uniform", "best single arm", "linear greedy", "boosted greedy"):
        terms = _dr_terms(validation, policies[name](validation), estimated)
        bounds[name] = _paired(terms, resamples)  # the value itself: a "difference" from 0
    chosen = max(bounds, key=lambda name: bounds[name]["ci_low"])
    return chosen, {"validation_rounds": validation.n_rounds, "dr": bounds}


def _paired(diff_terms: np.ndarray, resamples: np.ndarray) -> dict[str, float]:
    replicates = diff_terms[resamples].mean(axis=1)
    low, high = np.percentile(replicates, [2.5, 97.5])
    return {"diff": float(diff_terms.mean()), "ci_low": float(low), "ci_high": float(high)}


def randomized_run(logs: LoggedBandit, seed: int, n_bootstrap: int) -> dict[str, Any]:
    """One reward: fit on half, choose on a part of that half, value on the other half."""
    start = time.perf_counter()
    train, test = _split(logs, 0.5, np.random.default_rng(seed))
    policies = _candidates(train, seed)
    chosen, choice = _choose(train, seed, n_bootstrap)
    dists = {name: make(test) for name, make in policies.items()}
    dists["chosen"] = dists[chosen]
    estimated = fit_reward_model(
        test.context, test.action, test.reward, n_actions=test.n_actions, rng=seed
    )
    values: dict[str, Any] = {}
    terms: dict[str, np.ndarray] = {}
    for name, dist in dists.items():
        result = evaluate_policy(
            test.reward, test.action, test.propensity, dist,
            estimated_rewards=estimated, policy=name, n_bootstrap=n_bootstrap, rng=seed,
        )  # fmt: skip
        terms[name] = _dr_terms(test, dist, estimated)
        values[name] = {
            estimator: {
                "value": result[estimator].value,
                "ci_low": result[estimator].ci_low,
                "ci_high": result[estimator].ci_high,
            }
            for estimator in ("ips", "dr")
        }
        values[name]["dr_agrees"] = bool(abs(terms[name].mean() - result["dr"].value) < 1e-9)
        values[name]["share"] = dict(
            zip(test.action_names, map(float, dist.mean(axis=0)), strict=True)
        )
    resamples = np.random.default_rng(seed + 2).integers(
        0, test.n_rounds, size=(n_bootstrap, test.n_rounds)
    )
    differences = {
        name: {
            against: _paired(terms[name] - terms[against], resamples)
            for against in ("best single arm", "uniform")
        }
        for name in LEARNED
    }
    return {
        "train": train.n_rounds,
        "test": test.n_rounds,
        "chosen": chosen,
        "choice": choice,
        "values": values,
        "differences": differences,
        "seconds": time.perf_counter() - start,
    }


def _hillstrom_logs(source: Path, tmp: Path, email_cost: float) -> dict[str, LoggedBandit]:
    """The experiment as one logged bandit per reward, ``net_spend`` the spend less the cost."""
    logs = {}
    for reward in HILLSTROM_OUTCOMES:
        path = experiment_to_log(
            source, tmp / f"{reward}.csv", action="segment", reward=reward,
            outcomes=HILLSTROM_OUTCOMES,
        )  # fmt: skip
        logs[reward] = read_logged_bandit(path)
    spend = logs["spend"]
    emailed = np.asarray(spend.action_names)[spend.action] != NO_EMAIL
    logs["net_spend"] = dataclasses.replace(spend, reward=spend.reward - email_cost * emailed)
    return logs


def _interval(value: float, low: float | None, high: float | None, scale: float, sign: str) -> str:
    if low is None or high is None:
        return f"{scale * value:{sign}.2f}"
    return f"{scale * value:{sign}.2f} [{scale * low:{sign}.2f}, {scale * high:{sign}.2f}]"


def _print(runs: dict[str, dict[str, Any]], email_cost: float) -> None:
    """One table: every reward's policies, DR with its interval and the paired differences."""
    table = Table(
        title="(e) randomized experiments (Hillstrom; OBD random logs), learned on one half, "
        "valued on the other: DR per 1,000 rounds (0/1 rewards) or dollars per person (spend; "
        f"net_spend: less an assumed ${email_cost:.2f} per e-mail), paired 95% intervals"
    )
    for column in ("reward", "policy", "DR", "− best arm", "− uniform"):
        table.add_column(column, justify="left" if column in ("reward", "policy") else "right")
    for reward, run in runs.items():
        scale = 1.0 if reward.endswith("spend") else 1000.0
        for index, (name, row) in enumerate(run["values"].items()):
            dr_ = row["dr"]
            cells = [_interval(dr_["value"], dr_["ci_low"], dr_["ci_high"], scale, "")]
            for against in ("best single arm", "uniform"):
                d = run["differences"].get(name, {}).get(against)
                cells.append(
                    "" if d is None else _interval(d["diff"], d["ci_low"], d["ci_high"], scale, "+")
                )
            label = f"chosen: {run['chosen']}" if name == "chosen" else name
            table.add_row(
                reward if index == 0 else "",
                label,
                *cells,
                end_section=index == len(run["values"]) - 1,
            )
    console.print(table)


def _logs(data: Path, tmp: Path, email_cost: float) -> dict[str, LoggedBandit]:
    """Every randomized experiment found under ``data``, one logged bandit per reward.

    Hillstrom (three arms, a third each) and the Open Bandit Dataset's uniformly random logs (80
    items, 1/80 each; the display position is left out: it was drawn independently of the item,
    so a policy over items is valued over the positions as they came).
    """
    logs: dict[str, LoggedBandit] = {}
    hillstrom = data / "hillstrom" / "hillstrom.csv"
    if hillstrom.is_file():
        logs.update(_hillstrom_logs(hillstrom, tmp, email_cost))
    obd = data / "obd" / "random" / "all" / "all.csv"
    if obd.is_file():
        columns = {"action": "item_id", "reward": "click", "propensity": "propensity_score"}
        logs["obd click"] = read_logged_bandit(obd, columns=columns)
    return logs


def _headline(runs: dict[str, dict[str, Any]], names: tuple[str, ...]) -> dict[str, float | None]:
    """Each reward's best DR among ``names`` over the best single arm's: the ratio to a baseline
    (``None`` where the best arm's estimate is not positive, as on a log of a few clicks)."""
    out: dict[str, float | None] = {}
    for reward, run in runs.items():
        best_arm = run["values"]["best single arm"]["dr"]["value"]
        best = max(run["values"][name]["dr"]["value"] for name in names)
        out[reward] = best / best_arm if best_arm > 0 else None
    return out


def randomized_section(
    data: Path, *, seed: int, email_cost: float, n_bootstrap: int, rows: int | None = None
) -> dict[str, Any]:
    """Section (e) on every randomized experiment found under ``data``.

    ``rows`` keeps a random subset of each log's rounds, for a quick run. scikit-learn's trees run
    on one thread: the benchmark machine is shared, and oversubscribed OpenMP threads run ten times
    slower than one.
    """
    import sklearn.ensemble  # noqa: F401 - loads OpenMP, so that the limit below applies to it

    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
        logs = _logs(data, Path(tmp), email_cost)
        if not logs:
            return {"skipped": f"no randomized experiment (Hillstrom, OBD random) under {data}"}
        if rows is not None:
            logs = {
                reward: _subset(
                    log, np.sort(np.random.default_rng(seed).permutation(log.n_rounds)[:rows])
                )
                for reward, log in logs.items()
            }
        runs = {reward: randomized_run(log, seed, n_bootstrap) for reward, log in logs.items()}
    _print(runs, email_cost)
    return {
        "sets": sorted({"obd" if reward.startswith("obd") else "hillstrom" for reward in runs}),
        # the headline ratios: each reward's chosen policy and best learned one over the best arm
        "chosen_over_best_arm": _headline(runs, ("chosen",)),
        "best_learned_over_best_arm": _headline(runs, LEARNED),
        "seed": seed,
        "email_cost_assumed": email_cost,
        "n_bootstrap": n_bootstrap,
        "load_average": list(os.getloadavg()),
        "rewards": runs,
    }
