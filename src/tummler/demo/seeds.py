"""The demo over several seeds: tummler against every baseline, as paired differences with intervals.

One seed is one brand, one history and one stream of responses; tummler and every baseline play the
same seed (:class:`~tummler.simulate.BaselineWorlds`), so the difference of their totals on a seed
is a paired one. Over several seeds, the mean difference gets a Student *t* interval and a count of
the seeds tummler won: an honest statement of how often, and by how much, the learner beats each
baseline — send-to-all first, the baseline a brand would otherwise use.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy import stats

from tummler.core.errors import InputError
from tummler.demo.loop import DemoReport, run_demo
from tummler.simulate import BASELINE_NAMES

__all__ = [
    "COMPARED",
    "PairedDifference",
    "SeedsReport",
    "paired_differences",
    "run_seeds",
    "totals",
]

#: The baselines tummler is compared with, in the order they are reported: send-to-all first.
COMPARED = ("send to all", "best single action", "random", "oracle")


@dataclass(frozen=True)
class PairedDifference:
    """tummler's total minus one baseline's, over the seeds.

    Attributes
    ----------
    baseline
        The baseline's name.
    per_seed
        The difference on each seed, in the order the seeds were run.
    mean, low, high
        The mean difference and its two-sided Student *t* interval (``nan`` with one seed).
    wins
        Seeds on which tummler's total was higher.
    """

    baseline: str
    per_seed: tuple[float, ...]
    mean: float
    low: float
    high: float
    wins: int

    @property
    def seeds(self) -> int:
        return len(self.per_seed)


def totals(report: DemoReport) -> dict[str, float]:
    """Each policy's true expected reward summed over the rounds: ``tummler`` and every baseline."""
    summed = {"tummler": sum(r.tummler for r in report.rounds)}
    summed.update({name: sum(r.baselines[name] for r in report.rounds) for name in BASELINE_NAMES})
    return summed


def paired_differences(
    per_seed: Sequence[Mapping[str, float]], *, confidence: float = 0.95
) -> tuple[PairedDifference, ...]:
    """tummler minus each of :data:`COMPARED`, per seed, with the mean's *t* interval.

    >>> seeds = [{"tummler": 10.0, "send to all": 8.0}, {"tummler": 9.0, "send to all": 9.5},
    ...          {"tummler": 12.0, "send to all": 9.0}]
    >>> (d,) = [d for d in paired_differences(seeds) if d.baseline == "send to all"]
    >>> d.per_seed, round(d.mean, 4), d.wins
    ((2.0, -0.5, 3.0), 1.5, 2)
    >>> round(d.low, 3), round(d.high, 3)   # 1.5 ± t(0.975, 2) · sd / √3 = 1.5 ± 4.3027 · 1.0408
    (-2.978, 5.978)

    Raises
    ------
    InputError
        When no seed is given or ``confidence`` is not in (0, 1).
    """
    if not per_seed:
        raise InputError("give the totals of at least one seed", field="per_seed")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be in (0, 1), got {confidence}", field="confidence")
    found = []
    for name in COMPARED:
        if not all(name in seed for seed in per_seed):
            continue
        diff = tuple(seed["tummler"] - seed[name] for seed in per_seed)
        mean = math.fsum(diff) / len(diff)
        low = high = math.nan
        if len(diff) > 1:
            sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diff) / (len(diff) - 1))
            half = (
                float(stats.t.ppf(0.5 + confidence / 2, len(diff) - 1)) * sd / math.sqrt(len(diff))
            )
            low, high = mean - half, mean + half
        wins = sum(d > 0 for d in diff)
        found.append(PairedDifference(name, diff, mean, low, high, wins))
    return tuple(found)


@dataclass(frozen=True)
class SeedsReport:
    """The first seed's full demo, and every seed's totals with the paired differences."""

    first: DemoReport
    seeds: tuple[int, ...]
    totals: tuple[Mapping[str, float], ...]
    differences: tuple[PairedDifference, ...]
    seconds: tuple[float, ...]


def run_seeds(
    directory: Path,
    *,
    seeds: int,
    seed: int = 7,
    on_seed: Callable[[int, DemoReport], None] | None = None,
    **options: Any,
) -> SeedsReport:
    """Run the demo on ``seeds`` seeds (``seed``, ``seed + 1``, ...) and compare tummler with every
    baseline over them.

    The first seed's workspace is ``directory`` (kept, with its report); the others run in
    temporary directories, removed once their totals are read. ``options`` are
    :func:`run_demo`'s (``clock``, ``contacts``, ``rounds``, ...); its ``on_step`` and
    ``on_round`` hear every seed; ``html`` and ``smtp`` apply to the first seed only.

    Raises
    ------
    InputError
        When ``seeds`` is not between 1 and 20 (and whatever :func:`run_demo` raises).
    """
    if not 1 <= seeds <= 20:
        raise InputError(f"seeds must be between 1 and 20, got {seeds}", field="seeds")
    chosen = tuple(seed + i for i in range(seeds))
    first = run_demo(directory, seed=chosen[0], **options)
    reports = [first]
    # the other seeds write their report in their own scratch workspace, and send no real e-mail
    others = {name: value for name, value in options.items() if name not in ("html", "smtp")}
    if on_seed is not None:
        on_seed(chosen[0], first)
    for other in chosen[1:]:
        with tempfile.TemporaryDirectory() as scratch:
            report = run_demo(Path(scratch) / "demo", seed=other, **others)
        reports.append(report)
        if on_seed is not None:
            on_seed(other, report)
    summed = tuple(totals(report) for report in reports)
    return SeedsReport(
        first=first,
        seeds=chosen,
        totals=summed,
        differences=paired_differences(summed),
        seconds=tuple(sum(report.seconds.values()) for report in reports),
    )
