"""The difference of two policies' values on the same logged rounds, with a paired interval. Pure.

Two policies weighed on the same logs share most of their noise: the same rounds, the same rewards,
often the same choices. Their difference is known far more precisely than their two intervals
suggest, so it is bootstrapped in pairs: each resample of the rounds gives both policies' estimates
and their difference, and the interval is that of the differences. ``tummler evaluate`` reports the
price of exploration this way (a Thompson sampler as deployed minus its posterior mean's greedy
choice, Russo et al. 2018, "A Tutorial on Thompson Sampling", sec. 8.2: sampling pays for what it
learns with the rounds it spends off the best-looking action).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tummler.core.errors import PolicyError
from tummler.core.randomness import make_rng
from tummler.evaluate._bootstrap import bootstrap_replicates, percentile_interval
from tummler.evaluate._checks import LoggedRounds, check_bootstrap
from tummler.evaluate._estimators import ESTIMATORS, MODEL_BASED, Estimate, _statistic

__all__ = ["paired_difference"]


def paired_difference(
    first: LoggedRounds,
    second: LoggedRounds,
    names: Sequence[str] | None = None,
    *,
    tau: float = math.inf,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    rng: np.random.Generator | int = 0,
) -> list[Estimate]:
    """Each estimator's estimate of ``value(first) - value(second)``, with a paired interval.

    Parameters
    ----------
    first, second
        Two policies checked against the same logged rounds (:meth:`LoggedData.rounds`), with
        the same reward model's predictions for the model-based estimators.
    names
        The estimators; by default every one the rounds allow (the model-based ones only when
        both carry ``estimated_rewards``).
    tau, n_bootstrap, alpha, rng
        As for :func:`estimate`; both policies' estimates come from the same resamples.

    Returns
    -------
    list of Estimate
        ``value`` the difference; ``ci_low`` / ``ci_high`` the percentile interval of the
        resampled differences; ``effective_sample_size`` the smaller of the two policies'.

    Raises
    ------
    PolicyError
        When the two were not checked against the same logged rounds.

    Examples
    --------
    >>> from tummler.evaluate import LoggedData
    >>> logged = LoggedData([1.0, 0.0, 1.0, 0.0], [0, 1, 0, 1], [0.5] * 4)
    >>> always_0 = logged.rounds([[1.0, 0.0]] * 4)
    >>> always_1 = logged.rounds([[0.0, 1.0]] * 4)
    >>> [round(d.value, 3) for d in paired_difference(always_0, always_1, n_bootstrap=0)]
    [1.0, 1.0]
    """
    _check_same_rounds(first, second)
    check_bootstrap(n_bootstrap, alpha)
    if names is None:
        modelled = first.estimated_rewards is not None and second.estimated_rewards is not None
        names = [n for n in ESTIMATORS if modelled or n not in MODEL_BASED]
    ones = [_statistic(first, name, tau) for name in names]
    others = [_statistic(second, name, tau) for name in names]
    lows: list[float | None] = [None] * len(names)
    highs: list[float | None] = [None] * len(names)
    if n_bootstrap > 0:
        replicates = bootstrap_replicates(
            [s.terms() for s in (*ones, *others)], n_bootstrap=n_bootstrap, rng=make_rng(rng)
        )
        differences = replicates[:, : len(names)] - replicates[:, len(names) :]
        low, high = percentile_interval(differences, alpha)
        lows = [float(v) if np.isfinite(v) else None for v in low]
        highs = [float(v) if np.isfinite(v) else None for v in high]
    return [
        Estimate(
            name=name,
            value=one.value - other.value,
            ci_low=lows[i],
            ci_high=highs[i],
            effective_sample_size=min(one.effective_sample_size, other.effective_sample_size),
            n=first.n,
        )
        for i, (name, one, other) in enumerate(zip(names, ones, others, strict=True))
    ]


def _check_same_rounds(first: LoggedRounds, second: LoggedRounds) -> None:
    """Refuse two policies weighed on different logs: their difference would pair nothing."""
    same = (
        first.n == second.n
        and np.array_equal(first.action, second.action)
        and np.array_equal(first.reward, second.reward)
        and np.array_equal(first.propensity, second.propensity)
    )
    if not same:
        raise PolicyError(
            "the two policies were checked against different logged rounds; check both with "
            "the same LoggedData so that their difference is paired round by round"
        )
