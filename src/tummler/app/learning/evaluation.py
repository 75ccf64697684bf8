"""Off-policy evaluation of candidate policies on a logged-bandit file, and the :class:`Evaluation`
that it and the store's evaluation (:mod:`~tummler.app.learning.store_evaluation`) return.

The services behind ``tummler evaluate``. Every candidate of one evaluation is weighed on the same
rounds with one cross-fitted reward model and the same bootstrap draws (the same ``seed``), so
their figures are comparable side by side; the estimators themselves are :mod:`tummler.evaluate`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tummler.app import policies
from tummler.app.ingest import LoggedBandit, read_logged_bandit
from tummler.app.learning.exploration import (
    ExplorationPrice,
    explores,
    greedy_action_dist,
    greedy_label,
    price_of_exploration,
)
from tummler.app.learning.policy_table import (
    ProbabilityTable,
    is_probability_table,
    read_probability_table,
)
from tummler.app.policies import load_policy_file
from tummler.app.policy_file import LearnedPolicy
from tummler.core.errors import InputError, NotFoundError
from tummler.core.randomness import make_rng
from tummler.evaluate import (
    BASELINES,
    MIN_ROUNDS_FOR_INTERVAL,
    LoggedData,
    PolicyEvaluation,
    RewardModelKind,
    baseline_action_dist,
    evaluate_policy,
    fit_reward_model,
    refit_dm_replicates,
)

__all__ = [
    "Candidate",
    "Evaluation",
    "NothingToEvaluateError",
    "dm_replicates",
    "evaluate_log",
    "resolve_candidate",
    "reward_scale",
]

FloatArray = npt.NDArray[np.float64]


class NothingToEvaluateError(InputError):
    """No logged send of the objective went out yet: there is nothing to weigh a policy on.

    Not a failure of the caller's input so much as a state of the store (a plan not sent yet):
    ``tummler evaluate`` says so and exits 0, the promoted version staying as it is.
    """


@dataclass(frozen=True)
class Evaluation:
    """Every candidate's estimates on one log, from the same reward model and resamples.

    Attributes
    ----------
    log, n_rounds, n_actions
        What the candidates were evaluated on.
    results
        One :class:`~tummler.evaluate.PolicyEvaluation` per candidate, in the order asked for.
    reward_scale
        The largest absolute reward of the log: the unit in which two estimates that differ by
        rounding noise are told apart from two that differ (:func:`~tummler.evaluate.tie_tolerance`).
    notes
        What the evaluation left out and why (decisions never sent, campaigns it cannot read).
    exploration
        Per candidate that explores (a Thompson sampler, an epsilon share): the price of its
        exploration, deployed minus greedy, its greedy twin being among ``results``.
    """

    log: str
    n_rounds: int
    n_actions: int
    results: tuple[PolicyEvaluation, ...]
    reward_scale: float = 0.0
    notes: tuple[str, ...] = ()
    exploration: tuple[ExplorationPrice, ...] = ()

    def result(self, *labels: str) -> PolicyEvaluation | None:
        """The first candidate's result labelled one of ``labels``; ``None`` when none is."""
        return next((r for r in self.results if r.policy in labels), None)

    def without(self, label: str) -> Evaluation:
        """The evaluation less the candidate ``label``, its greedy twin and its price (a rival
        weighed only for promotion, not shown)."""
        twin = greedy_label(label)
        return replace(
            self,
            results=tuple(r for r in self.results if r.policy not in (label, twin)),
            exploration=tuple(p for p in self.exploration if p.policy != label),
        )

    def to_dict(self) -> dict[str, Any]:
        """The one JSON object of ``tummler evaluate --json``."""
        return {
            "log": self.log,
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "policies": [result.to_dict() for result in self.results],
            "warnings": [
                {"policy": result.policy, **warning.to_dict()}
                for result in self.results
                for warning in result.warnings
            ],
            "notes": list(self.notes),
            "exploration": [price.to_dict() for price in self.exploration],
        }


