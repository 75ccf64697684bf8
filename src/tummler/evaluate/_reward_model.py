"""A small reward model for DM and DR, fitted from logged data and cross-fitted.

The model is linear in ``context ⊗ action one-hot`` with a shared part: the score of action ``a``
in context ``x`` is ``x·β + γ_a + x·B_a``. The shared ``β`` lets actions with few logged rounds
borrow strength from the others, and the ridge penalty on ``B`` shrinks each action's own slope
toward the shared one. Binary rewards get a logistic link, others a squared loss (ridge).
Ridge is solved exactly and logistic by Newton steps, each a weighted ridge, through one block
elimination that never forms the ``k·d``-wide design; numeric features are standardized and
clipped at ±5 standard deviations, indicators left as they are.

Cross-fitting: the rounds are split into ``n_folds`` folds and each fold's predictions come from a
model fitted on the other folds, so DR's residuals are not shrunk by the model having seen them
(the overfitting bias of in-sample predictions).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng

__all__ = ["RewardModelKind", "fit_reward_model"]

RewardModelKind = Literal["auto", "ridge", "logistic"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _solve(matrix: FloatArray, rhs: FloatArray) -> FloatArray:
    try:
        return np.asarray(np.linalg.solve(matrix, rhs), dtype=np.float64)
    except np.linalg.LinAlgError:  # singular without a penalty: the least-norm solution
        return np.asarray(np.linalg.lstsq(matrix, rhs, rcond=None)[0], dtype=np.float64)


def _ridge(
    z: FloatArray,
    action: IntArray,
    target: FloatArray,
    weight: FloatArray,
    groups: list[IntArray],
    *,
    n_actions: int,
    l2: float,
) -> FloatArray:
    """The exact weighted ridge solution of ``c + x·β + γ_a + x·B_a``, ``c`` unpenalized.

    Minimizes ``½ Σ wᵢ (ηᵢ − tᵢ)² + ½ l2 ‖θ without c‖²``. The normal equations have
    ``1 + d + k + k·d`` unknowns, too many to form directly with many actions, but each action's
    slopes ``B_a`` only meet that action's rows: eliminating each ``d × d`` block (a Schur
    complement) leaves a ``(1 + d + k)`` system for the shared part, and each ``B_a`` follows from
    its block. Cost ``O(n·d² + k·d³)``: one pass over the data.
    """
    d = z.shape[1]
    k = n_actions
    p = 1 + d + k
    wz = z * weight[:, None]
    counts = np.bincount(action, weights=weight, minlength=k)
    sum_z = np.zeros((k, d))
    grams: list[FloatArray] = []
    for a in range(k):
        rows = groups[a]
        sum_z[a] = wz[rows].sum(axis=0)
        grams.append(z[rows].T @ wz[rows])
    shared = np.zeros((p, p))
    shared[0, 0] = weight.sum()
    shared[0, 1 : d + 1] = wz.sum(axis=0)
    shared[0, d + 1 :] = counts
    shared[1 : d + 1, 1 : d + 1] = z.T @ wz
    shared[1 : d + 1, d + 1 :] = sum_z.T
    shared[d + 1 :, d + 1 :] = np.diag(counts)
    shared = np.triu(shared) + np.triu(shared, 1).T
    shared[1:, 1:] += l2 * np.eye(p - 1)
    weighted_target = weight * target
    rhs = np.concatenate(
        [
            [weighted_target.sum()],
            z.T @ weighted_target,
            np.bincount(action, weights=weighted_target, minlength=k),
        ]
    )
    eliminated: list[FloatArray] = []
    for a in range(k):
        coupling = np.zeros((p, d))
        coupling[0] = sum_z[a]
        coupling[1 : d + 1] = grams[a]
        coupling[d + 1 + a] = sum_z[a]
        own = z[groups[a]].T @ weighted_target[groups[a]]
        solved = _solve(grams[a] + l2 * np.eye(d), np.column_stack([coupling.T, own]))
        shared -= coupling @ solved[:, :p]
        rhs -= coupling @ solved[:, p]
        eliminated.append(solved)
    head = _solve(shared, rhs)
    slopes = [solved[:, p] - solved[:, :p] @ head for solved in eliminated]
    return np.concatenate([head, *slopes])


class _LinearModel:
    """``c + x·β + γ_a + x·B_a``: ridge solved exactly; logistic by Newton steps (IRLS).

    Each Newton step of the penalized logistic loss is a weighted ridge problem, solved exactly
    by :func:`_ridge`, so a fit takes a handful of passes over the data.
    """

    #: Newton steps at most, and the relative change of the loss that counts as converged.
    MAX_STEPS = 50
    TOLERANCE = 1e-9

    def __init__(self, *, logistic: bool, l2: float, n_actions: int) -> None:
        self.logistic = logistic
        self.l2 = l2
        self.n_actions = n_actions

    def fit(self, x: FloatArray, action: IntArray, reward: FloatArray) -> _LinearModel:
        d = x.shape[1]
        k = self.n_actions
        # Numeric columns are standardized; indicator (0/1) columns are left as they are, since
        # dividing a rare category by its small standard deviation would blow it up out of sample.
        indicator = np.isin(x, (0.0, 1.0)).all(axis=0)
        scale = x.std(axis=0)
        self.mean = np.where(indicator, 0.0, x.mean(axis=0))
        self.scale = np.where(indicator | (scale == 0), 1.0, scale)
        z = self._standardize(x)
        order = np.argsort(action, kind="stable")
        bounds = np.searchsorted(action[order], np.arange(k + 1))
        groups = [order[bounds[a] : bounds[a + 1]] for a in range(k)]
        if not self.logistic:
            theta = _ridge(z, action, reward, np.ones_like(reward), groups, n_actions=k, l2=self.l2)
            self._keep(theta, d, k)
            return self

        def linear(theta: FloatArray) -> FloatArray:
            eta: FloatArray = theta[0] + z @ theta[1 : d + 1] + theta[d + 1 : d + k + 1][action]
            slopes = theta[d + k + 1 :].reshape(k, d)
            for a in range(k):
                eta[groups[a]] += z[groups[a]] @ slopes[a]
            return eta

        def loss(theta: FloatArray, eta: FloatArray) -> float:
            penalty = 0.5 * self.l2 * float(theta[1:] @ theta[1:])
            return float(np.sum(np.logaddexp(0.0, eta) - reward * eta)) + penalty

        # Start from the mean rate; every other coefficient is penalized toward it, so a rare
        # action or a rare category stays near the mean.
        theta = np.zeros(1 + d + k + k * d)
        theta[0] = special.logit(np.clip(reward.mean(), 1e-6, 1 - 1e-6))
        eta = linear(theta)
        current = loss(theta, eta)
        for _ in range(self.MAX_STEPS):
            probability = special.expit(eta)
            weight = np.maximum(probability * (1 - probability), 1e-12)
            working = eta + (reward - probability) / weight
            proposal = _ridge(z, action, working, weight, groups, n_actions=k, l2=self.l2)
            step = 1.0
            while True:  # step halving keeps every Newton step a descent step
                candidate = theta + step * (proposal - theta)
                candidate_eta = linear(candidate)
                value = loss(candidate, candidate_eta)
                if value <= current or step < 1e-6:
                    break
                step /= 2
            converged = current - value <= self.TOLERANCE * (1.0 + abs(value))
            theta, eta, current = candidate, candidate_eta, min(value, current)
            if converged:
                break
        self._keep(theta, d, k)
        return self

    def _keep(self, theta: FloatArray, d: int, k: int) -> None:
        self.intercept = float(theta[0])
        self.beta = theta[1 : d + 1]
        self.gamma = theta[d + 1 : d + k + 1]
        self.slopes = theta[d + k + 1 :].reshape(k, d)

    def _standardize(self, x: FloatArray) -> FloatArray:
        # Clipped at ±5 standard deviations: a heavy-tailed count must not make a linear model
        # extrapolate to certainty on a round it never saw.
        return np.clip((x - self.mean) / self.scale, -5.0, 5.0)

    def predict(self, x: FloatArray) -> FloatArray:
        z = self._standardize(x)
        eta = self.intercept + z @ (self.beta[:, None] + self.slopes.T) + self.gamma
        return np.asarray(special.expit(eta) if self.logistic else eta, dtype=np.float64)


def _check_inputs(
    context: npt.ArrayLike,
    action: npt.ArrayLike,
    reward: npt.ArrayLike,
    n_actions: int,
    position: npt.ArrayLike | None,
) -> tuple[FloatArray, IntArray, FloatArray]:
    """The logged rounds as float contexts (with one-hot positions), int actions and rewards."""
    x = _check_context(context)
    r = np.asarray(reward)
    a = np.asarray(action)
    n = x.shape[0]
    for name, array in (("action", a), ("reward", r)):
        if array.ndim != 1 or array.shape[0] != n:
            raise PolicyError(
                f"{name} has shape {array.shape} but context has {n} rows; "
                f"pass one value per logged round"
            )
    if n == 0:
        raise PolicyError("context is empty; a reward model needs logged rounds to learn from")
    if r.dtype.kind not in "biuf":
        raise PolicyError(f"reward must hold numbers, got dtype {r.dtype}")
    r = r.astype(np.float64, copy=False)
    for name, array in (("context", x), ("reward", r)):
        if not np.isfinite(array).all():
            raise PolicyError(f"{name} has a NaN or infinite value; drop or fill those rounds")
    _check_actions(a, n_actions)
    if position is not None:
        x = np.hstack([x, _position_columns(position, n)])
    return x, a.astype(np.int64, copy=False), r


def _check_context(context: npt.ArrayLike) -> FloatArray:
    x = np.asarray(context)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise PolicyError(
            f"context must be a numeric (n, d) array, got shape {x.shape} and dtype {x.dtype}; "
            f"encode categorical features as numbers first (tummler.app.ingest does)"
        )
    return x.astype(np.float64, copy=False)


def _check_actions(a: npt.NDArray[Any], n_actions: int) -> None:
    if a.dtype.kind not in "iu":
        raise PolicyError(f"action must hold integer indices, got dtype {a.dtype}")
    if isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 1:
        raise PolicyError(f"n_actions = {n_actions!r} must be a positive integer")
    if a.min() < 0 or a.max() >= n_actions:
        bad = int(np.flatnonzero((a < 0) | (a >= n_actions))[0])
        raise PolicyError(f"action[{bad}] = {int(a[bad])} is outside 0..{n_actions - 1}")


def _position_columns(position: npt.ArrayLike, n: int) -> FloatArray:
    """One-hot columns of each round's 0-based display position."""
    p = np.asarray(position)
    if p.ndim != 1 or p.shape[0] != n or p.dtype.kind not in "iu" or (p < 0).any():
        raise PolicyError(
            f"position must be (n,) 0-based integer positions, got shape {p.shape} "
            f"and dtype {p.dtype}"
        )
    onehot = np.zeros((n, int(p.max()) + 1))
    onehot[np.arange(n), p] = 1.0
    return onehot


