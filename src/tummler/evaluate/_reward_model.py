"""Reward models for DM and DR, fitted from logged data and cross-fitted: linear or boosted trees.

The model is linear in ``context ⊗ action one-hot`` with a shared part: the score of action ``a``
in context ``x`` is ``x·β + γ_a + x·B_a``. The shared ``β`` lets actions with few logged rounds
borrow strength from the others, and the ridge penalty on ``B`` shrinks each action's own slope
toward the shared one. Binary rewards get a logistic link, others a squared loss (ridge).
Ridge is solved exactly and logistic by Newton steps, each a weighted ridge, through one block
elimination that never forms the ``k·d``-wide design; numeric features are standardized and
clipped at ±5 standard deviations, indicators left as they are.

``kind="boosting"`` fits gradient-boosted trees instead (scikit-learn's
``HistGradientBoostingRegressor``, or ``…Classifier`` for binary rewards; the ``boosting`` extra):
one model per action, a T-learner, so that each action's reward may depend on the context in its own
non-linear way; an action with too few rounds for a model of its own is predicted by one model of
all rounds with the action as a categorical feature. A linear model misses who responds to which
action when the difference is an interaction no feature spells out; the trees find it, at the cost of
more variance on small logs. Which model serves a policy better is for off-policy evaluation on
held-out rounds to say, never the training fit.

Cross-fitting: the rounds are split into ``n_folds`` folds and each fold's predictions come from a
model fitted on the other folds, so DR's residuals are not shrunk by the model having seen them
(the overfitting bias of in-sample predictions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng

__all__ = ["RewardModelKind", "RewardPredictor", "fit_reward_model", "fit_reward_predictor"]

RewardModelKind = Literal["auto", "ridge", "logistic", "boosting"]
#: Every ``kind`` a reward model takes.
REWARD_MODEL_KINDS: tuple[str, ...] = ("auto", "ridge", "logistic", "boosting")
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


#: One fitted model's predictions for new rows.
_Predict = Callable[[FloatArray], FloatArray]


def _boosting_classes() -> tuple[Any, Any]:
    """scikit-learn's histogram gradient boosting, imported only when a boosted model is asked for."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return HistGradientBoostingClassifier, HistGradientBoostingRegressor


