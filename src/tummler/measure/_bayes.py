"""Bayesian comparison of variants (headlines, bodies): probability to be best and expected loss.

Each variant's response rate gets a Beta posterior from its successes and trials (a Beta prior,
uniform by default). Two numbers per variant answer the marketer's questions:

* **probability to be best**: how likely this variant has the highest true rate;
* **expected loss**: how much rate one gives up, on average over the posterior, by choosing this
  variant rather than whichever is truly best. Choosing a variant whose expected loss is below
  what one cares about is safe even when the probability to be best is not overwhelming.

Both are integrals over the posteriors. The default, ``quadrature``, computes them on a grid
that follows every posterior (deterministic, accurate to about 1e-6); ``monte_carlo`` draws from
the posteriors with a seeded generator (exact in expectation, noise of about ``1/sqrt(n_draws)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from tummler.core.errors import InputError
from tummler.core.randomness import make_rng
from tummler.measure._checks import as_counts, check_positive

__all__ = ["VariantPosterior", "probability_to_be_best"]

FloatArray = npt.NDArray[np.float64]

#: Grid points laid over each posterior's central mass for the quadrature.
POINTS_PER_VARIANT = 1501
#: The grid covers each posterior from this quantile to one minus it.
TAIL = 1e-12


@dataclass(frozen=True)
class VariantPosterior:
    """The posterior comparison of ``k`` variants; every tuple is in the order of ``labels``.

    Attributes
    ----------
    labels
        The variants' names.
    successes, trials
        The data.
    posterior_mean
        ``(prior_alpha + successes) / (prior_alpha + prior_beta + trials)``.
    probability_best
        The posterior probability that each variant has the highest rate; they sum to 1.
    expected_loss
        ``E[max_j θ_j - θ_k]``: the rate given up by choosing variant ``k``.
    best
        The label of the variant with the highest probability to be best.
    method
        ``quadrature`` or ``monte_carlo``.
    """

    labels: tuple[str, ...]
    successes: tuple[int, ...]
    trials: tuple[int, ...]
    posterior_mean: tuple[float, ...]
    probability_best: tuple[float, ...]
    expected_loss: tuple[float, ...]
    best: str
    method: str


def _quadrature(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return (P(best), E[max θ]) by the trapezoid rule on a grid that follows every posterior.

    ``P(best k) = ∫ Π_{j≠k} F_j dF_k`` is summed in its Stieltjes form, over increments of the
    CDF ``F_k`` rather than its density: only CDFs are needed, a density that is infinite at 0 or
    1 does no harm, and the probabilities telescope to a sum of 1 up to rounding.
    """
    ends = stats.beta.ppf(np.array([[TAIL], [1.0 - TAIL]]), a[None, :], b[None, :])  # (2, k)
    grids = [
        np.linspace(float(ends[0, i]), float(ends[1, i]), POINTS_PER_VARIANT)
        for i in range(a.shape[0])
    ]
    # and at each posterior's quantiles, so that no step of any CDF is large: a U-shaped
    # posterior (both parameters below 1) puts most of its mass in the first and last steps of
    # an even grid, where the trapezoid's error does not cancel
    levels = np.linspace(TAIL, 1.0 - TAIL, POINTS_PER_VARIANT)[:, None]
    quantiles = stats.beta.ppf(levels, a[None, :], b[None, :]).T.ravel()
    x = np.unique(np.concatenate([*grids, quantiles, [0.0, 1.0]]))
    cdf = stats.beta.cdf(x[None, :], a[:, None], b[:, None])  # (k, m)
    k = a.shape[0]
    best = np.empty(k)
    for i in range(k):
        others = np.prod(np.delete(cdf, i, axis=0), axis=0)  # Π_{j≠i} F_j(x)
        best[i] = float(np.sum(np.diff(cdf[i]) * 0.5 * (others[1:] + others[:-1])))
    # E[max] = ∫_0^1 P(max > x) dx = ∫_0^1 (1 - Π_j F_j(x)) dx
    expected_max = float(np.trapezoid(1.0 - np.prod(cdf, axis=0), x))
    return best, np.full(k, expected_max)


