"""Argument checks at the door of every measurement function.

Each check raises :class:`~tummler.core.errors.InputError` whose ``field`` is the argument's name
and whose message says what was wrong and what to do; the statistics behind the door trust their
arrays.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError

__all__ = [
    "as_counts",
    "as_values",
    "check_alpha",
    "check_n_bootstrap",
    "check_positive",
    "is_binary",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def as_values(name: str, value: object, *, allow_empty: bool = False) -> FloatArray:
    """Return ``value`` as a finite 1-dimensional float array, or raise naming ``name``."""
    array = np.asarray(value)
    if array.ndim != 1:
        raise InputError(
            f"must be a 1-dimensional array (one value per person), got shape {array.shape}",
            field=name,
        )
    if array.dtype.kind not in "biuf":
        raise InputError(
            f"must hold numbers, got dtype {array.dtype}; convert it to float first", field=name
        )
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(
            f"has a NaN or infinite value at index {int(np.flatnonzero(bad)[0])}; "
            f"drop or fill those people before measuring",
            field=name,
        )
    if array.size == 0 and not allow_empty:
        raise InputError("is empty; a measurement needs at least one person", field=name)
    return array


def as_counts(name: str, value: object) -> IntArray:
    """Return ``value`` as a 1-dimensional array of whole numbers >= 0, or raise naming ``name``."""
    array = np.atleast_1d(np.asarray(value))
    if array.ndim != 1:
        raise InputError(
            f"must be a count or a 1-dimensional array of counts, got shape {array.shape}",
            field=name,
        )
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.equal(np.mod(array, 1), 0).all():
            raise InputError("must hold whole numbers (counts of people)", field=name)
    elif array.dtype.kind not in "biu":
        raise InputError(f"must hold counts, got dtype {array.dtype}", field=name)
    counts = array.astype(np.int64)
    if (counts < 0).any():
        bad = int(np.flatnonzero(counts < 0)[0])
        raise InputError(f"has a negative count {int(counts[bad])} at index {bad}", field=name)
    return counts


def is_binary(values: FloatArray) -> bool:
    """Whether every value is 0 or 1, which makes the KPI a rate."""
    return bool(np.isin(values, (0.0, 1.0)).all())


def check_alpha(alpha: object) -> float:
    """Return ``alpha`` as a float in (0, 1), or raise naming it."""
    if isinstance(alpha, bool) or not isinstance(alpha, float | int) or not 0.0 < alpha < 1.0:
        raise InputError(
            f"alpha = {alpha!r} must lie in (0, 1); 0.05 gives a 95% confidence interval",
            field="alpha",
        )
    return float(alpha)


def check_n_bootstrap(n_bootstrap: object) -> int:
    """Return ``n_bootstrap`` as an int that is 0 (no bootstrap) or at least 100, or raise."""
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer):
        raise InputError(f"must be an integer, got {n_bootstrap!r}", field="n_bootstrap")
    if n_bootstrap < 0 or 0 < n_bootstrap < 100:
        raise InputError(
            f"n_bootstrap = {n_bootstrap}: use 0 for no bootstrap, or at least 100 resamples "
            f"(2000 is a good default for a 95% interval)",
            field="n_bootstrap",
        )
    return int(n_bootstrap)


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (or >= 0 with ``allow_zero``), or raise naming it."""
    if isinstance(value, bool) or not isinstance(value, float | int | np.floating | np.integer):
        raise InputError(f"must be a number, got {value!r}", field=name)
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"= {value!r} must be a finite number {bound}", field=name)
    return number
