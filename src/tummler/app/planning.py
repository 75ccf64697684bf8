"""The planning service: ``tummler plan CAMPAIGN`` and ``tummler explain CONTACT CAMPAIGN``.

:func:`plan_campaign` does the I/O around the pure engine in :mod:`tummler.decide`:

1. read the workspace's strategy and the campaign (refusing a strategy whose check finds errors) and
   upsert the campaign's ``campaigns`` / ``messages`` / ``variants`` rows;
2. read the audience from the store in chunks of contacts (by id, never an ``IN`` list):
   identities, current consent (the latest consent event by ``at`` across the channel's id and its
   kind: the outbox's rule, :mod:`tummler.app.consent`), sends already planned or made
   in the fatigue and frequency-cap windows, engagement history over 7, 30 and 90 days, mentions
   and social degree, and each contact's UTC offset; filter with the audience expression;
3. build the action set (channel × send slot × variant), the context features, the eligibility mask
   and the selection rules from the strategy, and call :func:`tummler.decide.plan` with the latest
   promoted policy version of the campaign's objective (or a fresh logistic Thompson sampling
   prior);
4. before deciding, render every variant's ``subject``/``headline``/``body`` for the contacts that
   may get it (one render per variant and *field shape* of contacts: which attributes they have,
   of which types). A variant that needs a field a contact lacks is not that contact's to get
   (the decision says "variant email/b needs first_name"; a channel none of whose variants renders
   is removed for the contact); the other variants and contacts plan normally, in the same pass
   (the variants each contact may get are part of the eligibility mask, see :func:`_decide`).
   Only a template that cannot render for anyone — a syntax error, an unknown filter — refuses
   the plan, with a :class:`~tummler.core.errors.StrategyError` naming the campaign file and line;
5. write one ``decisions`` row per lever — *no send* and holdout rows too — with its propensity, the
   policy version, and its reasons: the rules that removed levers, the runner-up and the largest
   feature contributions, so that :func:`explain_decision` needs nothing but the row.

**Send slots.** A slot is a day of the planning horizon and a time of day in the contact's own time
zone (``send_slots`` of the channel; a channel without slots may send on any full hour). The horizon
starts now (or at the campaign window's start) and ends at the window's end, at most seven days
later; a campaign without a window is planned for the next 24 hours. The UTC time of a slot is found
per time zone and per day with :mod:`zoneinfo` (:func:`local_slots_to_utc`), so a daylight-saving
change inside the horizon moves the UTC time of the later slots, never their local time: a local
time that does not exist that day (clocks spring forward over it) is no slot that day, and one that
happens twice (clocks fall back) is sent at its first occurrence (``fold=0``).

**Spend caps.** A campaign's ``spend_caps`` (channel → the most it may spend) and a channel's shared
``spend_cap`` in the strategy (the most spent across campaigns per window, less what is already
committed: see :func:`_spend_caps`) become a cap on the channel's sends in the plan, met by pricing
the channel (:func:`tummler.decide.fit_channel_prices`): the capped sends go to the contacts for whom
the channel is worth most over their next-best option. The summary gives each capped channel's
spend and shadow price (:class:`ChannelBudget`); the decision of a contact who would have got the
channel without the cap (the same plan without caps, same seed) says so, and ``explain`` with it.

**Re-planning** replaces the campaign's previous decisions, except those of contacts with a decision
that already has a delivery: those contacts keep their decisions and are not planned again. So
re-planning never duplicates a decision and never rewrites what was (or is being) sent.

**Policy versions.** A campaign is decided by the newest promoted ``policy_versions`` row named
after its objective whose dimensions fit the campaign's action set; its ``parameters`` are
``{"policy": Policy.to_dict(), "featurizer": {...ContextFeaturizer fields...}}`` (a bare
``Policy.to_dict()`` is accepted too, the featurizer then being rebuilt from the strategy). Without
one, a fresh logistic Thompson sampling prior decides, its featurizer fitted on the first chunk of
the audience, and is stored as version 0 of the objective, promoted (it is the only policy there
is), so that later plans — and ``learn`` — start from exactly the same features. A learned
version's ``channel_harm`` (:mod:`tummler.learn.harm`) is added to each channel's cost per send:
the unsubscribes and complaints its rewards could not carry.

**Fatigue.** A contact's sends are the decisions of *other* campaigns with a channel, not held out,
whose ``send_at`` falls between the start of the window before now and the end of this plan's
horizon (planned sends count: they will be sent), leaving out those whose delivery failed or was
skipped.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, Table, and_, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from tummler.app.consent import consent_log, consent_names, latest_granted
from tummler.app.rendering import TEMPLATE_FIELDS, check_templates, contact_fields
from tummler.app.strategy import (
    CONTACT_VIEW_COLUMNS,
    ENGAGEMENT_EVENTS,
    Severity,
    check_workspace_strategy,
    contact_view,
    readable_strategy,
    store_campaign,
)
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import NotFoundError, PolicyError, StrategyError
from tummler.core.randomness import make_rng
from tummler.core.vocabulary import ConsentStatus, DeliveryStatus, Stage
from tummler.decide import (
    HISTORY_SIGNALS,
    ActionSet,
    ContextData,
    ContextFeaturizer,
    Eligibility,
    EligibilityRules,
    LogisticThompson,
    Plan,
    Policy,
    Reason,
    SelectionRules,
    build_action_set,
    compute_eligibility,
    plan,
    reason_names,
)
from tummler.learn.harm import ChannelHarm
from tummler.store import models
from tummler.store.database import session_scope
from tummler.store.types import sqlite_timestamp
from tummler.strategy import (
    Campaign,
    CampaignDocument,
    Channel,
    ContactColumns,
    Override,
    SourceMap,
    Strategy,
    Urgency,
    Visibility,
    evaluate,
    parse_expression,
    unmet_conditions,
)

__all__ = [
    "HISTORY_WINDOWS_DAYS",
    "ChannelBudget",
    "DecisionExplanation",
    "LeverExplanation",
    "PlanReport",
    "PlannedContexts",
    "ProgressCallback",
    "explain_decision",
    "load_campaign",
    "local_slots_to_utc",
    "plan_campaign",
    "planned_contexts",
]

#: The history windows of the context features, in days.
HISTORY_WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)
#: Called as ``progress(phase, done, total)``; phases ``read`` (contacts) and ``write`` (decisions).
ProgressCallback = Callable[[str, int, int], None]

_DEFAULT_HORIZON = timedelta(days=1)
_MAX_HORIZON = timedelta(days=7)
_URGENCY_LEVEL = {
    Urgency.LOW: 0.0,
    Urgency.NORMAL: 1 / 3,
    Urgency.HIGH: 2 / 3,
    Urgency.CRITICAL: 1.0,
}
_FAILED_DELIVERY = (
    DeliveryStatus.FAILED.value,
    DeliveryStatus.DEAD.value,
    DeliveryStatus.SKIPPED.value,
)
_STAGES = tuple(s.value for s in Stage)
_DECISIONS: Table = models.Decision.__table__  # type: ignore[assignment]
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: No relevance gate for a critical message that may override it (the threshold must be finite).
_NO_THRESHOLD = -1e9
_RULE_WORDS = {
    "no_identity": "no identity",
    "no_consent": "no consent",
    "stage": "stage not allowed",
    "quiet_hours": "quiet hours",
    "outside_window": "outside the campaign window",
    "fatigue_cap": "fatigue cap reached",
    "frequency_cap": "frequency cap reached",
    "channel_norm": "channel norms (a public channel for a private message)",
    "template_field": "no variant renders for this contact (a field it lacks)",
}


# ------------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ChannelBudget:
    """A channel with a spend cap in one plan: what it could spend, what it spent, what the cap cost.

    Attributes
    ----------
    channel
        The channel's id.
    limit
        The most this plan could spend on it: the tighter of the campaign's ``spend_caps`` (less
        what the campaign's kept, already delivered decisions spent) and the strategy's shared
        ``spend_cap`` (less what every campaign has committed in its window).
    committed
        The spend already committed that counted against the tighter cap.
    sends_allowed
        ``limit`` divided by the channel's ``cost_per_send``, rounded down.
    sends, spend
        What the plan sends on the channel, and what that costs.
    shadow_price
        The channel's Lagrange multiplier: how much more than its cost a send had to be worth
        (over the contact's next-best option) to get one of the capped sends; 0 when the cap did
        not bind.
    dropped, moved
        Contacts who would have got this channel without the cap and got no send / another
        channel instead.
    """

    channel: str
    limit: float
    committed: float
    sends_allowed: int
    sends: int
    spend: float
    shadow_price: float
    dropped: int
    moved: int


@dataclass(frozen=True)
class PlanReport:
    """What one planning run decided (or, with ``dry_run``, would have decided).

    Attributes
    ----------
    campaign
        The campaign's key.
    dry_run
        Nothing was written.
    audience
        Contacts in the audience that were planned (contacts kept from an earlier plan excluded).
    kept
        Contacts whose earlier decisions already have a delivery: kept, not planned again.
    replaced
        Decisions of the previous plan that this one replaced.
    decisions
        Decision rows written (or that would be written).
    sends_per_channel
        Channel id → sends.
    sends_per_slot
        Local time of day (``HH:MM``) → sends.
    no_sends, holdout
        Contacts with no lever (holdout included) / held out.
    removed
        Channel id → rule name → contacts for whom the rule removed some of that channel's levers.
    expected_value
        Sum of the expected value (reward minus cost) of every send.
    policy
        ``kind@version`` of the deciding policy; ``policy_version_id`` its row (``None`` in a dry
        run with a fresh prior).
    seed
        The seed the plan was drawn with (give it again for the same decisions).
    horizon_start, horizon_end
        The planning horizon (UTC).
    seconds, contacts_per_second
        Wall time of the whole run and its throughput.
    notes
        Anything worth knowing (a stored policy that did not fit, unknown time zones...).
    spend_per_channel
        Channel id → sends × ``cost_per_send``.
    budgets
        The channels with a spend cap (:class:`ChannelBudget`).
    variant_gaps
        ``"<channel>/<variant> needs <field>"`` → contacts who may get the channel but lack the
        field, so that variant was not theirs to get.
    """

    campaign: str
    dry_run: bool
    audience: int
    kept: int
    replaced: int
    decisions: int
    sends_per_channel: dict[str, int]
    sends_per_slot: dict[str, int]
    no_sends: int
    holdout: int
    removed: dict[str, dict[str, int]]
    expected_value: float
    policy: str
    policy_version_id: int | None
    seed: int
    horizon_start: datetime
    horizon_end: datetime
    seconds: float
    contacts_per_second: float
    notes: tuple[str, ...] = ()
    spend_per_channel: dict[str, float] = field(default_factory=dict)
    budgets: tuple[ChannelBudget, ...] = ()
    variant_gaps: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (times in ISO 8601)."""
        data = asdict(self)
        data["horizon_start"] = self.horizon_start.isoformat()
        data["horizon_end"] = self.horizon_end.isoformat()
        data["notes"] = list(self.notes)
        data["budgets"] = [asdict(b) for b in self.budgets]
        return data


# ---------------------------------------------------------------------------------- campaign set-up


@dataclass(frozen=True, eq=False)
class _Setup:
    """Everything about the campaign that does not depend on the contacts."""

    strategy: Strategy
    campaign: Campaign
    channels: tuple[Channel, ...]
    actions: ActionSet
    message: dict[str, float]
    start: datetime
    end: datetime
    reference: datetime  # Monday 00:00 (naive wall time) that slot minutes count from
    slot_minutes: npt.NDArray[np.int64]  # (n_slots,) local minutes from the reference
    channel_slot: npt.NDArray[np.bool_]  # (n_ch, n_sl) the slot is one of the channel's times
    quiet_slot: npt.NDArray[np.bool_]  # (n_ch, n_sl) the slot is inside the channel's quiet hours
    eligibility_rules: EligibilityRules
    selection_rules: SelectionRules
    holdout_share: float
    fatigue_window: timedelta | None
    frequency_windows: tuple[timedelta | None, ...]
    # (n_ch,) the policy's harm per send, already in ``selection_rules.cost``; None: none learned
    harm: npt.NDArray[np.float64] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.channels)

    def with_harm(self, harm: ChannelHarm) -> _Setup:
        """This set-up with the policy's harm per send added to each channel's cost."""
        if not harm:
            return self
        per_send = harm.per_send(self.names)
        rules = self.selection_rules
        cost = rules.channel_cost(len(self.names)) + per_send
        return replace(self, selection_rules=replace(rules, cost=cost), harm=per_send)

    def lookup(self) -> dict[str, int]:
        """Channel index by id and by kind (identities, consent and events may use either)."""
        index: dict[str, int] = {}
        for c, channel in enumerate(self.channels):
            index.setdefault(channel.kind.value, c)
        for c, channel in enumerate(self.channels):
            index[channel.id] = c
        return index


