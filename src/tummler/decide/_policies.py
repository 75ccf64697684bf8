"""Policies: one contract, many implementations, discovered through a registry.

Every policy scores actions *additively over the action set's factors* (channel, slot, variant; see
:mod:`tummler.decide._actions`) and maps the sum through a link (identity or logistic) to an expected
reward. The public methods validate their arguments and call an abstract hook (river's ``pull`` /
``_pull`` pattern):

- :meth:`Policy.scores` — ``(n, k)`` expected reward;
- :meth:`Policy.factor_scores` — the factored scores the planner works on; with a generator, a
  posterior draw for the stochastic (Thompson) policies;
- :meth:`Policy.action_distribution` — ``(n, k + 1)`` probability of each action, *no send* last, of a
  single-lever decision under a mask, a channel cost and a relevance threshold;
- :meth:`Policy.update` — learn from logged rewards, return ``self``, bump ``version``;
- :meth:`Policy.to_dict` / :meth:`Policy.from_dict` — JSON-ready, with ``kind`` and ``version``.

Every concrete subclass with a ``kind`` registers itself in :data:`POLICIES`, so the shared contract
tests run on it without being told.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
from scipy import linalg, optimize

from tummler.core.errors import PolicyError
from tummler.decide._actions import ActionSet

__all__ = [
    "POLICIES",
    "BestChannelPerSegment",
    "EpsilonGreedy",
    "FactorScores",
    "LinearThompson",
    "LogisticThompson",
    "Policy",
    "SendEveryEligibleChannel",
    "UniformRandom",
    "policy_from_dict",
]

FloatArray = npt.NDArray[np.float32]
Link = Literal["identity", "logistic"]

#: Every registered policy class by its ``kind``.
POLICIES: dict[str, type[Policy]] = {}


@dataclass(frozen=True, eq=False)
class FactorScores:
    """Scores split over the action factors: ``linear(c, s, v) = channel[c] + slot[s] + variant[c, v]``.

    Attributes
    ----------
    channel, slot, variant
        ``(n, n_channels)``, ``(n, n_slots)`` and ``(n, n_channels, n_variants)`` float32.
    link
        How the linear score becomes an expected reward: ``identity`` or ``logistic``.
    """

    channel: FloatArray
    slot: FloatArray
    variant: FloatArray
    link: Link

    def apply_link(self, linear: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
        """The expected reward for linear scores (works in place on float arrays)."""
        if self.link == "identity":
            return linear
        return np.asarray(_sigmoid(linear))

    def linear_dense(self) -> FloatArray:
        """``(n, k)`` linear scores of every action."""
        n = self.channel.shape[0]
        total = (
            self.channel[:, :, None, None]
            + self.slot[:, None, :, None]
            + self.variant[:, :, None, :]
        )
        return total.reshape(n, -1).astype(np.float32, copy=False)

    def expected_dense(self) -> FloatArray:
        """``(n, k)`` expected reward of every action."""
        return np.asarray(self.apply_link(self.linear_dense()), dtype=np.float32)


def _sigmoid(z: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
    out = np.negative(z)
    with np.errstate(over="ignore"):  # exp(large) = inf gives the right limit, 0
        np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    return np.asarray(out)


class Policy(ABC):
    """The contract every policy follows.

    Parameters
    ----------
    n_context_features
        ``d_x``, the columns of the context matrix ``x``.
    n_action_features
        ``d_a``, the action set's ``n_features``.
    n_channels
        The action set's number of channels.
    """

    #: The name the policy is stored and registered under; empty on abstract classes.
    kind: ClassVar[str] = ""
    #: True when decisions are drawn from a posterior: propensities are then estimated by Monte Carlo.
    stochastic: ClassVar[bool] = False
    #: False for policies that do not learn (uniform random, fixed rules).
    learns: ClassVar[bool] = True

    def __init__(self, n_context_features: int, n_action_features: int, n_channels: int) -> None:
        for name, value in {
            "n_context_features": n_context_features,
            "n_action_features": n_action_features,
            "n_channels": n_channels,
        }.items():
            if not isinstance(value, int | np.integer) or value < 1:
                raise PolicyError(f"{name} must be a positive integer, got {value!r}")
        self.n_context_features = int(n_context_features)
        self.n_action_features = int(n_action_features)
        self.n_channels = int(n_channels)
        self.version = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            if cls.kind in POLICIES:
                raise PolicyError(f"policy kind {cls.kind!r} is registered twice")
            POLICIES[cls.kind] = cls

    @property
    def epsilon(self) -> float:
        """The share of decisions drawn uniformly over the eligible actions and *no send*."""
        return 0.0

    # ---- public contract -------------------------------------------------------------------------

    def scores(self, x: npt.ArrayLike, actions: ActionSet) -> FloatArray:
        """``(n, k)`` the expected reward of every action for every context (point estimate)."""
        return self.factor_scores(x, actions).expected_dense()

    def factor_scores(
        self, x: npt.ArrayLike, actions: ActionSet, rng: np.random.Generator | None = None
    ) -> FactorScores:
        """The factored scores; with ``rng``, a stochastic policy returns one posterior draw."""
        x = self._check_x(x)
        self._check_actions(actions)
        return self._factor_scores(x, actions, rng if self.stochastic else None)

    def action_distribution(
        self,
        x: npt.ArrayLike,
        actions: ActionSet,
        mask: npt.ArrayLike | None = None,
        *,
        cost: npt.ArrayLike | None = None,
        threshold: float = 0.0,
        draws: int = 256,
        rng: np.random.Generator | None = None,
    ) -> npt.NDArray[np.float64]:
        """The probability of each action, *no send* last, for a single-lever decision.

        The policy picks the eligible action with the largest expected reward minus its channel's
        cost, or *no send* when that falls below ``threshold``; a share ``epsilon`` of decisions is
        uniform over the eligible actions and *no send*. Stochastic policies are estimated with
        ``draws`` posterior draws from ``rng``.

        Returns
        -------
        numpy.ndarray
            ``(n, k + 1)``; rows sum to 1; masked actions have probability 0.
        """
        x = self._check_x(x)
        self._check_actions(actions)
        n, k = x.shape[0], actions.k
        allowed = np.ones((n, k), bool) if mask is None else np.asarray(mask)
        if allowed.shape != (n, k) or allowed.dtype != np.bool_:
            raise PolicyError(
                f"mask must be a boolean array of shape ({n}, {k}), got {allowed.shape}"
            )
        allowed = allowed & actions.available[None, :]
        channel_cost = _channel_cost(cost, actions.n_channels)[actions.channel]
        if self.stochastic:
            if rng is None:
                raise PolicyError(f"rng is required: {self.kind} draws from its posterior")
            if draws < 1:
                raise PolicyError(f"draws must be at least 1, got {draws}")
        counts = np.zeros((n, k + 1))
        rows = np.arange(n)
        for _ in range(draws if self.stochastic else 1):
            values = self._factor_scores(x, actions, rng).expected_dense() - channel_cost
            values[~allowed] = -np.inf
            best = values.argmax(axis=1)
            send = values[rows, best] >= threshold
            counts[rows, np.where(send, best, k)] += 1
        greedy = counts / counts.sum(axis=1, keepdims=True)
        eps = self.epsilon
        if eps == 0.0:
            return np.asarray(greedy, dtype=np.float64)
        m = allowed.sum(axis=1, keepdims=True) + 1.0
        uniform = np.concatenate([allowed / m, 1.0 / m], axis=1)
        return np.asarray((1 - eps) * greedy + eps * uniform)

    def update(
        self,
        x: npt.ArrayLike,
        actions: ActionSet,
        action_idx: npt.ArrayLike,
        rewards: npt.ArrayLike,
        propensities: npt.ArrayLike | None = None,
    ) -> Self:
        """Learn from logged decisions; *no send* rows (index ``k`` or ``-1``) carry no action to learn.

        Parameters
        ----------
        x
            ``(n, d_x)`` the contexts the decisions were made for.
        actions
            The action set the indices refer to.
        action_idx
            ``(n,)`` the action taken.
        rewards
            ``(n,)`` the observed reward (0/1 for the logistic model; any real for the linear ones).
        propensities
            ``(n,)`` the logging propensities, in (0, 1]; the policies here learn on-policy and
            only check them, off-policy estimators use them.

        Returns
        -------
        Policy
            ``self``, with ``version`` one higher.
        """
        x = self._check_x(x)
        self._check_actions(actions)
        n = x.shape[0]
        idx = np.asarray(action_idx)
        if idx.shape != (n,) or not np.issubdtype(idx.dtype, np.integer):
            raise PolicyError(
                f"action_idx must be an integer array of shape ({n},), got {idx.shape}"
            )
        if idx.size and (idx.min() < -1 or idx.max() > actions.k):
            raise PolicyError(f"action_idx must lie in [-1, {actions.k}] (k or -1: no send)")
        r = np.asarray(rewards, dtype=np.float64)
        if r.shape != (n,) or not np.isfinite(r).all():
            raise PolicyError(f"rewards must be {n} finite numbers, got shape {r.shape}")
        if propensities is not None:
            p = np.asarray(propensities, dtype=np.float64)
            if p.shape != (n,) or not ((p > 0) & (p <= 1)).all():
                raise PolicyError(f"propensities must be {n} numbers in (0, 1]")
        sent = (idx >= 0) & (idx < actions.k)
        if sent.any():
            self._update(x[sent], actions, idx[sent], r[sent])
        self.version += 1
        return self

    def weight_matrix(self, actions: ActionSet) -> FloatArray | None:
        """``(d_x, k)`` the point-estimate weights ``W`` with ``scores = link(x @ W)``; ``None`` when
        the policy is not linear in the context (explanations then list no contributions)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: ``kind``, ``version``, constructor ``params`` and learned ``state``."""
        return {
            "kind": self.kind,
            "version": self.version,
            "params": {
                "n_context_features": self.n_context_features,
                "n_action_features": self.n_action_features,
                "n_channels": self.n_channels,
                **self._params(),
            },
            "state": self._state(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """Rebuild a policy from :meth:`to_dict`'s output (any registered kind)."""
        return policy_from_dict(data)

    # ---- hooks -----------------------------------------------------------------------------------

    @abstractmethod
    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, rng: np.random.Generator | None
    ) -> FactorScores: ...

    def _update(  # noqa: B027 - learning is optional: uniform and fixed rules do not learn
        self,
        x: FloatArray,
        actions: ActionSet,
        action_idx: npt.NDArray[np.integer[Any]],
        rewards: npt.NDArray[np.float64],
    ) -> None:
        """Learn from the sent rows; policies that do not learn keep the default."""

    def _params(self) -> dict[str, Any]:
        return {}

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - stateless by default
        """Restore what :meth:`_state` returned."""

    # ---- checks ----------------------------------------------------------------------------------

    def _check_x(self, x: npt.ArrayLike) -> FloatArray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_context_features:
            raise PolicyError(
                f"x must have shape (n, {self.n_context_features}) for this {self.kind} policy, "
                f"got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise PolicyError("x has NaN or infinite values; impute them in the featurizer")
        return x

    def _check_actions(self, actions: ActionSet) -> None:
        if not isinstance(actions, ActionSet):
            raise PolicyError(f"actions must be an ActionSet, got {type(actions).__name__}")
        if actions.n_features != self.n_action_features or actions.n_channels != self.n_channels:
            raise PolicyError(
                f"actions has {actions.n_features} features and {actions.n_channels} channels; this "
                f"{self.kind} policy was built for {self.n_action_features} and {self.n_channels}"
            )


def policy_from_dict(data: dict[str, Any]) -> Policy:
    """Rebuild any registered policy from :meth:`Policy.to_dict`'s output."""
    if not isinstance(data, dict) or "kind" not in data:
        raise PolicyError("a stored policy must be a mapping with a 'kind'")
    kind = data["kind"]
    if kind not in POLICIES:
        raise PolicyError(f"unknown policy kind {kind!r}; known: {sorted(POLICIES)}")
    try:
        policy = POLICIES[kind](**data.get("params", {}))
        policy._load_state(data.get("state", {}))
        policy.version = int(data.get("version", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"stored {kind} policy is incomplete or malformed: {exc}") from exc
    return policy


def _channel_cost(cost: npt.ArrayLike | None, n_channels: int) -> npt.NDArray[np.float32]:
    if cost is None:
        return np.zeros(n_channels, np.float32)
    c = np.asarray(cost, dtype=np.float32)
    if c.shape != (n_channels,) or not np.isfinite(c).all():
        raise PolicyError(
            f"cost must be {n_channels} finite numbers (one per channel), got {c.shape}"
        )
    return c


def _zeros(x: FloatArray, actions: ActionSet) -> tuple[FloatArray, FloatArray, FloatArray]:
    n = x.shape[0]
    return (
        np.zeros((n, actions.n_channels), np.float32),
        np.zeros((n, actions.n_slots), np.float32),
        np.zeros((n, actions.n_channels, actions.n_variants), np.float32),
    )


# ---- baselines -----------------------------------------------------------------------------------


class UniformRandom(Policy):
    """Every eligible action and *no send* equally likely: the exploration baseline (exact propensity)."""

    kind = "uniform_random"
    learns = False

    @property
    def epsilon(self) -> float:
        return 1.0

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, rng: np.random.Generator | None
    ) -> FactorScores:
        return FactorScores(*_zeros(x, actions), link="identity")


class SendEveryEligibleChannel(Policy):
    """The fixed rule "send on every eligible channel": every channel scores 1, slot and variant
    the first eligible ones. The planner still applies the lever budget, so the rule sends on every
    eligible channel when the budget allows (or the message is critical)."""

    kind = "send_every_eligible_channel"
    learns = False

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, rng: np.random.Generator | None
    ) -> FactorScores:
        channel, slot, variant = _zeros(x, actions)
        channel += 1.0
        return FactorScores(channel, slot, variant, link="identity")


