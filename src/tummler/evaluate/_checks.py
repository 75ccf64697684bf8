"""Argument checks at the door of every estimator, in the style of Open Bandit Pipeline.

Each check raises :class:`~tummler.core.errors.PolicyError` with a message that names the argument
and says what to do; the estimators behind the door trust their arrays.

Logged rounds are checked once, as a :class:`LoggedData`, and every policy evaluated on them is
checked against that once, as :class:`LoggedRounds`: evaluating several policies, or one policy with
several estimators, does not check the logs again. The checks are vectorized reductions (a sum, a
minimum, a maximum per array) with no copy of arrays that already have the right dtype; only when a
reduction shows a problem does a slower scan run to name the first bad index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError

__all__ = ["LoggedData", "LoggedRounds", "check_bootstrap", "check_rounds", "taken_probability"]

#: How far a row of ``action_dist`` may be from summing to one (float rounding of a softmax).
ROW_SUM_TOLERANCE = 1e-6

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def taken_probability(
    table: FloatArray, action: IntArray, flat_index: IntArray | None = None
) -> FloatArray:
    """``table[i, action[i]]`` for every row of an ``(n, k)`` table, as a new array.

    ``flat_index`` is ``i · k + action[i]``, kept by :class:`LoggedData` per number of actions:
    a ``take`` on the flattened table with it is about twice as fast as indexing with two arrays
    (which recomputes that index on every call).
    """
    if flat_index is not None and table.flags.c_contiguous:
        return np.asarray(np.take(table.reshape(-1), flat_index), dtype=np.float64)
    rows = np.arange(table.shape[0], dtype=np.int64)
    return np.asarray(table[rows, action], dtype=np.float64)


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


def _check_finite(name: str, array: FloatArray, total: Any = None) -> FloatArray:
    # One summation finds any NaN or infinity (they make the sum non-finite); only then does the
    # slower element-wise scan run, to name the index (a finite overflow passes it).
    if np.isfinite(array.sum() if total is None else total):
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


@dataclass(frozen=True, eq=False, init=False)
class LoggedData:
    """Logged rounds, checked once: what the logging policy did and what it earned.

    Build it once per log and pass it, with each evaluation policy, to :meth:`rounds`; the
    estimators (:func:`tummler.evaluate.estimate`) then trust it. Arrays that already are
    ``float64`` / ``int64`` are kept, not copied.

    Parameters
    ----------
    reward
        ``(n,)`` the reward of each logged round.
    action
        ``(n,)`` the logged action: an index into the columns of the policies' ``action_dist``.
    propensity
        ``(n,)`` the logging policy's probability of the logged action, in (0, 1].
    position
        ``(n,)`` 0-based logged position of each round, for slates (``(n, k, L)`` policies).

    Raises
    ------
    PolicyError
        On a wrong shape or dtype, mismatched lengths, no rounds, NaN or infinity, or a
        propensity outside (0, 1]. Actions are checked against each policy's number of actions by
        :meth:`rounds`.

    Examples
    --------
    >>> logged = LoggedData([1.0, 0.0], [0, 1], [0.5, 0.5])
    >>> logged.n, logged.n_actions_seen
    (2, 2)
    """

    reward: FloatArray
    action: IntArray
    propensity: FloatArray
    position: IntArray | None
    #: Smallest and largest logged action (and position): checking a policy's number of actions
    #: against them costs nothing per policy.
    _action_range: tuple[int, int] = field(repr=False)
    _position_range: tuple[int, int] | None = field(repr=False)
    #: ``arange(n)``, for slates; ``i · k + action[i]`` per number of actions ``k`` (made once).
    _rows: IntArray = field(repr=False)
    _flat_index: dict[int, IntArray] = field(repr=False)

    def __init__(
        self,
        reward: npt.ArrayLike,
        action: npt.ArrayLike,
        propensity: npt.ArrayLike,
        *,
        position: npt.ArrayLike | None = None,
    ) -> None:
        reward_ = _as_float("reward", reward, 1)
        n = reward_.shape[0]
        if n == 0:
            raise PolicyError("reward is empty; an estimate needs at least one logged round")
        action_ = _as_int("action", action)
        _check_length("action", action_, n)
        propensity_ = _as_float("propensity", propensity, 1)
        _check_length("propensity", propensity_, n)
        if propensity_.min() <= 0.0 or propensity_.max() > 1.0:
            bad = int(np.flatnonzero((propensity_ <= 0.0) | (propensity_ > 1.0))[0])
            raise PolicyError(
                f"propensity[{bad}] = {float(propensity_[bad])!r} is outside (0, 1]; a propensity "
                f"is the logging policy's probability of the logged action: it must be positive "
                f"and at most 1"
            )
        position_: IntArray | None = None
        if position is not None:
            position_ = _as_int("position", position)
            _check_length("position", position_, n)
        object.__setattr__(self, "reward", reward_)
        object.__setattr__(self, "action", action_)
        object.__setattr__(self, "propensity", propensity_)
        object.__setattr__(self, "position", position_)
        object.__setattr__(self, "_rows", np.arange(n, dtype=np.int64))
        object.__setattr__(self, "_flat_index", {})
        object.__setattr__(self, "_action_range", (int(action_.min()), int(action_.max())))
        object.__setattr__(
            self,
            "_position_range",
            None if position_ is None else (int(position_.min()), int(position_.max())),
        )

    @property
    def n(self) -> int:
        """Number of logged rounds."""
        return int(self.reward.shape[0])

    @property
    def n_actions_seen(self) -> int:
        """One more than the largest logged action: a policy needs at least this many columns."""
        return self._action_range[1] + 1

    def rounds(
        self, action_dist: npt.ArrayLike, *, estimated_rewards: npt.ArrayLike | None = None
    ) -> LoggedRounds:
        """Check an evaluation policy (and a reward model's predictions) against these rounds.

        Parameters
        ----------
        action_dist
            ``(n, k)`` the evaluation policy's probability of every action in every round, or
            ``(n, k, L)`` for slates of ``L`` positions (then ``position`` is required).
        estimated_rewards
            A reward model's predictions, shaped like ``action_dist`` or ``(n, k)``.

        Returns
        -------
        LoggedRounds
            What the estimators take; slates are reduced to each round's logged position.

        Raises
        ------
        PolicyError
            On a wrong shape, NaN or infinity, a negative probability, a row that does not sum to
            1, or a logged action or position outside the policy's actions or positions.
        """
        n = self.n
        dist = _as_float("action_dist", action_dist, (2, 3), scan=False)
        _check_length("action_dist", dist, n)
        n_actions = dist.shape[1]
        if n_actions == 0:
            raise PolicyError("action_dist has no actions; its shape must be (n, k) with k >= 1")
        # NaN and infinity make a row's sum non-finite (inf - inf is NaN), so the row sums, which
        # are needed anyway, stand in for a separate scan of the largest array.
        sums = np.einsum("ik...->i...", dist)  # faster than sum(axis=1) on narrow rows
        low, high = float(sums.min()), float(sums.max())
        _check_finite("action_dist", dist, total=low + high)
        if dist.min() < 0:
            where = tuple(int(i) for i in np.argwhere(dist < 0)[0])
            raise PolicyError(
                f"action_dist has a negative probability at {where}; probabilities must be >= 0"
            )
        if low < 1.0 - ROW_SUM_TOLERANCE or high > 1.0 + ROW_SUM_TOLERANCE:
            where = tuple(int(i) for i in np.argwhere(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)[0])
            raise PolicyError(
                f"action_dist row {where[0] if len(where) == 1 else where} sums to "
                f"{float(sums[where]):.6g}, not 1; each row must be the evaluation policy's "
                f"probabilities over the k actions (normalize it)"
            )
        lowest, highest = self._action_range
        if lowest < 0 or highest >= n_actions:
            action = self.action
            bad = int(np.flatnonzero((action < 0) | (action >= n_actions))[0])
            raise PolicyError(
                f"action[{bad}] = {int(action[bad])} is outside 0..{n_actions - 1}, "
                f"the {n_actions} actions of action_dist; actions are 0-based column indices"
            )
        dist2 = self._at_position("action_dist", dist, n_actions)
        estimated: FloatArray | None = None
        if estimated_rewards is not None:
            estimated = _as_float("estimated_rewards", estimated_rewards, (2, 3))
            _check_length("estimated_rewards", estimated, n)
            if estimated.shape[1] != n_actions:
                raise PolicyError(
                    f"estimated_rewards has {estimated.shape[1]} actions but action_dist has "
                    f"{n_actions}; predict a reward for every action the policy can take"
                )
            estimated = self._at_position("estimated_rewards", estimated, n_actions)
        return LoggedRounds(
            reward=self.reward,
            action=self.action,
            propensity=self.propensity,
            action_dist=dist2,
            estimated_rewards=estimated,
            flat_index=self.flat_index(n_actions),
        )

    def flat_index(self, n_actions: int) -> IntArray:
        """``i · n_actions + action[i]``: where each logged action sits in a flattened ``(n, k)``
        table (made once per number of actions, then shared by every policy)."""
        index = self._flat_index.get(n_actions)
        if index is None:
            index = self._rows * n_actions
            index += self.action
            self._flat_index[n_actions] = index
        return index

    def _at_position(self, name: str, array: FloatArray, n_actions: int) -> FloatArray:
        if array.ndim == 2:
            return array
        position = self.position
        if position is None:
            raise PolicyError(
                f"{name} is a slate of shape {array.shape} (n, k, positions); "
                f"pass position, the logged position of each round"
            )
        if array.shape[1] != n_actions:
            raise PolicyError(
                f"{name} has {array.shape[1]} actions but action_dist has {n_actions}"
            )
        n_positions = array.shape[2]
        lowest, highest = self._position_range or (0, 0)
        if lowest < 0 or highest >= n_positions:
            bad = int(np.flatnonzero((position < 0) | (position >= n_positions))[0])
            raise PolicyError(
                f"position[{bad}] = {int(position[bad])} is outside 0..{n_positions - 1}, "
                f"the positions of {name}; positions are 0-based indices"
            )
        return np.asarray(array[self._rows, :, position], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class LoggedRounds:
    """Logged rounds and one evaluation policy, checked together: what every estimator takes.

    Make it with :meth:`LoggedData.rounds` (or :func:`check_rounds`), not directly: the
    estimators trust its arrays. ``action_dist`` and ``estimated_rewards`` are ``(n, k)``: when
    they came in as ``(n, k, L)`` slates, the slice at each round's logged position has been
    taken, which is all an estimator of the policy's value at the logged positions needs.
    """

    reward: FloatArray
    action: IntArray
    propensity: FloatArray
    action_dist: FloatArray
    estimated_rewards: FloatArray | None
    #: ``i · k + action[i]``, shared with the :class:`LoggedData` (see :func:`taken_probability`).
    flat_index: IntArray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.reward.shape[0])

    def taken(self, table: FloatArray) -> FloatArray:
        """``table[i, action[i]]`` for every round, as a new array."""
        return taken_probability(table, self.action, self.flat_index)

    @cached_property
    def weight(self) -> FloatArray:
        """Importance weights π_e(a_i | x_i) / π_0(a_i | x_i) of the logged actions."""
        weight = self.taken(self.action_dist)
        np.divide(weight, self.propensity, out=weight)
        return weight


def check_rounds(
    reward: npt.ArrayLike,
    action: npt.ArrayLike,
    propensity: npt.ArrayLike,
    action_dist: npt.ArrayLike,
    *,
    position: npt.ArrayLike | None = None,
    estimated_rewards: npt.ArrayLike | None = None,
) -> LoggedRounds:
    """Check the arrays of logged rounds and one policy: :class:`LoggedData`, then its ``rounds``.

    Raises
    ------
    PolicyError
        On a wrong shape, mismatched lengths, NaN or infinity, a propensity outside (0, 1], an
        action out of range, or a row of ``action_dist`` that is negative or does not sum to 1.
    """
    logged = LoggedData(reward, action, propensity, position=position)
    return logged.rounds(action_dist, estimated_rewards=estimated_rewards)


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
