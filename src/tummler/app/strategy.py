"""The strategy service: read the workspace's strategy and campaigns, measure audiences, check, sync.

The pure checks live in :mod:`tummler.strategy`; this module does the I/O around them: it reads
``strategy.yaml`` and ``campaigns/*.yaml``, reads from the store what the realism check needs (audience
sizes through planning's contact reader, :mod:`tummler.app.audience`; the KPI's history from
``events``) and writes campaigns into ``campaigns`` / ``messages`` / ``variants``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tummler.app.audience import (
    ContactReach,
    contact_chunks,
    contact_view,
    read_last_engaged,
    read_reach,
)
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import StrategyError
from tummler.core.vocabulary import EventType
from tummler.store import models
from tummler.store.database import session_scope
from tummler.strategy import (
    EXAMPLES_DIR,
    AudienceBaseline,
    Campaign,
    CampaignDocument,
    ComplaintScope,
    ConsentRules,
    ContactColumns,
    Finding,
    Severity,
    Strategy,
    StrategyDocument,
    campaign_json_schema,
    check_workspace,
    evaluate,
    has_errors,
    parse_expression,
    read_campaign,
    read_strategy,
    strategy_json_schema,
    strategy_map,
)

__all__ = [
    "ConsentRules",
    "Finding",
    "Severity",
    "StoreContacts",
    "SyncReport",
    "WorkspaceStrategy",
    "audience_baselines",
    "campaign_json_schema",
    "check_workspace_strategy",
    "consent_rules",
    "has_errors",
    "load_contacts",
    "read_workspace_strategy",
    "readable_strategy",
    "strategy_channels",
    "strategy_json_schema",
    "strategy_map",
    "sync_campaigns",
    "write_example_strategy",
]

_MAIN_MESSAGE = "main"


@dataclass(frozen=True)
class WorkspaceStrategy:
    """The workspace's strategy and campaigns as parsed, with the problems found reading them."""

    strategy: StrategyDocument | None
    campaigns: tuple[CampaignDocument, ...]
    findings: tuple[Finding, ...]


def read_workspace_strategy(workspace: Path) -> WorkspaceStrategy:
    """Read ``strategy.yaml`` and ``campaigns/*.yaml`` (and ``*.yml``) of ``workspace``.

    Nothing raises for a bad file: each problem becomes a finding with its file and line.
    """
    findings: list[Finding] = []
    strategy_path = workspace / "strategy.yaml"
    strategy: StrategyDocument | None = None
    if not strategy_path.is_file():
        findings.append(
            Finding(
                Severity.ERROR,
                "no-strategy",
                f"no strategy file at {strategy_path}: run `tummler init {workspace}` to write an "
                "example, then edit it",
                str(strategy_path),
            )
        )
    else:
        strategy, found = _parsed(strategy_path, read_strategy)
        findings += found
    campaigns: list[CampaignDocument] = []
    campaigns_dir = workspace / "campaigns"
    paths = sorted([*campaigns_dir.glob("*.yaml"), *campaigns_dir.glob("*.yml")])
    for path in paths:
        document, found = _parsed(path, read_campaign)
        findings += found
        if document is not None:
            campaigns.append(document)
    return WorkspaceStrategy(strategy, tuple(campaigns), tuple(findings))


def consent_rules(workspace: Path) -> ConsentRules:
    """The strategy's ``consent`` rules, for the paths that take in unsubscribes and complaints.

    A workspace whose strategy cannot be read (missing, or with errors) gets the strictest rules
    (a complaint revokes every channel): a webhook must not fail for a strategy being edited, and
    a doubt about what a complaint withdraws is settled in the person's favour.
    """
    document = readable_strategy(workspace)
    if document is None:
        return ConsentRules(on_complaint=ComplaintScope.ALL)
    return document.strategy.consent


def strategy_channels(workspace: Path) -> dict[str, str] | None:
    """The strategy's channels, id → kind (``None`` when the strategy cannot be read)."""
    document = readable_strategy(workspace)
    if document is None:
        return None
    return {channel.id: channel.kind.value for channel in document.strategy.channels}


def readable_strategy(workspace: Path) -> StrategyDocument | None:
    """``strategy.yaml`` alone (not the campaigns: a webhook asks on every request), or ``None``
    when it is missing or cannot be read."""
    path = workspace / "strategy.yaml"
    if not path.is_file():
        return None
    try:
        document, _ = _parsed(path, read_strategy)
    except StrategyError:
        return None
    return document


