"""Chunks of contacts, and the posterior noise they draw, the same whatever the chunking.

``plan`` works piece by piece over contacts, in bounded memory. Thompson policies draw their
posterior noise per contact from streams seeded per block of :data:`NOISE_BLOCK` contacts, so a
plan is the same whatever ``chunk_size``: the pieces here are cut so that a piece is whole noise
blocks or part of one, and :class:`_BlockNoise` hands each piece its columns of its blocks' normals.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.decide._eligibility import Eligibility

__all__ = ["NOISE_BLOCK"]

#: Contacts per noise stream: every block of this many contacts draws its posterior noise from its
#: own stream, seeded by (plan seed, purpose, block), whatever the chunking.
NOISE_BLOCK = 4096


def _subset(index: slice | npt.NDArray[np.intp], rows: slice) -> slice | npt.NDArray[np.intp]:
    """Rows ``rows`` of a piece whose rows are ``index``."""
    if isinstance(index, slice):
        return slice(index.start + rows.start, index.start + rows.stop)
    return index[rows]


def _pieces(n: int, chunk_size: int, *, aligned: bool) -> list[tuple[int, int]]:
    """``[start, stop)`` pieces of at most ``chunk_size`` contacts; ``aligned``: a piece is either
    whole noise blocks or part of one, so that every piece's draws are the same whatever the
    chunking."""
    if not aligned or chunk_size >= NOISE_BLOCK:
        step = chunk_size if not aligned else chunk_size // NOISE_BLOCK * NOISE_BLOCK
        return [(s, min(n, s + step)) for s in range(0, n, step)]
    return [
        (s, min(n, s + chunk_size, block + NOISE_BLOCK))
        for block in range(0, n, NOISE_BLOCK)
        for s in range(block, min(n, block + NOISE_BLOCK), chunk_size)
    ]


@dataclass(frozen=True, eq=False)
class _Part:
    """The active contacts of one piece: their rows of ``x`` and of the eligibility."""

    index: slice | npt.NDArray[np.intp]
    x: npt.NDArray[np.float32]
    eligibility: Eligibility

    @staticmethod
    def of(
        x: npt.NDArray[np.float32],
        eligibility: Eligibility,
        active: npt.NDArray[np.bool_],
        start: int,
        stop: int,
    ) -> _Part | None:
        rows = np.flatnonzero(active[start:stop])
        if rows.size == 0:
            return None
        if rows.size == stop - start:
            return _Part(slice(start, stop), x[start:stop], eligibility.rows(start, stop))
        index = rows + start
        return _Part(index, x[index], eligibility.take(index))


class _BlockNoise:
    """Standard normals for every active contact and replicate, the same whatever the chunking.

    The active contacts of block ``b`` (rows ``[b · NOISE_BLOCK, (b + 1) · NOISE_BLOCK)``) draw all
    their replicates from one stream seeded by ``(entropy, b)``, as one ``(replicates, size,
    active)`` array (a contact's normals are a column: the planner works part by part over
    contiguous rows of contacts). A piece of a block takes its columns from it, so chunk
    boundaries never shift the numbers, and held-out or ineligible contacts cost no draws. The
    next block is drawn in a background thread while the current one is used (NumPy draws without
    holding the GIL): the draws are the bulk of a Thompson plan's work, and this puts them on a
    second core.

    With ``share`` below 1, each contact's normals in each replicate are kept with probability
    ``share`` and zeroed otherwise (drawn from the same block stream, after the normals): a
    Thompson policy then explores for that share of its decisions and decides the rest on its
    posterior mean, and the Monte Carlo propensities estimate that mixture.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        size: int,
        replicates: int,
        active: npt.NDArray[np.bool_],
        share: float = 1.0,
    ) -> None:
        self.entropy = int(rng.integers(0, 2**63))
        self.share = share
        self.size = size
        self.replicates = replicates
        self.active = active
        self._pool = ThreadPoolExecutor(max_workers=1) if size > 0 else None
        self._pending: dict[int, Future[npt.NDArray[np.float32]]] = {}
        self._current: tuple[int, npt.NDArray[np.float32]] | None = None

    def __enter__(self) -> _BlockNoise:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _draw(self, block: int) -> npt.NDArray[np.float32]:
        first = block * NOISE_BLOCK
        count = int(np.count_nonzero(self.active[first : first + NOISE_BLOCK]))
        seed = np.random.SeedSequence(self.entropy, spawn_key=(block,))
        stream = np.random.Generator(np.random.SFC64(seed))  # fast; a stream per block
        normals = stream.standard_normal((self.replicates, self.size, count), dtype=np.float32)
        if self.share < 1.0:
            # a contact explores (draws from the posterior) in a replicate with probability
            # ``share``; otherwise its normals are zero: the posterior mean, the greedy choice
            explores = stream.random((self.replicates, count)) < self.share
            normals *= explores[:, None, :]
        return normals

    def _block(self, block: int) -> npt.NDArray[np.float32]:
        if self._current is not None and self._current[0] == block:
            return self._current[1]
        assert self._pool is not None
        future = self._pending.pop(block, None) or self._pool.submit(self._draw, block)
        for stale in [b for b in self._pending if b < block]:
            self._pending.pop(stale).cancel()
        following = block + 1
        if following * NOISE_BLOCK < self.active.size and following not in self._pending:
            self._pending[following] = self._pool.submit(self._draw, following)
        self._current = (block, future.result())
        return self._current[1]

    def blocks(self, start: int, stop: int) -> list[tuple[int, npt.NDArray[np.float32]]]:
        """Per block of ``[start, stop)``: the offset of its first active row among the piece's
        active rows, and its ``(replicates, size, active rows)`` normals.

        ``[start, stop)`` is whole blocks or lies within one block.
        """
        parts: list[tuple[int, npt.NDArray[np.float32]]] = []
        if self.size == 0:
            return parts
        offset = 0
        for block in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
            first = block * NOISE_BLOCK
            lo = int(np.count_nonzero(self.active[first : max(first, start)]))
            count = int(
                np.count_nonzero(self.active[max(first, start) : min(stop, first + NOISE_BLOCK)])
            )
            if count:
                parts.append((offset, self._block(block)[:, :, lo : lo + count]))
            offset += count
        return parts

    def active_rows(self, start: int, stop: int) -> npt.NDArray[np.float32] | None:
        """``(replicates, size, active rows in [start, stop))`` normals; ``None`` when size is 0."""
        if self.size == 0:
            return None
        parts = [noise for _, noise in self.blocks(start, stop)]
        if not parts:
            return np.zeros((self.replicates, self.size, 0), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
