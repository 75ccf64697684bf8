"""The bilinear policies: Thompson samplers (logistic and linear) and epsilon-greedy.

``score(x, a) = xᵀ B φ(a)``, learned on ``vec(x φ(a)ᵀ)``: a logistic model with a diagonal Laplace
posterior, and ridge regressions with an exact or diagonal posterior.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import linalg, optimize

from tummler.core.errors import PolicyError
from tummler.decide._actions import ActionSet
from tummler.decide._gaussian import (
    FactorGaussian,
    Link,
    _diagonal_deviation,
    _DiagonalLayout,
    _product,
)
from tummler.decide._policies import (
    FactorScores,
    FloatArray,
    Policy,
    Sampler,
    _load,
    _sigmoid,
)

__all__ = ["EpsilonGreedy", "LinearThompson", "LogisticThompson"]


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
    """Bayesian ridge regression: precision ``A = λI + Σ z zᵀ / σ²``, ``b = Σ z r / σ²``.

    The noise variance ``σ²`` sets how far the data move the posterior and so how much the
    Thompson draw explores. Fixed, it must match the reward's scale: 0.25 suits a click, while a
    reward in dollars (variance in the hundreds) would make the posterior a thousand times too
    sure of itself and the policy stop exploring. By default it is estimated from the data: the
    residual variance of the posterior-mean fit, ``σ̂² = (ν₀ σ₀² + RSS) / (ν₀ + n − p_eff)``
    (the point estimate under an inverse-gamma prior worth ``ν₀`` rounds of variance ``σ₀²``,
    with ``p_eff`` the degrees of freedom the ridge fit uses), so that the prior is the floor
    while there is little data and the residuals decide once there is. The estimate is a
    function of the sufficient statistics ``Σ z zᵀ``, ``Σ z r``, ``Σ r²`` and ``n`` kept in the
    state, so learning in chunks gives the same policy as learning at once, and a stored policy
    reproduces its draws exactly.
    """

    #: ``σ₀²``, the noise variance before any data (the largest variance of a 0/1 reward), and
    #: ``ν₀``, its weight in rounds.
    NOISE_PRIOR_VARIANCE: ClassVar[float] = 0.25
    NOISE_PRIOR_ROUNDS: ClassVar[float] = 10.0
    #: Fixed-point steps of the estimate (the posterior mean depends on it) at most.
    NOISE_STEPS: ClassVar[int] = 20

    def __init__(
        self,
        n_context_features: int,
        n_action_features: int,
        n_channels: int,
        *,
        prior_precision: float = 1.0,
        noise_variance: float | None = None,
    ) -> None:
        super().__init__(n_context_features, n_action_features, n_channels)
        if not prior_precision > 0:
            raise PolicyError(f"prior_precision must be positive, got {prior_precision}")
        if noise_variance is not None and not noise_variance > 0:
            raise PolicyError(
                f"noise_variance must be positive, or None to estimate it, got {noise_variance}"
            )
        self.prior_precision = float(prior_precision)
        #: The fixed noise variance; ``None`` when it is estimated from the data.
        self.noise_variance = None if noise_variance is None else float(noise_variance)
        p = self.n_weights
        self.gram = np.zeros((p, p))
        self.moment = np.zeros(p)
        self.sum_squares = 0.0
        self.n_rounds = 0
        self.noise_estimate = self.noise_variance or self.NOISE_PRIOR_VARIANCE
        self._refresh()

    def _refresh(self) -> None:
        """``A`` and ``b`` from the sufficient statistics and the current noise variance."""
        self.A = np.eye(self.n_weights) * self.prior_precision + self.gram / self.noise_estimate
        self.b = self.moment / self.noise_estimate
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

    def _estimate_noise(self) -> float:
        """``σ̂²``: the fixed point of the residual variance of the posterior mean it implies.

        Always started from the prior, so the estimate depends on the statistics alone (not on
        how the rounds were chunked); each step is one Cholesky factorization.
        """
        prior = self.NOISE_PRIOR_ROUNDS * self.NOISE_PRIOR_VARIANCE
        eye = np.eye(self.n_weights)
        variance = self.NOISE_PRIOR_VARIANCE
        for _ in range(self.NOISE_STEPS):
            chol = linalg.cho_factor(eye * self.prior_precision + self.gram / variance, lower=True)
            mean = linalg.cho_solve(chol, self.moment / variance)
            rss = self.sum_squares - 2.0 * mean @ self.moment + mean @ self.gram @ mean
            # Degrees of freedom of the fit: tr(A⁻¹ Σzzᵀ/σ²) = p − λ tr(A⁻¹).
            used = self.n_weights - self.prior_precision * np.trace(linalg.cho_solve(chol, eye))
            dof = max(self.n_rounds - used, 0.0)
            updated = float((prior + max(rss, 0.0)) / (self.NOISE_PRIOR_ROUNDS + dof))
            converged = abs(updated - variance) <= 1e-9 * variance
            variance = updated
            if converged:
                break
        return variance

    def _update(
        self,
        x: FloatArray,
        actions: ActionSet,
        action_idx: npt.NDArray[np.integer[Any]],
        rewards: npt.NDArray[np.float64],
    ) -> None:
        z = self._design(x, actions, action_idx)
        self.gram = self.gram + z.T @ z
        self.moment = self.moment + z.T @ rewards
        self.sum_squares += float(rewards @ rewards)
        self.n_rounds += int(rewards.shape[0])
        if self.noise_variance is None:
            self.noise_estimate = self._estimate_noise()
        self._refresh()

    def _params(self) -> dict[str, Any]:
        return {"prior_precision": self.prior_precision, "noise_variance": self.noise_variance}

    def _state(self) -> dict[str, Any]:
        return {
            "gram": self.gram.tolist(),
            "moment": self.moment.tolist(),
            "sum_squares": self.sum_squares,
            "n_rounds": self.n_rounds,
            "noise_estimate": self.noise_estimate,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        p = self.n_weights
        if "gram" not in state and "A" in state:
            self._load_fixed_noise_state(state)
            return
        self.gram = _load(state, "gram", (p, p))
        self.moment = _load(state, "moment", (p,))
        self.sum_squares = float(state["sum_squares"])
        self.n_rounds = int(state["n_rounds"])
        estimate = float(state["noise_estimate"])
        if not estimate > 0:
            raise ValueError("state 'noise_estimate' must be a positive variance")
        self.noise_estimate = self.noise_variance or estimate
        self._refresh()

    def _load_fixed_noise_state(self, state: dict[str, Any]) -> None:
        """A policy stored before the noise was estimated: ``A`` and ``b`` at a fixed variance.

        Its statistics are recovered from ``A = λI + Σzzᵀ/σ²`` and ``b = Σzr/σ²`` (``Σr²`` was
        not kept, so the variance stays fixed at the stored one, 0.25 unless it was set), and
        ``A`` and ``b`` are kept exactly as stored.
        """
        p = self.n_weights
        if self.noise_variance is None:
            self.noise_variance = self.NOISE_PRIOR_VARIANCE
        self.noise_estimate = self.noise_variance
        a_matrix = _load(state, "A", (p, p))
        b_vector = _load(state, "b", (p,))
        self.gram = (a_matrix - np.eye(p) * self.prior_precision) * self.noise_variance
        self.moment = b_vector * self.noise_variance
        self._refresh()
        self.A, self.b = a_matrix, b_vector


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
        noise_variance: float | None = None,
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
