"""Warm start: fit a logistic policy's posterior to logs it did not make, in one batch. Pure.

A brand that switches to tummler has months of logged decisions from its old way of sending
(blasts to everyone at one time): contexts, the action taken, and whether the person clicked. A
bilinear logistic policy (``tummler.decide.LogisticThompson``) can learn from them before its first
round instead of starting at even odds. Its own ``update`` finds the posterior mode with L-BFGS over
every weight; on a long history that is slow, because most weights are untouched (the old policy used
one or two channels and a single variant) and the problem is badly conditioned.

:func:`fit_logistic_posterior` solves the same problem — the mode of
``½ Σ q_j (w_j − m_j)² + Σ_i log(1 + exp(−y_i w·z_i))`` and the diagonal Laplace precision
``q_j + Σ_i z_ij² p_i (1 − p_i)`` at it, as in Chapelle & Li (2011), Algorithm 3 — by Newton's method
on the weights the logs touch only, with ``z_i = x_i ⊗ φ_i`` formed in chunks so that memory stays
bounded. Weights the logs never touch keep their prior, exactly as they would under ``update``.

:func:`informed_intercepts` is the *informed prior*: before the fit, each channel's intercept starts
at the click rate pooled over the logs instead of at even odds, so that a channel the old way of
sending never used is not assumed to be clicked half the time.

``tummler learn`` uses both on a brand's legacy sends (:mod:`tummler.app.learning.warm_start`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError

__all__ = [
    "INFORMED_RATE_BOUNDS",
    "LogisticPosterior",
    "fit_logistic_posterior",
    "informed_intercepts",
]

FloatArray = npt.NDArray[np.float64]

#: Rows of the design formed at once (each ``d_x · d_a`` float64: 385 columns → 24 MB a chunk).
CHUNK_ROWS = 8192
#: The pooled rate an informed prior starts from is clipped to these bounds: no channel starts as
#: certain never or always to be clicked, whatever a short history says.
INFORMED_RATE_BOUNDS = (0.005, 0.5)


@dataclass(frozen=True, eq=False)
class LogisticPosterior:
    """A diagonal Gaussian posterior over the ``d_x · d_a`` weights, weight ``(i, j)`` at ``i·d_a + j``.

    Attributes
    ----------
    mean, precision
        ``(d_x · d_a,)`` the mode and the diagonal Laplace precision.
    iterations
        Newton steps taken.
    """

    mean: FloatArray
    precision: FloatArray
    iterations: int


def _sigmoid(s: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * s)), dtype=np.float64)


def fit_logistic_posterior(
    x: npt.ArrayLike,
    phi: npt.ArrayLike,
    y: npt.ArrayLike,
    mean: npt.ArrayLike,
    precision: npt.ArrayLike,
    *,
    max_iterations: int = 25,
    tolerance: float = 1e-6,
) -> LogisticPosterior:
    """Update a bilinear logistic model's diagonal posterior with a batch of logged rounds.

    Parameters
    ----------
    x
        ``(n, d_x)`` the contexts of the logged rounds.
    phi
        ``(n, d_a)`` the features of the action taken in each (an action set's ``features`` at
        the logged actions).
    y
        ``(n,)`` outcomes in [0, 1] (clicks).
    mean, precision
        ``(d_x · d_a,)`` the prior: a policy's current ``m`` and ``q``.
    max_iterations, tolerance
        Newton stops when the largest step is below ``tolerance`` or after ``max_iterations``.

    Returns
    -------
    LogisticPosterior
        The new mean and precision; weights no logged round touches are returned unchanged.

    Raises
    ------
    PolicyError
        On mismatched shapes, non-finite values, outcomes outside [0, 1] or a non-positive
        precision.

    Examples
    --------
    >>> x = np.ones((200, 1))
    >>> phi = np.ones((200, 1))
    >>> y = np.r_[np.ones(50), np.zeros(150)]
    >>> post = fit_logistic_posterior(x, phi, y, np.zeros(1), np.full(1, 1e-6))
    >>> round(float(post.mean[0]), 3)  # the log-odds of 50 clicks in 200: log(1/3)
    -1.099
    """
    x_, phi_, y_, m, q = _checked(x, phi, y, mean, precision)
    n, d_a = x_.shape[0], phi_.shape[1]
    # Only weights x_i ⊗ φ_j with a nonzero column on both sides move.
    rows_used = np.flatnonzero((x_ != 0).any(axis=0))
    cols_used = np.flatnonzero((phi_ != 0).any(axis=0))
    active = (rows_used[:, None] * d_a + cols_used[None, :]).reshape(-1)
    xs, ps = x_[:, rows_used], phi_[:, cols_used]
    m_a, q_a = m[active], q[active]
    w = m_a.copy()

    def design(start: int, stop: int) -> FloatArray:
        return np.asarray(
            (xs[start:stop, :, None] * ps[start:stop, None, :]).reshape(stop - start, -1)
        )

    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - reported
        gradient = q_a * (w - m_a)
        hessian = np.diag(q_a)
        for start in range(0, n, CHUNK_ROWS):
            stop = min(n, start + CHUNK_ROWS)
            z = design(start, stop)
            p = _sigmoid(z @ w)
            gradient += z.T @ (p - y_[start:stop])
            hessian += (z * (p * (1.0 - p))[:, None]).T @ z
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < tolerance:
            break
    curvature = np.zeros_like(w)
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        z = design(start, stop)
        p = _sigmoid(z @ w)
        curvature += (z**2).T @ (p * (1.0 - p))
    new_mean, new_precision = m.copy(), q.copy()
    new_mean[active] = w
    new_precision[active] = q_a + curvature
    return LogisticPosterior(mean=new_mean, precision=new_precision, iterations=iterations)


def informed_intercepts(
    mean: npt.ArrayLike,
    *,
    n_action_features: int,
    n_channels: int,
    rate: float,
    bias_row: int = 0,
) -> FloatArray:
    """A prior mean whose channel intercepts start at the log-odds of a pooled click rate.

    The intercept of channel ``c`` is the weight of the constant context feature (row
    ``bias_row``) and the channel's one-hot action feature (column ``c``), at
    ``bias_row · d_a + c``. Setting it to ``logit(rate)`` makes the prior's expected click rate
    ``rate`` on every channel for a context of the bias alone, instead of one half.

    Parameters
    ----------
    mean
        ``(d_x · d_a,)`` the prior mean (returned changed in a copy).
    n_action_features, n_channels
        ``d_a`` and how many channel one-hot features open the action features.
    rate
        The pooled click rate, clipped to :data:`INFORMED_RATE_BOUNDS`.
    bias_row
        The constant context feature's index (:class:`~tummler.decide.ContextFeaturizer`'s
        ``bias`` is the first).

    Raises
    ------
    PolicyError
        When the rate is not a number in [0, 1] or the channels do not fit the mean's rows.

    Examples
    --------
    >>> m = informed_intercepts(np.zeros(6), n_action_features=3, n_channels=2, rate=0.2)
    >>> np.round(m, 3).tolist()  # log(0.2 / 0.8) on both channels' intercepts
    [-1.386, -1.386, 0.0, 0.0, 0.0, 0.0]
    """
    m = np.array(mean, dtype=np.float64)
    if not 0.0 <= rate <= 1.0:
        raise PolicyError(f"rate must be a click rate in [0, 1], got {rate}")
    if not 0 < n_channels <= n_action_features or (bias_row + 1) * n_action_features > m.size:
        raise PolicyError(
            f"{n_channels} channel(s) and bias row {bias_row} do not fit a mean of {m.size} "
            f"weights with {n_action_features} action features"
        )
    low, high = INFORMED_RATE_BOUNDS
    p = min(max(rate, low), high)
    start = bias_row * n_action_features
    m[start : start + n_channels] = np.log(p / (1.0 - p))
    return m


def _checked(
    x: npt.ArrayLike,
    phi: npt.ArrayLike,
    y: npt.ArrayLike,
    mean: npt.ArrayLike,
    precision: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The fit's inputs as float arrays, checked to agree in shape and to be finite and in range."""
    x_ = np.asarray(x, dtype=np.float64)
    phi_ = np.asarray(phi, dtype=np.float64)
    y_ = np.asarray(y, dtype=np.float64)
    m = np.asarray(mean, dtype=np.float64)
    q = np.asarray(precision, dtype=np.float64)
    if x_.ndim != 2 or phi_.ndim != 2 or y_.ndim != 1:
        raise PolicyError(
            f"x and phi must be 2-dimensional and y 1-dimensional, got shapes {x_.shape}, "
            f"{phi_.shape} and {y_.shape}"
        )
    n, d_x = x_.shape
    d_a = phi_.shape[1]
    if phi_.shape[0] != n or y_.shape[0] != n:
        raise PolicyError(
            f"x has {n} rounds but phi has {phi_.shape[0]} and y {y_.shape[0]}; "
            f"pass one row per logged round"
        )
    if m.shape != (d_x * d_a,) or q.shape != (d_x * d_a,):
        raise PolicyError(
            f"mean and precision must have shape ({d_x * d_a},) (d_x · d_a), got {m.shape} "
            f"and {q.shape}"
        )
    for name, array in (("x", x_), ("phi", phi_), ("y", y_), ("mean", m), ("precision", q)):
        if not np.isfinite(array).all():
            raise PolicyError(f"{name} has NaN or infinite values; fix them before fitting")
    if ((y_ < 0) | (y_ > 1)).any():
        raise PolicyError("y must lie in [0, 1] (clicks, replies) for a logistic model")
    if (q <= 0).any():
        raise PolicyError("precision must be positive: it is the prior's inverse variance")
    return x_, phi_, y_, m, q
