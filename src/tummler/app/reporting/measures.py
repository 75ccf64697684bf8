"""One campaign's (or objective's) decision rows measured with :mod:`tummler.measure`.

Each function takes the rows :func:`~tummler.app.reporting.store_rows.read_store` gives (one per
decision: group, channel, send time, variant, propensity, policy version, what became of its
message, KPI, value and engagements) and returns one measurement, or None when the rows cannot
support it (the module notes of :mod:`tummler.app.reporting` say which decisions each counts).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
from scipy import stats

from tummler.app.attribution import HAPPENED, SendState
from tummler.app.reporting.objectives import ObjectiveSpec, kpi_words
from tummler.app.reporting.records import LearningPoint, SendProgress
from tummler.measure import (
    BreadthDepth,
    CellResponse,
    GoalProgress,
    Interval,
    Lift,
    Roi,
    SequentialTest,
    StageTransitions,
    VariantPosterior,
    breadth_depth,
    channel_response,
    goal_from_lift,
    holdout_lift,
    probability_to_be_best,
    roi,
    send_time_response,
    sequential_test_rates,
    stage_transitions,
)

__all__ = [
    "breadth",
    "goal",
    "insights",
    "learning_curve",
    "lift",
    "movements",
    "return_on_cost",
    "settled",
    "variants",
]


def settled(rows: list[dict[str, Any]], sending: SendProgress) -> list[dict[str, Any]]:
    """The decisions of a campaign the lift and the ROI compare (intent to treat): all but the
    sends still waiting, or none when the campaign meant to send and sent nothing."""
    if sending.nothing_sent:
        return []
    return [r for r in rows if r["send"] is not SendState.WAITING]


def _sent(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["send"] is SendState.SENT]


def lift(
    rows: list[dict[str, Any]], spec: ObjectiveSpec, treatment: str, rng: np.random.Generator
) -> Lift | None:
    """Treated against holdout over ``rows`` (already :func:`settled`)."""
    treated = [r["kpi"] for r in rows if not r["holdout"]]
    held = [r["kpi"] for r in rows if r["holdout"]]
    if len(treated) < 2 or len(held) < 2:
        return None
    return holdout_lift(
        np.asarray(treated),
        np.asarray(held),
        kind="rate" if spec.measure == "rate" else "mean",
        treatment=treatment,
        kpi=kpi_words(spec),
        n_bootstrap=500,
        rng=rng,
    )


def variants(
    rows: list[dict[str, Any]], spec: ObjectiveSpec, mixture_sd: float
) -> tuple[VariantPosterior | None, SequentialTest | None]:
    """Among the sends with a variant: each variant's probability to be best, and the mSPRT on
    the two most used, day by day; None for both with fewer than two variants or a value KPI."""
    sends = [r for r in _sent(rows) if r["variant"] is not None]
    keys = sorted({str(r["variant"]) for r in sends})
    if len(keys) < 2 or spec.measure != "rate":
        return None, None
    totals: dict[str, list[int]] = {k: [0, 0] for k in keys}
    for r in sends:
        totals[str(r["variant"])][0] += int(r["kpi"])
        totals[str(r["variant"])][1] += 1
    successes = [totals[k][0] for k in keys]
    trials = [totals[k][1] for k in keys]
    posterior = probability_to_be_best(successes, trials, labels=keys)
    top = sorted(keys, key=lambda k: -trials[keys.index(k)])[:2]
    daily: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    for r in sends:
        cell = daily[(str(r["variant"]), r["decided_at"].date())]
        cell[0] += int(r["kpi"])
        cell[1] += 1
    days = sorted({day for _, day in daily})
    cumulative: dict[str, tuple[list[int], list[int]]] = {}
    for key in top:
        s, n = 0, 0
        series: tuple[list[int], list[int]] = ([], [])
        for day in days:
            done, sent = daily.get((key, day), (0, 0))
            s += done
            n += sent
            series[0].append(s)
            series[1].append(n)
        cumulative[key] = series
    a, b = top
    sequential = sequential_test_rates(
        cumulative[a][0],
        cumulative[a][1],
        cumulative[b][0],
        cumulative[b][1],
        mixture_sd=mixture_sd,
        labels=(a, b),
    )
    return posterior, sequential


def insights(
    rows: list[dict[str, Any]],
) -> tuple[CellResponse | None, CellResponse | None]:
    """Response of the sends by hour of week (UTC) and by channel, weighted by propensities."""
    sends = _sent(rows)
    if not sends:
        return None, None
    timed = [r for r in sends if r["send_at"] is not None]
    send_time = None
    if timed:
        hour = np.array([r["send_at"].weekday() * 24 + r["send_at"].hour for r in timed])
        send_time = send_time_response(
            hour,
            np.array([r["kpi"] for r in timed]),
            np.array([r["propensity"] for r in timed]),
        )
    channels = channel_response(
        np.array([str(r["channel"]) for r in sends], dtype=object),
        np.array([r["kpi"] for r in sends]),
        np.array([r["propensity"] for r in sends]),
    )
    return send_time, channels


def breadth(rows: list[dict[str, Any]]) -> BreadthDepth | None:
    """Over everyone with a decision: reached when a message went out to them, and their
    engagements with the messages that went out."""
    people: dict[int, list[int]] = {}
    for r in rows:
        reached, engaged = people.get(r["contact"], [0, 0])
        sent = r["send"] is SendState.SENT
        people[r["contact"]] = [reached or int(sent), engaged + (r["engagements"] if sent else 0)]
    if not people:
        return None
    values = np.array(list(people.values()), dtype=np.float64)
    return breadth_depth(values[:, 0].astype(bool), values[:, 1])


def movements(
    rows: list[dict[str, Any]], before: Mapping[int, str], now: Mapping[int, str]
) -> tuple[StageTransitions | None, dict[str, StageTransitions]]:
    """The audience's movements between stages, in all and for the treated and held-out apart."""
    treated = {r["contact"] for r in rows if not r["holdout"]}
    members = sorted({r["contact"] for r in rows})
    known = [c for c in members if c in before and c in now]
    if not known:
        return None, {}
    groups = {
        "treated": [c for c in known if c in treated],
        "holdout": [c for c in known if c not in treated],
    }
    return stage_transitions([before[c] for c in known], [now[c] for c in known]), {
        name: stage_transitions([before[c] for c in people], [now[c] for c in people])
        for name, people in groups.items()
        if people
    }


