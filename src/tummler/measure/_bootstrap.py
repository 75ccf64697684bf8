"""A seeded, vectorized, memory-bounded bootstrap of a group's mean.

A resample of ``n`` people is a row of ``n`` indices; rows are drawn in chunks of about
:data:`CHUNK_ELEMENTS` indices whatever ``n`` is, so 2,000 resamples of 100,000 people stay within
tens of megabytes. For a 0/1 KPI the resampled mean is exactly ``Binomial(n, p) / n``, which is
drawn directly: same distribution, no index arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["CHUNK_ELEMENTS", "binomial_means", "bootstrap_means", "percentile_interval"]

#: Indices drawn at once: 2**22 int32 indices are 16 MiB, plus one float64 gather.
CHUNK_ELEMENTS = 1 << 22

FloatArray = npt.NDArray[np.float64]


def binomial_means(
    n: int, rate: float, *, n_bootstrap: int, rng: np.random.Generator
) -> FloatArray:
    """Return ``n_bootstrap`` resampled means of ``n`` people of whom a share ``rate`` had a 1."""
    return rng.binomial(n, rate, size=n_bootstrap).astype(np.float64) / n


def bootstrap_means(
    values: FloatArray, *, binary: bool, n_bootstrap: int, rng: np.random.Generator
) -> FloatArray:
    """Return ``n_bootstrap`` means of resamples (with replacement) of ``values``."""
    n = int(values.shape[0])
    if binary:
        return binomial_means(n, float(values.mean()), n_bootstrap=n_bootstrap, rng=rng)
    out = np.empty(n_bootstrap, dtype=np.float64)
    rows_per_chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    for start in range(0, n_bootstrap, rows_per_chunk):
        rows = min(rows_per_chunk, n_bootstrap - start)
        index = rng.integers(0, n, size=(rows, n), dtype=dtype)
        out[start : start + rows] = values[index].mean(axis=1)
    return out


def percentile_interval(replicates: FloatArray, alpha: float) -> tuple[float, float] | None:
    """Return the percentile interval of the finite replicates, or None when there are none."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)