def fit_reward_model(
    context: npt.ArrayLike,
    action: npt.ArrayLike,
    reward: npt.ArrayLike,
    *,
    n_actions: int,
    position: npt.ArrayLike | None = None,
    kind: RewardModelKind = "auto",
    l2: float = 10.0,
    n_folds: int = 3,
    rng: np.random.Generator | int = 0,
) -> FloatArray:
    """Fit a cross-fitted reward model on logged rounds and predict every action's reward.

    Parameters
    ----------
    context
        ``(n, d)`` numeric context features of the logged rounds.
    action, reward
        ``(n,)`` logged action indices (``0..n_actions-1``) and rewards.
    n_actions
        Number of actions ``k``; the columns of the result.
    position
        Optional ``(n,)`` 0-based logged positions; they join the context as one-hot features,
        and the predictions are for each round's own position.
    kind
        ``"ridge"`` (squared loss), ``"logistic"`` (rewards in {0, 1}), or ``"auto"``: logistic
        when every reward is 0 or 1.
    l2
        Ridge penalty on all coefficients, in units of rounds: larger shrinks more.
    n_folds
        Folds for cross-fitting; 1 fits and predicts on all rounds (in-sample, biased for DR).
    rng
        Generator or seed for the assignment of rounds to folds.

    Returns
    -------
    numpy.ndarray
        ``(n, k)`` predicted reward of each action in each round, ``estimated_rewards`` for
        :func:`dm`, :func:`dr` and :func:`switch_dr`.
    """
    x, a, r = _check_inputs(context, action, reward, n_actions, position)
    if kind not in ("auto", "ridge", "logistic"):
        raise PolicyError(f"kind = {kind!r}: choose 'auto', 'ridge' or 'logistic'")
    binary = bool(np.isin(r, (0.0, 1.0)).all())
    if kind == "logistic" and not binary:
        raise PolicyError("kind = 'logistic' needs rewards in {0, 1}; use kind='ridge'")
    logistic = kind == "logistic" or (kind == "auto" and binary)
    if not isinstance(l2, float | int) or not np.isfinite(l2) or l2 < 0:
        raise PolicyError(f"l2 = {l2!r} must be a finite number >= 0")
    n = x.shape[0]
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or not 1 <= n_folds <= n:
        raise PolicyError(f"n_folds = {n_folds!r} must be an integer between 1 and {n}")
    out = np.empty((n, n_actions), dtype=np.float64)
    if n_folds == 1:
        model = _LinearModel(logistic=logistic, l2=float(l2), n_actions=n_actions)
        out[:] = model.fit(x, a, r).predict(x)
        return out
    fold = make_rng(rng).permutation(n) % n_folds
    for f in range(n_folds):
        test = fold == f
        model = _LinearModel(logistic=logistic, l2=float(l2), n_actions=n_actions)
        model.fit(x[~test], a[~test], r[~test])
        out[test] = model.predict(x[test])
    return out
