"""The diagonal Gaussian over factor parts that the Thompson samplers draw from.

A bilinear model's factor scores for one contact are a linear map of its weights; under a
diagonal posterior they are Gaussian, each part (a channel, slot or variant score) the sum of its
mean, a deviation of its own and a deviation shared with other parts (the slots, for tummler's
standard features). :class:`FactorGaussian` describes that Gaussian part-major — ``(parts,
contacts)`` — so that the planner can fuse the draw with the selection; :class:`_DiagonalLayout`
is how the weights map onto the parts, computed once per action set.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from tummler.decide._actions import ActionSet

__all__ = ["FactorGaussian"]

FloatArray = npt.NDArray[np.float32]
#: How a score becomes an expected reward: as it is, or through the logistic function.
Link = Literal["identity", "logistic"]


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
