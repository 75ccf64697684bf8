"""Seeded randomness: every random choice in tummler takes a ``numpy.random.Generator``."""

from __future__ import annotations

import numpy as np

__all__ = ["make_rng"]


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a generator for ``seed``; a generator passed in is returned as it is.

    >>> int(make_rng(7).integers(100)) == int(make_rng(7).integers(100))
    True
    >>> rng = make_rng(7)
    >>> make_rng(rng) is rng
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