class _BoostedModel:
    """Gradient-boosted trees, one model per action (a T-learner), seeded.

    An action with fewer than :attr:`MIN_ROWS` rounds gets its predictions from one pooled model
    of every round with the action as a categorical feature, which borrows strength from the
    others. From :attr:`LARGE` rounds a model stops adding trees when a held-aside tenth stops
    improving, with leaves of at least 100 rounds (smaller leaves fit the noise of a click);
    smaller fits take a short fixed ensemble with leaves of a tenth of the rounds. A 0/1 reward
    with too few of its rarer value is predicted by its mean.
    """

    MIN_ROWS = 200
    LARGE = 1_000
    #: A 0/1 reward needs this many rounds of its rarer value for a tree model.
    MIN_MINORITY = 10
    SETTINGS: dict[str, Any] = {  # noqa: RUF012 - read-only defaults
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "l2_regularization": 1.0,
    }

    def __init__(self, *, logistic: bool, n_actions: int, seed: int) -> None:
        self.logistic = logistic
        self.n_actions = n_actions
        self.seed = seed

    def _fit_one(
        self, x: FloatArray, y: FloatArray, seed: int, categorical: bool, leaf: int = 100
    ) -> _Predict:
        mean = float(y.mean())
        minority = min(int((y == 1).sum()), int((y == 0).sum())) if self.logistic else len(y)
        if minority < self.MIN_MINORITY or float(y.std()) == 0.0:
            return lambda rows: np.full(rows.shape[0], mean)
        classifier, regressor = _boosting_classes()
        large = x.shape[0] >= self.LARGE
        model = (classifier if self.logistic else regressor)(
            **self.SETTINGS,
            min_samples_leaf=leaf if large else max(20, x.shape[0] // 10),
            max_iter=500 if large else 60,
            early_stopping=large,
            validation_fraction=0.1,
            n_iter_no_change=20,
            categorical_features=[x.shape[1] - 1] if categorical else None,
            random_state=seed,
        )
        model.fit(x, y)
        if self.logistic:
            return lambda rows: np.asarray(model.predict_proba(rows)[:, 1], dtype=np.float64)
        return lambda rows: np.asarray(model.predict(rows), dtype=np.float64)

    def fit(self, x: FloatArray, action: IntArray, reward: FloatArray) -> _BoostedModel:
        self.models: list[_Predict | None] = []
        for a in range(self.n_actions):
            rows = action == a
            enough = int(rows.sum()) >= self.MIN_ROWS
            self.models.append(
                self._fit_one(x[rows], reward[rows], self.seed + a, False) if enough else None
            )
        self.pooled: _Predict | None = None
        rare = [a for a, m in enumerate(self.models) if m is None]
        if rare:
            # the action as a category while it fits in the trees' bins, a number beyond; leaves
            # small enough for the rarest action's rounds to make one
            categorical = self.n_actions <= 255
            fewest = int(np.bincount(action, minlength=self.n_actions)[rare].min())
            leaf = min(100, max(10, fewest // 3))
            pooled_x = np.column_stack([x, action.astype(np.float64)])
            seed = self.seed + self.n_actions
            self.pooled = self._fit_one(pooled_x, reward, seed, categorical, leaf)
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        out = np.empty((x.shape[0], self.n_actions))
        for a, model in enumerate(self.models):
            if model is not None:
                out[:, a] = model(x)
            else:
                assert self.pooled is not None
                out[:, a] = self.pooled(np.column_stack([x, np.full(x.shape[0], float(a))]))
        return out


def _resolve_kind(kind: str, reward: FloatArray) -> tuple[bool, bool]:
    """``(boosted, logistic)`` for ``kind`` on these rewards, or a clear refusal."""
    if kind not in REWARD_MODEL_KINDS:
        raise PolicyError(
            f"kind = {kind!r}: choose 'auto', 'ridge' or 'logistic', or 'boosting' for "
            f"gradient-boosted trees"
        )
    binary = bool(np.isin(reward, (0.0, 1.0)).all())
    if kind == "logistic" and not binary:
        raise PolicyError("kind = 'logistic' needs rewards in {0, 1}; use kind='ridge'")
    return kind == "boosting", kind == "logistic" or (kind in ("auto", "boosting") and binary)


_Model = _LinearModel | _BoostedModel


def _new_model(*, boosted: bool, logistic: bool, l2: float, n_actions: int, seed: int) -> _Model:
    if boosted:
        return _BoostedModel(logistic=logistic, n_actions=n_actions, seed=seed)
    return _LinearModel(logistic=logistic, l2=l2, n_actions=n_actions)


def _check_l2(l2: float) -> float:
    if not isinstance(l2, float | int) or not np.isfinite(l2) or l2 < 0:
        raise PolicyError(f"l2 = {l2!r} must be a finite number >= 0")
    return float(l2)


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
        ``"ridge"`` (squared loss), ``"logistic"`` (rewards in {0, 1}), ``"auto"``: logistic
        when every reward is 0 or 1, else ridge; or ``"boosting"``: gradient-boosted trees, one
        model per action (a classifier for 0/1 rewards; needs scikit-learn).
    l2
        Ridge penalty of the linear models, in units of rounds: larger shrinks more.
    n_folds
        Folds for cross-fitting; 1 fits and predicts on all rounds (in-sample, biased for DR).
    rng
        Generator or seed for the assignment of rounds to folds (and the trees' seeds).

    Returns
    -------
    numpy.ndarray
        ``(n, k)`` predicted reward of each action in each round, ``estimated_rewards`` for
        :func:`dm`, :func:`dr` and :func:`switch_dr`.
    """
    x, a, r = _check_inputs(context, action, reward, n_actions, position)
    boosted, logistic = _resolve_kind(kind, r)
    penalty = _check_l2(l2)
    n = x.shape[0]
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or not 1 <= n_folds <= n:
        raise PolicyError(f"n_folds = {n_folds!r} must be an integer between 1 and {n}")
    generator = make_rng(rng)
    out = np.empty((n, n_actions), dtype=np.float64)
    if n_folds == 1:
        seed = int(generator.integers(2**31)) if boosted else 0
        model = _new_model(
            boosted=boosted, logistic=logistic, l2=penalty, n_actions=n_actions, seed=seed
        )
        out[:] = model.fit(x, a, r).predict(x)
        return out
    fold = generator.permutation(n) % n_folds
    seeds = generator.integers(2**31, size=n_folds) if boosted else np.zeros(n_folds, np.int64)
    for f in range(n_folds):
        test = fold == f
        model = _new_model(
            boosted=boosted, logistic=logistic, l2=penalty, n_actions=n_actions, seed=int(seeds[f])
        )
        model.fit(x[~test], a[~test], r[~test])
        out[test] = model.predict(x[test])
    return out


class RewardPredictor:
    """A reward model fitted on every round of one log, to predict on other rounds.

    Where :func:`fit_reward_model` serves DM and DR on the log it was fitted on (cross-fitted),
    this is the model a *policy* is built on: fitted on training rounds, it predicts each action's
    reward for new contexts (a held-out log), and :meth:`action_dist` turns that into the greedy
    or epsilon-greedy policy those rounds are then evaluated with. Made by
    :func:`fit_reward_predictor`.
    """

    def __init__(self, model: _Model, n_features: int, n_actions: int, kind: str) -> None:
        self._model = model
        self.n_features = n_features
        self.n_actions = n_actions
        self.kind = kind

    def predict(self, context: npt.ArrayLike) -> FloatArray:
        """``(n, k)`` every action's predicted reward in each of ``context``'s rows."""
        x = _check_context(context)
        if x.shape[1] != self.n_features:
            raise PolicyError(
                f"context has {x.shape[1]} columns; this reward model was fitted on "
                f"{self.n_features}: give the columns it was fitted on, in the same order"
            )
        if not np.isfinite(x).all():
            raise PolicyError("context has a NaN or infinite value; drop or fill those rounds")
        return self._model.predict(x)

    def action_dist(
        self,
        context: npt.ArrayLike,
        *,
        epsilon: float = 0.0,
        cost: npt.ArrayLike | None = None,
    ) -> FloatArray:
        """The greedy policy on the predictions, mixed with a uniform share ``epsilon``.

        Parameters
        ----------
        context
            ``(n, d)`` the rounds to decide for.
        epsilon
            The share in [0, 1] of decisions drawn uniformly over the ``k`` actions.
        cost
            Optional ``(k,)`` cost of each action, in the reward's unit (a promotion's price):
            the greedy action maximizes the predicted reward minus it.

        Returns
        -------
        numpy.ndarray
            ``(n, k)`` each round's probability of each action; rows sum to 1.
        """
        if not 0.0 <= epsilon <= 1.0:
            raise PolicyError(f"epsilon = {epsilon!r} must lie in [0, 1]")
        value = self.predict(context)
        if cost is not None:
            c = np.asarray(cost, dtype=np.float64)
            if c.shape != (self.n_actions,) or not np.isfinite(c).all():
                raise PolicyError(
                    f"cost must be {self.n_actions} finite numbers (one per action), "
                    f"got shape {c.shape}"
                )
            value = value - c
        greedy = np.eye(self.n_actions)[value.argmax(axis=1)]
        return np.asarray((1.0 - epsilon) * greedy + epsilon / self.n_actions)


def fit_reward_predictor(
    context: npt.ArrayLike,
    action: npt.ArrayLike,
    reward: npt.ArrayLike,
    *,
    n_actions: int,
    kind: RewardModelKind = "auto",
    l2: float = 10.0,
    rng: np.random.Generator | int = 0,
) -> RewardPredictor:
    """Fit a reward model on every given round, to predict on others and act on them.

    Parameters are those of :func:`fit_reward_model` (no positions, no folds).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(600, 1))
    >>> a = rng.integers(0, 2, 600)
    >>> r = np.where(a == 1, x[:, 0], -x[:, 0]) + rng.normal(0, 0.1, 600)
    >>> model = fit_reward_predictor(x, a, r, n_actions=2, kind="ridge")
    >>> model.action_dist([[2.0], [-2.0]]).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    x, a, r = _check_inputs(context, action, reward, n_actions, None)
    boosted, logistic = _resolve_kind(kind, r)
    seed = int(make_rng(rng).integers(2**31))
    model = _new_model(
        boosted=boosted, logistic=logistic, l2=_check_l2(l2), n_actions=n_actions, seed=seed
    )
    return RewardPredictor(model.fit(x, a, r), x.shape[1], n_actions, kind)
