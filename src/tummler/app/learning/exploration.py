"""What a policy that explores is worth as deployed, next to its own greedy choice.

A Thompson sampler decides by a fresh draw from its posterior for every person, and an
epsilon-greedy policy sends a share of its decisions at random: that is what planning deploys, and
what ``tummler evaluate`` scores. Its *greedy* twin takes, for every person, the action whose
posterior-mean (point) estimate is best. The difference between the two, paired round by round on
the same logs (:func:`tummler.evaluate.paired_difference`), is the *price of exploration*: what the
rounds spent learning cost now. On a five-arm mailing experiment the sampled policy cost .0029
[.0010, .0047] per person against always sending the best mailer, while its greedy twin matched it:
without both figures, a team cannot tell whether the policy is poor or merely still learning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.app.ingest import LoggedBandit
from tummler.app.policy_file import LearnedPolicy
from tummler.core.errors import InputError
from tummler.core.randomness import make_rng
from tummler.decide import ActionSet, Policy
from tummler.evaluate import Estimate, LoggedData, paired_difference

__all__ = [
    "ExplorationPrice",
    "explores",
    "greedy_action_dist",
    "greedy_campaign_dist",
    "greedy_label",
    "price_of_exploration",
]

FloatArray = npt.NDArray[np.float64]


def explores(policy: Policy) -> bool:
    """Whether the policy's deployed choice differs from its greedy one: a posterior it samples
    from, or an exploration share."""
    return bool(policy.stochastic or policy.epsilon > 0.0)


def greedy_label(label: str) -> str:
    """The name the greedy twin of the policy ``label`` is reported under."""
    return f"{label} (greedy)"


def greedy_action_dist(learned: LearnedPolicy, logs: LoggedBandit) -> FloatArray:
    """The ``(n, k_log)`` one-hot distribution of the policy's greedy choice on the rounds of
    ``logs``: the log's action with the best posterior-mean (point) estimate, no draw and no
    exploration share; ties go to the first of the log's actions.

    Raises
    ------
    InputError
        When the log names an action the policy does not know.
    """
    lookup = {name: i for i, name in enumerate(learned.action_names)}
    missing = [name for name in logs.action_names if name not in lookup]
    if missing:
        raise InputError(
            f"the log has action(s) {', '.join(map(repr, missing[:5]))} that the policy does "
            f"not know",
            file=logs.source or None,
            field="action",
        )
    columns = np.array([lookup[name] for name in logs.action_names], dtype=np.int64)
    scores = learned.policy.scores(learned.contexts(logs), learned.action_set())[:, columns]
    dist = np.zeros((logs.n_rounds, logs.n_actions))
    dist[np.arange(logs.n_rounds), scores.argmax(axis=1)] = 1.0
    return dist


def greedy_campaign_dist(
    policy: Policy,
    x: npt.ArrayLike,
    actions: ActionSet,
    mask: npt.NDArray[np.bool_],
    *,
    cost: FloatArray,
    threshold: float,
) -> FloatArray:
    """The ``(n, k + 1)`` one-hot greedy single-lever decision of a campaign policy, *no send*
    last: the eligible action with the best point estimate net of its channel's ``cost``, or *no
    send* below ``threshold``; the rule of :meth:`~tummler.decide.Policy.action_distribution`
    without a posterior draw or an exploration share."""
    values = policy.scores(x, actions) - np.asarray(cost, np.float64)[actions.channel]
    values[~(mask & actions.available[None, :])] = -np.inf
    rows = np.arange(values.shape[0])
    best = values.argmax(axis=1)
    dist = np.zeros((values.shape[0], actions.k + 1))
    dist[rows, np.where(values[rows, best] >= threshold, best, actions.k)] = 1.0
    return dist


@dataclass(frozen=True)
class ExplorationPrice:
    """A policy as deployed minus its greedy twin, per estimator, with paired intervals.

    Attributes
    ----------
    policy, greedy
        The labels of the policy as deployed and of its greedy twin in the evaluation.
    kind
        The policy's kind (``logistic_thompson``, ``epsilon_greedy``...).
    alpha
        The intervals are at confidence level ``1 - alpha``.
    differences
        Per estimator: deployed minus greedy. Negative: exploring costs that much per round.
    """

    policy: str
    greedy: str
    kind: str
    alpha: float
    differences: tuple[Estimate, ...]

    def __getitem__(self, name: str) -> Estimate:
        for difference in self.differences:
            if difference.name == name:
                return difference
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of one policy's price in ``tummler evaluate --json``."""
        return {
            "policy": self.policy,
            "greedy": self.greedy,
            "kind": self.kind,
            "confidence": 1.0 - self.alpha,
            "difference": "deployed minus greedy",
            "estimates": {
                d.name: {"estimate": d.value, "ci_low": d.ci_low, "ci_high": d.ci_high}
                for d in self.differences
            },
        }


def price_of_exploration(
    data: LoggedData,
    *,
    kind: str,
    labels: tuple[str, str],
    deployed: FloatArray,
    greedy: FloatArray,
    estimated_rewards: FloatArray | None,
    n_bootstrap: int,
    alpha: float,
    seed: int,
) -> ExplorationPrice:
    """The paired difference of the deployed and greedy distributions on the logged rounds of
    ``data``, every estimator on the same resamples (``seed``) as the evaluation's own figures."""
    differences = paired_difference(
        data.rounds(deployed, estimated_rewards=estimated_rewards),
        data.rounds(greedy, estimated_rewards=estimated_rewards),
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        rng=make_rng(seed),
    )
    return ExplorationPrice(
        policy=labels[0],
        greedy=labels[1],
        kind=kind,
        alpha=alpha,
        differences=tuple(differences),
    )