#: Parsed files by (path, text): every service reads the strategy, and a loop that plans, learns and
#: evaluates every day would otherwise parse the same YAML many times a round. Keyed by the text,
#: not the modification time, so that a file rewritten within the clock's resolution is re-read.
_PARSED: dict[tuple[str, str], tuple[Any, tuple[Finding, ...]]] = {}
_PARSED_LIMIT = 512
_Document = TypeVar("_Document")


def _parsed(
    path: Path, read: Callable[[str, str], tuple[_Document | None, list[Finding]]]
) -> tuple[_Document | None, list[Finding]]:
    """``read(text, path)`` of the file, from the cache when its text is unchanged (the parsed
    documents are frozen, so sharing them is safe)."""
    text = _read_text(path)
    key = (str(path), text)
    hit = _PARSED.get(key)
    if hit is None:
        document, found = read(text, str(path))
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        hit = _PARSED[key] = (document, tuple(found))
    return hit[0], list(hit[1])


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StrategyError(f"not UTF-8 text ({exc.reason}); save it as UTF-8", file=path) from exc


def write_example_strategy(workspace: Path) -> list[Path]:
    """Write the commented example ``strategy.yaml`` and campaigns where they do not exist yet.

    Existing files are kept, so ``tummler init`` can run again. Returns the paths written.
    """
    written: list[Path] = []
    sources = [EXAMPLES_DIR / "strategy.yaml", *sorted((EXAMPLES_DIR / "campaigns").glob("*.yaml"))]
    for source in sources:
        target = workspace / source.relative_to(EXAMPLES_DIR)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written


# --------------------------------------------------------------------------------- store → columns


@dataclass(frozen=True)
class StoreContacts:
    """The store's (not forgotten) contacts as a contact view, with their ids in the same order."""

    ids: NDArray[np.int64]
    view: ContactColumns


def load_contacts(engine: Engine, *, now: datetime, chunk_size: int = 10_000) -> StoreContacts:
    """Every contact that was not forgotten, as columns the expression evaluator reads.

    Read with planning's reader (:mod:`tummler.app.audience`), ``chunk_size`` contacts per query
    round: consent per channel is the status of the latest consent event (ties: latest id); the
    last engagement is the latest of :data:`~tummler.app.audience.ENGAGEMENT_EVENTS` up to ``now``.
    """
    now = ensure_utc(now)
    rows: list[Any] = []
    reaches: list[ContactReach] = []
    engaged: list[NDArray[np.datetime64]] = []
    with engine.connect() as connection:
        for chunk in contact_chunks(connection, chunk_size):
            rows += chunk
            reaches.append(read_reach(connection, chunk, now=now))
            engaged.append(read_last_engaged(connection, chunk, now=now))
    reach = ContactReach.concat(reaches, [r.size for r in engaged])
    view = contact_view(
        rows,
        now=now,
        consents=reach.consents,
        identities=reach.identities,
        last_engaged=(np.concatenate(engaged) if engaged else np.zeros(0, dtype="datetime64[us]")),
    )
    return StoreContacts(ids=np.array([r.id for r in rows], dtype=np.int64), view=view)


def _as_utc(value: Any) -> datetime:
    # func.max bypasses the column type on SQLite, which then returns text
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return ensure_utc(value)


def _reachable(
    strategy: Strategy, campaign: Campaign, contacts: StoreContacts
) -> NDArray[np.bool_]:
    """Contacts at least one of the campaign's channels may reach: stage allowed, and for a private
    channel an identity and (when required) granted consent, looked up by channel id or kind."""
    view = contacts.view
    stages = np.asarray(view.field("stage"), dtype=object)
    reachable = np.zeros(view.size, dtype=bool)
    for key in campaign.channel_ids:
        channel = strategy.channel(key)
        if channel is None:
            continue
        allowed = np.isin(stages, [s.value for s in channel.stages_allowed])
        if not channel.public:
            names = {channel.id, channel.kind.value}
            allowed &= np.logical_or.reduce([view.has_identity(n) for n in names])
            if channel.consent_required:
                allowed &= np.logical_or.reduce([view.consent(n) for n in names])
        reachable |= allowed
    return reachable


