"""Argument checks at the door of every estimator, in the style of Open Bandit Pipeline.

Each check raises :class:`~tummler.core.errors.PolicyError` with a message that names the argument
and says what to do; the estimators behind the door trust their arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError

__all__ = ["LoggedRounds", "check_bootstrap", "check_rounds"]

#: How far a row of ``action_dist`` may be from summing to one (float rounding of a softmax).
ROW_SUM_TOLERANCE = 1e-6

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class LoggedRounds:
    """Checked arrays, reduced to the logged position of each round.

    ``action_dist`` and ``estimated_rewards`` are ``(n, k)``: when they came in as ``(n, k, L)``
    slates, the slice at each round's logged position has been taken, which is all an estimator
    of the policy's value at the logged positions needs.
    """

    reward: FloatArray
    action: IntArray
    propensity: FloatArray
    action_dist: FloatArray
    estimated_rewards: FloatArray | None

    @property
    def n(self) -> int:
        return int(self.reward.shape[0])

    @cached_property
    def weight(self) -> FloatArray:
        """Importance weights π_e(a_i | x_i) / π_0(a_i | x_i) of the logged actions."""
        return taken_probability(self.action_dist, self.action) / self.propensity


def taken_probability(table: FloatArray, action: IntArray) -> FloatArray:
    """``table[i, action[i]]`` for every row, through a flat take (faster than fancy indexing)."""
    n, k = table.shape
    flat = np.arange(n, dtype=np.int64) * k + action
    return np.asarray(np.take(table.reshape(-1), flat), dtype=np.float64)


def _as_float(
    name: str, value: object, ndim: int | tuple[int, ...], *, scan: bool = True
) -> FloatArray:
    array = np.asarray(value)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        shapes = " or ".join(f"{d}-dimensional" for d in allowed)
        raise PolicyError(
            f"{name} must be a {shapes} array, got shape {array.shape}; "
            f"pass one value per logged round"
        )
    if array.dtype.kind not in "biuf":
        raise PolicyError(
            f"{name} must hold numbers, got dtype {array.dtype}; convert it to float first"
        )
    array = array.astype(np.float64, copy=False)
    if not scan:  # the caller's own reduction will show a NaN or infinity; see _check_finite
        return array
    return _check_finite(name, array)


def _check_finite(name: str, array: FloatArray) -> FloatArray:
    # One summation finds any NaN or infinity (they make the sum non-finite); only then does the
    # slower element-wise scan run, to name the index (a finite overflow passes it).
    if np.isfinite(array.sum()):
        return array
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise PolicyError(
            f"{name} has a NaN or infinite value at index {where[0] if len(where) == 1 else where}; "
            f"drop or fill those rounds before estimating"
        )
    return array


def _as_int(name: str, value: object) -> IntArray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise PolicyError(
            f"{name} must be a 1-dimensional array, got shape {array.shape}; "
            f"pass one value per logged round"
        )
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.equal(np.mod(array, 1), 0).all():
            raise PolicyError(f"{name} must hold whole numbers (indices), got {array.dtype}")
    elif array.dtype.kind not in "iu":
        raise PolicyError(
            f"{name} must hold integer indices, got dtype {array.dtype}; "
            f"map names to indices 0..k-1 first"
        )
    return array.astype(np.int64, copy=False)


def _check_length(name: str, array: np.ndarray, n: int) -> None:
    if array.shape[0] != n:
        raise PolicyError(
            f"{name} has {array.shape[0]} rounds but reward has {n}; "
            f"every array must describe the same logged rounds"
        )


def _at_position(
    name: str, array: FloatArray, position: IntArray | None, n_actions: int
) -> FloatArray:
    if array.ndim == 2:
        return array
    if position is None:
        raise PolicyError(
            f"{name} is a slate of shape {array.shape} (n, k, positions); "
            f"pass position, the logged position of each round"
        )
    if array.shape[1] != n_actions:
        raise PolicyError(f"{name} has {array.shape[1]} actions but action_dist has {n_actions}")
    n_positions = array.shape[2]
    if position.size and (position.min() < 0 or position.max() >= n_positions):
        bad = int(np.flatnonzero((position < 0) | (position >= n_positions))[0])
        raise PolicyError(
            f"position[{bad}] = {int(position[bad])} is outside 0..{n_positions - 1}, "
            f"the positions of {name}; positions are 0-based indices"
        )
    return np.asarray(array[np.arange(array.shape[0]), :, position], dtype=np.float64)


def check_rounds(
    reward: npt.ArrayLike,
    action: npt.ArrayLike,
    propensity: npt.ArrayLike,
    action_dist: npt.ArrayLike,
    *,
    position: npt.ArrayLike | None = None,
    estimated_rewards: npt.ArrayLike | None = None,
) -> LoggedRounds:
    """Check the arrays of logged rounds and return them as float/int arrays.

    Raises
    ------
    PolicyError
        On a wrong shape, mismatched lengths, NaN or infinity, a propensity outside (0, 1], an
        action out of range, or a row of ``action_dist`` that is negative or does not sum to 1.
    """
    reward_ = _as_float("reward", reward, 1)
    n = reward_.shape[0]
    if n == 0:
        raise PolicyError("reward is empty; an estimate needs at least one logged round")
    action_ = _as_int("action", action)
    _check_length("action", action_, n)
    propensity_ = _as_float("propensity", propensity, 1)
    _check_length("propensity", propensity_, n)
    outside = (propensity_ <= 0.0) | (propensity_ > 1.0)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise PolicyError(
            f"propensity[{bad}] = {float(propensity_[bad])!r} is outside (0, 1]; a propensity is the "
            f"logging policy's probability of the logged action: it must be positive and at most 1"
        )
    dist = _as_float("action_dist", action_dist, (2, 3), scan=False)
    _check_length("action_dist", dist, n)
    n_actions = dist.shape[1]
    if n_actions == 0:
        raise PolicyError("action_dist has no actions; its shape must be (n, k) with k >= 1")
    # NaN and infinity make a row's sum non-finite (inf - inf is NaN), so the row sums, which are
    # needed anyway, stand in for a separate scan of the largest array.
    sums = np.einsum("ik...->i...", dist)  # faster than sum(axis=1) on narrow rows
    if not np.isfinite(sums).all():
        _check_finite("action_dist", dist)
    if dist.size and dist.min() < 0:
        where = tuple(int(i) for i in np.argwhere(dist < 0)[0])
        raise PolicyError(
            f"action_dist has a negative probability at {where}; probabilities must be >= 0"
        )
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        where = tuple(int(i) for i in np.argwhere(off)[0])
        raise PolicyError(
            f"action_dist row {where[0] if len(where) == 1 else where} sums to "
            f"{float(sums[where]):.6g}, not 1; each row must be the evaluation policy's "
            f"probabilities over the k actions (normalize it)"
        )
    if action_.min() < 0 or action_.max() >= n_actions:
        bad = int(np.flatnonzero((action_ < 0) | (action_ >= n_actions))[0])
        raise PolicyError(
            f"action[{bad}] = {int(action_[bad])} is outside 0..{n_actions - 1}, "
            f"the {n_actions} actions of action_dist; actions are 0-based column indices"
        )
    position_: IntArray | None = None
    if position is not None:
        position_ = _as_int("position", position)
        _check_length("position", position_, n)
    dist2 = _at_position("action_dist", dist, position_, n_actions)
    estimated: FloatArray | None = None
    if estimated_rewards is not None:
        estimated = _as_float("estimated_rewards", estimated_rewards, (2, 3))
        _check_length("estimated_rewards", estimated, n)
        if estimated.shape[1] != n_actions:
            raise PolicyError(
                f"estimated_rewards has {estimated.shape[1]} actions but action_dist has "
                f"{n_actions}; predict a reward for every action the policy can take"
            )
        estimated = _at_position("estimated_rewards", estimated, position_, n_actions)
    return LoggedRounds(
        reward=reward_,
        action=action_,
        propensity=propensity_,
        action_dist=dist2,
        estimated_rewards=estimated,
    )


def check_bootstrap(n_bootstrap: int, alpha: float) -> None:
    """Check the bootstrap settings shared by every estimator."""
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer):
        raise PolicyError(f"n_bootstrap must be an integer, got {n_bootstrap!r}")
    if n_bootstrap < 0 or 0 < n_bootstrap < 10:
        raise PolicyError(
            f"n_bootstrap = {n_bootstrap}: use 0 for no interval, or at least 10 resamples "
            f"(1000 is a good default)"
        )
    if not (isinstance(alpha, float | int) and 0.0 < float(alpha) < 1.0):
        raise PolicyError(
            f"alpha = {alpha!r} must lie in (0, 1); 0.05 gives a 95% confidence interval"
        )
