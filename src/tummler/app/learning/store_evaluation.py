"""Off-policy evaluation of candidate policies on the store's logged decisions of an objective.

The service behind ``tummler evaluate`` without ``--log``: the logged decisions of the objective's
newest version that made any, their contexts rebuilt as the plans computed them
(:mod:`~tummler.app.learning.logged`), every candidate weighed on them with one cross-fitted reward
model and the same bootstrap draws, as on a log file (:mod:`~tummler.app.learning.evaluation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tummler.app import policies
from tummler.app.learning.evaluation import (
    Evaluation,
    NothingToEvaluateError,
    dm_replicates,
    reward_scale,
)
from tummler.app.learning.exploration import (
    ExplorationPrice,
    explores,
    greedy_campaign_dist,
    greedy_label,
    price_of_exploration,
)
from tummler.app.learning.logged import (
    Logged,
    LoggedBatch,
    logged_decisions,
    objective_rewards,
    objectives,
    workspace_strategy,
)
from tummler.app.policies import CampaignPolicy
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError, NotFoundError
from tummler.core.randomness import make_rng
from tummler.decide import ContextFeaturizer
from tummler.evaluate import (
    LoggedData,
    PolicyEvaluation,
    RewardModelKind,
    baseline_action_dist,
    evaluate_policy,
    fit_reward_model,
)

__all__ = ["evaluate_store"]

FloatArray = npt.NDArray[np.float64]
#: The baselines that have a form over a plan's eligible actions (``best-single`` has none).
_STORE_BASELINES = ("uniform", "logged")


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
    reward_model: RewardModelKind = "auto",
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
    reward_model
        DM and DR's reward model (:func:`~tummler.evaluate.fit_reward_model`'s ``kind``).

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
    weighed, twins = _store_candidates(engine, specs, logged.batches, width, draws, seed)
    results, prices = _weigh(
        rounds,
        weighed,
        twins,
        width,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        seed=seed,
        reward_model=reward_model,
    )
    return Evaluation(
        log=f"store:{name}",
        n_rounds=int(rounds.action.size),
        n_actions=width,
        results=tuple(results),
        reward_scale=reward_scale(rounds.reward),
        notes=logged.skipped,
        exploration=tuple(prices),
    )


@dataclass(frozen=True)
class _LoggedRounds:
    """The store's logged rounds stacked over batches, contexts as the logging policy read them."""

    x: npt.NDArray[np.float32]
    action: npt.NDArray[np.int64]
    reward: FloatArray
    propensity: FloatArray


@dataclass(frozen=True, eq=False)
class _Twin:
    """A stored version that explores: its kind, and its distributions deployed and greedy."""

    labels: tuple[str, str]
    kind: str
    deployed: FloatArray
    greedy: FloatArray


def _store_candidates(
    engine: Engine,
    specs: Sequence[str],
    batches: Sequence[LoggedBatch],
    width: int,
    draws: int,
    seed: int,
) -> tuple[list[tuple[str, FloatArray]], list[_Twin]]:
    """Each candidate's ``(n, width)`` distribution, a version that explores followed by its
    greedy twin; and those versions, for the price of their exploration."""
    weighed: list[tuple[str, FloatArray]] = []
    twins: list[_Twin] = []
    for spec in specs:
        candidate = _stored_policy(engine, spec)
        deployed = _store_dist(spec, candidate, batches, width, draws, seed)
        weighed.append((spec, deployed))
        if candidate is None or not explores(candidate.policy):
            continue
        greedy = _store_dist(spec, candidate, batches, width, draws, seed, greedy=True)
        twin = _Twin((spec, greedy_label(spec)), candidate.policy.kind, deployed, greedy)
        weighed.append((twin.labels[1], greedy))
        twins.append(twin)
    return weighed, twins


def _weigh(
    rounds: _LoggedRounds,
    weighed: Sequence[tuple[str, FloatArray]],
    twins: Sequence[_Twin],
    width: int,
    *,
    n_bootstrap: int,
    alpha: float,
    seed: int,
    reward_model: RewardModelKind,
) -> tuple[list[PolicyEvaluation], list[ExplorationPrice]]:
    """Every candidate's estimates on the logged rounds, from one cross-fitted reward model, the
    same bootstrap draws and the same refitted models (DM's interval), so that they compare side
    by side; and each twin's price."""
    x = rounds.x.astype(np.float64)
    model: dict[str, Any] = {"n_actions": width, "position": None, "kind": reward_model}
    estimated = fit_reward_model(
        x,
        rounds.action,
        rounds.reward,
        n_folds=min(3, rounds.action.size),
        rng=make_rng(seed),
        **model,
    )
    replicates = dm_replicates(
        x, rounds.action, rounds.reward, [d for _, d in weighed], model, seed
    )
    results = [
        evaluate_policy(
            rounds.reward,
            rounds.action,
            rounds.propensity,
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
    data = LoggedData(rounds.reward, rounds.action, rounds.propensity)
    prices = [
        price_of_exploration(
            data,
            kind=twin.kind,
            labels=twin.labels,
            deployed=twin.deployed,
            greedy=twin.greedy,
            estimated_rewards=estimated,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            seed=seed,
        )
        for twin in twins
    ]
    return results, prices


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


def _stored_policy(engine: Engine, spec: str) -> CampaignPolicy | None:
    """The campaign policy of a stored version; None for a baseline."""
    if spec in _STORE_BASELINES:
        return None
    with Session(engine) as session:
        row = policies.find_version(session, spec)
        if row is None:
            raise NotFoundError(f"no stored policy version {spec!r}; give name@version or id")
        return _campaign_policy(row.parameters, spec, f"policy version {spec}")


def _store_dist(
    spec: str,
    candidate: CampaignPolicy | None,
    batches: Sequence[LoggedBatch],
    width: int,
    draws: int,
    seed: int,
    *,
    greedy: bool = False,
) -> FloatArray:
    """A candidate's ``(n, width)`` distribution over each batch's actions and *no send* (at
    column ``k`` of its batch): a baseline (``candidate`` None), a stored version as deployed,
    or (``greedy``) its greedy twin."""
    rng = make_rng(seed)
    parts = []
    for b in batches:
        dist = np.zeros((b.action.size, width))
        k = b.actions.k
        if candidate is None:
            dist[:, : k + 1] = _baseline_dist(spec, b)
        else:
            dist[:, : k + 1] = _candidate_dist(spec, candidate, b, draws, rng, greedy=greedy)
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
    spec: str,
    candidate: CampaignPolicy,
    batch: LoggedBatch,
    draws: int,
    rng: np.random.Generator,
    *,
    greedy: bool = False,
) -> FloatArray:
    """A stored version's single-lever distribution on the batch, as planning would decide
    (``greedy``: by its point estimate, without a posterior draw or an exploration share)."""
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
    x = batch.contexts(_featurizer(candidate, spec))
    cost = batch.cost + candidate.channel_harm.per_send(batch.actions.channel_names)
    if greedy:
        return greedy_campaign_dist(
            policy, x, batch.actions, batch.mask, cost=cost, threshold=batch.threshold
        )
    return policy.action_distribution(
        x, batch.actions, batch.mask, cost=cost, threshold=batch.threshold, draws=draws, rng=rng
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