def audience_baselines(
    engine: Engine,
    strategy: Strategy,
    campaigns: Sequence[Campaign],
    *,
    now: datetime,
    contacts: StoreContacts | None = None,
) -> dict[str, AudienceBaseline]:
    """Per campaign, its reachable audience's size and the KPI's rate in recent windows.

    The windows are as long as the objective's attribution window and cover its horizon, newest first;
    each rate is the share of the audience (as it is ``now``) with at least one KPI event in the window.
    Windows that end before the store's first event of any kind are left out: the store knows nothing
    of that time, and counting it as "no conversions" would bias the baseline down. Campaigns whose
    objective or audience is unknown are left out (the checks report those).
    """
    now = ensure_utc(now)
    contacts = contacts or load_contacts(engine, now=now)
    with engine.connect() as connection:
        first = connection.scalar(select(func.min(models.Event.at)))
    history_start = _as_utc(first) if first is not None else now
    baselines: dict[str, AudienceBaseline] = {}
    for campaign in campaigns:
        objective = strategy.objective(campaign.objective)
        audience = strategy.audience(campaign.audience) if campaign.audience else None
        if objective is None or (campaign.audience is not None and audience is None):
            continue
        mask = (
            evaluate(parse_expression(audience.filter), contacts.view)
            if audience is not None
            else np.ones(contacts.view.size, dtype=bool)
        )
        mask &= _reachable(strategy, campaign, contacts)
        members = contacts.ids[mask]
        window = objective.attribution_window
        count = max(1, math.floor(objective.horizon / window))
        # window i covers [now - (i + 1) w, now - i w): keep those that end after the history starts
        known = max(0, math.ceil((now - history_start) / window))
        count = min(count, known)
        counts = _kpi_counts(
            engine, objective.kpi.event, members, now=now, window=window, count=count
        )
        size = int(members.size)
        rates = tuple(min(1.0, c / size) for c in counts) if size else ()
        baselines[campaign.id] = AudienceBaseline(audience_size=size, window_rates=rates)
    return baselines


