"""Policies: the one contract, and the registry that discovers every implementation.

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

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.decide._actions import ActionSet
from tummler.decide._gaussian import FactorGaussian, Link

__all__ = ["POLICIES", "FactorScores", "Policy", "policy_from_dict"]

FloatArray = npt.NDArray[np.float32]
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


def _load(state: dict[str, Any], name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    array = np.asarray(state[name], dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"state {name!r} has shape {array.shape}, expected {shape}")
    return array