def load_campaign(workspace: Path, key: str, clock: Clock) -> tuple[Strategy, Campaign]:
    """The workspace's strategy and its campaign ``key``, refusing a strategy with errors."""
    strategy, document = _load_document(workspace, key, clock)
    return strategy, document.campaign


def _load_document(workspace: Path, key: str, clock: Clock) -> tuple[Strategy, CampaignDocument]:
    loaded, findings = check_workspace_strategy(workspace, engine=None, clock=clock)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors or loaded.strategy is None:
        raise StrategyError(
            f"{len(errors)} error(s) in the strategy or its campaigns; run `tummler strategy "
            f"check` and fix them before planning (first: {errors[0] if errors else 'no strategy'})"
        )
    for document in loaded.campaigns:
        if document.campaign.id == key:
            return loaded.strategy.strategy, document
    known = ", ".join(sorted(d.campaign.id for d in loaded.campaigns)) or "none"
    raise NotFoundError(
        f"no campaign {key!r} in {workspace / 'campaigns'} (known: {known}); check the id in the "
        "campaign file"
    )


def _minutes(value: Any) -> int:
    return int(value.hour) * 60 + int(value.minute)


def _setup(strategy: Strategy, campaign: Campaign, now: datetime) -> _Setup:
    channels = tuple(
        channel
        for key in campaign.channel_ids
        if (channel := strategy.channel(key)) is not None and campaign.variants.get(key)
    )
    if not channels:
        raise StrategyError(
            f"campaign {campaign.id!r} has no channel of the strategy with variants; add variants "
            "for at least one of its channels"
        )
    policy = strategy.lever_policy
    message = campaign.message
    critical = message.urgency is Urgency.CRITICAL
    overrides = set(policy.critical_overrides) if critical else set()
    attributes = {
        "public": 1.0 if message.visibility is Visibility.PUBLIC else 0.0,
        "urgency": _URGENCY_LEVEL[message.urgency],
        "emotional": 1.0 if message.emotion else 0.0,
    }
    start = ensure_utc(now)
    end = start + _DEFAULT_HORIZON
    if campaign.window is not None:
        start = max(start, ensure_utc(campaign.window.start))
        end = ensure_utc(campaign.window.end)
        if end <= ensure_utc(now):
            raise StrategyError(
                f"campaign {campaign.id!r} ended at {end.isoformat()}; move its window.end to "
                "plan it again"
            )
    end = min(end, start + _MAX_HORIZON)
    naive_start = start.replace(tzinfo=None)
    # the Monday before the day before the start: every local slot then has a non-negative hour
    earliest = naive_start - timedelta(days=1)
    reference = datetime.combine(
        (earliest - timedelta(days=earliest.weekday())).date(), datetime.min.time()
    )
    times: list[list[int]] = [
        sorted({_minutes(t) for t in c.send_slots}) or list(range(0, 24 * 60, 60)) for c in channels
    ]
    all_times = sorted({t for ts in times for t in ts})
    # local days that can hold a slot inside the horizon, whatever the offset (−12 h to +14 h)
    first_day = (naive_start - reference).days - 1
    last_day = math.ceil((end.replace(tzinfo=None) - reference).total_seconds() / 86_400) + 1
    days = range(first_day, last_day + 1)
    slot_minutes = np.array([d * 1440 + t for d in days for t in all_times], np.int64)
    actions = build_action_set(
        [c.id for c in channels],
        slot_minutes // 60,
        {c.id: [v.id for v in campaign.variants[c.id]] for c in channels},
        message_attributes=attributes,
    )
    minute_of_day = slot_minutes % 1440
    channel_slot = np.stack([np.isin(minute_of_day, ts) for ts in times])
    quiet_slot = np.zeros_like(channel_slot)
    if Override.QUIET_HOURS not in overrides:
        for c, channel in enumerate(channels):
            if channel.quiet_hours is None:
                continue
            q0, q1 = _minutes(channel.quiet_hours.start), _minutes(channel.quiet_hours.end)
            quiet_slot[c] = (
                (minute_of_day >= q0) & (minute_of_day < q1)
                if q0 <= q1
                else (minute_of_day >= q0) | (minute_of_day < q1)
            )
    fatigue = None if Override.FATIGUE in overrides else policy.fatigue
    use_frequency = Override.FREQUENCY_CAP not in overrides
    frequency_windows = tuple(
        c.frequency_cap.window if use_frequency and c.frequency_cap is not None else None
        for c in channels
    )
    frequency_caps = np.array(
        [
            c.frequency_cap.count if use_frequency and c.frequency_cap is not None else -1
            for c in channels
        ],
        np.int64,
    )
    stage_allowed = np.array(
        [[s in {x.value for x in c.stages_allowed} for s in _STAGES] for c in channels], bool
    )
    norm_allowed = np.array(
        [not (c.public and message.visibility is Visibility.PRIVATE) for c in channels], bool
    )
    eligibility_rules = EligibilityRules(
        fatigue_cap=fatigue.cap if fatigue is not None else None,
        frequency_caps=frequency_caps if (frequency_caps >= 0).any() else None,
        stage_allowed=stage_allowed,
        norm_allowed=norm_allowed,
    )
    selection_rules = SelectionRules(
        cost=np.array([c.cost_per_send for c in channels], np.float64),
        threshold=(
            _NO_THRESHOLD if Override.RELEVANCE in overrides else policy.relevance_threshold
        ),
        lever_budget=policy.levers_per_contact,
        critical=Override.LEVER_BUDGET in overrides,
    )
    return _Setup(
        strategy=strategy,
        campaign=campaign,
        channels=channels,
        actions=actions,
        message=attributes,
        start=start,
        end=end,
        reference=reference,
        slot_minutes=slot_minutes,
        channel_slot=channel_slot,
        quiet_slot=quiet_slot,
        eligibility_rules=eligibility_rules,
        selection_rules=selection_rules,
        holdout_share=campaign.effective_holdout(policy),
        fatigue_window=fatigue.window if fatigue is not None else None,
        frequency_windows=frequency_windows,
    )


def _featurizer(strategy: Strategy, setup: _Setup) -> ContextFeaturizer:
    categorical = tuple(sorted(k for k, a in strategy.attributes.items() if a.type == "string"))
    numeric = tuple(sorted(k for k, a in strategy.attributes.items() if a.type != "string"))
    return ContextFeaturizer(
        categorical=categorical,
        numeric=numeric,
        channels=setup.names,
        windows=HISTORY_WINDOWS_DAYS,
        message_attributes=tuple(sorted(setup.message)),
    )


def _featurizer_to_dict(featurizer: ContextFeaturizer) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(featurizer).items()}


def _featurizer_from_dict(data: dict[str, Any]) -> ContextFeaturizer:
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return ContextFeaturizer(**values)


# ----------------------------------------------------------------------------------- reading chunks


@dataclass
class _Chunk:
    """One chunk of the audience, already filtered by the audience expression."""

    ids: npt.NDArray[np.int64]
    zone: npt.NDArray[np.int64]  # index into :class:`_ZoneSlots`
    stage: npt.NDArray[np.int64]
    data: ContextData
    eligibility: Eligibility
    shape: npt.NDArray[np.int64]  # the contact's field shape (:class:`_FieldShapes`)