def _kpi_counts(
    engine: Engine,
    event: EventType,
    members: NDArray[np.int64],
    *,
    now: datetime,
    window: timedelta,
    count: int,
) -> list[int]:
    """Per window (newest first), how many ``members`` had at least one ``event`` in it."""
    if count == 0:
        return []
    start = now - window * count
    with engine.connect() as connection:
        rows = connection.execute(
            select(models.Event.contact_id, models.Event.at).where(
                models.Event.type == event.value,
                models.Event.at >= start,
                models.Event.at < now,
            )
        ).all()
    if not rows or members.size == 0:
        return [0] * count
    contact_ids = np.array([r.contact_id for r in rows], dtype=np.int64)
    ages = np.array([(now - ensure_utc(r.at)).total_seconds() for r in rows])
    windows = np.minimum((ages // window.total_seconds()).astype(np.int64), count - 1)
    inside = np.isin(contact_ids, members)
    pairs = np.unique(np.stack([windows[inside], contact_ids[inside]]), axis=1)
    per_window: list[int] = np.bincount(pairs[0], minlength=count).astype(int).tolist()
    return per_window


# ----------------------------------------------------------------------------------------- service


def check_workspace_strategy(
    workspace: Path, *, engine: Engine | None, clock: Clock
) -> tuple[WorkspaceStrategy, list[Finding]]:
    """Read and check the workspace's strategy and campaigns; with a store, check realism too.

    Returns what was read and every finding (reading problems first, then the checks'), so that
    ``tummler strategy check`` can print them and exit non-zero on errors.
    """
    loaded = read_workspace_strategy(workspace)
    findings = list(loaded.findings)
    if loaded.strategy is None:
        return loaded, findings
    baselines: dict[str, AudienceBaseline] | None = None
    if engine is not None:
        with engine.connect() as connection:
            contact_count = connection.scalar(select(func.count()).select_from(models.Contact))
        if contact_count:
            baselines = audience_baselines(
                engine,
                loaded.strategy.strategy,
                [d.campaign for d in loaded.campaigns],
                now=clock.now(),
            )
        else:
            findings.append(
                Finding(
                    Severity.INFO,
                    "realism-no-contacts",
                    "the store has no contacts yet: the realism check runs once contacts and "
                    "events are imported (`tummler import contacts FILE`)",
                    loaded.strategy.source.file,
                )
            )
    findings += check_workspace(loaded.strategy, loaded.campaigns, baselines=baselines)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: (order[f.severity], f.file or "", f.line or 0))
    return loaded, findings


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What :func:`sync_campaigns` changed, by campaign id."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    variants_kept: tuple[str, ...] = ()


def sync_campaigns(
    engine: Engine, workspace: Path, *, clock: Clock
) -> tuple[SyncReport, list[Finding]]:
    """Write the workspace's campaigns into the store, keyed by campaign id, when the check passes.

    One campaign becomes a ``campaigns`` row, one ``messages`` row (key ``main``, the message's
    attributes) and a ``variants`` row per channel and variant. A variant removed from its file is
    deleted unless decisions refer to it (then it is kept and named in the report).

    Raises
    ------
    StrategyError
        When the check finds errors; nothing is written then.
    """
    loaded, findings = check_workspace_strategy(workspace, engine=None, clock=clock)
    if has_errors(findings) or loaded.strategy is None:
        errors = [f for f in findings if f.severity is Severity.ERROR]
        raise StrategyError(
            f"{len(errors)} error(s) in the strategy or its campaigns; run `tummler strategy "
            f"check` and fix them first (first: {errors[0]})"
        )
    policy = loaded.strategy.strategy.lever_policy
    now = clock.now()
    created: list[str] = []
    updated: list[str] = []
    kept: list[str] = []
    with session_scope(engine) as session:
        for document in loaded.campaigns:
            campaign = document.campaign
            stored = store_campaign(
                session, campaign, holdout_share=campaign.effective_holdout(policy), now=now
            )
            (created if stored.created else updated).append(campaign.id)
            kept += stored.kept_variants
    return SyncReport(tuple(created), tuple(updated), tuple(kept)), findings


@dataclass(frozen=True, slots=True)
class StoredCampaign:
    """A campaign as written to the store by :func:`store_campaign`."""

    row: models.Campaign
    created: bool
    #: (channel, variant id) → ``variants.id``
    variant_ids: dict[tuple[str, str], int]
    #: ``campaign/channel/variant`` of variants gone from the file but kept for their decisions
    kept_variants: list[str]


def store_campaign(
    session: Session, campaign: Campaign, *, holdout_share: float, now: datetime
) -> StoredCampaign:
    """Upsert one campaign's row, its ``main`` message and a variant row per channel and variant.

    A variant removed from the file is deleted unless decisions refer to it; then it is kept and
    named in ``kept_variants``. Used by ``tummler strategy sync`` and by planning, so the two write
    the same layout.
    """
    row = session.scalar(select(models.Campaign).where(models.Campaign.key == campaign.id))
    starts, ends = (campaign.window.start, campaign.window.end) if campaign.window else (None, None)
    values: dict[str, Any] = {
        "objective": campaign.objective,
        "pillar": campaign.pillar,
        "audience": campaign.audience,
        "starts_at": starts,
        "ends_at": ends,
        "holdout_share": holdout_share,
        "definition": campaign.model_dump(mode="json"),
        "updated_at": now,
    }
    created = row is None
    if row is None:
        row = models.Campaign(key=campaign.id, created_at=now, **values)
        session.add(row)
        session.flush()
    else:
        for name, value in values.items():
            setattr(row, name, value)
    variant_ids, kept = _sync_message(session, row, campaign)
    return StoredCampaign(row=row, created=created, variant_ids=variant_ids, kept_variants=kept)


def _sync_message(
    session: Session, row: models.Campaign, campaign: Campaign
) -> tuple[dict[tuple[str, str], int], list[str]]:
    message = session.scalar(
        select(models.Message).where(
            models.Message.campaign_id == row.id, models.Message.key == _MAIN_MESSAGE
        )
    )
    attributes = campaign.message.model_dump(mode="json")
    if message is None:
        message = models.Message(campaign_id=row.id, key=_MAIN_MESSAGE, attributes=attributes)
        session.add(message)
        session.flush()
    else:
        message.attributes = attributes
    existing = {
        (v.channel, v.key): v
        for v in session.scalars(
            select(models.Variant).where(models.Variant.message_id == message.id)
        )
    }
    wanted = set()
    for channel, variants in campaign.variants.items():
        for variant in variants:
            wanted.add((channel, variant.id))
            stored = existing.get((channel, variant.id))
            if stored is None:
                stored = models.Variant(
                    message_id=message.id, channel=channel, key=variant.id, body=""
                )
                session.add(stored)
                existing[(channel, variant.id)] = stored
            stored.subject = variant.subject
            stored.headline = variant.headline
            stored.body = variant.body
    kept: list[str] = []
    for key, stored in list(existing.items()):
        if key in wanted:
            continue
        used = session.scalar(
            select(func.count())
            .select_from(models.Decision)
            .where(models.Decision.variant_id == stored.id)
        )
        if used:
            kept.append(f"{campaign.id}/{key[0]}/{key[1]}")
        else:
            session.delete(stored)
            del existing[key]
    session.flush()
    return {key: int(v.id) for key, v in existing.items()}, kept
