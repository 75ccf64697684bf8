"""Off-policy evaluation of candidate policies: on a logged-bandit file, or on the store's logs.

The services behind ``tummler evaluate``. Every candidate of one evaluation is weighed on the same
rounds with one cross-fitted reward model and the same bootstrap draws (the same ``seed``), so
their figures are comparable side by side; the estimators themselves are :mod:`tummler.evaluate`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tummler.app import policies
from tummler.app.ingest import LoggedBandit, read_logged_bandit
from tummler.app.learning.logged import (
    Logged,
    LoggedBatch,
    logged_decisions,
    objective_rewards,
    objectives,
    workspace_strategy,
)
from tummler.app.policies import CampaignPolicy, load_policy_file
from tummler.app.policy_file import LearnedPolicy
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError, NotFoundError
from tummler.core.randomness import make_rng
from tummler.decide import ContextFeaturizer
from tummler.evaluate import (
    BASELINES,
    MIN_ROUNDS_FOR_INTERVAL,
    PolicyEvaluation,
    baseline_action_dist,
    evaluate_policy,
    fit_reward_model,
    refit_dm_replicates,
)

__all__ = [
    "Candidate",
    "Evaluation",
    "NothingToEvaluateError",
    "evaluate_log",
    "evaluate_store",
    "resolve_candidate",
]

FloatArray = npt.NDArray[np.float64]
#: The baselines that have a form over a plan's eligible actions (``best-single`` has none).
_STORE_BASELINES = ("uniform", "logged")


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
    """

    log: str
    n_rounds: int
    n_actions: int
    results: tuple[PolicyEvaluation, ...]
    reward_scale: float = 0.0
    notes: tuple[str, ...] = ()

    def result(self, *labels: str) -> PolicyEvaluation | None:
        """The first candidate's result labelled one of ``labels``; ``None`` when none is."""
        return next((r for r in self.results if r.policy in labels), None)

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
        }


# --- on a logged-bandit file ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Candidate:
    """A policy to evaluate: a baseline by name, or a learned policy from a file or the store."""

    label: str
    baseline: str | None = None
    learned: LearnedPolicy | None = None
    version_id: int | None = None

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
        assert self.learned is not None
        return self.learned.action_dist(logs, draws=draws, rng=rng)