class BestChannelPerSegment(Policy):
    """The fixed rule "use the channel that worked best for this segment", from reward counts.

    Parameters
    ----------
    segment_columns
        Columns of ``x`` that one-hot encode the segment (e.g. the stage block); the segment is the
        argmax. Empty: one segment for everybody.

    A channel's score is its smoothed success rate ``(successes + 1) / (trials + 2)`` in the segment.
    """

    kind = "best_channel_per_segment"

    def __init__(
        self,
        n_context_features: int,
        n_action_features: int,
        n_channels: int,
        *,
        segment_columns: tuple[int, ...] | list[int] = (),
    ) -> None:
        super().__init__(n_context_features, n_action_features, n_channels)
        cols = tuple(int(c) for c in segment_columns)
        if any(not 0 <= c < self.n_context_features for c in cols):
            raise PolicyError(
                f"segment_columns must be columns of x in [0, {self.n_context_features}), got {cols}"
            )
        self.segment_columns = cols
        n_seg = max(len(cols), 1)
        self.successes = np.zeros((n_seg, self.n_channels))
        self.trials = np.zeros((n_seg, self.n_channels))

    def _segments(self, x: FloatArray) -> npt.NDArray[np.intp]:
        if not self.segment_columns:
            return np.zeros(x.shape[0], np.intp)
        return np.asarray(x[:, list(self.segment_columns)].argmax(axis=1), dtype=np.intp)

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, rng: np.random.Generator | None
    ) -> FactorScores:
        _, slot, variant = _zeros(x, actions)
        rate = (self.successes + 1.0) / (self.trials + 2.0)
        channel = rate[self._segments(x)].astype(np.float32)
        return FactorScores(channel, slot, variant, link="identity")

    def _update(
        self,
        x: FloatArray,
        actions: ActionSet,
        action_idx: npt.NDArray[np.integer[Any]],
        rewards: npt.NDArray[np.float64],
    ) -> None:
        seg, ch = self._segments(x), actions.channel[action_idx]
        np.add.at(self.trials, (seg, ch), 1.0)
        np.add.at(self.successes, (seg, ch), np.clip(rewards, 0.0, 1.0))

    def _params(self) -> dict[str, Any]:
        return {"segment_columns": list(self.segment_columns)}

    def _state(self) -> dict[str, Any]:
        return {"successes": self.successes.tolist(), "trials": self.trials.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.successes = _load(state, "successes", self.successes.shape)
        self.trials = _load(state, "trials", self.trials.shape)


def _load(state: dict[str, Any], name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    array = np.asarray(state[name], dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"state {name!r} has shape {array.shape}, expected {shape}")
    return array


# ---- bilinear models -----------------------------------------------------------------------------


class _Bilinear(Policy):
    """``score(x, a) = xᵀ B φ(a)`` with ``B`` of shape ``(d_x, d_a)``, learned on ``vec(x φ(a)ᵀ)``."""

    link: ClassVar[Link] = "identity"

    @property
    def n_weights(self) -> int:
        return self.n_context_features * self.n_action_features

    @abstractmethod
    def _mean(self) -> npt.NDArray[np.float64]:
        """The point estimate of ``vec(B)``."""

    def _draw(self, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        """One posterior draw of ``vec(B)`` (the point estimate for non-Bayesian policies)."""
        return self._mean()

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, rng: np.random.Generator | None
    ) -> FactorScores:
        w = self._draw(rng) if rng is not None else self._mean()
        weights = w.reshape(self.n_context_features, self.n_action_features)
        # One matmul against every factor's features at once: (n, n_ch + n_slots + n_ch·n_var).
        combined = np.ascontiguousarray(weights @ actions.factor_features_t, dtype=np.float32)
        out = x @ combined
        n, n_ch, n_sl, n_var = x.shape[0], actions.n_channels, actions.n_slots, actions.n_variants
        return FactorScores(
            channel=out[:, :n_ch],
            slot=out[:, n_ch : n_ch + n_sl],
            variant=out[:, n_ch + n_sl :].reshape(n, n_ch, n_var),
            link=self.link,
        )

    def weight_matrix(self, actions: ActionSet) -> FloatArray:
        self._check_actions(actions)
        weights = self._mean().reshape(self.n_context_features, self.n_action_features)
        return np.asarray(weights @ actions.features.T, dtype=np.float32)

    def _design(
        self, x: FloatArray, actions: ActionSet, action_idx: npt.NDArray[np.integer[Any]]
    ) -> npt.NDArray[np.float64]:
        phi = actions.features[action_idx].astype(np.float64)
        return np.asarray(
            (x.astype(np.float64)[:, :, None] * phi[:, None, :]).reshape(x.shape[0], -1)
        )


class LogisticThompson(_Bilinear):
    """Bayesian logistic regression with a diagonal Laplace posterior, sampled by Thompson.

    Chapelle & Li (2011), "An Empirical Evaluation of Thompson Sampling", Algorithm 3: each weight
    has a mean ``m_i`` and a precision ``q_i``; a batch update finds the mode of
    ``½ Σ q_i (w_i − m_i)² + Σ_j log(1 + exp(−y_j w·z_j))`` (L-BFGS) and adds
    ``Σ_j z_ij² p_j (1 − p_j)`` to ``q_i``. Rewards are click-like, in [0, 1].

    Parameters
    ----------
    prior_precision
        ``q`` before any data: larger means more confident that weights are near 0 (less exploration).
    """

    kind = "logistic_thompson"
    stochastic = True
    link = "logistic"

    def __init__(
        self,
        n_context_features: int,
        n_action_features: int,
        n_channels: int,
        *,
        prior_precision: float = 1.0,
    ) -> None:
        super().__init__(n_context_features, n_action_features, n_channels)
        if not prior_precision > 0:
            raise PolicyError(f"prior_precision must be positive, got {prior_precision}")
        self.prior_precision = float(prior_precision)
        self.m = np.zeros(self.n_weights)
        self.q = np.full(self.n_weights, self.prior_precision)

    def _mean(self) -> npt.NDArray[np.float64]:
        return self.m

    def _draw(self, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        return np.asarray(self.m + rng.standard_normal(self.n_weights) / np.sqrt(self.q))

    def _update(
        self,
        x: FloatArray,
        actions: ActionSet,
        action_idx: npt.NDArray[np.integer[Any]],
        rewards: npt.NDArray[np.float64],
    ) -> None:
        if ((rewards < 0) | (rewards > 1)).any():
            raise PolicyError("rewards must lie in [0, 1] for logistic_thompson (clicks, replies)")
        z = self._design(x, actions, action_idx)
        m, q = self.m, self.q

        def objective(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
            s = z @ w
            loss = 0.5 * float(q @ (w - m) ** 2) + float(np.sum(np.logaddexp(0.0, s) - rewards * s))
            p = _sigmoid(s)
            return loss, q * (w - m) + z.T @ (p - rewards)

        result = optimize.minimize(objective, m, jac=True, method="L-BFGS-B")
        w = np.asarray(result.x, dtype=np.float64)
        p = _sigmoid(z @ w)
        self.m = w
        self.q = q + (z**2).T @ (p * (1 - p))

    def _params(self) -> dict[str, Any]:
        return {"prior_precision": self.prior_precision}

    def _state(self) -> dict[str, Any]:
        return {"m": self.m.tolist(), "q": self.q.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.m = _load(state, "m", (self.n_weights,))
        self.q = _load(state, "q", (self.n_weights,))
        if not (self.q > 0).all():
            raise ValueError("state 'q' must be positive precisions")


class _Ridge(_Bilinear):
    """Bayesian ridge regression: precision ``A = λI + Σ z zᵀ / σ²``, ``b = Σ z r / σ²``."""

    def __init__(
        self,
        n_context_features: int,
        n_action_features: int,
        n_channels: int,
        *,
        prior_precision: float = 1.0,
        noise_variance: float = 0.25,
    ) -> None:
        super().__init__(n_context_features, n_action_features, n_channels)
        for name, value in {
            "prior_precision": prior_precision,
            "noise_variance": noise_variance,
        }.items():
            if not value > 0:
                raise PolicyError(f"{name} must be positive, got {value}")
        self.prior_precision = float(prior_precision)
        self.noise_variance = float(noise_variance)
        self.A = np.eye(self.n_weights) * self.prior_precision
        self.b = np.zeros(self.n_weights)
        self._cache: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None

    def _factor(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        if self._cache is None:
            chol = linalg.cho_factor(self.A, lower=True)
            self._cache = (linalg.cho_solve(chol, self.b), np.tril(chol[0]))
        return self._cache

    def _mean(self) -> npt.NDArray[np.float64]:
        return self._factor()[0]

    def _update(
        self,
        x: FloatArray,
        actions: ActionSet,
        action_idx: npt.NDArray[np.integer[Any]],
        rewards: npt.NDArray[np.float64],
    ) -> None:
        z = self._design(x, actions, action_idx)
        self.A = self.A + (z.T @ z) / self.noise_variance
        self.b = self.b + (z.T @ rewards) / self.noise_variance
        self._cache = None

    def _params(self) -> dict[str, Any]:
        return {"prior_precision": self.prior_precision, "noise_variance": self.noise_variance}

    def _state(self) -> dict[str, Any]:
        return {"A": self.A.tolist(), "b": self.b.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.A = _load(state, "A", (self.n_weights, self.n_weights))
        self.b = _load(state, "b", (self.n_weights,))
        self._cache = None


class LinearThompson(_Ridge):
    """Linear Thompson sampling: draws ``vec(B) ~ N(A⁻¹b, A⁻¹)`` from the Bayesian ridge posterior."""

    kind = "linear_thompson"
    stochastic = True

    def _draw(self, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        mean, lower = self._factor()
        # A = L Lᵀ, so L⁻ᵀ ε has covariance A⁻¹.
        noise = linalg.solve_triangular(
            lower, rng.standard_normal(self.n_weights), lower=True, trans="T"
        )
        return np.asarray(mean + noise)


class EpsilonGreedy(_Ridge):
    """Greedy on the ridge point estimate, uniform over eligible actions and *no send* a share ``epsilon``.

    Parameters
    ----------
    epsilon
        The exploration share in [0, 1]; propensities are exact.
    """

    kind = "epsilon_greedy"

    def __init__(
        self,
        n_context_features: int,
        n_action_features: int,
        n_channels: int,
        *,
        epsilon: float = 0.1,
        prior_precision: float = 1.0,
        noise_variance: float = 0.25,
    ) -> None:
        super().__init__(
            n_context_features,
            n_action_features,
            n_channels,
            prior_precision=prior_precision,
            noise_variance=noise_variance,
        )
        if not 0.0 <= epsilon <= 1.0:
            raise PolicyError(f"epsilon must lie in [0, 1], got {epsilon}")
        self._epsilon = float(epsilon)

    @property
    def epsilon(self) -> float:
        return self._epsilon

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "epsilon": self._epsilon}
