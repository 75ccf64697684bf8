"""Policies: one contract, many implementations, discovered through a registry.

Every policy scores actions *additively over the action set's factors* (channel, slot, variant; see
:mod:`tummler.decide._actions`) and maps the sum through a link (identity or logistic) to an expected
reward. The public methods validate their arguments and call an abstract hook (river's ``pull`` /
``_pull`` pattern):

- :meth:`Policy.scores` — ``(n, k)`` expected reward;
- :meth:`Policy.factor_scores` — the factored scores the planner works on; with a generator, the
  stochastic (Thompson) policies draw from their posterior *independently for every contact*;
- :meth:`Policy.action_distribution` — ``(n, k + 1)`` probability of each action, *no send* last, of a
  single-lever decision under a mask, a channel cost and a relevance threshold;
- :meth:`Policy.update` — learn from logged rewards, return ``self``, bump ``version``;
- :meth:`Policy.to_dict` / :meth:`Policy.from_dict` — JSON-ready, with ``kind`` and ``version``.

Every concrete subclass with a ``kind`` registers itself in :data:`POLICIES`, so the shared contract
tests run on it without being told.

Posterior draws are per contact. A Thompson policy that drew one weight matrix for a whole batch of
contacts would decide all of them with the same draw: under a fresh prior whole batches would get the
same channel, exploration would be correlated across contacts, and off-policy estimates from such
logs would have enormous variance. The hooks therefore take *noise* — ``(n, noise_size)`` standard
normals, one row per contact — instead of a generator, and the planner makes that noise from streams
seeded per block of contacts, so that a plan does not depend on how it is chunked.

A policy whose scores are an explicit Gaussian over the factor parts (the diagonal posteriors of the
Thompson samplers; the point estimate of the bilinear models) also describes them through
``_gaussian`` (:class:`FactorGaussian`), which lets the planner fuse the draw with the selection.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
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
#: Turns ``(n, noise_size)`` standard normals (``None``: the point estimate) into factor scores.
Sampler = Callable[[FloatArray | None], "FactorScores"]

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
        """The factored scores; with ``rng``, a stochastic policy draws from its posterior.

        Every contact (row of ``x``) gets its own independent draw, so that contacts decided
        together are still explored independently (see the module docstring).
        """
        x = self._check_x(x)
        self._check_actions(actions)
        return self._factor_scores(x, actions, self._noise(x.shape[0], actions, rng))

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
        ``draws`` posterior draws from ``rng``, each independent per contact: row ``i`` is the
        share of draws in which contact ``i``'s own draw picks each action.

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
        sampler = self._sampler(x, actions)
        for _ in range(draws if self.stochastic else 1):
            values = sampler(self._noise(n, actions, rng)).expected_dense() - channel_cost
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

    def noise_size(self, actions: ActionSet) -> int:
        """Standard normals per contact that one posterior draw consumes (0: deterministic).

        The planner draws ``(n, noise_size)`` normals per draw from its own per-block streams and
        hands them to the policy, which keeps each contact's draw independent of the others and of
        how the contacts are chunked.
        """
        return 0

    def _noise(
        self, n: int, actions: ActionSet, rng: np.random.Generator | None
    ) -> FloatArray | None:
        """``(n, noise_size)`` standard normals from ``rng``; ``None`` for the point estimate."""
        size = self.noise_size(actions)
        if rng is None or not self.stochastic or size == 0:
            return None
        return rng.standard_normal((n, size), dtype=np.float32)

    @abstractmethod
    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
    ) -> FactorScores:
        """The factor scores; ``noise`` (``(n, noise_size)`` standard normals, one row per
        contact) selects a posterior draw per contact, ``None`` the point estimate."""

    def _sampler(self, x: FloatArray, actions: ActionSet) -> Sampler:
        """Factor scores for many draws on the same contacts: subclasses precompute what every
        draw shares (the posterior mean's scores, each contact's score variances) once."""

        def sample(noise: FloatArray | None) -> FactorScores:
            return self._factor_scores(x, actions, noise)

        return sample

    def _gaussian(self, x: FloatArray, actions: ActionSet) -> FactorGaussian | None:
        """Every contact's factor scores as an explicit Gaussian (just the mean for a policy that
        does not draw), part-major, for the planner's fused path; ``None`` (the default) when the
        scores are not of the :class:`FactorGaussian` form: the planner then goes through
        :meth:`_sampler`."""
        return None

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
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
    ) -> FactorScores:
        return FactorScores(*_zeros(x, actions), link="identity")


class SendEveryEligibleChannel(Policy):
    """The fixed rule "send on every eligible channel": every channel scores 1, slot and variant
    the first eligible ones. The planner still applies the lever budget, so the rule sends on every
    eligible channel when the budget allows (or the message is critical)."""

    kind = "send_every_eligible_channel"
    learns = False

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
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
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
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

    def _deviation(
        self, x: FloatArray, actions: ActionSet
    ) -> Callable[[FloatArray], FloatArray] | None:
        """Maps ``(n, noise_size)`` standard normals to each contact's posterior deviation of its
        factor scores from their mean, ``(n, n_parts)``; ``None`` for non-Bayesian policies."""
        return None

    def _split(self, out: FloatArray, actions: ActionSet) -> FactorScores:
        n, n_ch, n_sl, n_var = out.shape[0], actions.n_channels, actions.n_slots, actions.n_variants
        return FactorScores(
            channel=out[:, :n_ch],
            slot=out[:, n_ch : n_ch + n_sl],
            variant=out[:, n_ch + n_sl :].reshape(n, n_ch, n_var),
            link=self.link,
        )

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
    ) -> FactorScores:
        return self._sampler(x, actions)(noise)

    def _sampler(self, x: FloatArray, actions: ActionSet) -> Sampler:
        """Factor scores drawn per contact: the posterior mean's scores plus a per-contact deviation.

        The score of contact ``i`` is ``xᵢᵀ B φ(a) = βᵢᵀ φ(a)`` with ``βᵢ = Bᵀ xᵢ`` of length
        ``d_a``, and every factor part's score is ``βᵢ`` times that part's features: a draw of
        ``βᵢ`` per contact gives that contact's draw of every action's score at once, the
        covariance between actions that share weights included. The mean's scores (one matmul,
        as for the point estimate) and each contact's variances are computed once per chunk; a
        draw then costs one small normal draw per contact.
        """
        point = self._point_parts(x, actions)
        deviations: list[Callable[[FloatArray], FloatArray]] = []

        def sample(noise: FloatArray | None) -> FactorScores:
            if noise is None or not self.stochastic:
                return self._split(point, actions)
            if not deviations:  # what every draw on these contacts shares, computed once
                deviation = self._deviation(x, actions)
                if deviation is None:
                    raise PolicyError(f"{self.kind} is stochastic but has no posterior to draw")
                deviations.append(deviation)
            size = self.noise_size(actions)
            if noise.shape != (x.shape[0], size):
                raise PolicyError(
                    f"noise must have shape ({x.shape[0]}, {size}) for this {self.kind} policy, "
                    f"got {noise.shape}"
                )
            out = deviations[0](noise)
            out += point
            return self._split(out, actions)

        return sample

    def _point_parts(self, x: FloatArray, actions: ActionSet) -> FloatArray:
        """``(n, n_parts)`` the posterior mean's factor scores: one matmul against every factor's
        features at once (``n_parts = n_ch + n_slots + n_ch·n_var``)."""
        weights = self._mean().reshape(self.n_context_features, self.n_action_features)
        point_w = np.ascontiguousarray(weights @ actions.factor_features_t, dtype=np.float32)
        return np.asarray(x @ point_w, dtype=np.float32)

    def _diagonal_variance(self) -> npt.NDArray[np.float64] | None:
        """``(d_x, d_a)`` the weights' variances when the draw treats them as independent."""
        return None

    def _gaussian(self, x: FloatArray, actions: ActionSet) -> FactorGaussian | None:
        variance = self._diagonal_variance() if self.stochastic else None
        if self.stochastic and variance is None:
            return None  # an exact, non-diagonal draw: only the sampler has it
        layout = _DiagonalLayout.of(actions)
        weights = self._mean().reshape(self.n_context_features, self.n_action_features)
        point_w = np.ascontiguousarray(
            (weights @ actions.factor_features_t).T, dtype=np.float32
        )  # (n_parts, d_x)
        # Products with x transposed give part-major arrays without a transposing copy.
        mean = _product(point_w, x.T)
        if variance is None:
            return FactorGaussian(mean, None, None, layout, self.link)
        beta_var = _product(np.ascontiguousarray(variance.T, dtype=np.float32), np.square(x).T)
        own_sd = np.sqrt(_product(np.ascontiguousarray(layout.own_squares.T), beta_var))
        shared_sd = np.sqrt(beta_var[layout.shared])
        return FactorGaussian(mean, own_sd, shared_sd, layout, self.link)

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

    def noise_size(self, actions: ActionSet) -> int:
        return _DiagonalLayout.of(actions).size

    def _diagonal_variance(self) -> npt.NDArray[np.float64]:
        return (1.0 / self.q).reshape(self.n_context_features, self.n_action_features)

    def _deviation(self, x: FloatArray, actions: ActionSet) -> Callable[[FloatArray], FloatArray]:
        return _diagonal_deviation(x, actions, self._diagonal_variance())

    def _update(
        self,
        x: FloatArray,
        actions: ActionSet,
        action_idx: npt.NDArray[np.integer[Any]],
        rewards: npt.NDArray[np.float64],
    ) -> None:
        if ((rewards < 0) | (rewards > 1)).any():
            raise PolicyError("rewards must lie in [0, 1] for logistic_thompson (clicks, replies)")
        # z_j = vec(x_j φ_jᵀ) is never built: z_j·w = x_jᵀ W φ_j and Σ_j g_j z_j = vec(Xᵀ diag(g) Φ),
        # two thin matrix products instead of an (n, d_x · d_a) design read on every iteration
        xs = np.asarray(x, dtype=np.float64)
        phi = actions.features[action_idx].astype(np.float64)
        d_x, d_a = self.n_context_features, self.n_action_features
        m, q = self.m, self.q

        def scores(w: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return np.asarray(np.einsum("ij,ij->i", xs @ w.reshape(d_x, d_a), phi))

        def objective(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
            s = scores(w)
            loss = 0.5 * float(q @ (w - m) ** 2) + float(np.sum(np.logaddexp(0.0, s) - rewards * s))
            g = _sigmoid(s) - rewards
            return loss, q * (w - m) + (xs.T @ (g[:, None] * phi)).ravel()

        # Solved in u = √q (w − m), where the prior term is ½‖u‖²: precisions grow to thousands on
        # well-measured weights and stay at the prior elsewhere, and that spread makes the
        # problem in w badly conditioned (about 25× the iterations on a day's decisions).
        root = np.sqrt(q)

        def scaled(u: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
            loss, grad = objective(m + u / root)
            return loss, grad / root

        result = optimize.minimize(scaled, np.zeros_like(m), jac=True, method="L-BFGS-B")
        w = m + np.asarray(result.x, dtype=np.float64) / root
        p = _sigmoid(scores(w))
        self.m = w
        self.q = q + ((xs**2).T @ ((p * (1 - p))[:, None] * phi**2)).ravel()

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
        self._inverse_cache: npt.NDArray[np.float64] | None = None

    def _factor(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        if self._cache is None:
            chol = linalg.cho_factor(self.A, lower=True)
            self._cache = (linalg.cho_solve(chol, self.b), np.tril(chol[0]))
        return self._cache

    def _mean(self) -> npt.NDArray[np.float64]:
        return self._factor()[0]

    def _inverse_lower(self) -> npt.NDArray[np.float64]:
        """``L⁻¹`` for ``A = L Lᵀ``: ``A⁻¹ = L⁻ᵀ L⁻¹``, so a row of noise times ``L⁻¹`` has
        covariance ``A⁻¹`` (cached until the next update)."""
        if self._inverse_cache is None:
            lower = self._factor()[1]
            self._inverse_cache = linalg.solve_triangular(lower, np.eye(self.n_weights), lower=True)
        return self._inverse_cache

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
        self._inverse_cache = None

    def _params(self) -> dict[str, Any]:
        return {"prior_precision": self.prior_precision, "noise_variance": self.noise_variance}

    def _state(self) -> dict[str, Any]:
        return {"A": self.A.tolist(), "b": self.b.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.A = _load(state, "A", (self.n_weights, self.n_weights))
        self.b = _load(state, "b", (self.n_weights,))
        self._cache = None
        self._inverse_cache = None


class LinearThompson(_Ridge):
    """Linear Thompson sampling: draws ``vec(B) ~ N(A⁻¹b, A⁻¹)`` from the Bayesian ridge posterior.

    Every contact gets its own draw. When the weight vector is short (``d_x · d_a ≤``
    :attr:`exact_limit`) the draw is exact: a whole ``vec(B)`` per contact, ``(d_x·d_a)²`` work and
    ``d_x · d_a`` normals each. Above it, a full draw per contact would cost more than everything
    else in planning together, so the draw uses a *diagonal precision* approximation: weight ``j``
    gets variance ``1 / A_jj``, its conditional variance given the other weights, and the weights
    are drawn independently — the same diagonal posterior :class:`LogisticThompson` keeps (Chapelle &
    Li), drawn per contact exactly as there. It understates the variance of weights the data
    confound, where the diagonal of ``A⁻¹`` (the marginal variances) would overstate it without
    bound: the action features are collinear whenever a channel has a single variant (its channel
    and variant indicators coincide), and marginal variances of such pairs never shrink, so
    exploration would never stop; conditional variances shrink with the data as they should.
    """

    kind = "linear_thompson"
    stochastic = True
    #: Exact per-contact draws up to this many weights; the diagonal approximation above.
    exact_limit: ClassVar[int] = 64

    def noise_size(self, actions: ActionSet) -> int:
        if self.n_weights <= self.exact_limit:
            return self.n_weights
        return _DiagonalLayout.of(actions).size

    def _diagonal_variance(self) -> npt.NDArray[np.float64] | None:
        if self.n_weights <= self.exact_limit:
            return None  # exact draws: not of the diagonal form
        return (1.0 / np.diag(self.A)).reshape(self.n_context_features, self.n_action_features)

    def _deviation(self, x: FloatArray, actions: ActionSet) -> Callable[[FloatArray], FloatArray]:
        d_x, d_a = self.n_context_features, self.n_action_features
        variance = self._diagonal_variance()
        if variance is not None:
            return _diagonal_deviation(x, actions, variance)
        inverse32 = self._inverse_lower().astype(np.float32)
        features_t = actions.factor_features_t.astype(np.float32)

        def deviation(noise: FloatArray) -> FloatArray:
            weights = (noise @ inverse32).reshape(-1, d_x, d_a)
            beta = np.einsum("nk,nkl->nl", x, weights)
            return np.asarray(beta @ features_t, dtype=np.float32)

        return deviation


@dataclass(frozen=True, eq=False)
class _DiagonalLayout:
    """How a diagonal posterior's per-contact draw spends its normals on an action set.

    Under a diagonal posterior the entries of ``βᵢ = Bᵀ xᵢ`` are independent, and the deviation of
    factor part ``j``'s score is ``Σ_l F_lj δβ_il`` (``F``: the action set's ``factor_features_t``).
    An action feature that enters a single part (a channel or variant indicator, a channel ×
    message-attribute term) only moves that part, so all such features of one part add up to one
    Gaussian: one normal per part. Features shared by several parts (the slot's hour and weekday
    terms) keep a normal each, so the draw stays the exact joint distribution of all parts.
    """

    own_parts: npt.NDArray[np.intp]
    own_squares: npt.NDArray[np.float32]
    shared: npt.NDArray[np.intp]
    shared_features: npt.NDArray[np.float32]
    #: ``own_parts`` as runs of consecutive parts ``(first part, end part, first own column)``:
    #: adding slices is several times faster than a fancy-indexed ``+=``.
    own_runs: tuple[tuple[int, int, int], ...]

    @property
    def size(self) -> int:
        return int(self.own_parts.size + self.shared.size)

    @staticmethod
    def of(actions: ActionSet) -> _DiagonalLayout:
        """The layout of ``actions`` (computed once per action set)."""
        layout = _LAYOUTS.get(actions)
        if layout is None:
            layout = _LAYOUTS[actions] = _DiagonalLayout._of(actions)
        return layout

    @staticmethod
    def _of(actions: ActionSet) -> _DiagonalLayout:
        features = actions.factor_features_t  # (d_a, n_parts)
        support = (features != 0).sum(axis=1)
        own = support == 1
        squares = np.where(own[:, None], features**2, 0.0)
        own_parts = np.flatnonzero((squares != 0).any(axis=0))
        shared = np.flatnonzero(support > 1)
        breaks = np.flatnonzero(np.diff(own_parts) != 1) + 1
        starts = np.concatenate([[0], breaks]).astype(int)
        ends = np.concatenate([breaks, [own_parts.size]]).astype(int)
        return _DiagonalLayout(
            own_parts=own_parts,
            own_squares=squares[:, own_parts].astype(np.float32),
            shared=shared,
            shared_features=features[shared].astype(np.float32),
            own_runs=tuple(
                (int(own_parts[a]), int(own_parts[b - 1]) + 1, int(a))
                for a, b in zip(starts, ends, strict=True)
                if b > a
            ),
        )


#: Multiply-adds below which OpenBLAS computes a product on the calling thread.
_SINGLE_THREADED = 200_000


def _product(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b`` (float32, ``b`` with many columns), column block by column block, each block
    small enough that OpenBLAS keeps it on the calling thread.

    The planner's products are thin (a few dozen rows): threads gain little on them, and
    OpenBLAS's idle threads spin on the cores that the planner's own noise thread needs.
    """
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    step = max(1, _SINGLE_THREADED // max(1, a.shape[0] * a.shape[1]))
    for lo in range(0, b.shape[1], step):
        np.matmul(a, b[:, lo : lo + step], out=out[:, lo : lo + step])
    return out


_LAYOUTS: weakref.WeakKeyDictionary[ActionSet, _DiagonalLayout] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class FactorGaussian:
    """Every contact's factor scores as an explicit Gaussian, part-major (one column per contact).

    The draw of contact ``i`` with standard normals ``z`` (``z[:n_own]`` and ``z[n_own:]``,
    ``n_own = layout.own_parts.size``) is ``mean[:, i]`` plus ``own_sd[:, i] · z_own`` on the parts
    ``layout.own_parts`` plus ``layout.shared_featuresᵀ (shared_sd[:, i] · z_shared)``: the
    distribution the policy's sampler draws from (the same numbers from the same noise, up to
    float32 rounding), laid out for a planner that fuses the draw with the selection.

    Attributes
    ----------
    mean
        ``(n_parts, n)`` the posterior mean's factor scores.
    own_sd, shared_sd
        ``(n_own, n)`` and ``(n_shared, n)`` the standard deviations the normals are scaled by;
        ``None`` for a policy that does not draw.
    layout
        How the normals map onto the factor parts.
    link
        The policy's link.
    """

    mean: FloatArray
    own_sd: FloatArray | None
    shared_sd: FloatArray | None
    layout: _DiagonalLayout
    link: Link


def _diagonal_sd(
    x: FloatArray, actions: ActionSet, variance: npt.NDArray[np.float64]
) -> tuple[FloatArray, FloatArray]:
    """``(n, n_own)`` and ``(n, n_shared)`` standard deviations of a diagonal posterior's draw
    (see :func:`_diagonal_deviation`)."""
    layout = _DiagonalLayout.of(actions)
    beta_var = np.square(x) @ variance.astype(np.float32)  # (n, d_a)
    own_sd = np.sqrt(beta_var @ layout.own_squares).astype(np.float32)  # (n, n_own)
    shared_sd = np.sqrt(beta_var[:, layout.shared]).astype(np.float32)  # (n, n_shared)
    return own_sd, shared_sd


def _diagonal_deviation(
    x: FloatArray, actions: ActionSet, variance: npt.NDArray[np.float64]
) -> Callable[[FloatArray], FloatArray]:
    """Per-contact deviations of the factor scores under independent weights, exactly.

    With ``B``'s entries independent, ``β_il = Σ_k x_ik B_kl`` are independent over ``l`` with
    variance ``Σ_k x_ik² V_kl``, that is ``(xᵢ ∘ xᵢ)ᵀ V``; the score of action ``a`` then has
    variance ``(xᵢ ∘ xᵢ)ᵀ V (φ_a ∘ φ_a)``. The draw is the exact joint distribution of contact
    ``i``'s scores of *all* actions under the diagonal posterior (the covariance between actions
    that share weights included), not an independent-arms approximation; see
    :class:`_DiagonalLayout` for how few normals it needs.
    """
    layout = _DiagonalLayout.of(actions)
    own_sd, shared_sd = _diagonal_sd(x, actions, variance)
    n_own = layout.own_parts.size

    def deviation(noise: FloatArray) -> FloatArray:
        shared = shared_sd * noise[:, n_own:]
        out = np.asarray(shared @ layout.shared_features, dtype=np.float32)  # (n, n_parts)
        own = own_sd * noise[:, :n_own]
        for first, end, column in layout.own_runs:
            out[:, first:end] += own[:, column : column + end - first]
        return out

    return deviation


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