@dataclass
class _FieldShapes:
    """Contacts grouped by the *shape* of their template fields: which attributes they have, the
    type of each, and which of ``locale``/``time_zone``/``stage`` are missing.

    Whether a template renders depends on that shape (a ``StrictUndefined`` gap is a missing
    name, ``attributes.x`` a missing key), so rendering one representative of every shape checks
    every contact — a handful of renders instead of one per contact and variant.
    """

    index: dict[tuple[Any, ...], int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def of(self, row: Any) -> int:
        attributes = row.attributes or {}
        key = (
            tuple(sorted((k, type(v).__name__) for k, v in attributes.items())),
            row.locale is None,
            row.time_zone is None,
            row.stage is None,
        )
        shape = self.index.get(key)
        if shape is None:
            shape = self.index[key] = len(self.examples)
            self.examples.append(
                contact_fields(
                    external_id=str(row.external_id),
                    attributes=attributes,
                    locale=row.locale,
                    time_zone=row.time_zone,
                    stage=row.stage,
                )
            )
        return shape


def local_slots_to_utc(
    zone: tzinfo, reference: datetime, slot_minutes: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The UTC time of local send slots in one time zone, day by day, daylight saving included.

    Parameters
    ----------
    zone
        The contact's time zone (a :class:`zoneinfo.ZoneInfo`).
    reference
        A naive wall time (a Monday 00:00) that slots count from, read as UTC for the result.
    slot_minutes
        ``(n_slots,)`` each slot's local wall time, in minutes after ``reference``.

    Returns
    -------
    numpy.ndarray
        ``(n_slots,)`` each slot's UTC time in minutes after ``reference`` (as UTC); ``nan`` for a
        wall time that does not exist in ``zone`` (skipped when clocks spring forward). A wall time
        that exists twice (clocks fall back) maps to its first occurrence (``fold=0``).

    Examples
    --------
    Berlin leaves summer time on Sunday 2026-10-25: 09:00 is 07:00 UTC on Saturday, 08:00 UTC on
    Sunday.

    >>> from zoneinfo import ZoneInfo
    >>> monday = datetime(2026, 10, 19)
    >>> saturday, sunday = 5 * 1440 + 9 * 60, 6 * 1440 + 9 * 60
    >>> (local_slots_to_utc(ZoneInfo("Europe/Berlin"), monday, [saturday, sunday]) % 1440) / 60
    array([7., 8.])
    """
    minutes = np.asarray(slot_minutes, dtype=np.int64).reshape(-1)
    out = np.full(minutes.shape, np.nan)
    epoch = reference.replace(tzinfo=UTC)
    for i, value in enumerate(minutes.tolist()):
        local = reference + timedelta(minutes=value)
        utc = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) != local:
            continue  # in the gap of a spring-forward change: no such wall time that day
        out[i] = (utc - epoch).total_seconds() / 60
    return out


class _ZoneSlots:
    """Per time zone seen in the audience, the UTC time of every slot of the action set.

    Computed once per zone (a few hundred slots), so the per-contact cost is one table lookup. An
    unknown zone is planned as UTC (and named in the plan's notes).
    """

    def __init__(self, setup: _Setup) -> None:
        self._reference = setup.reference
        self._slot_minutes = setup.slot_minutes
        self._index: dict[str, int] = {}
        self._tables: list[npt.NDArray[np.float64]] = []
        self._stacked: npt.NDArray[np.float64] | None = None

    def index(self, zone: str | None) -> int:
        name = zone or "UTC"
        found = self._index.get(name)
        if found is None:
            try:
                info: tzinfo = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                info = UTC
            found = self._index[name] = len(self._tables)
            self._tables.append(local_slots_to_utc(info, self._reference, self._slot_minutes))
            self._stacked = None
        return found

    @property
    def table(self) -> npt.NDArray[np.float64]:
        """``(n_zones, n_slots)`` UTC minutes after the reference, ``nan`` where no such time."""
        if self._stacked is None:
            self._stacked = (
                np.stack(self._tables)
                if self._tables
                else np.zeros((0, self._slot_minutes.size), np.float64)
            )
        return self._stacked


def _utc_offset_minutes(zone: str | None, at: datetime, cache: dict[str, float | None]) -> float:
    name = zone or "UTC"
    if name not in cache:
        try:
            offset = at.astimezone(ZoneInfo(name)).utcoffset()
            cache[name] = offset.total_seconds() / 60 if offset is not None else 0.0
        except (ZoneInfoNotFoundError, ValueError):
            cache[name] = None
    value = cache[name]
    return 0.0 if value is None else value


def _as_datetime(value: Any) -> datetime:
    # aggregates bypass the column type on SQLite, which then returns text
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return ensure_utc(value)


def _seconds(values: Iterable[datetime]) -> npt.NDArray[np.float64]:
    return np.fromiter((ensure_utc(v).timestamp() for v in values), dtype=np.float64)


@dataclass(frozen=True)
class _RawReads:
    """Identities and consent of a chunk's contacts under the store's raw channel names, and every
    consent event in order (the outbox's rule needs the latest across a channel's names)."""

    identities: dict[str, npt.NDArray[np.bool_]]
    consents: dict[str, npt.NDArray[np.bool_]]
    consent_events: list[tuple[int, str, str]]

    def kept(self, keep: npt.NDArray[np.bool_]) -> _RawReads:
        """The same reads for the contacts ``keep`` selects (the events need no cut: readers
        ignore contacts they have no row for)."""
        return _RawReads(
            {k: v[keep] for k, v in self.identities.items()},
            {k: v[keep] for k, v in self.consents.items()},
            self.consent_events,
        )


def _raw_reads(
    connection: Connection, rows: Sequence[Any], position: dict[int, int], *, now: datetime
) -> _RawReads:
    size = len(rows)
    lo, hi = int(rows[0].id), int(rows[-1].id)

    def between(column: Any) -> Any:
        return and_(column >= lo, column <= hi)

    def empty() -> npt.NDArray[np.bool_]:
        return np.zeros(size, bool)

    raw_identity: defaultdict[str, npt.NDArray[np.bool_]] = defaultdict(empty)
    for contact_id, channel in connection.execute(
        select(models.ChannelIdentity.contact_id, models.ChannelIdentity.channel)
        .where(between(models.ChannelIdentity.contact_id))
        .distinct()
    ):
        if contact_id in position:
            raw_identity[channel][position[contact_id]] = True
    consent_events = consent_log(connection, now=now, contacts=(lo, hi))
    # per raw name, for the audience expression's consent("...")
    latest: dict[tuple[int, str], str] = {}
    for contact_id, channel, status in consent_events:
        latest[(contact_id, channel)] = status
    raw_consent: defaultdict[str, npt.NDArray[np.bool_]] = defaultdict(empty)
    for (contact_id, channel), status in latest.items():
        if contact_id in position:
            raw_consent[channel][position[contact_id]] = status == ConsentStatus.GRANTED.value

    return _RawReads(dict(raw_identity), dict(raw_consent), consent_events)


def _in_audience(
    connection: Connection, rows: Sequence[Any], *, now: datetime, audience: Any
) -> tuple[list[Any], _RawReads | None]:
    """The rows of ``rows`` (ordered by id) that the audience expression keeps, and their
    identities and consent as read for the filter (``None`` without an audience).

    Run before the full read of a chunk, so that the history, sends, mentions and edges of people
    outside the audience are never read: a campaign for a tenth of the base costs about a tenth.
    """
    if audience is None or not rows:
        return list(rows), None
    view, raw = _audience_view(connection, rows, now=now)
    keep = evaluate(audience, view)
    return [row for row, kept in zip(rows, keep.tolist(), strict=True) if kept], raw.kept(keep)


def _audience_view(
    connection: Connection, rows: Sequence[Any], *, now: datetime
) -> tuple[ContactColumns, _RawReads]:
    """The audience expression's view of ``rows`` (ordered by id) as of ``now``, and their
    identities and consent as read for it."""
    position = {int(r.id): p for p, r in enumerate(rows)}
    raw = _raw_reads(connection, rows, position, now=now)
    engaged = np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[us]")
    for contact_id, at in connection.execute(
        select(models.Event.contact_id, func.max(models.Event.at))
        .where(
            models.Event.contact_id >= int(rows[0].id),
            models.Event.contact_id <= int(rows[-1].id),
            models.Event.type.in_([e.value for e in ENGAGEMENT_EVENTS]),
            models.Event.at <= now,
        )
        .group_by(models.Event.contact_id)
    ):
        if contact_id in position and at is not None:
            engaged[position[contact_id]] = np.datetime64(
                _as_datetime(at).replace(tzinfo=None), "us"
            )

    view = contact_view(
        rows,
        now=now,
        consents=raw.consents,
        identities=raw.identities,
        last_engaged=engaged,
    )
    return view, raw


def _read_chunk(
    connection: Connection,
    setup: _Setup,
    rows: Sequence[Any],
    *,
    now: datetime,
    campaign_id: int | None,
    zones: dict[str, float | None],
    shapes: _FieldShapes,
    slots: _ZoneSlots | None = None,
    raw: _RawReads | None = None,
) -> _Chunk:
    """Everything planning reads for ``rows``; ``raw``: their identities and consent, when the
    audience filter read them already."""
    size = len(rows)
    ids = np.array([r.id for r in rows], np.int64)
    lo, hi = int(ids[0]), int(ids[-1])
    position = {int(i): p for p, i in enumerate(ids)}
    lookup = setup.lookup()
    n_ch = len(setup.channels)
    now_s = now.timestamp()

    def between(column: Any) -> Any:
        return and_(column >= lo, column <= hi)

    raw = raw if raw is not None else _raw_reads(connection, rows, position, now=now)
    raw_identity, consent_events = raw.identities, raw.consent_events

    # the offset at the horizon's start places past activity in the day; slots use the zone's rules
    offsets = np.array(
        [_utc_offset_minutes(r.time_zone, setup.start, zones) for r in rows], np.float64
    )
    slots = slots if slots is not None else _ZoneSlots(setup)
    zone = np.array([slots.index(r.time_zone) for r in rows], np.int64)
    stage = np.array([_STAGES.index(r.stage) if r.stage in _STAGES else 0 for r in rows], np.int64)

    # the strategy's attributes become features below
    attributes: defaultdict[str, list[Any]] = defaultdict(lambda: [None] * size)
    for i, row in enumerate(rows):
        for name, value in (row.attributes or {}).items():
            attributes[name][i] = value

    shape = np.array([shapes.of(row) for row in rows], np.int64)

    has_identity = np.zeros((size, n_ch), bool)
    # the outbox's rule: the latest event across the channel's id and its kind decides
    consent = latest_granted(
        consent_events,
        [consent_names(channel.id, channel.kind.value) for channel in setup.channels],
        position,
        size,
    )
    for c, channel in enumerate(setup.channels):
        for name in {channel.id, channel.kind.value}:
            if name in raw_identity:
                has_identity[:, c] |= raw_identity[name]
        if not channel.consent_required:
            consent[:, c] = True

    # sends in the fatigue and frequency windows (other campaigns' levers, planned or sent)
    windows = [w for w in (setup.fatigue_window, *setup.frequency_windows) if w is not None]
    sends_total = np.zeros(size, np.int64)
    sends_channel = np.zeros((size, n_ch), np.int64)
    if windows:
        earliest = now - max(windows)
        failed = (
            select(models.Delivery.decision_id)
            .where(models.Delivery.status.in_(_FAILED_DELIVERY))
            .scalar_subquery()
        )
        query = select(
            models.Decision.contact_id, models.Decision.channel, models.Decision.send_at
        ).where(
            between(models.Decision.contact_id),
            models.Decision.channel.is_not(None),
            models.Decision.holdout.is_(False),
            models.Decision.send_at >= earliest,
            models.Decision.send_at < setup.end,
            models.Decision.id.not_in(failed),
        )
        if campaign_id is not None:
            query = query.where(models.Decision.campaign_id != campaign_id)
        for contact_id, channel, send_at in connection.execute(query):
            p = position.get(contact_id)
            if p is None or send_at is None:
                continue
            at = ensure_utc(send_at)
            if setup.fatigue_window is not None and at >= now - setup.fatigue_window:
                sends_total[p] += 1
            index = lookup.get(channel)
            window = setup.frequency_windows[index] if index is not None else None
            if index is not None and window is not None and at >= now - window:
                sends_channel[p, index] += 1

    # engagement history per channel and window
    n_w = len(HISTORY_WINDOWS_DAYS)
    history = np.zeros((size, n_ch, n_w, len(HISTORY_SIGNALS)))
    recency = np.full((size, n_ch), np.inf)
    activity = np.zeros((size, 24))
    since = now - timedelta(days=max(HISTORY_WINDOWS_DAYS))
    events = connection.execute(
        select(
            models.Event.contact_id, models.Event.channel, models.Event.type, models.Event.at
        ).where(between(models.Event.contact_id), models.Event.at >= since, models.Event.at <= now)
    ).all()
    if events:
        where = np.array([position.get(e.contact_id, -1) for e in events], np.int64)
        channel_index = np.array([lookup.get(e.channel or "", -1) for e in events], np.int64)
        signal_of = {name: i for i, name in enumerate(HISTORY_SIGNALS)}
        signal = np.array([signal_of.get(e.type, -1) for e in events], np.int64)
        age_days = (now_s - _seconds(e.at for e in events)) / 86_400
        known = where >= 0
        per_channel = known & (channel_index >= 0) & (signal >= 0)
        for w, days in enumerate(HISTORY_WINDOWS_DAYS):
            inside = per_channel & (age_days <= days)
            window_index = np.full(int(inside.sum()), w, np.int64)
            np.add.at(
                history, (where[inside], channel_index[inside], window_index, signal[inside]), 1.0
            )
        engaging = np.isin([e.type for e in events], [e.value for e in ENGAGEMENT_EVENTS])
        rec = per_channel & engaging
        np.minimum.at(recency, (where[rec], channel_index[rec]), age_days[rec])
        act = known & engaging
        local_hour = np.floor(
            ((now_s - age_days[act] * 86_400) / 3600 + offsets[where[act]] / 60) % 24
        ).astype(np.int64)
        np.add.at(activity, (where[act], np.minimum(local_hour, 23)), 1.0)

    mentions = np.zeros(size)
    sentiment = np.full(size, np.nan)
    for contact_id, count, mean in connection.execute(
        select(
            models.Mention.contact_id,
            func.count(models.Mention.id),
            func.avg(models.Mention.sentiment),
        )
        .where(between(models.Mention.contact_id))
        .group_by(models.Mention.contact_id)
    ):
        p = position.get(contact_id)
        if p is not None:
            mentions[p] = count
            sentiment[p] = np.nan if mean is None else float(mean)
    degree = np.zeros(size)
    for end in (models.SocialEdge.source_contact_id, models.SocialEdge.target_contact_id):
        for contact_id, count in connection.execute(
            select(end, func.count()).where(between(end)).group_by(end)
        ):
            p = position.get(contact_id)
            if p is not None:
                degree[p] += count

    categorical: dict[str, npt.NDArray[np.object_]] = {}
    numeric: dict[str, npt.NDArray[np.float64]] = {}
    for name, spec in setup.strategy.attributes.items():
        values = attributes.get(name, [None] * size)
        if spec.type == "string":
            text = np.empty(size, dtype=object)
            text[:] = ["" if v is None else str(v) for v in values]
            categorical[name] = text
        else:
            numeric[name] = np.array([_number(v) for v in values], np.float64)

    eligibility = compute_eligibility(
        setup.actions,
        has_identity=has_identity,
        consent=consent,
        stage=stage,
        sends_in_window=sends_total,
        channel_sends=sends_channel,
        rules=setup.eligibility_rules,
    )
    eligibility = _with_slots(eligibility, setup, slots.table[zone])
    data = ContextData(
        stage=stage,
        categorical=categorical,
        numeric=numeric,
        history=history,
        recency_days=recency,
        activity_hours=activity,
        mentions=mentions,
        sentiment=sentiment,
        degree=degree,
    )
    return _Chunk(ids=ids, zone=zone, stage=stage, data=data, eligibility=eligibility, shape=shape)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return math.nan


def _with_slots(
    eligibility: Eligibility, setup: _Setup, utc: npt.NDArray[np.float64]
) -> Eligibility:
    """Add the slot rules, to the minute: each channel's own send times, its quiet hours, and the
    planning horizon (in UTC, per contact: ``utc`` is ``(n, n_slots)`` minutes after the reference,
    ``nan`` for a local time that does not exist that day, which is never inside)."""
    start = (setup.start.replace(tzinfo=None) - setup.reference).total_seconds() / 60
    end = (setup.end.replace(tzinfo=None) - setup.reference).total_seconds() / 60
    inside = (utc >= start) & (utc < end)
    own = setup.channel_slot[None, :, :] & inside[:, None, :]  # (n, n_ch, n_sl)
    loud = own & ~setup.quiet_slot[None, :, :]
    reasons = eligibility.reasons.copy()
    quieted = (own & setup.quiet_slot[None, :, :]).any(axis=2)
    reasons |= np.where(quieted, Reason.QUIET_HOURS.value, 0).astype(np.uint8)
    reasons |= np.where(~own.any(axis=2), Reason.OUTSIDE_WINDOW.value, 0).astype(np.uint8)
    return Eligibility(
        channel_ok=eligibility.channel_ok, slot_ok=eligibility.slot_ok & loud, reasons=reasons
    )


def _concat(
    chunks: Sequence[_Chunk], n_ch: int, n_sl: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], Eligibility]:
    if not chunks:
        return (
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            Eligibility(
                np.zeros((0, n_ch), bool),
                np.zeros((0, n_ch, n_sl), bool),
                np.zeros((0, n_ch), np.uint8),
            ),
        )
    return (
        np.concatenate([c.ids for c in chunks]),
        np.concatenate([c.zone for c in chunks]),
        np.concatenate([c.stage for c in chunks]),
        Eligibility(
            np.concatenate([c.eligibility.channel_ok for c in chunks]),
            np.concatenate([c.eligibility.slot_ok for c in chunks]),
            np.concatenate([c.eligibility.reasons for c in chunks]),
        ),
    )


# -------------------------------------------------------------------------------------- templates

#: Stands in for the outbox's signed link when an e-mail template is checked at plan time.
_UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/plan-time-check"


@dataclass(frozen=True, eq=False)
class _VariantAccess:
    """Which variants render for which field shape of contacts, and what a failing one needs.

    Attributes
    ----------
    ok
        ``(n_shapes, n_channels, n_variants)`` the variant renders for contacts of that shape
        (``False`` for padding variants that do not exist).
    needs
        ``(shape, channel, variant)`` → the field a failing variant needs.
    """

    ok: npt.NDArray[np.bool_]
    needs: dict[tuple[int, int, int], str]

    def of(self, shape: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """``(n, n_channels, n_variants)`` the variants each contact may get."""
        return self.ok[shape]


def _template_line(source: SourceMap | None, path: tuple[str | int, ...], line: int | None) -> str:
    """Where a template's own line is in the campaign file (``file:line``), as well as it is known."""
    if source is None:
        return "the campaign file"
    node = source.node(*path)
    first, _ = source.locate(*path)
    where = source.file or "the campaign file"
    if first is None:
        return where
    # a block scalar (| or >) starts on the line after its indicator
    block = getattr(node, "style", None) in ("|", ">")
    return f"{where}:{first + (line or 1) - 1 + (1 if block else 0)}"


def _check_templates(
    setup: _Setup,
    eligibility: Eligibility,
    shape: npt.NDArray[np.int64],
    shapes: _FieldShapes,
    source: SourceMap | None = None,
) -> _VariantAccess:
    """Render every variant's subject, headline and body for every field shape of contacts that may
    get it, before anything is decided or written.

    A variant that needs a field some contacts lack is not stopped: it becomes ineligible for those
    contacts (their other variants, and everyone else, plan normally), and the decision says which
    field it needed. A template that cannot render for anyone — a syntax error, an unknown filter,
    something the sandbox forbids — stops the plan.

    Contacts are checked by field shape (:class:`_FieldShapes`): one render per variant and shape.

    Raises
    ------
    StrategyError
        For a template that is wrong in itself, naming the campaign file and line, the variant and
        its field.
    """
    actions = setup.actions
    n_shapes = len(shapes.examples)
    ok = np.broadcast_to(
        actions.variant_available[None], (n_shapes, actions.n_channels, actions.n_variants)
    ).copy()
    needs: dict[tuple[int, int, int], str] = {}
    if shape.size == 0:
        return _VariantAccess(ok, needs)
    reachable = eligibility.channel_ok & eligibility.slot_ok.any(axis=2)  # (n, n_ch)
    for c, channel in enumerate(setup.channels):
        present = np.unique(shape[reachable[:, c]])
        link = _UNSUBSCRIBE_PLACEHOLDER if channel.kind.value == "email" else None
        for v, variant in enumerate(setup.campaign.variants.get(channel.id, [])):
            templates = {
                f"{channel.id}/{variant.id}.{part}": getattr(variant, part)
                for part in TEMPLATE_FIELDS
            }
            # a template wrong in itself fails for everyone: checked even with no one to get it
            for k in [*present.tolist(), None]:
                person = (
                    {"external_id": "-"}
                    if k is None
                    else shapes.examples[int(k)] | ({"unsubscribe_url": link} if link else {})
                )
                problems = check_templates(templates, [person], limit=len(templates))
                wrong = [p for p in problems if p.missing is None]
                if wrong:
                    problem = wrong[0]
                    part = problem.template.rsplit(".", 1)[1]
                    where = _template_line(source, ("variants", channel.id, v, part), problem.line)
                    raise StrategyError(
                        f"{where}: campaign {setup.campaign.id!r}: variant {problem.template} "
                        f"cannot be rendered for anyone: {problem.reason}; fix the template in "
                        "the campaign file"
                    )
                if k is not None and problems:
                    ok[int(k), c, v] = False
                    needs[(int(k), c, v)] = str(problems[0].missing)
    return _VariantAccess(ok, needs)


# --------------------------------------------------------------------------------------- the policy


@dataclass(frozen=True, eq=False)
class _PolicyChoice:
    policy: Policy
    featurizer: ContextFeaturizer | None  # None: fit a fresh one on the first chunk
    row_id: int | None  # the stored version, when it exists already
    notes: tuple[str, ...] = ()
    harm: ChannelHarm = field(default_factory=ChannelHarm)


def _choose_policy(
    connection: Connection, setup: _Setup, fresh: ContextFeaturizer
) -> _PolicyChoice:
    """The latest promoted version for the campaign's objective that fits this action set, else a
    fresh logistic Thompson sampling prior."""
    from tummler.app import policies

    actions = setup.actions

    def fits(stored: policies.CampaignPolicy) -> bool:
        featurizer = stored.featurizer or fresh
        return (
            stored.policy.n_action_features == actions.n_features
            and stored.policy.n_channels == actions.n_channels
            and stored.policy.n_context_features == len(featurizer.feature_names())
        )

    chosen, notes = policies.choose_promoted(connection, setup.campaign.objective, fits)
    if chosen is not None:
        stored = chosen.policy
        return _PolicyChoice(
            stored.policy, stored.featurizer, chosen.id, notes, stored.channel_harm
        )
    prior = LogisticThompson(len(fresh.feature_names()), actions.n_features, actions.n_channels)
    return _PolicyChoice(prior, None, None, notes)


def _record_prior(
    session: Session, setup: _Setup, policy: Policy, featurizer: ContextFeaturizer, now: datetime
) -> int:
    """The fresh prior's version row (:func:`tummler.app.policies.record_prior`)."""
    from tummler.app import policies

    return policies.record_prior(session, setup.campaign.objective, policy, featurizer, now)


# ------------------------------------------------------------------------------------- explanations


def _explanations(
    x: npt.NDArray[np.float32],
    result: Plan,
    setup: _Setup,
    policy: Policy,
    eligibility: Eligibility,
    names: npt.NDArray[np.object_],
    weights: npt.NDArray[np.float32] | None,
    *,
    start: int,
    stop: int,
    top: int = 3,
    variant_ok: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.int64], list[list[list[Any]]]]:
    """For contacts ``start:stop``, the runner-up action (``-1``: *no send*) and the largest feature
    contributions to the first lever's score against the runner-up's, vectorized. ``variant_ok``
    (``(stop - start, n_channels, n_variants)``) leaves out the variants a contact may not get."""
    actions = setup.actions
    cost = setup.selection_rules.channel_cost(actions.n_channels)[actions.channel]
    contributions: list[list[list[Any]]] = [[] for _ in range(stop - start)]
    rows = np.arange(stop - start)
    value = policy.scores(x[start:stop], actions) - cost[None, :]
    mask = eligibility.rows(start, stop).mask(actions) & actions.available[None, :]
    if variant_ok is not None:
        mask &= variant_ok[:, actions.channel, actions.variant]
    value = np.where(mask, value, -np.inf)
    first = result.action[start:stop, 0]
    value[rows[first >= 0], first[first >= 0]] = -np.inf
    # the runner-up on another channel says more ("e-mail over SMS because..."); the same
    # channel's next slot or variant only when no other channel is eligible
    other = np.where(
        (first >= 0)[:, None]
        & (actions.channel[None, :] == actions.channel[np.maximum(first, 0)][:, None]),
        -np.inf,
        value,
    )
    best_other = other.argmax(axis=1)
    use_other = np.isfinite(other[rows, best_other])
    best = np.where(use_other, best_other, value.argmax(axis=1))
    found = np.isfinite(value[rows, best])
    runner = np.where(found, best, -1).astype(np.int64)
    if weights is None:
        return runner, contributions
    wt = weights.T  # (k, d_x)
    column = np.where((first >= 0)[:, None], wt[np.maximum(first, 0)], 0.0)
    column = column - np.where(found[:, None], wt[best], 0.0)
    delta = x[start:stop] * column
    order = np.argsort(-np.abs(delta), axis=1, kind="stable")[:, :top]
    picked = np.take_along_axis(delta, order, axis=1)
    for i in np.flatnonzero((picked != 0).any(axis=1)):
        contributions[i] = [
            [str(names[j]), round(float(v), 6)]
            for j, v in zip(order[i], picked[i], strict=True)
            if v != 0
        ]
    return runner, contributions


# ------------------------------------------------------------------------------------- spend caps


@dataclass(frozen=True, eq=False)
class _Caps:
    """The spend caps of one plan, per channel of the action set (``inf``: uncapped)."""

    limit: npt.NDArray[np.float64]  # money this plan may spend
    committed: npt.NDArray[np.float64]  # spend already committed against the tighter cap
    sends: npt.NDArray[np.float64]  # limit // cost_per_send

    @property
    def capped(self) -> bool:
        """Whether any channel has a cap."""
        return bool(np.isfinite(self.sends).any())


def _spend_caps(connection: Connection, setup: _Setup, *, campaign_id: int | None) -> _Caps:
    """Each channel's spend limit for this plan: the tighter of the campaign's ``spend_caps`` and
    the strategy's shared ``spend_cap``, each less the spend already committed against it.

    Committed against the campaign's cap: its own decisions that already have a delivery (they are
    kept when re-planning). Against the shared cap: every campaign's sends on the channel (planned
    or made, not held out, not failed) from one window before the horizon's start to its end — a
    window of the cap ending anywhere in the horizon holds no more than that, so the plan keeps
    every such window under the cap. This campaign's decisions without a delivery are not counted:
    this plan replaces them. Spend is sends × today's ``cost_per_send``.
    """
    n_ch = len(setup.channels)
    limit = np.full(n_ch, np.inf)
    committed = np.zeros(n_ch)
    sends = np.full(n_ch, np.inf)
    delivered = select(models.Delivery.decision_id).scalar_subquery()
    failed = (
        select(models.Delivery.decision_id)
        .where(models.Delivery.status.in_(_FAILED_DELIVERY))
        .scalar_subquery()
    )
    for c, channel in enumerate(setup.channels):
        cost = channel.cost_per_send
        if cost <= 0:
            continue  # a free channel: a spend cap caps nothing (the strategy check warns)
        options: list[tuple[float, float]] = []  # (limit, committed)
        campaign_cap = setup.campaign.spend_caps.get(channel.id)
        if campaign_cap is not None:
            kept = 0
            if campaign_id is not None:
                kept = int(
                    connection.scalar(
                        select(func.count())
                        .select_from(models.Decision)
                        .where(
                            models.Decision.campaign_id == campaign_id,
                            models.Decision.channel == channel.id,
                            models.Decision.holdout.is_(False),
                            models.Decision.id.in_(delivered),
                        )
                    )
                    or 0
                )
            options.append((campaign_cap - kept * cost, kept * cost))
        shared = channel.spend_cap
        if shared is not None:
            query = (
                select(func.count())
                .select_from(models.Decision)
                .where(
                    models.Decision.channel == channel.id,
                    models.Decision.holdout.is_(False),
                    models.Decision.send_at >= setup.start - shared.window,
                    models.Decision.send_at < setup.end,
                    models.Decision.id.not_in(failed),
                )
            )
            if campaign_id is not None:
                query = query.where(
                    or_(
                        models.Decision.campaign_id != campaign_id,
                        models.Decision.id.in_(delivered),
                    )
                )
            spent = int(connection.scalar(query) or 0) * cost
            options.append((shared.amount - spent, spent))
        if options:
            left, already = min(options)
            limit[c] = max(left, 0.0)
            committed[c] = already
            # a small tolerance, so that 0.15 / 0.05 is three sends, not 2.999...
            sends[c] = math.floor(limit[c] / cost + 1e-9)
    return _Caps(limit=limit, committed=committed, sends=sends)


def _budgets(
    setup: _Setup, caps: _Caps | None, result: Plan, lost: npt.NDArray[np.bool_]
) -> tuple[ChannelBudget, ...]:
    if caps is None:
        return ()
    actions = setup.actions
    per_channel = result.sends_per_channel(actions)
    has = _channels_of(result.action, actions)
    nothing = ~has.any(axis=1)
    budgets = []
    for c, channel in enumerate(setup.channels):
        if not np.isfinite(caps.sends[c]):
            continue
        budgets.append(
            ChannelBudget(
                channel=channel.id,
                limit=float(caps.limit[c]),
                committed=float(caps.committed[c]),
                sends_allowed=int(caps.sends[c]),
                sends=int(per_channel[c]),
                spend=float(per_channel[c] * channel.cost_per_send),
                shadow_price=float(result.channel_price[c]),
                dropped=int((lost[:, c] & nothing).sum()),
                moved=int((lost[:, c] & ~nothing).sum()),
            )
        )
    return tuple(budgets)


def _channels_of(action: npt.NDArray[np.int64], actions: ActionSet) -> npt.NDArray[np.bool_]:
    """``(n, n_channels)`` which channels each contact's levers use."""
    has = np.zeros((action.shape[0], actions.n_channels), bool)
    rows, levers = np.nonzero(action >= 0)
    has[rows, actions.channel[action[rows, levers]]] = True
    return has


# ---------------------------------------------------------------------------------------- deciding


@dataclass(frozen=True, eq=False)
class _Decided:
    """The plan, with what the app adds to it: per contact, the variants each may get and the
    channels it lost to a spend cap."""

    result: Plan
    variant_ok: npt.NDArray[np.bool_]  # (n, n_ch, n_var)
    lacking: npt.NDArray[np.bool_]  # (n, n_ch, n_var) a variant the contact may not get: a field
    blocked: npt.NDArray[np.bool_]  # (n, n_ch) the channel was reachable but no variant renders
    lost: npt.NDArray[np.bool_]  # (n, n_ch) the contact would have got it without the spend caps


def _decide(
    x: npt.NDArray[np.float32],
    setup: _Setup,
    policy: Policy,
    eligibility: Eligibility,
    variant_ok: npt.NDArray[np.bool_],
    rules: SelectionRules,
    *,
    seed: int,
    stage: npt.NDArray[np.int64],
    draws: int,
) -> _Decided:
    """Decide every contact's levers, with per-contact variants and channel spend caps.

    A variant that some contacts cannot get (their template needs a field they lack) is part of
    the eligibility (``variant_ok``): the engine never picks it for them, a channel none of whose
    variants renders is not eligible for them, and everyone is planned in one pass — the holdout
    drawn and the caps priced over all contacts alike. When a cap binds, the same plan without
    caps (same seed, so the same holdout and posterior draws) says which contacts lost a channel
    to it.
    """
    actions = setup.actions
    available = actions.variant_available[None]
    variant_ok = variant_ok & available
    reachable = eligibility.channel_ok & eligibility.slot_ok.any(axis=2)
    lacking = available & ~variant_ok & reachable[:, :, None]
    blocked = reachable & ~variant_ok.any(axis=2)
    masked = replace(eligibility, variant_ok=variant_ok)
    options: dict[str, Any] = {"strata": stage, "holdout_share": setup.holdout_share}
    result = plan(x, actions, policy, masked, rules, rng=make_rng(seed), draws=draws, **options)
    lost = np.zeros(eligibility.channel_ok.shape, bool)
    prices = result.channel_price
    if prices.any():
        free = plan(
            x,
            actions,
            policy,
            masked,
            replace(rules, channel_caps=None),
            rng=make_rng(seed),
            draws=1,  # only the decisions are compared; they do not depend on draws
            **options,
        )
        lost = (
            _channels_of(free.action, actions)
            & ~_channels_of(result.action, actions)
            & (prices > 0)[None, :]
        )
    return _Decided(result, variant_ok, lacking, blocked, lost)


# ------------------------------------------------------------------------------------------ service


@dataclass(frozen=True, slots=True)
class PlannedContexts:
    """What a plan of one campaign saw for some contacts at one moment: the action set, the message's
    attributes, the selection rules, and per contact its context data and eligibility mask.

    Learning and off-policy evaluation rebuild these for logged decisions, so that a policy is
    updated and judged on the features and levers it decided with.
    """

    actions: ActionSet
    message: dict[str, float]
    selection_rules: SelectionRules
    ids: npt.NDArray[np.int64]
    data: ContextData
    mask: npt.NDArray[np.bool_]


def planned_contexts(
    connection: Connection,
    strategy: Strategy,
    campaign: Campaign,
    *,
    contacts: Sequence[Any],
    campaign_id: int | None,
    at: datetime,
) -> PlannedContexts:
    """Rebuild what planning ``campaign`` at ``at`` computed for ``contacts`` (rows with ``id``,
    ``external_id``, ``locale``, ``time_zone``, ``stage``, ``attributes``), without the audience
    filter: the contacts were decided for, so they were in the audience then."""
    setup = _setup(strategy, campaign, at)
    shapes = _FieldShapes()
    chunk = _read_chunk(
        connection,
        setup,
        contacts,
        now=at,
        campaign_id=campaign_id,
        zones={},
        shapes=shapes,
    )
    actions = setup.actions
    mask = chunk.eligibility.mask(actions)
    try:
        access: _VariantAccess | None = _check_templates(
            setup, chunk.eligibility, chunk.shape, shapes
        )
    except StrategyError:
        access = None  # the templates broke since: they no longer say who could get what
    if access is not None:  # a variant whose fields a contact lacks was never its to get
        mask &= access.of(chunk.shape)[:, actions.channel, actions.variant]
    return PlannedContexts(
        actions=actions,
        message=setup.message,
        selection_rules=setup.selection_rules,
        ids=chunk.ids,
        data=chunk.data,
        mask=mask,
    )


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
    if chunk_size < 1 or write_batch < 1:
        raise PolicyError(
            f"chunk_size and write_batch must be positive, got {chunk_size} and {write_batch}"
        )
    now = ensure_utc(clock.now())
    strategy, document = _load_document(workspace, campaign_key, clock)
    campaign = document.campaign
    setup = _setup(strategy, campaign, now)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
    audience = (
        parse_expression(a.filter)
        if campaign.audience is not None and (a := strategy.audience(campaign.audience))
        else None
    )
    fresh = _featurizer(strategy, setup)
    zones: dict[str, float | None] = {}
    slots = _ZoneSlots(setup)
    shapes = _FieldShapes()
    chunks: list[_Chunk] = []
    x_parts: list[npt.NDArray[np.float32]] = []
    with engine.connect() as connection:
        campaign_id = connection.scalar(
            select(models.Campaign.id).where(models.Campaign.key == campaign.id)
        )
        kept_ids: set[int] = set()
        if campaign_id is not None:
            kept_ids = set(
                connection.scalars(
                    select(models.Decision.contact_id)
                    .join(models.Delivery, models.Delivery.decision_id == models.Decision.id)
                    .where(models.Decision.campaign_id == campaign_id)
                    .distinct()
                )
            )
        choice = _choose_policy(connection, setup, fresh)
        setup = setup.with_harm(choice.harm)
        caps = _spend_caps(connection, setup, campaign_id=campaign_id)
        featurizer = choice.featurizer
        total = (
            connection.scalar(
                select(func.count())
                .select_from(models.Contact)
                .where(models.Contact.forgotten_at.is_(None))
            )
            or 0
        )
        done, last_id = 0, -1
        while True:
            rows = connection.execute(
                select(*CONTACT_VIEW_COLUMNS)
                .where(models.Contact.forgotten_at.is_(None), models.Contact.id > last_id)
                .order_by(models.Contact.id)
                .limit(chunk_size)
            ).all()
            if not rows:
                break
            last_id = int(rows[-1].id)
            done += len(rows)
            rows = [r for r in rows if int(r.id) not in kept_ids]
            rows, raw = _in_audience(connection, rows, now=now, audience=audience)
            if rows:
                chunk = _read_chunk(
                    connection,
                    setup,
                    rows,
                    now=now,
                    campaign_id=campaign_id,
                    zones=zones,
                    shapes=shapes,
                    slots=slots,
                    raw=raw,
                )
                if chunk.ids.size:
                    if featurizer is None:
                        featurizer = fresh.fit(chunk.data)
                    x_parts.append(featurizer.transform(chunk.data, setup.message))
                    chunks.append(chunk)
            if progress is not None:
                progress("read", done, total)
    featurizer = featurizer or fresh.fit(
        ContextData(stage=np.zeros(0, np.int64), numeric={k: np.zeros(0) for k in fresh.numeric})
    )
    actions = setup.actions
    ids, zone, stage, eligibility = _concat(chunks, actions.n_channels, actions.n_slots)
    n_features = len(featurizer.feature_names())
    x = np.concatenate(x_parts) if x_parts else np.zeros((0, n_features), np.float32)
    shape = np.concatenate([c.shape for c in chunks]) if chunks else np.zeros(0, np.int64)
    access = _check_templates(setup, eligibility, shape, shapes, document.source)
    policy = choice.policy
    rules = setup.selection_rules
    if caps.capped:
        rules = replace(rules, channel_caps=caps.sends)
    decided = _decide(
        x,
        setup,
        policy,
        eligibility,
        access.of(shape),
        rules,
        seed=seed,
        stage=stage,
        draws=draws,
    )
    result = decided.result
    notes = list(choice.notes)
    if choice.harm:
        notes.append(
            "harm per send learned from unsubscribes and complaints, added to each channel's "
            f"cost: {choice.harm.listing(setup.names)}"
        )
    unknown = sorted(z for z, v in zones.items() if v is None)
    if unknown:
        notes.append(f"unknown time zones planned as UTC: {', '.join(unknown[:5])}")
    gaps = _variant_gaps(setup, decided, shape, access)
    for gap, count in gaps.items():
        notes.append(f"variant {gap}: {count} contact(s) lack it and were not given that variant")
    decisions = int(np.maximum(result.n_levers, 1).sum())

    policy_version_id = choice.row_id
    replaced = 0
    if not dry_run:
        weights = policy.weight_matrix(actions)
        names = np.asarray(featurizer.feature_names(), dtype=object)
        with session_scope(engine) as session:
            stored = store_campaign(
                session, setup.campaign, holdout_share=setup.holdout_share, now=now
            )
            campaign_row, variant_ids = stored.row, stored.variant_ids
            if policy_version_id is None and decisions:
                # not for an empty audience: the prior's featurizer would be fitted on nothing
                policy_version_id = _record_prior(session, setup, policy, featurizer, now)
            replaced = _delete_previous(session, campaign_row.id)
            connection = session.connection()
            written = 0
            # records are made batch by batch, so that memory stays bounded for any audience
            for start in range(0, result.n, write_batch):
                stop = min(result.n, start + write_batch)
                runner, contributions = _explanations(
                    x,
                    result,
                    setup,
                    policy,
                    eligibility,
                    names,
                    weights,
                    start=start,
                    stop=stop,
                    variant_ok=decided.variant_ok[start:stop],
                )
                batch = _decision_records(
                    decided,
                    setup,
                    ids,
                    slots.table[zone[start:stop]],
                    runner,
                    contributions,
                    start=start,
                    stop=stop,
                    now=now,
                    needs=_needs(setup, decided, shape, access, start, stop),
                )
                for record in batch:
                    record["campaign_id"] = campaign_row.id
                    record["policy_version_id"] = policy_version_id
                    variant = record.pop("_variant")
                    record["variant_id"] = variant_ids.get(variant) if variant else None
                _write_decisions(connection, batch)
                written += len(batch)
                if progress is not None:
                    progress("write", written, decisions)
    elif campaign_id is not None:
        replaced = _count_replaceable(engine, campaign_id)

    return _report(
        setup,
        result,
        ids=ids,
        eligibility=eligibility,
        dry_run=dry_run,
        kept=len(kept_ids),
        replaced=replaced,
        decisions=decisions,
        policy=policy,
        policy_version_id=policy_version_id,
        seed=seed,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        budgets=_budgets(setup, caps if caps.capped else None, result, decided.lost),
        gaps=gaps,
    )


#: The columns :func:`_write_decisions` fills, in order (``id`` comes from the database).
_DECISION_COLUMNS = (
    "campaign_id",
    "contact_id",
    "lever",
    "channel",
    "send_at",
    "variant_id",
    "action",
    "propensity",
    "expected_value",
    "policy_version_id",
    "holdout",
    "reasons",
    "decided_at",
)


def _write_decisions(connection: Connection, batch: Sequence[dict[str, Any]]) -> None:
    """Insert decision records in the connection's transaction, the fastest way each store has.

    PostgreSQL: ``COPY ... FROM STDIN`` through psycopg. SQLite: the driver's ``executemany``
    with the values already in the form SQLAlchemy's types would store (naive UTC text for times,
    JSON text for reasons). Anything else: Core ``executemany``. Profiling ``tummler plan`` found
    SQLAlchemy's per-row parameter processing the largest single cost of writing decisions.
    """
    if not batch:
        return
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    columns = ", ".join(_DECISION_COLUMNS)
    if dialect == "postgresql" and hasattr(driver, "cursor"):
        sql = f"COPY {_DECISIONS.name} ({columns}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for record in batch:
                copy.write_row(
                    [
                        json.dumps(record[c]) if c == "reasons" else record[c]
                        for c in _DECISION_COLUMNS
                    ]
                )
        return
    if dialect == "sqlite":
        times: dict[datetime, str] = {}  # decided_at is one moment; send_at a few slots

        def text(value: datetime | None) -> str | None:
            if value is None:
                return None
            found = times.get(value)
            if found is None:
                found = times[value] = sqlite_timestamp(value)
            return found

        marks = ", ".join("?" for _ in _DECISION_COLUMNS)
        rows = [
            (
                r["campaign_id"],
                r["contact_id"],
                r["lever"],
                r["channel"],
                text(r["send_at"]),
                r["variant_id"],
                r["action"],
                r["propensity"],
                r["expected_value"],
                r["policy_version_id"],
                int(r["holdout"]),
                json.dumps(r["reasons"]),
                text(r["decided_at"]),
            )
            for r in batch
        ]
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(f"INSERT INTO {_DECISIONS.name} ({columns}) VALUES ({marks})", rows)
        finally:
            cursor.close()
        return
    connection.execute(insert(_DECISIONS), list(batch))  # pragma: no cover - other stores


def _count_replaceable(engine: Engine, campaign_id: int) -> int:
    delivered = (
        select(models.Decision.contact_id)
        .join(models.Delivery, models.Delivery.decision_id == models.Decision.id)
        .where(models.Decision.campaign_id == campaign_id)
    )
    with engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count())
                .select_from(models.Decision)
                .where(
                    models.Decision.campaign_id == campaign_id,
                    models.Decision.contact_id.not_in(delivered),
                )
            )
            or 0
        )