# --- on a logged-bandit file ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Candidate:
    """A policy to evaluate: a baseline by name, a learned policy from a file or the store, or a
    probability table."""

    label: str
    baseline: str | None = None
    learned: LearnedPolicy | None = None
    version_id: int | None = None
    table: ProbabilityTable | None = None

    def action_dist(
        self, logs: LoggedBandit, *, draws: int, rng: np.random.Generator
    ) -> FloatArray:
        """The candidate's ``(n, k)`` action distribution on the rounds of ``logs``."""
        if self.baseline is not None:
            return baseline_action_dist(
                self.baseline,
                reward=logs.reward,
                action=logs.action,
                propensity=logs.propensity,
                n_actions=logs.n_actions,
            )
        if self.table is not None:
            return self.table.action_dist(logs)
        assert self.learned is not None
        return self.learned.action_dist(logs, draws=draws, rng=rng)


def resolve_candidate(spec: str, *, engine: Engine | None = None) -> Candidate:
    """Turn ``--policy P`` into a :class:`Candidate`.

    ``P`` is a baseline name (``uniform``, ``logged``, ``best-single``), a probability table
    (a ``.csv`` file: :mod:`~tummler.app.learning.policy_table`), a policy file (an existing
    path), or a stored version as ``name@version`` or its numeric id.
    """
    if spec in BASELINES:
        return Candidate(label=spec, baseline=spec)
    if is_probability_table(spec):
        return Candidate(label=spec, table=read_probability_table(spec))
    path = Path(spec)
    if path.is_file() or path.suffix.lower() == ".json":
        return Candidate(label=spec, learned=load_policy_file(path))
    if not policies.is_version_spec(spec):
        raise InputError(
            f"{spec!r} is neither a baseline ({', '.join(BASELINES)}), an existing policy file, "
            f"nor a stored version (name@version or id)",
            field="policy",
        )
    if engine is None:
        raise InputError(
            f"{spec!r} names a stored policy version; run inside a workspace (--workspace)",
            field="policy",
        )
    with Session(engine) as session:
        version = policies.find_version(session, spec)
        if version is None:
            raise NotFoundError(
                f"no stored policy version {spec!r}; list them or give a policy file"
            )
        label = policies.spec_of(version)
        learned = policies.read_policy(version.parameters, origin=f"policy version {label}")
        if not isinstance(learned, LearnedPolicy):
            raise InputError(
                f"{label} decides campaigns and acts on the store's contacts, not on a log; "
                f"evaluate it without --log",
                field="policy",
            )
        return Candidate(label=label, learned=learned, version_id=version.id)


def evaluate_log(
    log: str | Path | LoggedBandit,
    candidates: Sequence[str | Candidate],
    *,
    engine: Engine | None = None,
    action_features: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    categorical: Iterable[str] = (),
    ignore: Iterable[str] = (),
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    draws: int = 64,
    reward_model: RewardModelKind = "auto",
) -> Evaluation:
    """Estimate each candidate's value on a logged-bandit file with every estimator.

    One cross-fitted reward model serves every candidate, and every candidate is resampled with
    the same bootstrap draws (same ``seed``), so their figures are comparable side by side. A
    candidate that explores (a Thompson sampler, an epsilon share) is weighed as deployed and,
    right after it, as its greedy twin (``"P (greedy)"``: the posterior mean's best action), and
    their paired difference is the evaluation's ``exploration`` price.

    Parameters
    ----------
    log
        The logged-bandit file, or its arrays already read.
    candidates
        ``--policy`` values (see :func:`resolve_candidate`) or resolved candidates.
    action_features, columns, categorical, ignore
        How to read the log (:func:`~tummler.app.ingest.read_logged_bandit`).
    engine
        The store, for stored versions.
    n_bootstrap, alpha, seed
        The bootstrap's resamples, ``1 - confidence`` and seed.
    draws
        Posterior draws per round for the propensities of stochastic policies.
    reward_model
        DM and DR's reward model (:func:`~tummler.evaluate.fit_reward_model`'s ``kind``).
    """
    if not candidates:
        raise InputError("give at least one policy to evaluate (--policy)", field="policy")
    logs = (
        log
        if isinstance(log, LoggedBandit)
        else read_logged_bandit(
            log,
            action_features=action_features,
            columns=columns,
            categorical=categorical,
            ignore=ignore,
        )
    )
    resolved = [
        c if isinstance(c, Candidate) else resolve_candidate(c, engine=engine) for c in candidates
    ]
    # Every candidate's distribution first: a policy that does not fit the log fails fast.
    dists = [c.action_dist(logs, draws=draws, rng=make_rng(seed)) for c in resolved]
    estimated: FloatArray | None = None
    model: dict[str, Any] | None = None
    if logs.context.shape[1] or logs.position is not None:
        model = {
            "n_actions": logs.n_actions,
            "position": logs.position,
            "kind": reward_model,
        }
        estimated = fit_reward_model(
            logs.context,
            logs.action,
            logs.reward,
            n_folds=min(3, logs.n_rounds),
            rng=make_rng(seed),
            **model,
        )
    results, prices = _weigh_log(
        logs,
        resolved,
        dists,
        estimated,
        model,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        seed=seed,
    )
    return Evaluation(
        log=logs.source,
        n_rounds=logs.n_rounds,
        n_actions=logs.n_actions,
        results=tuple(results),
        reward_scale=reward_scale(logs.reward),
        exploration=tuple(prices),
    )