def return_on_cost(
    rows: list[dict[str, Any]],
    costs: Mapping[str, float],
    label: str,
    rng: np.random.Generator,
) -> Roi | None:
    """ROI over ``rows`` (already :func:`settled`): the cost of the messages that went out,
    against the value the treated brought beyond the holdout; None when nothing cost anything."""
    cost = sum(costs.get(str(r["channel"]), 0.0) for r in _sent(rows))
    treated_value = [r["value"] for r in rows if not r["holdout"]]
    held_value = [r["value"] for r in rows if r["holdout"]]
    if cost <= 0 or len(treated_value) < 2 or len(held_value) < 2:
        return None
    return roi(
        np.asarray(treated_value),
        np.asarray(held_value),
        cost,
        label=label,
        n_bootstrap=500,
        rng=rng,
    )


def goal(lift: Lift | None, spec: ObjectiveSpec, name: str) -> GoalProgress | None:
    """Progress against the objective's target; None without a target or a lift."""
    if lift is None or (spec.relative_lift is None and spec.absolute_rate is None):
        return None
    return goal_from_lift(
        lift, objective=name, relative_lift=spec.relative_lift, absolute_rate=spec.absolute_rate
    )


def learning_curve(rows: list[dict[str, Any]], alpha: float) -> tuple[LearningPoint, ...]:
    """The mean KPI of each policy version's decisions that happened, not held out, in the order
    the versions were created."""
    groups: dict[tuple[str, int, datetime], list[float]] = defaultdict(list)
    for r in rows:
        if r["policy"] is not None and not r["holdout"] and r["send"] in HAPPENED:
            groups[r["policy"]].append(r["kpi"])
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    points: list[LearningPoint] = []
    for (name, version, _), values in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        array = np.asarray(values)
        mean = float(array.mean())
        se = float(array.std(ddof=1) / math.sqrt(array.size)) if array.size > 1 else math.nan
        points.append(
            LearningPoint(
                name,
                version,
                int(array.size),
                mean,
                Interval(mean - z * se, mean + z * se, "normal"),
            )
        )
    return tuple(points)
