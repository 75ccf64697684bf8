"""Send-time and channel insights: response by hour of week and by channel, from randomized sends.

"People respond most on Tuesday at 10" is only worth acting on if it is what *choosing* Tuesday at
10 does, not who happened to be sent then (the policy sends to its best prospects at the hours it
already believes in). Exploration gives the answer: each logged decision carries the probability
(propensity) with which the policy picked its cell (hour, channel) at random, and weighting each
response by one over it recreates what would have happened had every cell been chosen for
everyone. Per cell ``c`` the Hájek estimate is

``μ̂_c = Σ_{a_i = c} y_i / p_i  /  Σ_{a_i = c} 1 / p_i``,

the self-normalized form of inverse propensity scoring (IPS), with a linearized standard error.
Decisions with propensity 1 were not explored and are left out. Without any explored decision the
estimate falls back to plain response rates per cell, flagged ``causal=False`` with a message that
says they describe who was sent, not what sending would do.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError
from tummler.measure._checks import as_values, check_alpha
from tummler.measure._intervals import normal_quantile

__all__ = [
    "HOURS_IN_WEEK",
    "CellResponse",
    "channel_response",
    "response_by_cell",
    "send_time_response",
]

#: Hours of the week, Monday 00:00 as hour 0, in the contact's own time zone.
HOURS_IN_WEEK = 168

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CellResponse:
    """Response per cell (hour of week, channel); every tuple is in the order of ``cells``.

    Attributes
    ----------
    dimension
        What the cells are: ``hour of week``, ``channel``.
    cells
        The cells' labels.
    estimate
        The response per cell: Hájek (self-normalized IPS) when ``causal``, the plain mean
        otherwise; NaN for a cell with no decision.
    ips
        The unnormalized IPS estimate ``(1/N) Σ_{a_i=c} y_i / p_i`` over the ``N`` explored
        decisions (NaN when not ``causal``); it agrees with ``estimate`` in expectation and shows,
        when it does not, that a cell's weights are unstable.
    std_error, ci_low, ci_high
        The uncertainty band of ``estimate``.
    n
        Decisions per cell that the estimate uses.
    effective_n
        Kish's effective sample size of each cell's weights ``(Σw)² / Σw²``: how many
        unweighted decisions the cell is worth.
    causal
        True when the estimates come from randomized exploration with known propensities.
    n_excluded
        Decisions left out because they were not explored (propensity 1).
    message
        What the numbers may be read as, in plain words.
    alpha
        One minus the confidence level of the band.
    """

    dimension: str
    cells: tuple[Hashable, ...]
    estimate: tuple[float, ...]
    ips: tuple[float, ...]
    std_error: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    n: tuple[int, ...]
    effective_n: tuple[float, ...]
    causal: bool
    n_excluded: int
    message: str
    alpha: float

    def best(self) -> Hashable | None:
        """The cell with the highest estimate, or None when no cell has one."""
        values = np.asarray(self.estimate)
        if not np.isfinite(values).any():
            return None
        return self.cells[int(np.nanargmax(values))]


def _cell_index(
    cell: npt.ArrayLike, cells: Sequence[Hashable] | None
) -> tuple[npt.NDArray[np.int64], tuple[Hashable, ...]]:
    raw = np.asarray(cell)
    if raw.ndim != 1:
        raise InputError(
            f"must be a 1-dimensional array (one cell per decision), got shape {raw.shape}",
            field="cell",
        )
    if raw.size == 0:
        raise InputError("is empty; an insight needs at least one decision", field="cell")
    if cells is None:
        labels = tuple(v.item() if isinstance(v, np.generic) else v for v in np.unique(raw))
    else:
        labels = tuple(cells)
        if len(set(labels)) != len(labels):
            raise InputError("has a label twice; give each cell once", field="cells")
    position = {label: i for i, label in enumerate(labels)}
    distinct, inverse = np.unique(raw, return_inverse=True)
    mapping = np.empty(distinct.shape[0], dtype=np.int64)
    for j, value in enumerate(distinct.tolist()):
        found = position.get(value)
        if found is None:
            i = int(np.flatnonzero(inverse == j)[0])
            raise InputError(
                f"cell[{i}] = {value!r} is not one of the cells given; add it to cells or drop "
                f"that decision",
                field="cell",
            )
        mapping[j] = found
    return mapping[inverse.reshape(-1)], labels


def response_by_cell(
    cell: npt.ArrayLike,
    response: npt.ArrayLike,
    propensity: npt.ArrayLike | None,
    *,
    cells: Sequence[Hashable] | None = None,
    dimension: str = "cell",
    alpha: float = 0.05,
) -> CellResponse:
    """Estimate the response to choosing each cell (hour, channel), from randomized decisions.

    Parameters
    ----------
    cell
        The cell each decision chose (an hour of week, a channel name).
    response
        The outcome of each decision: 0/1, or a value.
    propensity
        The logging policy's probability of the chosen cell, per decision; None when it was not
        logged (the data are then observational).
    cells
        Every cell to report, in order, including those no decision chose; by default the
        distinct values of ``cell``, sorted.
    dimension
        What the cells are, for the message: ``hour of week``, ``channel``.
    alpha
        One minus the confidence level of the bands.

    Raises
    ------
    InputError
        Naming the argument: arrays of different lengths, NaN, a propensity outside (0, 1], a
        cell not among ``cells``.

    Examples
    --------
    >>> r = response_by_cell(["email", "sms", "email", "sms"], [1, 0, 0, 1], [0.5, 0.5, 0.5, 0.25])
    >>> r.causal, r.estimate
    (True, (0.5, 0.6666666666666666))
    >>> response_by_cell(["email", "sms"], [1, 0], None).causal
    False
    """
    alpha = check_alpha(alpha)
    index, labels = _cell_index(cell, cells)
    y = _checked_response(response, index.shape[0])
    p = _checked_propensity(propensity, y.shape[0], dimension)
    explored = p < 1.0
    causal = bool(explored.any())
    cells_used, n_excluded = _weighed_cells(index, y, p, explored, len(labels))
    estimate, std_error, effective = cells_used.hajek()
    ips = cells_used.sum_wy / cells_used.size if causal else np.full(len(labels), np.nan)
    low, high = _bands(estimate, std_error, y, alpha)
    if causal:
        message = _causal_message(dimension, labels, cells_used.n, int(explored.sum()), n_excluded)
    else:
        message = _observational_message(dimension, propensity is None)
    return CellResponse(
        dimension=dimension,
        cells=labels,
        estimate=tuple(float(v) for v in estimate),
        ips=tuple(float(v) for v in ips),
        std_error=tuple(float(v) for v in std_error),
        ci_low=tuple(float(v) for v in low),
        ci_high=tuple(float(v) for v in high),
        n=tuple(int(v) for v in cells_used.n),
        effective_n=tuple(float(v) for v in effective),
        causal=causal,
        n_excluded=n_excluded,
        message=message,
        alpha=alpha,
    )


def _checked_response(response: npt.ArrayLike, size: int) -> FloatArray:
    """The outcomes, checked to be one per decision."""
    y = as_values("response", response)
    if y.shape[0] != size:
        raise InputError(
            f"has {y.shape[0]} values but cell has {size}; give one per decision",
            field="response",
        )
    return y


def _weighed_cells(
    index: npt.NDArray[np.int64],
    y: FloatArray,
    p: FloatArray,
    explored: npt.NDArray[np.bool_],
    k: int,
) -> tuple[_CellSums, int]:
    """The cell sums, and how many decisions they leave out: only the explored decisions,
    weighted by one over their propensity, when there are any; else every decision unweighted."""
    if explored.any():
        weighed = _CellSums.of(index[explored], y[explored], 1.0 / p[explored], k)
        return weighed, int((~explored).sum())
    return _CellSums.of(index, y, np.ones_like(y), k), 0


def _bands(
    estimate: FloatArray, std_error: FloatArray, y: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """The normal confidence band of each cell, clipped to [0, 1] when the outcomes are 0/1."""
    z = normal_quantile(alpha)
    low = estimate - z * std_error
    high = estimate + z * std_error
    if np.isin(y, (0.0, 1.0)).all():
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    return low, high


def _observational_message(dimension: str, unlogged: bool) -> str:
    """Why the rates are not causal, and what to do before acting on them."""
    why = "no propensities were logged" if unlogged else "every propensity is 1"
    return (
        f"not causal: {why}, so these are the response rates of the people who happened to "
        f"get each {dimension}, not what choosing it would do; explore (randomize the "
        f"{dimension} for some decisions) before acting on them"
    )


def _checked_propensity(propensity: npt.ArrayLike | None, size: int, dimension: str) -> FloatArray:
    """The logged propensities, checked to be one per decision in (0, 1]; all 1 when none were
    logged."""
    if propensity is None:
        return np.ones(size)
    p = as_values("propensity", propensity)
    if p.shape[0] != size:
        raise InputError(
            f"has {p.shape[0]} values but cell has {size}; give one per decision",
            field="propensity",
        )
    outside = (p <= 0.0) | (p > 1.0)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"propensity[{bad}] = {float(p[bad])!r} is outside (0, 1]; it is the logging "
            f"policy's probability of the chosen {dimension}",
            field="propensity",
        )
    return p


@dataclass(frozen=True)
class _CellSums:
    """The weighted sums per cell that the Hájek estimate and its standard error are made of."""

    index: npt.NDArray[np.int64]
    y: FloatArray
    w: FloatArray
    n: npt.NDArray[np.int64]
    sum_w: FloatArray
    sum_wy: FloatArray
    sum_w2: FloatArray

    @property
    def size(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def of(index: npt.NDArray[np.int64], y: FloatArray, w: FloatArray, k: int) -> _CellSums:
        return _CellSums(
            index,
            y,
            w,
            n=np.bincount(index, minlength=k),
            sum_w=np.asarray(np.bincount(index, weights=w, minlength=k), np.float64),
            sum_wy=np.asarray(np.bincount(index, weights=w * y, minlength=k), np.float64),
            sum_w2=np.asarray(np.bincount(index, weights=w * w, minlength=k), np.float64),
        )

    def hajek(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per cell: the self-normalized estimate, its linearized standard error, and Kish's
        effective sample size."""
        n, sum_w, sum_w2 = self.n, self.sum_w, self.sum_w2
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = np.where(sum_w > 0, self.sum_wy / np.where(sum_w > 0, sum_w, 1.0), np.nan)
            residual = self.y - estimate[self.index]
            spread = np.bincount(self.index, weights=(self.w * residual) ** 2, minlength=n.size)
            # Linearized variance of a ratio estimator (the plain mean's when every weight is 1),
            # with the small-sample factor n / (n - 1); a cell of one decision has no band.
            correction = np.where(n > 1, n / np.maximum(n - 1, 1), np.nan)
            std_error = np.sqrt(spread * correction) / np.where(sum_w > 0, sum_w, np.nan)
            effective = np.where(sum_w2 > 0, sum_w**2 / np.where(sum_w2 > 0, sum_w2, 1.0), 0.0)
        return estimate, std_error, effective


