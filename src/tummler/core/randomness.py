"""Seeded randomness: every random choice in tummler takes a ``numpy.random.Generator``."""

from __future__ import annotations

import numpy as np

__all__ = ["make_rng"]


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a generator for ``seed``; a generator passed in is returned as it is.

    >>> make_rng(7).integers(100) == make_rng(7).integers(100)
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
