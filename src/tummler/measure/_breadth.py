"""Breadth against depth: how many people a brand reaches, and how much those relationships hold.

Reach alone rewards sending more. Depth asks what the reach is worth: the share of reached people
who engaged at all, how much each engaged person engages, and whether relationships move up
(prospect to subscriber to customer to advocate) or fall away (lapsed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from tummler.core.errors import InputError
from tummler.core.vocabulary import Stage
from tummler.measure._checks import as_values, check_alpha
from tummler.measure._intervals import wilson_interval
from tummler.measure._lift import Interval

__all__ = ["STAGE_ORDER", "BreadthDepth", "StageTransitions", "breadth_depth", "stage_transitions"]

#: Relationship stages from furthest to closest; a move to the right is a move up. A lapsed
#: relationship sits below a prospect: it was something and fell away.
STAGE_ORDER: tuple[Stage, ...] = (
    Stage.LAPSED,
    Stage.PROSPECT,
    Stage.SUBSCRIBER,
    Stage.CUSTOMER,
    Stage.ADVOCATE,
)


@dataclass(frozen=True)
class BreadthDepth:
    """Breadth and depth of an audience's engagement over a period.

    Attributes
    ----------
    audience
        People in the audience.
    reached, reach_share
        People who got at least one message, and their share of the audience.
    engaged, share_engaged, share_engaged_interval
        Reached people with at least one engagement, their share of the reached, and its Wilson
        interval.
    engagements
        Engagements of reached people, in all.
    engagement_per_engaged, engagement_per_engaged_interval
        Engagements per engaged person (depth) and its Student's t interval.
    alpha
        One minus the confidence level.
    """

    audience: int
    reached: int
    reach_share: float
    engaged: int
    share_engaged: float
    share_engaged_interval: Interval
    engagements: float
    engagement_per_engaged: float
    engagement_per_engaged_interval: Interval
    alpha: float


def breadth_depth(
    reached: npt.ArrayLike, engagements: npt.ArrayLike, *, alpha: float = 0.05
) -> BreadthDepth:
    """Measure reach, share engaged and engagement per engaged person over an audience.

    Parameters
    ----------
    reached
        Per person of the audience: whether they got at least one message (bool or 0/1).
    engagements
        Per person: how many times they engaged (clicks, replies, conversions) in the period.
    alpha
        One minus the confidence level.

    Raises
    ------
    InputError
        Naming the argument: lengths that differ, values that are not 0/1 or counts >= 0.

    Examples
    --------
    >>> b = breadth_depth([1, 1, 1, 1, 0], [0, 1, 3, 2, 5])
    >>> b.reach_share, b.share_engaged, b.engagement_per_engaged
    (0.8, 0.75, 2.0)
    """
    alpha = check_alpha(alpha)
    got = as_values("reached", reached)
    if not np.isin(got, (0.0, 1.0)).all():
        raise InputError("must be True/False (or 1/0) per person", field="reached")
    counts = as_values("engagements", engagements)
    if counts.shape != got.shape:
        raise InputError(
            f"has {counts.shape[0]} people but reached has {got.shape[0]}; one per person",
            field="engagements",
        )
    if (counts < 0).any():
        bad = int(np.flatnonzero(counts < 0)[0])
        raise InputError(f"is negative at index {bad}; count engagements", field="engagements")
    mask = got == 1.0
    n_reached = int(mask.sum())
    of_reached = counts[mask]
    engaged_mask = of_reached > 0
    n_engaged = int(engaged_mask.sum())
    low, high = wilson_interval(n_engaged, n_reached, alpha=alpha)
    per_engaged = of_reached[engaged_mask]
    if n_engaged >= 2:
        mean = float(per_engaged.mean())
        half = (
            float(stats.t.ppf(1 - alpha / 2, n_engaged - 1))
            * float(per_engaged.std(ddof=1))
            / np.sqrt(n_engaged)
        )
        depth = Interval(mean - half, mean + half, "t")
    else:
        mean = float(per_engaged.mean()) if n_engaged else float("nan")
        depth = Interval(float("nan"), float("nan"), "t")
    return BreadthDepth(
        audience=int(got.shape[0]),
        reached=n_reached,
        reach_share=n_reached / got.shape[0],
        engaged=n_engaged,
        share_engaged=n_engaged / n_reached if n_reached else float("nan"),
        share_engaged_interval=Interval(float(low), float(high), "wilson"),
        engagements=float(of_reached.sum()),
        engagement_per_engaged=mean,
        engagement_per_engaged_interval=depth,
        alpha=alpha,
    )


@dataclass(frozen=True)
class StageTransitions:
    """Movements between relationship stages over a period.

    Attributes
    ----------
    stages
        The stages, rows and columns of the matrices, from furthest to closest.
    counts
        ``counts[i][j]``: people in ``stages[i]`` before and ``stages[j]`` after.
    shares
        ``counts`` divided by its row sums: where people of each stage went (NaN for an empty row).
    moved_up, moved_down, stayed
        People who moved closer, fell back, or stayed.
    net_movement
        ``(moved_up - moved_down) / people``: above 0, relationships deepened on balance.
    """

    stages: tuple[Stage, ...]
    counts: tuple[tuple[int, ...], ...]
    shares: tuple[tuple[float, ...], ...]
    moved_up: int
    moved_down: int
    stayed: int
    net_movement: float


def _stage_index(
    name: str, values: npt.ArrayLike, stages: Sequence[Stage]
) -> npt.NDArray[np.int64]:
    raw = np.asarray(values)
    if raw.ndim != 1:
        raise InputError(
            f"must be a 1-dimensional array (one stage per person), got shape {raw.shape}",
            field=name,
        )
    position = {str(stage): i for i, stage in enumerate(stages)}
    out = np.empty(raw.shape[0], dtype=np.int64)
    for i, value in enumerate(raw.tolist()):
        found = position.get(str(value))
        if found is None:
            raise InputError(
                f"{name}[{i}] = {value!r} is not a stage; use one of "
                f"{', '.join(str(s) for s in stages)}",
                field=name,
            )
        out[i] = found
    return out


def stage_transitions(before: npt.ArrayLike, after: npt.ArrayLike) -> StageTransitions:
    """Count movements between relationship stages, from each person's stage before and after.

    Parameters
    ----------
    before, after
        Per person: the stage at the start and at the end of the period (``Stage`` or its value).

    Raises
    ------
    InputError
        Naming the argument: lengths that differ, empty, or a value that is not a stage.

    Examples
    --------
    >>> t = stage_transitions(["prospect", "subscriber", "customer"],
    ...                       ["subscriber", "subscriber", "lapsed"])
    >>> t.moved_up, t.moved_down, t.stayed
    (1, 1, 1)
    """
    start = _stage_index("before", before, STAGE_ORDER)
    end = _stage_index("after", after, STAGE_ORDER)
    if start.shape != end.shape:
        raise InputError(
            f"has {end.shape[0]} people but before has {start.shape[0]}; one per person",
            field="after",
        )
    if start.size == 0:
        raise InputError("is empty; give each person's stage", field="before")
    k = len(STAGE_ORDER)
    counts = np.bincount(start * k + end, minlength=k * k).reshape(k, k)
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(rows > 0, counts / np.where(rows > 0, rows, 1), np.nan)
    up = int((end > start).sum())
    down = int((end < start).sum())
    return StageTransitions(
        stages=STAGE_ORDER,
        counts=tuple(tuple(int(v) for v in row) for row in counts),
        shares=tuple(tuple(float(v) for v in row) for row in shares),
        moved_up=up,
        moved_down=down,
        stayed=int(start.shape[0]) - up - down,
        net_movement=(up - down) / start.shape[0],
    )