def _monte_carlo(
    a: FloatArray, b: FloatArray, n_draws: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    draws = rng.beta(a[:, None], b[:, None], size=(a.shape[0], n_draws))
    winners = np.argmax(draws, axis=0)
    best = np.bincount(winners, minlength=a.shape[0]) / n_draws
    return best.astype(np.float64), np.full(a.shape[0], float(draws.max(axis=0).mean()))


def probability_to_be_best(
    successes: npt.ArrayLike,
    trials: npt.ArrayLike,
    *,
    labels: Sequence[str] | None = None,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    method: Literal["quadrature", "monte_carlo"] = "quadrature",
    n_draws: int = 200_000,
    rng: np.random.Generator | int | None = None,
) -> VariantPosterior:
    """Compare variants' response rates: each one's probability to be best and expected loss.

    Parameters
    ----------
    successes, trials
        One count per variant: people who responded, and people who got the variant.
    labels
        The variants' names; by default ``A``, ``B``, ...
    prior_alpha, prior_beta
        The Beta prior of every rate; 1 and 1 is uniform.
    method
        ``quadrature`` (deterministic) or ``monte_carlo`` (needs ``rng``).
    n_draws
        Posterior draws per variant for ``monte_carlo``.
    rng
        The generator (or seed) for ``monte_carlo``.

    Raises
    ------
    InputError
        Naming the argument: fewer than two variants, mismatched lengths, negative counts, more
        successes than trials, a non-positive prior, or ``monte_carlo`` without ``rng``.

    Examples
    --------
    >>> result = probability_to_be_best([30, 45], [1000, 1000], labels=["short", "long"])
    >>> result.best, round(result.probability_best[1], 3)
    ('long', 0.961)
    """
    s = as_counts("successes", successes)
    n = as_counts("trials", trials)
    if s.shape[0] < 2:
        raise InputError("needs at least two variants to compare", field="successes")
    if n.shape != s.shape:
        raise InputError(
            f"has {n.shape[0]} variants but successes has {s.shape[0]}; give one count per "
            f"variant in both",
            field="trials",
        )
    if (s > n).any():
        bad = int(np.flatnonzero(s > n)[0])
        raise InputError(
            f"successes[{bad}] = {int(s[bad])} is more than trials[{bad}] = {int(n[bad])}",
            field="successes",
        )
    if labels is None:
        names = tuple(chr(ord("A") + i) if i < 26 else f"variant {i}" for i in range(s.shape[0]))
    else:
        names = tuple(str(label) for label in labels)
        if len(names) != s.shape[0] or len(set(names)) != len(names):
            raise InputError(
                f"needs {s.shape[0]} distinct names, one per variant, got {list(names)}",
                field="labels",
            )
    alpha0 = check_positive("prior_alpha", prior_alpha)
    beta0 = check_positive("prior_beta", prior_beta)
    a = alpha0 + s.astype(np.float64)
    b = beta0 + (n - s).astype(np.float64)
    if method == "quadrature":
        best, expected_max = _quadrature(a, b)
    elif method == "monte_carlo":
        if rng is None:
            raise InputError("monte_carlo needs a generator or a seed", field="rng")
        if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1000:
            raise InputError(f"n_draws = {n_draws!r} must be an integer >= 1000", field="n_draws")
        best, expected_max = _monte_carlo(a, b, n_draws, make_rng(rng))
    else:
        raise InputError(
            f"method = {method!r} must be 'quadrature' or 'monte_carlo'", field="method"
        )
    mean = a / (a + b)
    loss = np.maximum(expected_max - mean, 0.0)
    return VariantPosterior(
        labels=names,
        successes=tuple(int(v) for v in s),
        trials=tuple(int(v) for v in n),
        posterior_mean=tuple(float(v) for v in mean),
        probability_best=tuple(float(v) for v in best),
        expected_loss=tuple(float(v) for v in loss),
        best=names[int(np.argmax(best))],
        method=method,
    )
