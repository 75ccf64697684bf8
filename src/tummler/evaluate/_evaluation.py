"""Run every estimator on one candidate policy and report the figures as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng
from tummler.evaluate._checks import check_rounds
from tummler.evaluate._diagnostics import (
    EvaluationWarning,
    SwitchGuard,
    diagnose,
    switch_guard,
    switch_threshold,
)
from tummler.evaluate._estimators import ESTIMATORS, MODEL_BASED, Estimate, estimate_all
from tummler.evaluate._model_bootstrap import DEFAULT_MODEL_REFITS, refit_dm_replicates
from tummler.evaluate._reward_model import RewardModelKind, fit_reward_model

__all__ = ["PolicyEvaluation", "evaluate_policy"]


@dataclass(frozen=True)
class PolicyEvaluation:
    """Every estimator's estimate of one policy's value on one set of logged rounds.

    Attributes
    ----------
    policy
        A name for the evaluated policy (a file, a stored version, a baseline).
    n
        Number of logged rounds.
    alpha
        The intervals are at confidence level ``1 - alpha``.
    estimates
        One :class:`Estimate` per estimator, in the order of ``ESTIMATORS``.
    warnings
        Why some figures should not be read at face value (:class:`EvaluationWarning`).
    guard
        switch-DR's threshold on the importance weights and what it switched; None when
        switch-DR was not run.
    """

    policy: str
    n: int
    alpha: float
    estimates: tuple[Estimate, ...]
    warnings: tuple[EvaluationWarning, ...] = ()
    guard: SwitchGuard | None = None

    def __getitem__(self, name: str) -> Estimate:
        for estimate in self.estimates:
            if estimate.name == name:
                return estimate
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``tummler evaluate --json``.

        Examples
        --------
        >>> result = evaluate_policy([1.0, 0.0], [0, 1], [0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]],
        ...                          n_bootstrap=0, policy="uniform")
        >>> result.to_dict()["estimates"]["ips"]
        {'estimate': 0.5, 'ci_low': None, 'ci_high': None, 'interval': None, \
'effective_sample_size': 2.0}
        """
        return {
            "policy": self.policy,
            "n_rounds": self.n,
            "confidence": 1.0 - self.alpha,
            "estimates": {
                e.name: {
                    "estimate": e.value,
                    "ci_low": e.ci_low,
                    "ci_high": e.ci_high,
                    "interval": e.interval,
                    "effective_sample_size": e.effective_sample_size,
                }
                for e in self.estimates
            },
            "warnings": [w.to_dict() for w in self.warnings],
            "guard": None if self.guard is None else self.guard.to_dict(),
        }


def evaluate_policy(
    reward: npt.ArrayLike,
    action: npt.ArrayLike,
    propensity: npt.ArrayLike,
    action_dist: npt.ArrayLike,
    *,
    estimated_rewards: npt.ArrayLike | None = None,
    context: npt.ArrayLike | None = None,
    position: npt.ArrayLike | None = None,
    policy: str = "candidate",
    tau: float | None = None,
    reward_model: RewardModelKind = "auto",
    n_folds: int = 3,
    model_refits: int = DEFAULT_MODEL_REFITS,
    dm_replicates: npt.ArrayLike | None = None,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    rng: np.random.Generator | int = 0,
) -> PolicyEvaluation:
    """Estimate a policy's value with IPS, SNIPS, DM, DR and switch-DR on the same logged rounds.

    The model-based estimators need ``estimated_rewards``; when they are not given but ``context``
    is, a cross-fitted reward model (:func:`fit_reward_model`) is fitted here, and refitted
    ``model_refits`` times on resamples for DM's interval (:func:`refit_dm_replicates`); with
    neither, only IPS and SNIPS are reported. The other intervals come from the same bootstrap
    resamples. Warnings about the log (:class:`EvaluationWarning`) come with the figures.

    Parameters
    ----------
    reward, action, propensity, action_dist, position
        The logged rounds and the evaluation policy, as for :func:`ips`.
    estimated_rewards
        A reward model's predictions, shaped like ``action_dist`` or ``(n, k)``. DM then has an
        interval only with ``dm_replicates``.
    context
        ``(n, d)`` numeric context features, used only to fit a reward model.
    policy
        A name for the policy in the report.
    tau
        Switch-DR's threshold on the importance weight; by default
        :func:`switch_threshold` (ten times the number of actions), the guard on extreme weights.
    reward_model, n_folds
        Kind and cross-fitting folds of the fitted reward model.
    model_refits
        Refits of the reward model for DM's interval when it is fitted here (0: DM gets none).
    dm_replicates
        DM's values under refitted models, from :func:`refit_dm_replicates` (a column of it),
        when the model is fitted by the caller.
    n_bootstrap, alpha, rng
        As for :func:`ips`; ``rng`` also assigns the reward model's folds and resamples.
    """
    generator = make_rng(rng)
    if estimated_rewards is None and context is not None:
        dist = np.asarray(action_dist)
        if dist.ndim not in (2, 3):
            raise PolicyError(f"action_dist must be (n, k) or (n, k, L), got shape {dist.shape}")
        model: dict[str, Any] = {
            "n_actions": int(dist.shape[1]),
            "position": position,
            "kind": reward_model,
        }
        estimated_rewards = fit_reward_model(
            context, action, reward, n_folds=n_folds, rng=generator, **model
        )
        if model_refits and n_bootstrap:
            dm_replicates = refit_dm_replicates(
                context, action, reward, [dist], n_refits=model_refits, rng=generator, **model
            )[:, 0]
    rounds = check_rounds(
        reward,
        action,
        propensity,
        action_dist,
        position=position,
        estimated_rewards=estimated_rewards,
    )
    threshold = switch_threshold(rounds.action_dist.shape[1]) if tau is None else tau
    names = [n for n in ESTIMATORS if rounds.estimated_rewards is not None or n not in MODEL_BASED]
    estimates = estimate_all(
        rounds,
        names,
        tau=threshold,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        rng=generator,
        dm_replicates=dm_replicates,
    )
    return PolicyEvaluation(
        policy=policy,
        n=rounds.n,
        alpha=alpha,
        estimates=tuple(estimates),
        warnings=diagnose(rounds, estimates, tau=threshold, n_bootstrap=n_bootstrap),
        guard=switch_guard(rounds, threshold) if "switch_dr" in names else None,
    )
