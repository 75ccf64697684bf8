"""``tummler plan CAMPAIGN``: :func:`plan_campaign`, one campaign planned as a few named steps.

Set up the campaign (:mod:`.setup`), find what the previous plan keeps and choose the deciding
policy (:mod:`.decisions`, :mod:`.policy_choice`), price the spend caps (:mod:`.caps`), read the
audience in chunks (:mod:`.contexts`), check the templates (:mod:`.templates`), decide
(:mod:`.selection`), write the decisions in place of the previous plan's (:mod:`.decisions`) and
report (:mod:`.report`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from tummler.app.planning.caps import _budgets, _Caps, _spend_caps
from tummler.app.planning.contexts import (
    ProgressCallback,
    _Audience,
    _previous_plan,
    _PreviousPlan,
    _read_audience,
)
from tummler.app.planning.decisions import _count_replaceable, _write_plan
from tummler.app.planning.policy_choice import _choose_policy, _PolicyChoice
from tummler.app.planning.report import PlanReport, _report
from tummler.app.planning.selection import _decide, _Planned
from tummler.app.planning.setup import _Features, _featurizer, _load_document, _Setup, _setup
from tummler.app.planning.templates import _check_templates, _variant_gaps
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import PolicyError
from tummler.strategy import Campaign, Expression, Strategy, parse_expression


def plan_campaign(
    engine: Engine,
    *,
    workspace: Path,
    campaign_key: str,
    clock: Clock,
    seed: int | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    chunk_size: int = 10_000,
    write_batch: int = 5_000,
    draws: int = 32,
) -> PlanReport:
    """Plan one campaign: decide every audience member's levers, or none, and store the decisions.

    Parameters
    ----------
    engine
        The store.
    workspace
        The workspace whose ``strategy.yaml`` and ``campaigns/`` define the campaign.
    campaign_key
        The campaign's ``id``.
    clock
        "Now": consent, history and the planning horizon are read as of this moment.
    seed
        The seed of every random choice (holdout, Thompson draws); the same seed, store and clock
        give the same decisions. ``None``: a fresh seed, reported so that the plan can be repeated.
    dry_run
        Compute and report, write nothing (not even the campaign's rows).
    progress
        Told ``(phase, done, total)`` as chunks of contacts are read and decisions written.
    chunk_size, write_batch
        Contacts read per query round / decision rows per insert: they bound memory and
        transaction size, not the result.
    draws
        Posterior draws behind the Monte Carlo propensities of Thompson sampling.

    Returns
    -------
    PlanReport
        The summary.

    Raises
    ------
    StrategyError
        When the strategy check finds errors, the campaign has no usable channel or has ended, or
        one of its variants cannot be rendered for a contact who may get it (a missing field).
    NotFoundError
        When no campaign file has this id.
    """
    started = time.perf_counter()
    _check_batches(chunk_size, write_batch)
    now = ensure_utc(clock.now())
    strategy, document = _load_document(workspace, campaign_key, clock)
    setup = _setup(strategy, document.campaign, now)
    seed = _fresh_seed() if seed is None else seed
    read = _read_plan_inputs(
        engine, strategy, setup, now=now, chunk_size=chunk_size, progress=progress
    )
    setup, previous, choice, audience = read.setup, read.previous, read.choice, read.audience
    access = _check_templates(
        setup, audience.eligibility, audience.shape, audience.shapes, document.source
    )
    rules = read.caps.applied_to(setup.selection_rules)
    decided = _decide(
        audience,
        setup,
        choice.policy,
        access.of(audience.shape),
        rules,
        seed=seed,
        draws=draws,
        explore_share=setup.exploration.share_at(choice.version),
    )
    planned = _Planned(setup, audience, decided, choice.policy, read.features.final())
    gaps = _variant_gaps(setup, decided, audience.shape, access)
    if dry_run:
        policy_version_id, replaced = choice.row_id, _replaceable(engine, previous)
    else:
        policy_version_id, replaced = _write_plan(
            engine,
            planned,
            access,
            policy_version_id=choice.row_id,
            now=now,
            write_batch=write_batch,
            progress=progress,
        )
    return _report(
        planned,
        dry_run=dry_run,
        kept=len(previous.kept),
        replaced=replaced,
        policy_version_id=policy_version_id,
        seed=seed,
        seconds=time.perf_counter() - started,
        notes=_notes(setup, choice, audience, gaps),
        budgets=_budgets(
            setup, read.caps if read.caps.capped else None, decided.result, decided.lost
        ),
        gaps=gaps,
    )


@dataclass(frozen=True)
class _PlanInputs:
    """What planning reads from the store in one connection, before it decides anything."""

    #: The campaign's setup, with the harm per send the deciding policy learned.
    setup: _Setup
    previous: _PreviousPlan
    choice: _PolicyChoice
    features: _Features
    caps: _Caps
    audience: _Audience


def _read_plan_inputs(
    engine: Engine,
    strategy: Strategy,
    setup: _Setup,
    *,
    now: datetime,
    chunk_size: int,
    progress: ProgressCallback | None,
) -> _PlanInputs:
    """The previous plan, the deciding policy, the spend caps and the audience's contexts, read
    in one connection so that they agree with each other."""
    fresh = _featurizer(strategy, setup)
    with engine.connect() as connection:
        previous = _previous_plan(connection, setup.campaign.id)
        choice = _choose_policy(connection, setup, fresh)
        setup = setup.with_harm(choice.harm)
        features = _Features(fresh, choice.featurizer)
        caps = _spend_caps(connection, setup, campaign_id=previous.campaign_id)
        audience = _read_audience(
            connection,
            setup,
            now=now,
            previous=previous,
            audience=_audience_expression(strategy, setup.campaign),
            features=features,
            chunk_size=chunk_size,
            progress=progress,
        )
    return _PlanInputs(setup, previous, choice, features, caps, audience)


def _replaceable(engine: Engine, previous: _PreviousPlan) -> int:
    """How many of the previous plan's decisions a real run would replace (none without one)."""
    if previous.campaign_id is None:
        return 0
    return _count_replaceable(engine, previous.campaign_id)


def _check_batches(chunk_size: int, write_batch: int) -> None:
    if chunk_size < 1 or write_batch < 1:
        raise PolicyError(
            f"chunk_size and write_batch must be positive, got {chunk_size} and {write_batch}"
        )


def _fresh_seed() -> int:
    """A new seed, reported with the plan so that it can be repeated."""
    return int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]


def _audience_expression(strategy: Strategy, campaign: Campaign) -> Expression | None:
    """The campaign's audience filter, parsed (``None``: everyone)."""
    if campaign.audience is None:
        return None
    audience = strategy.audience(campaign.audience)
    return parse_expression(audience.filter) if audience else None


def _notes(
    setup: _Setup, choice: _PolicyChoice, audience: _Audience, gaps: dict[str, int]
) -> tuple[str, ...]:
    """What the plan's summary should say besides its figures."""
    notes = list(choice.notes)
    if choice.harm:
        notes.append(
            "harm per send learned from unsubscribes and complaints, added to each channel's "
            f"cost: {choice.harm.listing(setup.names)}"
        )
    if audience.unknown_zones:
        notes.append(f"unknown time zones planned as UTC: {', '.join(audience.unknown_zones[:5])}")
    for gap, count in gaps.items():
        notes.append(f"variant {gap}: {count} contact(s) lack it and were not given that variant")
    return tuple(notes)
