"""Explanations: why did this person get this lever (or none)?

For one decision: which rules removed which of the contact's levers, what was chosen and what came
second, and the context features that pushed the choice most — each feature's contribution
``x_i · (W[i, chosen] − W[i, runner_up])`` to the difference of their linear scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.decide._actions import ActionSet
from tummler.decide._eligibility import Eligibility, reason_names
from tummler.decide._plan import Plan
from tummler.decide._policies import Policy

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True)
class Explanation:
    """Why one contact got what it got.

    Attributes
    ----------
    chosen
        The names of the levers pulled, or ``("no-send",)``.
    runner_up
        The best alternative to the first lever (an action name or ``no-send``); ``None`` when
        there was no alternative.
    removed
        Channel → the names of the rules that removed some or all of its levers.
    contributions
        ``(feature, contribution)`` pairs, largest in absolute value first.
    holdout, explored
        The contact was held out / the decision came from the exploration share.
    propensity, expected_value
        Of each lever (of *no send* for a *no send* decision).
    policy
        ``kind@version`` of the deciding policy.
    """

    chosen: tuple[str, ...]
    runner_up: str | None
    removed: dict[str, list[str]]
    contributions: tuple[tuple[str, float], ...]
    holdout: bool
    explored: bool
    propensity: tuple[float, ...]
    expected_value: tuple[float, ...]
    policy: str


def explain(
    row: int,
    x: npt.ArrayLike,
    actions: ActionSet,
    policy: Policy,
    plan: Plan,
    eligibility: Eligibility,
    *,
    cost: npt.ArrayLike | None = None,
    feature_names: Sequence[str] | None = None,
    top: int = 5,
) -> Explanation:
    """Explain the decision of row ``row`` of ``plan``.

    Parameters
    ----------
    row
        The contact's row in the plan.
    x
        ``(d_x,)`` that contact's context features (or the whole ``(n, d_x)`` matrix).
    actions, policy, plan, eligibility
        What the plan was made with.
    cost
        ``(n_channels,)`` the channel costs the plan used (to rank the runner-up).
    feature_names
        Names of the context features (e.g. ``ContextFeaturizer.feature_names()``).
    top
        How many contributions to keep.
    """
    if not 0 <= row < plan.n:
        raise PolicyError(f"row must lie in [0, {plan.n}), got {row}")
    features = np.asarray(x, dtype=np.float32)
    if features.ndim == 2:
        features = features[row]
    if features.shape != (policy.n_context_features,):
        raise PolicyError(
            f"x must be one row of {policy.n_context_features} context features, got {features.shape}"
        )
    names = (
        list(feature_names)
        if feature_names is not None
        else [f"x{i}" for i in range(features.size)]
    )
    if len(names) != features.size:
        raise PolicyError(f"feature_names has {len(names)} names for {features.size} features")

    levers = [int(a) for a in plan.action[row] if a >= 0]
    chosen = tuple(actions.name(a) for a in levers) or ("no-send",)
    removed = {
        actions.channel_names[c]: reason_names(int(plan.reasons[row, c]))
        for c in range(actions.n_channels)
        if plan.reasons[row, c]
    }
    present = ~np.isnan(plan.propensity[row])
    mask = eligibility.rows(row, row + 1).mask(actions)[0]
    value = policy.scores(features[None, :], actions)[0]
    if cost is not None:
        value = value - np.asarray(cost, dtype=np.float32)[actions.channel]
    value = np.where(mask, value, -np.inf)

    first = levers[0] if levers else -1
    others = value.copy()
    if first >= 0:
        others[first] = -np.inf
    runner = int(others.argmax()) if np.isfinite(others).any() else -1
    runner_up: str | None = actions.name(runner) if runner >= 0 else None
    if first >= 0 and runner < 0:
        runner_up = "no-send"

    contributions: tuple[tuple[str, float], ...] = ()
    weights = policy.weight_matrix(actions)
    if weights is not None and (first >= 0 or runner >= 0):
        column = np.zeros(features.size, np.float32)
        if first >= 0:
            column += weights[:, first]
        if runner >= 0:
            column -= weights[:, runner]
        delta = features * column
        order = np.argsort(-np.abs(delta), kind="stable")[:top]
        contributions = tuple((names[i], float(delta[i])) for i in order if delta[i] != 0)
    return Explanation(
        chosen=chosen,
        runner_up=runner_up,
        removed=removed,
        contributions=contributions,
        holdout=bool(plan.holdout[row]),
        explored=bool(plan.explored[row]),
        propensity=tuple(float(p) for p in plan.propensity[row][present]),
        expected_value=tuple(float(v) for v in plan.expected_value[row][present]),
        policy=f"{plan.policy_kind}@{plan.policy_version}",
    )
