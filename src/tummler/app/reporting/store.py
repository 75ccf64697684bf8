"""The store report: every campaign of the workspace (or one), and every objective over its
campaigns, as of a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from tummler.app.reporting import measures
from tummler.app.reporting.objectives import ObjectiveSpec, kpi_words
from tummler.app.reporting.records import (
    CampaignReport,
    ObjectiveReport,
    StoreReport,
    send_progress,
)
from tummler.app.reporting.store_rows import read_store
from tummler.core.clock import ensure_utc
from tummler.core.errors import InputError

__all__ = ["parse_as_of", "store_report"]


def store_report(
    engine: Engine,
    *,
    as_of: datetime,
    campaign: str | None = None,
    specs: Mapping[str, ObjectiveSpec] | None = None,
    channel_costs: Mapping[str, float] | None = None,
    mixture_sd: float = 0.02,
    alpha: float = 0.05,
    rng: np.random.Generator | int = 0,
) -> StoreReport:
    """Measure every campaign (or one) of the store, and every objective over its campaigns.

    Only decisions made at or before ``as_of`` and events attributed to them that happened at or
    before it count, so that a report for a past date is reproducible.

    Parameters
    ----------
    engine
        The store; attribute events to decisions first.
    as_of
        The time of the report.
    campaign
        One campaign's key; default: every campaign.
    specs
        Each objective's KPI and target (:func:`objective_specs`); an objective without one is
        measured on the conversion rate, without a goal.
    channel_costs
        Cost per send of each channel; without it (or at zero cost) no ROI is computed.
    mixture_sd
        The mSPRT's mixing standard deviation: the size of difference between variants one
        expects, in rate units (0.02 = two percentage points).
    alpha
        One minus the confidence level of every interval.
    rng
        Seed or generator for the bootstraps.

    Returns
    -------
    StoreReport

    Raises
    ------
    NotFoundError
        When ``campaign`` is not in the store.
    InputError
        When ``alpha`` or ``mixture_sd`` is out of range.
    """
    _check_test_settings(alpha, mixture_sd)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    as_of = ensure_utc(as_of)
    specs = dict(specs or {})
    costs = dict(channel_costs or {})
    campaigns, outcome, stages = read_store(engine, campaign=campaign, as_of=as_of, specs=specs)
    by_campaign: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in outcome.values():
        by_campaign[row["campaign"]].append(row)
    reports: list[CampaignReport] = []
    settled_by_campaign: dict[int, list[dict[str, Any]]] = {}
    for cid, key, objective in campaigns:
        report, settled_by_campaign[cid] = _campaign_report(
            key,
            objective,
            by_campaign.get(cid, []),
            specs.get(objective, ObjectiveSpec(objective)),
            before=stages.before.get(cid, {}),
            now=stages.now,
            costs=costs,
            mixture_sd=mixture_sd,
            generator=generator,
        )
        reports.append(report)
    objectives = _objective_reports(campaigns, settled_by_campaign, specs, generator)
    curve = measures.learning_curve(list(outcome.values()), alpha)
    return StoreReport(as_of, tuple(reports), tuple(objectives), curve)


def _check_test_settings(alpha: float, mixture_sd: float) -> None:
    """Refuse a confidence level or mSPRT mixing width that no test can be run with."""
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha = {alpha}: give a number in (0, 1), e.g. 0.05", field="alpha")
    if not mixture_sd > 0.0:
        raise InputError(f"mixture_sd = {mixture_sd}: give a positive number", field="mixture_sd")


def _campaign_report(
    key: str,
    objective: str,
    rows: list[dict[str, Any]],
    spec: ObjectiveSpec,
    *,
    before: Mapping[int, str],
    now: Mapping[int, str],
    costs: Mapping[str, float],
    mixture_sd: float,
    generator: np.random.Generator,
) -> tuple[CampaignReport, list[dict[str, Any]]]:
    """One campaign's measures, and its settled rows (its objective's lift pools them)."""
    sending = send_progress([r["send"] for r in rows])
    settled = measures.settled(rows, sending)
    lift = measures.lift(settled, spec, f"campaign {key}", generator)
    variants, sequential = measures.variants(rows, spec, mixture_sd)
    send_time, channels = measures.insights(rows)
    campaign_roi = measures.return_on_cost(settled, costs, f"campaign {key}", generator)
    movement, by_group = measures.movements(rows, before, now)
    report = CampaignReport(
        key=key,
        objective=objective,
        kpi=kpi_words(spec),
        n_decisions=len(rows),
        n_treated=sum(1 for r in rows if not r["holdout"]),
        n_holdout=sum(1 for r in rows if r["holdout"]),
        sending=sending,
        lift=lift,
        variants=variants,
        sequential=sequential,
        send_time=send_time,
        channels=channels,
        roi=campaign_roi,
        breadth=measures.breadth(rows),
        stages=_audience_stages(rows, now),
        goal=measures.goal(lift, spec, objective),
        stage_movement=movement,
        stage_movement_by_group=by_group,
    )
    return report, settled


def _audience_stages(rows: list[dict[str, Any]], now: Mapping[int, str]) -> dict[str, int]:
    """How many of the campaign's contacts are in each lifecycle stage now, by stage name."""
    audience_stages: dict[str, int] = defaultdict(int)
    members = sorted({r["contact"] for r in rows})
    for contact_id in members:
        audience_stages[now.get(contact_id, "unknown")] += 1
    return dict(sorted(audience_stages.items()))


def _objective_reports(
    campaigns: list[tuple[int, str, str]],
    settled_by_campaign: Mapping[int, list[dict[str, Any]]],
    specs: Mapping[str, ObjectiveSpec],
    generator: np.random.Generator,
) -> list[ObjectiveReport]:
    """Each objective's lift and goal, over the settled rows of all its campaigns pooled."""
    objectives: list[ObjectiveReport] = []
    for objective in sorted({c[2] for c in campaigns}):
        spec = specs.get(objective, ObjectiveSpec(objective))
        mine = [cid for cid, _, o in campaigns if o == objective]
        rows = [r for cid in mine for r in settled_by_campaign[cid]]
        lift = measures.lift(rows, spec, f"objective {objective}", generator)
        objectives.append(
            ObjectiveReport(
                objective,
                kpi_words(spec),
                tuple(key for cid, key, o in campaigns if o == objective),
                lift,
                measures.goal(lift, spec, objective),
            )
        )
    return objectives


def parse_as_of(text: str | None, *, now: datetime) -> datetime:
    """``--as-of`` as a UTC time: a date means its end (23:59:59.999999 UTC); None means ``now``."""
    if text is None:
        return ensure_utc(now)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, 23, 59, 59, 999_999, tzinfo=UTC)
        return ensure_utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise InputError(
            f"--as-of {text!r} is not a date: write 2026-03-31 or 2026-03-31T12:00:00Z",
            field="as_of",
        ) from exc
