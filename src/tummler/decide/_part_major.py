"""The fused, part-major path for policies whose draw is an explicit Gaussian over factor scores.

Scores are additive over the action factors, so a contact's draw is a few dozen numbers (one per
channel, slot and variant: the *parts*), not one per action. For a :class:`FactorGaussian` the
arrays here are part-major ``(parts, contacts)``: every step is a contiguous float32 operation over
a block of contacts that stays in cache, and arg-maxima are running comparisons across contacts.
The results are those of the general path (:func:`~tummler.decide.best_per_channel` on the
policy's sampler), laid out differently.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.decide._actions import ActionSet
from tummler.decide._eligibility import Eligibility
from tummler.decide._gaussian import _SINGLE_THREADED, FactorGaussian
from tummler.decide._selection import SlotPenalty


def _link(link: str, linear: npt.NDArray[np.float32]) -> npt.NDArray[np.floating[Any]]:
    """The expected reward of ``linear`` scores under ``link`` (in place for the logistic link)."""
    if link == "identity":
        return linear
    np.negative(linear, out=linear)
    with np.errstate(over="ignore"):  # exp(large) = inf gives the right limit, 0
        np.exp(linear, out=linear)
    linear += 1
    np.reciprocal(linear, out=linear)
    return linear


class _PartDraw:
    """Draws a :class:`FactorGaussian`'s factor scores for a block of contacts, part-major, into
    one buffer allocated once: the same sums as the policy's sampler (shared deviation, plus own
    deviation, plus mean), each part written in place."""

    def __init__(self, gaussian: FactorGaussian, rows: slice) -> None:
        layout = gaussian.layout
        self.mean = gaussian.mean[:, rows]
        self.own_sd = None if gaussian.own_sd is None else gaussian.own_sd[:, rows]
        self.shared_sd = None if gaussian.shared_sd is None else gaussian.shared_sd[:, rows]
        self.n_own = int(layout.own_parts.size)
        n_parts, self.m = self.mean.shape
        # The shared normals move only the parts their features touch (the slots, for tummler's
        # standard features): one small matmul over those parts, written in place.
        touched = np.flatnonzero((layout.shared_features != 0).any(axis=0))
        self.lo, self.hi = (int(touched[0]), int(touched[-1]) + 1) if touched.size else (0, 0)
        self.shared_t = np.ascontiguousarray(layout.shared_features[:, self.lo : self.hi].T)
        # Columns per matmul: small enough that OpenBLAS keeps it on this thread (it starts its
        # threads above 2¹⁸ multiply-adds, which for products this small costs more than it saves).
        self.columns = max(1, _SINGLE_THREADED // max(1, self.shared_t.size))
        shared = self.shared_sd is not None and self.hi > self.lo
        covered = np.zeros(n_parts, bool)
        covered[self.lo : self.hi] = shared
        # Own runs are split where the shared parts begin and end: inside, the own deviation is
        # added to the shared one; outside, written (saving a clear and a pass).
        self.runs: list[tuple[int, int, int, bool]] = []
        for first, end, column in layout.own_runs if self.own_sd is not None else ():
            cuts = sorted({first, end, *(c for c in (self.lo, self.hi) if first < c < end)})
            for lo, hi in itertools.pairwise(cuts):
                inside = shared and self.lo <= lo and hi <= self.hi
                self.runs.append((lo, hi, column + lo - first, inside))
            covered[first:end] = True
        self.untouched = ~covered
        self.parts = np.empty((n_parts, self.m), np.float32)
        self.shared = np.empty((layout.shared.size, self.m), np.float32)
        self.own = np.empty((self.n_own, self.m), np.float32)

    def draw(self, z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(n_parts, m)`` the draw for normals ``z`` (``(noise_size, m)``); reused buffer."""
        parts = self.parts
        if self.untouched.any():
            parts[self.untouched] = 0.0
        if self.shared_sd is not None and self.hi > self.lo:
            np.multiply(self.shared_sd, z[self.n_own :], out=self.shared)
            for lo in range(0, self.m, self.columns):
                hi = min(self.m, lo + self.columns)
                np.matmul(self.shared_t, self.shared[:, lo:hi], out=parts[self.lo : self.hi, lo:hi])
        if self.own_sd is not None:
            for first, end, column, add in self.runs:
                own_sd, normals = (
                    self.own_sd[column : column + end - first],
                    z[column : column + end - first],
                )
                if add:
                    own = self.own[column : column + end - first]
                    np.multiply(own_sd, normals, out=own)
                    parts[first:end] += own
                else:
                    np.multiply(own_sd, normals, out=parts[first:end])
        parts += self.mean
        return parts