def _weigh_log(
    logs: LoggedBandit,
    candidates: Sequence[Candidate],
    dists: Sequence[FloatArray],
    estimated: FloatArray | None,
    model: dict[str, Any] | None,
    *,
    n_bootstrap: int,
    alpha: float,
    seed: int,
) -> tuple[list[PolicyEvaluation], list[ExplorationPrice]]:
    """Every candidate's estimates on the log, each from the same resamples (DM's from the same
    refitted reward models); a candidate that explores is followed by its greedy twin, and the
    price of its exploration is measured."""
    weighed: list[tuple[str, FloatArray]] = []
    prices: list[ExplorationPrice] = []
    for candidate, dist in zip(candidates, dists, strict=True):
        weighed.append((candidate.label, dist))
        learned = candidate.learned
        if learned is None or not explores(learned.policy):
            continue
        labels = (candidate.label, greedy_label(candidate.label))
        greedy = greedy_action_dist(learned, logs)
        weighed.append((labels[1], greedy))
        prices.append(
            price_of_exploration(
                LoggedData(logs.reward, logs.action, logs.propensity),
                kind=learned.kind,
                labels=labels,
                deployed=dist,
                greedy=greedy,
                estimated_rewards=estimated,
                n_bootstrap=n_bootstrap,
                alpha=alpha,
                seed=seed,
            )
        )
    replicates = (
        None
        if model is None
        else dm_replicates(
            logs.context, logs.action, logs.reward, [d for _, d in weighed], model, seed
        )
    )
    results = [
        evaluate_policy(
            logs.reward,
            logs.action,
            logs.propensity,
            dist,
            estimated_rewards=estimated,
            dm_replicates=None if replicates is None else replicates[:, j],
            policy=label,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            rng=make_rng(seed),
        )
        for j, (label, dist) in enumerate(weighed)
    ]
    return results, prices


def dm_replicates(
    context: FloatArray,
    action: npt.NDArray[np.int64],
    reward: FloatArray,
    dists: Sequence[FloatArray],
    model: dict[str, Any],
    seed: int,
) -> FloatArray | None:
    """DM's values of every candidate under the same refitted reward models, for its interval;
    None when the log is too small for an interval anyway."""
    if reward.size < MIN_ROUNDS_FOR_INTERVAL:
        return None
    return refit_dm_replicates(context, action, reward, dists, rng=make_rng(seed + 1), **model)


def reward_scale(reward: FloatArray) -> float:
    """The largest absolute reward (0 for an empty log)."""
    return float(np.abs(reward).max()) if reward.size else 0.0