def _causal_message(
    dimension: str,
    labels: tuple[Hashable, ...],
    n: npt.NDArray[np.int64],
    explored: int,
    n_excluded: int,
) -> str:
    """What causal estimates may be read as, and which cells no randomized decision chose."""
    message = (
        f"response by {dimension} from {explored:,} randomized decisions, weighted "
        f"by their logged propensities: what choosing each {dimension} would do"
    )
    if n_excluded:
        message += (
            f"; {n_excluded:,} decisions that were not randomized (propensity 1) are left "
            f"out, so the estimates speak for the people and moments the policy explored"
        )
    empty = [str(labels[i]) for i in np.flatnonzero(n == 0)]
    if empty:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        message += f"; no randomized decision chose {shown}"
    return message


def send_time_response(
    hour_of_week: npt.ArrayLike,
    response: npt.ArrayLike,
    propensity: npt.ArrayLike | None,
    *,
    alpha: float = 0.05,
) -> CellResponse:
    """Response by hour of week (0 = Monday 00:00 to 167, in each contact's time zone).

    Every one of the 168 hours is reported, in order, so the result plots as a weekly curve.
    See :func:`response_by_cell`.
    """
    hours = np.asarray(hour_of_week)
    if hours.dtype.kind not in "iu" and not (
        hours.dtype.kind == "f" and np.isfinite(hours).all() and (np.mod(hours, 1) == 0).all()
    ):
        raise InputError(
            f"must hold whole hours 0..{HOURS_IN_WEEK - 1}, got dtype {hours.dtype}",
            field="hour_of_week",
        )
    hours = hours.astype(np.int64)
    outside = (hours < 0) | (hours >= HOURS_IN_WEEK)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"hour_of_week[{bad}] = {int(hours[bad])} is outside 0..{HOURS_IN_WEEK - 1} "
            f"(Monday 00:00 is 0)",
            field="hour_of_week",
        )
    return response_by_cell(
        hours,
        response,
        propensity,
        cells=range(HOURS_IN_WEEK),
        dimension="hour of week",
        alpha=alpha,
    )


def channel_response(
    channel: npt.ArrayLike,
    response: npt.ArrayLike,
    propensity: npt.ArrayLike | None,
    *,
    channels: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> CellResponse:
    """Response by channel (``email``, ``sms``, ...). See :func:`response_by_cell`."""
    raw = np.asarray(channel)
    if raw.ndim != 1:
        raise InputError(
            f"must be a 1-dimensional array (one channel per decision), got shape {raw.shape}",
            field="channel",
        )
    names = np.asarray([str(c) for c in raw.tolist()], dtype=object)
    return response_by_cell(
        names,
        response,
        propensity,
        cells=[str(c) for c in channels] if channels is not None else None,
        dimension="channel",
        alpha=alpha,
    )