def _delete_previous(session: Session, campaign_id: int) -> int:
    """Delete the campaign's decisions of contacts none of whose decisions has a delivery."""
    delivered = (
        select(models.Decision.contact_id)
        .join(models.Delivery, models.Delivery.decision_id == models.Decision.id)
        .where(models.Decision.campaign_id == campaign_id)
    )
    result = session.execute(
        delete(models.Decision)
        .where(
            models.Decision.campaign_id == campaign_id,
            models.Decision.contact_id.not_in(delivered),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@functools.cache
def _rule_names(bits: int) -> list[str]:
    """:func:`~tummler.decide.reason_names`, once per bit pattern (there are 256)."""
    return reason_names(bits)


def _local_label(minutes: int) -> str:
    day = _DAYS[(minutes // 1440) % 7]
    return f"{day} {(minutes % 1440) // 60:02d}:{minutes % 60:02d}"


def _variant_name(setup: _Setup, c: int, v: int) -> str:
    return f"{setup.channels[c].id}/{setup.actions.variant_names[c][v]}"


def _needs(
    setup: _Setup,
    decided: _Decided,
    shape: npt.NDArray[np.int64],
    access: _VariantAccess,
    start: int,
    stop: int,
) -> list[dict[str, str] | None]:
    """Per contact of ``start:stop``, the variants it could not get and the field each needs."""
    out: list[dict[str, str] | None] = [None] * (stop - start)
    lacking = decided.lacking[start:stop]
    for i in np.flatnonzero(lacking.any(axis=(1, 2))).tolist():
        k = int(shape[start + i])
        out[i] = {
            _variant_name(setup, c, v): access.needs.get((k, c, v), "a field")
            for c, v in zip(*np.nonzero(lacking[i]), strict=True)
        }
    return out


def _variant_gaps(
    setup: _Setup, decided: _Decided, shape: npt.NDArray[np.int64], access: _VariantAccess
) -> dict[str, int]:
    """``"<channel>/<variant> needs <field>"`` → contacts who may get the channel but not it."""
    gaps: dict[str, int] = {}
    if shape.size == 0:
        return gaps
    for c, v in zip(*np.nonzero(decided.lacking.any(axis=0)), strict=True):
        who = decided.lacking[:, c, v]
        for k in np.unique(shape[who]).tolist():
            key = f"{_variant_name(setup, int(c), int(v))} needs {access.needs.get((k, c, v), '?')}"
            gaps[key] = gaps.get(key, 0) + int((who & (shape == k)).sum())
    return gaps


def _decision_records(
    decided: _Decided,
    setup: _Setup,
    ids: npt.NDArray[np.int64],
    utc: npt.NDArray[np.float64],
    runner: npt.NDArray[np.int64],
    contributions: list[list[list[Any]]],
    *,
    start: int,
    stop: int,
    now: datetime,
    needs: Sequence[dict[str, str] | None] | None = None,
) -> list[dict[str, Any]]:
    """One record per lever (one per *no send*), ready for ``insert(Decision)`` once the campaign,
    variant and policy ids are known. ``utc`` is ``(stop - start, n_slots)``: each contact's slots
    in UTC minutes after the reference (:class:`_ZoneSlots`)."""
    result = decided.result
    actions = setup.actions
    names = setup.names
    policy = f"{result.policy_kind}@{result.policy_version}"
    reference = setup.reference.replace(tzinfo=UTC)
    prices = result.channel_price
    records: list[dict[str, Any]] = []
    action_name = functools.cache(actions.name)
    blocked = decided.blocked[start:stop]
    lost = decided.lost[start:stop]
    special = set(np.flatnonzero(blocked.any(axis=1) | lost.any(axis=1)).tolist())
    for i in range(start, stop):
        bits = result.reasons[i]
        removed = {names[c]: _rule_names(int(bits[c])) for c in range(len(names)) if bits[c]}
        runner_name = action_name(int(runner[i - start])) if runner[i - start] >= 0 else "no-send"
        base: dict[str, Any] = {
            "removed": removed,
            "runner_up": runner_name,
            "contributions": contributions[i - start],
            "explored": bool(result.explored[i]),
            "policy": policy,
        }
        gaps = needs[i - start] if needs is not None else None
        if gaps:
            base["variants_unavailable"] = gaps
        if setup.harm is not None:
            # the harm of the channels the choice weighed: the levers' and the runner-up's
            weighed = {
                int(actions.channel[a]) for a in (*result.action[i], runner[i - start]) if a >= 0
            }
            base["harm"] = {names[c]: round(float(setup.harm[c]), 6) for c in sorted(weighed)}
        if i - start in special:
            for c in np.flatnonzero(blocked[i - start]).tolist():
                removed[names[c]] = [*removed.get(names[c], []), "template_field"]
            capped = np.flatnonzero(lost[i - start]).tolist()
            if capped:
                base["spend_cap"] = {names[c]: float(prices[c]) for c in capped}
        levers = [int(a) for a in result.action[i] if a >= 0]
        if not levers:
            records.append(
                {
                    "contact_id": int(ids[i]),
                    "lever": 0,
                    "channel": None,
                    "send_at": None,
                    "_variant": None,
                    "action": actions.k,
                    "propensity": float(result.propensity[i, 0]),
                    "expected_value": float(result.expected_value[i, 0]),
                    "holdout": bool(result.holdout[i]),
                    "reasons": {**base, "action": "no-send"},
                    "decided_at": now,
                }
            )
            continue
        for lever, a in enumerate(levers):
            c, s, v = int(actions.channel[a]), int(actions.slot[a]), int(actions.variant[a])
            local = int(setup.slot_minutes[s])
            send_at = reference + timedelta(minutes=float(utc[i - start, s]))
            records.append(
                {
                    "contact_id": int(ids[i]),
                    "lever": lever,
                    "channel": names[c],
                    "send_at": send_at,
                    "_variant": (names[c], actions.variant_names[c][v]),
                    "action": a,
                    "propensity": float(result.propensity[i, lever]),
                    "expected_value": float(result.expected_value[i, lever]),
                    "holdout": False,
                    "reasons": {**base, "action": action_name(a), "local": _local_label(local)},
                    "decided_at": now,
                }
            )
    return records


def _report(
    setup: _Setup,
    result: Plan,
    *,
    ids: npt.NDArray[np.int64],
    eligibility: Eligibility,
    dry_run: bool,
    kept: int,
    replaced: int,
    decisions: int,
    policy: Policy,
    policy_version_id: int | None,
    seed: int,
    seconds: float,
    notes: tuple[str, ...],
    budgets: tuple[ChannelBudget, ...] = (),
    gaps: dict[str, int] | None = None,
) -> PlanReport:
    actions = setup.actions
    names = setup.names
    per_channel = result.sends_per_channel(actions)
    spend = {
        name: float(per_channel[c] * setup.channels[c].cost_per_send)
        for c, name in enumerate(names)
    }
    chosen = result.action[result.action >= 0]
    minute_of_day = setup.slot_minutes[actions.slot[chosen]] % 1440
    times, counts = np.unique(minute_of_day, return_counts=True)
    removed: dict[str, dict[str, int]] = {}
    for c, name in enumerate(names):
        per_rule = {
            reason.name.lower(): int((eligibility.reasons[:, c] & reason.value).astype(bool).sum())
            for reason in Reason
            if reason.name is not None
        }
        removed[name] = {k: v for k, v in per_rule.items() if v}
    sends = result.action >= 0
    value = float(np.nansum(np.where(sends, result.expected_value, 0.0)))
    return PlanReport(
        campaign=setup.campaign.id,
        dry_run=dry_run,
        audience=int(ids.size),
        kept=kept,
        replaced=replaced,
        decisions=decisions,
        sends_per_channel={name: int(per_channel[c]) for c, name in enumerate(names)},
        sends_per_slot={
            f"{t // 60:02d}:{t % 60:02d}": int(k) for t, k in zip(times, counts, strict=True)
        },
        no_sends=int((~sends.any(axis=1)).sum()),
        holdout=int(result.holdout.sum()),
        removed=removed,
        expected_value=value,
        policy=f"{policy.kind}@{policy.version}",
        policy_version_id=policy_version_id,
        seed=seed,
        horizon_start=setup.start,
        horizon_end=setup.end,
        seconds=seconds,
        contacts_per_second=ids.size / seconds if seconds > 0 else 0.0,
        notes=notes,
        spend_per_channel=spend,
        budgets=budgets,
        variant_gaps=dict(gaps or {}),
    )


# ------------------------------------------------------------------------------------------ explain


@dataclass(frozen=True)
class LeverExplanation:
    """One lever of a decision, as stored."""

    channel: str | None
    variant: str | None
    send_at: datetime | None
    local_time: str | None
    action: str
    propensity: float
    expected_value: float | None


@dataclass(frozen=True)
class DecisionExplanation:
    """Why one contact got what it got in one campaign, read back from its decision rows."""

    contact: str
    campaign: str
    levers: tuple[LeverExplanation, ...]
    holdout: bool
    explored: bool
    removed: dict[str, list[str]]
    unavailable: tuple[str, ...]
    runner_up: str | None
    contributions: tuple[tuple[str, float], ...]
    policy: str
    decided_at: datetime
    summary: str = field(default="")
    variants_unavailable: dict[str, str] = field(default_factory=dict)
    spend_cap: dict[str, float] = field(default_factory=dict)
    harm: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        data = asdict(self)
        data["decided_at"] = self.decided_at.isoformat()
        for lever in data["levers"]:
            if lever["send_at"] is not None:
                lever["send_at"] = lever["send_at"].isoformat()
        data["contributions"] = [list(c) for c in self.contributions]
        data["unavailable"] = list(self.unavailable)
        return data


def explain_decision(
    engine: Engine, *, contact: str, campaign_key: str, workspace: Path | None = None
) -> DecisionExplanation:
    """Explain a contact's decision in a campaign from what the plan stored with it.

    Parameters
    ----------
    engine
        The store.
    contact
        The contact's external id (or, failing that, its numeric id).
    campaign_key
        The campaign's id.
    workspace
        The workspace whose ``strategy.yaml`` defines the campaign's audience: with it, a contact
        without a decision is told which of the audience's conditions they fail.

    Raises
    ------
    NotFoundError
        When the contact, the campaign, or a decision for them is not in the store; for a contact
        outside the campaign's audience, the message says so, and why.
    """
    with engine.connect() as connection:
        campaign_id = connection.scalar(
            select(models.Campaign.id).where(models.Campaign.key == campaign_key)
        )
        if campaign_id is None:
            raise NotFoundError(
                f"no campaign {campaign_key!r} in the store: "
                f"run `tummler plan {campaign_key}` first"
            )
        person = connection.execute(
            select(models.Contact.id, models.Contact.external_id).where(
                models.Contact.external_id == contact
            )
        ).first()
        if person is None and contact.isdigit():
            person = connection.execute(
                select(models.Contact.id, models.Contact.external_id).where(
                    models.Contact.id == int(contact)
                )
            ).first()
        if person is None:
            raise NotFoundError(f"no contact with external id {contact!r} in the store")
    with Session(engine) as session:
        rows = session.execute(
            select(models.Decision, models.Variant.key)
            .outerjoin(models.Variant, models.Variant.id == models.Decision.variant_id)
            .where(
                models.Decision.campaign_id == campaign_id,
                models.Decision.contact_id == person.id,
            )
            .order_by(models.Decision.lever)
        ).all()
    if not rows:
        raise NotFoundError(
            _why_no_decision(
                engine, contact=str(person.external_id), contact_id=int(person.id),
                campaign_key=campaign_key, campaign_id=int(campaign_id), workspace=workspace,
            )
        )  # fmt: skip
    first: models.Decision = rows[0][0]
    reasons = dict(first.reasons or {})
    levers = tuple(
        LeverExplanation(
            channel=d.channel,
            variant=variant,
            send_at=d.send_at,
            local_time=(d.reasons or {}).get("local"),
            action=str((d.reasons or {}).get("action", "no-send")),
            propensity=float(d.propensity),
            expected_value=d.expected_value,
        )
        for d, variant in rows
        if d.channel is not None
    )
    removed = {str(k): list(v) for k, v in dict(reasons.get("removed", {})).items()}
    sent = {lever.channel for lever in levers}
    unavailable = tuple(
        c for c, rules in removed.items() if c not in sent and _blocks_channel(rules)
    )
    explanation = DecisionExplanation(
        contact=str(person.external_id),
        campaign=campaign_key,
        levers=levers,
        holdout=bool(first.holdout),
        explored=bool(reasons.get("explored", False)),
        removed=removed,
        unavailable=unavailable,
        runner_up=reasons.get("runner_up"),
        contributions=tuple((str(n), float(v)) for n, v in reasons.get("contributions", [])),
        policy=str(reasons.get("policy", "")),
        decided_at=first.decided_at,
        variants_unavailable={
            str(k): str(v) for k, v in dict(reasons.get("variants_unavailable", {})).items()
        },
        spend_cap={str(k): float(v) for k, v in dict(reasons.get("spend_cap", {})).items()},
        harm={str(k): float(v) for k, v in dict(reasons.get("harm", {})).items()},
    )
    return DecisionExplanation(
        **{**asdict(explanation), "levers": levers, "summary": _sentence(explanation)}
    )


def _why_no_decision(
    engine: Engine,
    *,
    contact: str,
    contact_id: int,
    campaign_key: str,
    campaign_id: int,
    workspace: Path | None,
) -> str:
    """Why a contact has no decision in a campaign: not planned yet; outside its audience as of the
    last plan (and the conditions they fail there), which a new plan cannot change; or come into
    the store or the audience since, which a new plan fixes."""
    head = f"contact {contact!r} has no decision in campaign {campaign_key!r}"
    with engine.connect() as connection:
        planned = connection.scalar(
            select(func.max(models.Decision.decided_at)).where(
                models.Decision.campaign_id == campaign_id
            )
        )
        if planned is None:
            return (
                f"{head}: the campaign has not been planned yet; run `tummler plan {campaign_key}`"
            )
        key = connection.scalar(
            select(models.Campaign.audience).where(models.Campaign.id == campaign_id)
        )
        audience = _audience_filter(workspace, key)
        if key is not None and audience is None:
            return (
                f"{head}: they were outside its audience {key!r}, or not yet in the store, when it "
                f"was last planned ({planned:%Y-%m-%d %H:%M} UTC)"
            )
        unmet: list[str] = []
        if audience is not None:
            row = connection.execute(
                select(*CONTACT_VIEW_COLUMNS).where(models.Contact.id == contact_id)
            ).one()
            view, _ = _audience_view(connection, [row], now=ensure_utc(planned))
            unmet = unmet_conditions(audience, view)
    if unmet:
        return (
            f"contact {contact!r} is outside the audience {key!r} of campaign {campaign_key!r} "
            f"({audience}) as of its last plan ({planned:%Y-%m-%d %H:%M} UTC), so they have no "
            f"decision: they fail {'; '.join(unmet)}. Planning again includes them only once they "
            "meet the audience's conditions, or after its filter in strategy.yaml changes"
        )
    return (
        f"{head}: they are in its audience but came into the store or the audience after its last "
        f"plan ({planned:%Y-%m-%d %H:%M} UTC); run `tummler plan {campaign_key}` again to decide "
        "for them"
    )


def _audience_filter(workspace: Path | None, key: str | None) -> str | None:
    """The filter of audience ``key`` in the workspace's strategy, if both can be read."""
    if workspace is None or key is None:
        return None
    loaded = readable_strategy(workspace)
    audience = loaded.strategy.audience(key) if loaded is not None else None
    return audience.filter if audience is not None else None


#: Rules that remove a whole channel (the others remove some of its slots).
_CHANNEL_RULES = {
    "no_identity",
    "no_consent",
    "stage",
    "fatigue_cap",
    "frequency_cap",
    "channel_norm",
    "outside_window",
    "template_field",
}


def _blocks_channel(rules: Sequence[str]) -> bool:
    return any(r in _CHANNEL_RULES for r in rules)


def _sentence(e: DecisionExplanation) -> str:
    """The decision in plain words."""
    parts: list[str] = []
    if e.holdout:
        head = (
            "held out (control group): nothing is sent, so that the campaign's effect can be "
            "measured"
        )
    elif not e.levers and e.runner_up in (None, "no-send"):
        head = "no send: every lever was removed by a rule"
    elif not e.levers:
        head = (
            f"no send: not even the best eligible lever ({e.runner_up}) cleared the relevance "
            "threshold"
        )
    else:
        head = " and ".join(
            f"{lever.channel} at {lever.local_time or '?'} local, variant {lever.variant}"
            for lever in e.levers
        )
    parts.append(head)
    for channel, price in e.spend_cap.items():
        instead = (
            f"{', '.join(lever.channel or '' for lever in e.levers)} instead"
            if e.levers
            else "no send instead"
        )
        parts.append(
            f"{channel} would have been chosen, but its spend cap gave its sends to contacts for "
            f"whom it is worth more (shadow price {price:.3g} per send): {instead}"
        )
    for variant, needed in e.variants_unavailable.items():
        parts.append(f"variant {variant} needs {needed}, which this contact lacks")
    if e.harm:
        listing = ", ".join(f"{c} {h:.3g}" for c, h in e.harm.items())
        parts.append(
            f"each send's expected value counts the harm per send that unsubscribes and "
            f"complaints showed on its channel: {listing}"
        )
    for channel, rules in e.removed.items():
        words = ", ".join(_RULE_WORDS.get(r, r) for r in rules)
        if channel in e.unavailable:
            parts.append(f"{channel} removed — {words}")
        else:
            parts.append(f"some {channel} slots removed — {words}")
    if e.levers and e.runner_up:
        chosen = e.levers[0].channel
        why = (
            ", ".join(f"{n} ({v:+.3g})" for n, v in e.contributions)
            if e.contributions
            else "of the policy's draw (nothing learned yet separates them)"
        )
        if e.explored:
            why = "it was drawn at random for exploration"
        parts.append(f"{chosen} chosen over {e.runner_up} because {why}")
    return "; ".join(parts)