def _best_per_channel_t(
    parts: npt.NDArray[np.float32],
    link: str,
    penalty: SlotPenalty,
    eligibility: Eligibility,
    actions: ActionSet,
    cost: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """:func:`~tummler.decide.best_per_channel` on part-major scores ``(n_parts, m)``.

    The arg-maxima over slots and variants are running comparisons across whole rows of
    contacts (first maximum on ties, as ``argmax``), not a reduction per contact.
    """
    n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
    m = parts.shape[1]
    pen = penalty.penalty_t
    values = parts[None, n_ch : n_ch + n_sl] + pen  # (n_groups, n_sl, m)
    slot_best = values[:, 0].copy()
    slot_arg = np.zeros(slot_best.shape, np.int32)
    better = np.empty(slot_best.shape, bool)
    for slot in range(1, n_sl):
        np.greater(values[:, slot], slot_best, out=better)
        np.copyto(slot_arg, slot, where=better)
        np.maximum(slot_best, values[:, slot], out=slot_best)
    variants = (parts[n_ch + n_sl :] + actions.variant_penalty.reshape(-1, 1)).reshape(
        n_ch, n_var, m
    )
    if eligibility.variant_penalty is not None:  # variants some contacts may not get
        variants += eligibility.variant_penalty.transpose(1, 2, 0)
    variant_best = variants[:, 0].copy()
    variant_arg = np.zeros(variant_best.shape, np.int32)
    better = np.empty(variant_best.shape, bool)
    for variant in range(1, n_var):
        np.greater(variants[:, variant], variant_best, out=better)
        np.copyto(variant_arg, variant, where=better)
        np.maximum(variant_best, variants[:, variant], out=variant_best)
    slot_of = slot_best[penalty.group]  # (n_ch, m)
    valid = np.isfinite(slot_of) & eligibility.channel_ok.T
    if eligibility.variant_ok is not None:
        valid &= np.isfinite(variant_best)
    linear = parts[:n_ch] + np.where(valid, slot_of, np.float32(0.0)) + variant_best
    net = np.asarray(_link(link, linear), dtype=np.float32) - cost[:, None]
    net[~valid] = -np.inf
    channels = np.arange(n_ch, dtype=np.int32)[:, None]
    action = (channels * n_sl + slot_arg[penalty.group]) * n_var + variant_arg
    return net.T, action.T


def _point_values_t(
    gaussian: FactorGaussian,
    rows: slice,
    best: npt.NDArray[np.int32],
    net: npt.NDArray[np.float32],
    actions: ActionSet,
    cost: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """:func:`_point_values` from a :class:`FactorGaussian`'s part-major mean."""
    mean = np.ascontiguousarray(gaussian.mean[:, rows])
    n_ch, n_sl, n_var = actions.n_channels, actions.n_slots, actions.n_variants
    m = mean.shape[1]
    column = np.arange(m)[:, None]
    channel = np.arange(n_ch)[None, :]
    slot = mean.take((n_ch + actions.slot[best]) * m + column)
    variant = mean.take((n_ch + n_sl + channel * n_var + actions.variant[best]) * m + column)
    linear = mean[:n_ch].T + slot + variant
    value = np.asarray(_link(link=gaussian.link, linear=linear), dtype=np.float32) - cost[None, :]
    value[~np.isfinite(net)] = -np.inf
    return value
