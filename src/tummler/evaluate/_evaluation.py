"""Run every estimator on one candidate policy and report the figures as JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng
from tummler.evaluate._checks import check_rounds
from tummler.evaluate._estimators import ESTIMATORS, MODEL_BASED, Estimate, estimate_all
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
    """

    policy: str
    n: int
    alpha: float
    estimates: tuple[Estimate, ...]

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
        {'estimate': 0.5, 'ci_low': None, 'ci_high': None, 'effective_sample_size': 2.0}
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
                    "effective_sample_size": e.effective_sample_size,
                }
                for e in self.estimates
            },
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
    tau: float = math.inf,
    reward_model: RewardModelKind = "auto",
    n_folds: int = 3,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    rng: np.random.Generator | int = 0,
) -> PolicyEvaluation:
    """Estimate a policy's value with IPS, SNIPS, DM, DR and switch-DR on the same logged rounds.

    The model-based estimators need ``estimated_rewards``; when they are not given but ``context``
    is, a cross-fitted reward model (:func:`fit_reward_model`) is fitted here; with neither, only
    IPS and SNIPS are reported. All intervals come from the same bootstrap resamples.

    Parameters
    ----------
    reward, action, propensity, action_dist, position
        The logged rounds and the evaluation policy, as for :func:`ips`.
    estimated_rewards
        A reward model's predictions, shaped like ``action_dist`` or ``(n, k)``.
    context
        ``(n, d)`` numeric context features, used only to fit a reward model.
    policy
        A name for the policy in the report.
    tau
        Switch-DR's threshold on the importance weight.
    reward_model, n_folds
        Kind and cross-fitting folds of the fitted reward model.
    n_bootstrap, alpha, rng
        As for :func:`ips`; ``rng`` also assigns the reward model's folds.
    """
    generator = make_rng(rng)
    if estimated_rewards is None and context is not None:
        dist = np.asarray(action_dist)
        if dist.ndim not in (2, 3):
            raise PolicyError(f"action_dist must be (n, k) or (n, k, L), got shape {dist.shape}")
        estimated_rewards = fit_reward_model(
            context,
            action,
            reward,
            n_actions=int(dist.shape[1]),
            position=position,
            kind=reward_model,
            n_folds=n_folds,
            rng=generator,
        )
    rounds = check_rounds(
        reward,
        action,
        propensity,
        action_dist,
        position=position,
        estimated_rewards=estimated_rewards,
    )
    names = [n for n in ESTIMATORS if rounds.estimated_rewards is not None or n not in MODEL_BASED]
    estimates = estimate_all(
        rounds, names, tau=tau, n_bootstrap=n_bootstrap, alpha=alpha, rng=generator
    )
    return PolicyEvaluation(policy=policy, n=rounds.n, alpha=alpha, estimates=tuple(estimates))