def resolve_candidate(spec: str, *, engine: Engine | None = None) -> Candidate:
    """Turn ``--policy P`` into a :class:`Candidate`.

    ``P`` is a baseline name (``uniform``, ``logged``, ``best-single``), a policy file (an
    existing path), or a stored version as ``name@version`` or its numeric id.
    """
    if spec in BASELINES:
        return Candidate(label=spec, baseline=spec)
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
    ignore: Iterable[str] = (),
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    draws: int = 64,
    reward_model: Literal["auto", "ridge", "logistic"] = "auto",
) -> Evaluation:
    """Estimate each candidate's value on a logged-bandit file with every estimator.

    One cross-fitted reward model serves every candidate, and every candidate is resampled with
    the same bootstrap draws (same ``seed``), so their figures are comparable side by side.

    Parameters
    ----------
    log
        The logged-bandit file, or its arrays already read.
    candidates
        ``--policy`` values (see :func:`resolve_candidate`) or resolved candidates.
    engine
        The store, for stored versions.
    n_bootstrap, alpha, seed
        The bootstrap's resamples, ``1 - confidence`` and seed.
    draws
        Posterior draws per round for the propensities of stochastic policies.
    """
    if not candidates:
        raise InputError("give at least one policy to evaluate (--policy)", field="policy")
    logs = (
        log
        if isinstance(log, LoggedBandit)
        else read_logged_bandit(
            log, action_features=action_features, columns=columns, ignore=ignore
        )
    )
    resolved = [
        c if isinstance(c, Candidate) else resolve_candidate(c, engine=engine) for c in candidates
    ]
    # Every candidate's distribution first: a policy that does not fit the log fails fast.
    dists = [c.action_dist(logs, draws=draws, rng=make_rng(seed)) for c in resolved]
    estimated = replicates = None
    if logs.context.shape[1] or logs.position is not None:
        model: dict[str, Any] = {
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
        replicates = _dm_replicates(logs.context, logs.action, logs.reward, dists, model, seed)
    results = [
        evaluate_policy(
            logs.reward,
            logs.action,
            logs.propensity,
            dist,
            estimated_rewards=estimated,
            dm_replicates=None if replicates is None else replicates[:, j],
            policy=candidate.label,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            rng=make_rng(seed),
        )
        for j, (candidate, dist) in enumerate(zip(resolved, dists, strict=True))
    ]
    return Evaluation(
        log=logs.source,
        n_rounds=logs.n_rounds,
        n_actions=logs.n_actions,
        results=tuple(results),
        reward_scale=_reward_scale(logs.reward),
    )


def _dm_replicates(
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


def _reward_scale(reward: FloatArray) -> float:
    """The largest absolute reward (0 for an empty log)."""
    return float(np.abs(reward).max()) if reward.size else 0.0


# --- on the store's logged decisions -------------------------------------------------------------


def evaluate_store(
    engine: Engine,
    *,
    workspace: Path,
    objective: str | None = None,
    campaign: str | None = None,
    candidates: Sequence[str] = (),
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    draws: int = 64,
    clock: Clock | None = None,
) -> Evaluation:
    """Estimate candidate policies' values on the store's logged decisions of one objective.

    The logged decisions are lever 0 of the non-holdout decisions made by the objective's newest
    version that made any (*no send* included), with their propensities and attributed rewards;
    their contexts are rebuilt as the plans computed them. A send whose message never went out
    (still waiting, or skipped, failed or dead at send time) is left out and counted in the
    notes: the logged action was never executed, so it has no reward to weigh, and reading it
    as a reward of 0 would make every policy that sends look worse than it is. A stored
    candidate acts on the same contacts with its own featurizer and harm per send, the same
    eligibility, costs and relevance threshold, as a single-lever decision. ``uniform`` picks
    uniformly among the eligible actions and *no send*; ``logged`` is the logging policy as far
    as the rows reveal it (the logged action with its propensity, the rest spread over the other
    eligible actions in the shares the logging policy gave them), so its IPS estimate is the
    observed mean reward.

    Parameters
    ----------
    candidates
        Stored versions (``name@version`` or id) and baselines; by default the latest unpromoted
        version of the objective, the promoted one, ``uniform`` and ``logged``.
    objective, campaign
        The objective (or the campaign whose objective it is, and only its decisions); needed
        when the store holds several objectives.

    Raises
    ------
    NothingToEvaluateError
        When no logged send of the objective went out yet.
    InputError
        When the objective is ambiguous, or a candidate does not fit.
    """
    clock = clock or SystemClock()
    name = _one_objective(engine, objective, campaign)
    logged = _sent_decisions(engine, workspace, clock, name, campaign)
    specs = list(candidates) or _default_candidates(engine, name)
    width = max(b.actions.k for b in logged.batches) + 1
    rounds = _logged_rounds(engine, logged)
    dists = [_store_dist(engine, spec, logged.batches, width, draws, seed) for spec in specs]
    results = _weigh(rounds, specs, dists, width, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)
    return Evaluation(
        log=f"store:{name}",
        n_rounds=int(rounds.action.size),
        n_actions=width,
        results=tuple(results),
        reward_scale=_reward_scale(rounds.reward),
        notes=logged.skipped,
    )


@dataclass(frozen=True)
class _LoggedRounds:
    """The store's logged rounds stacked over batches, contexts as the logging policy read them."""

    x: npt.NDArray[np.float32]
    action: npt.NDArray[np.int64]
    reward: FloatArray
    propensity: FloatArray


def _weigh(
    rounds: _LoggedRounds,
    specs: Sequence[str],
    dists: Sequence[FloatArray],
    width: int,
    *,
    n_bootstrap: int,
    alpha: float,
    seed: int,
) -> list[PolicyEvaluation]:
    """Every candidate's estimates on the logged rounds, from one cross-fitted reward model and
    the same bootstrap draws, so that they compare side by side."""
    x = rounds.x.astype(np.float64)
    model: dict[str, Any] = {"n_actions": width, "position": None, "kind": "auto"}
    estimated = fit_reward_model(
        x,
        rounds.action,
        rounds.reward,
        n_folds=min(3, rounds.action.size),
        rng=make_rng(seed),
        **model,
    )
    replicates = _dm_replicates(x, rounds.action, rounds.reward, dists, model, seed)
    return [
        evaluate_policy(
            rounds.reward,
            rounds.action,
            rounds.propensity,
            dist,
            estimated_rewards=estimated,
            dm_replicates=None if replicates is None else replicates[:, j],
            policy=spec,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            rng=make_rng(seed),
        )
        for j, (spec, dist) in enumerate(zip(specs, dists, strict=True))
    ]


def _sent_decisions(
    engine: Engine, workspace: Path, clock: Clock, objective: str, campaign: str | None
) -> Logged:
    """The objective's logged decisions with their rewards, refused when no send went out."""
    strategy = workspace_strategy(workspace, clock)
    logged = logged_decisions(
        engine,
        workspace=workspace,
        clock=clock,
        strategy=strategy,
        rewards=objective_rewards(engine, strategy, campaign),
        objective=objective,
        sends_only=False,
    )
    _check_sends(logged)
    return logged


def _logged_rounds(engine: Engine, logged: Logged) -> _LoggedRounds:
    """Every batch's contexts (as the logging policy's featurizer read them), actions, rewards
    and propensities, stacked: the rounds every candidate is weighed on."""
    with Session(engine) as session:
        logging_row = policies.get_version(session, logged.version_id)
        origin = "the logging policy"
        logging = _featurizer(_campaign_policy(logging_row.parameters, origin, origin), origin)
    x_log = np.concatenate([b.contexts(logging) for b in logged.batches])
    action = np.concatenate([b.action for b in logged.batches])
    reward = np.concatenate([b.reward for b in logged.batches])
    propensity = np.concatenate([b.propensity for b in logged.batches])
    return _LoggedRounds(x_log, action, reward, propensity)


def _one_objective(engine: Engine, objective: str | None, campaign: str | None) -> str:
    names = objectives(engine, objective, campaign)
    if len(names) != 1:
        raise InputError(
            f"the store holds decisions of {len(names)} objectives ({', '.join(names)}); "
            f"choose one with --objective",
            field="objective",
        )
    return names[0]


def _check_sends(logged: Logged) -> None:
    """Refuse logs without a send that went out: *no send* rows alone say nothing of any send."""
    sent = sum(int((b.action < b.actions.k).sum()) for b in logged.batches)
    if not sent and logged.went_out:  # messages went out, but no plan could be rebuilt for them
        raise InputError(
            f"{logged.went_out} logged send(s) of objective {logged.objective!r} went out, but "
            f"their contexts could not be rebuilt: {'; '.join(logged.skipped)}; fix the campaign "
            "files (tummler strategy check) and try again",
            field="objective",
        )
    if not sent:
        unsent = f" ({'; '.join(logged.skipped)})" if logged.unsent else ""
        raise NothingToEvaluateError(
            f"no logged decisions of objective {logged.objective!r} with a message that went "
            f"out, to evaluate on{unsent}; plan a campaign, send it (tummler send), import its "
            f"events, and try again",
            field="objective",
        )


def _default_candidates(engine: Engine, objective: str) -> list[str]:
    """The latest unpromoted version of ``objective``, the promoted one, and the baselines."""
    with Session(engine) as session:
        rows = policies.versions_of(session, objective)
    fresh = next((r for r in rows if not r.promoted), None)
    promoted = next((r for r in rows if r.promoted), None)
    specs = [policies.spec_of(r) for r in (fresh, promoted) if r is not None]
    return [*specs, *_STORE_BASELINES]


def _campaign_policy(parameters: Any, label: str, origin: str) -> CampaignPolicy:
    """A stored version's campaign policy; a policy learned from a log is an input error."""
    found = policies.read_policy(parameters, origin=origin)
    if not isinstance(found, CampaignPolicy):
        raise InputError(
            f"{label} was learned from a log file; evaluate it with --log FILE", field="policy"
        )
    return found


def _store_dist(
    engine: Engine, spec: str, batches: Sequence[LoggedBatch], width: int, draws: int, seed: int
) -> FloatArray:
    """A candidate's ``(n, width)`` distribution over each batch's actions and *no send* (at
    column ``k`` of its batch)."""
    candidate: CampaignPolicy | None = None
    if spec not in _STORE_BASELINES:
        with Session(engine) as session:
            row = policies.find_version(session, spec)
            if row is None:
                raise NotFoundError(f"no stored policy version {spec!r}; give name@version or id")
            candidate = _campaign_policy(row.parameters, spec, f"policy version {spec}")
    rng = make_rng(seed)
    parts = []
    for b in batches:
        dist = np.zeros((b.action.size, width))
        k = b.actions.k
        if candidate is None:
            dist[:, : k + 1] = _baseline_dist(spec, b)
        else:
            dist[:, : k + 1] = _candidate_dist(spec, candidate, b, draws, rng)
        parts.append(dist)
    return np.concatenate(parts)


def _baseline_dist(name: str, batch: LoggedBatch) -> FloatArray:
    """A baseline over the batch's eligible actions and *no send*, which is always eligible."""
    n = batch.action.size
    return baseline_action_dist(
        name,
        reward=batch.reward,
        action=batch.action,
        propensity=batch.propensity,
        n_actions=batch.actions.k + 1,
        eligible=np.concatenate([batch.mask, np.ones((n, 1), bool)], axis=1),
    )


def _candidate_dist(
    spec: str, candidate: CampaignPolicy, batch: LoggedBatch, draws: int, rng: np.random.Generator
) -> FloatArray:
    """A stored version's single-lever distribution on the batch, as planning would decide."""
    policy = candidate.policy
    if (
        policy.n_channels != batch.actions.n_channels
        or policy.n_action_features != batch.actions.n_features
    ):
        raise InputError(
            f"{spec} was made for other channels or variants than campaign "
            f"{batch.campaign!r}'s; evaluate a version of this objective",
            field="policy",
        )
    return policy.action_distribution(
        batch.contexts(_featurizer(candidate, spec)),
        batch.actions,
        batch.mask,
        cost=batch.cost + candidate.channel_harm.per_send(batch.actions.channel_names),
        threshold=batch.threshold,
        draws=draws,
        rng=rng,
    )


def _featurizer(policy: CampaignPolicy, origin: str) -> ContextFeaturizer:
    """The featurizer a stored campaign policy reads contexts by."""
    if policy.featurizer is None:
        raise InputError(
            f"{origin} was stored without its featurizer (the layout of the first stores); "
            "learn a new version from it with tummler learn",
            field="policy",
        )
    return policy.featurizer
