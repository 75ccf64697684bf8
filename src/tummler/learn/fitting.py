"""Fit a bandit policy on logged rounds, in bounded memory. Pure.

A log's ``k`` actions become a generic :class:`~tummler.decide.ActionSet`: each action is its own
"channel" with one slot and one variant, its features the action's one-hot followed by its
standardized action-feature columns when there are some. Contexts are standardized with the
training rounds' means and spreads and get a constant column, so a bilinear policy (``x·B·φ(a)``)
holds an intercept and a slope per action, plus what the action features share.

Learning is batch Laplace updates in chunks of rows (Chapelle & Li's algorithm for logistic
Thompson sampling), so memory stays bounded for any number of rounds. The policies learn the
reward of each action in each context and do not reweight by the logging propensities: a reward
model is consistent under the logging policy's covariate shift when it is well specified, and
off-policy evaluation (not the learner) is what corrects for the logging policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError, PolicyError
from tummler.decide import POLICIES, ActionSet, Policy

__all__ = [
    "DEFAULT_POLICY_KIND",
    "LEARNABLE_KINDS",
    "action_features",
    "check_learnable",
    "generic_action_set",
    "new_policy",
    "standardize",
    "update_in_chunks",
]

#: The policy kind ``tummler learn`` fits unless told otherwise.
DEFAULT_POLICY_KIND = "logistic_thompson"
#: Policy kinds that can be fitted from logged rounds (those that learn from rewards).
LEARNABLE_KINDS: tuple[str, ...] = ("logistic_thompson", "linear_thompson", "epsilon_greedy")

#: Context × action-feature cells per learning chunk: bounds the design matrix at ~160 MB.
_CHUNK_CELLS = 20_000_000

FloatArray = npt.NDArray[np.float64]


def standardize(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per column, the mean and the standard deviation (1 where constant, 0 and 1 with no rows).

    >>> center, scale = standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> center.tolist(), scale.tolist()
    ([2.0, 5.0], [1.0, 1.0])
    """
    center = values.mean(axis=0) if values.shape[0] else np.zeros(values.shape[1])
    scale = values.std(axis=0) if values.shape[0] else np.ones(values.shape[1])
    scale = np.where(scale > 1e-12, scale, 1.0)
    return np.asarray(center, dtype=np.float64), np.asarray(scale, dtype=np.float64)


def action_features(
    action_names: Sequence[str],
    action_context: FloatArray | None,
    action_context_names: Sequence[str],
) -> tuple[FloatArray, tuple[str, ...]]:
    """``(k, d_a)`` each action's features: its one-hot, then its standardized action-file columns.

    >>> features, names = action_features(["a", "b"], None, ())
    >>> features.tolist(), names
    ([[1.0, 0.0], [0.0, 1.0]], ('action=a', 'action=b'))
    """
    one_hot = np.eye(len(action_names))
    names = [f"action={name}" for name in action_names]
    if action_context is None or not action_context.shape[1]:
        return one_hot, tuple(names)
    center, scale = standardize(action_context)
    scaled = (action_context - center) / scale
    return np.concatenate([one_hot, scaled], axis=1), (*names, *action_context_names)


def generic_action_set(
    names: Sequence[str], features: FloatArray, feature_names: Sequence[str]
) -> ActionSet:
    """The action set of logged actions: one channel per action, one slot, one variant."""
    k, d_a = features.shape
    return ActionSet(
        channel_names=tuple(names),
        slot_hours=np.zeros(1, dtype=np.int64),
        variant_names=(("",),) * k,
        variant_available=np.ones((k, 1), dtype=bool),
        channel_features=features.astype(np.float32),
        slot_features=np.zeros((1, d_a), dtype=np.float32),
        variant_features=np.zeros((k, 1, d_a), dtype=np.float32),
        feature_names=tuple(feature_names),
    )


def check_learnable(kind: str, reward: FloatArray, *, source: str | None = None) -> None:
    """Refuse a kind that does not learn, and rewards outside [0, 1] for ``logistic_thompson``.

    Raises
    ------
    InputError
        Naming the kinds that learn, or the first round whose reward is out of range.
    """
    if kind not in POLICIES or kind not in LEARNABLE_KINDS:
        raise InputError(
            f"policy kind {kind!r} cannot be learned from a log; choose one of "
            f"{', '.join(LEARNABLE_KINDS)}",
            field="policy_kind",
        )
    outside = (reward < 0) | (reward > 1)
    if kind == "logistic_thompson" and outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"reward {reward[row]} of round {row + 1} is outside [0, 1], which "
            f"logistic_thompson needs (clicks, conversions); for amounts use "
            f"--policy-kind linear_thompson",
            file=source,
            field="reward",
        )


def new_policy(kind: str, d_x: int, d_a: int, k: int, params: Mapping[str, Any] | None) -> Policy:
    """A fresh policy of ``kind``; parameters it does not take are an :class:`InputError`."""
    try:
        return POLICIES[kind](d_x, d_a, k, **dict(params or {}))
    except TypeError as exc:
        raise InputError(f"{kind} does not take these parameters ({exc})", field="params") from exc
    except PolicyError as exc:
        raise InputError(f"{kind}: {exc}", field="params") from exc


def update_in_chunks(
    policy: Policy,
    x: npt.NDArray[np.float32],
    actions: ActionSet,
    action: npt.NDArray[np.int64],
    reward: FloatArray,
    propensity: FloatArray,
    *,
    chunk_rows: int | None = None,
) -> Policy:
    """Update ``policy`` with every round, ``chunk_rows`` at a time; return it.

    By default a chunk holds as many rows as keep the design matrix near 160 MB.
    """
    if chunk_rows is None:
        cells = x.shape[1] * actions.n_features
        chunk_rows = max(1_000, _CHUNK_CELLS // max(cells, 1))
    if chunk_rows < 1:
        raise InputError(f"chunk_rows = {chunk_rows} must be at least 1", field="chunk_rows")
    n = x.shape[0]
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        policy.update(
            x[start:stop],
            actions,
            action[start:stop],
            reward[start:stop],
            propensity[start:stop],
        )
    return policy
