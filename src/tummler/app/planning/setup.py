"""Campaign set-up: everything about a plan that does not depend on the contacts.

The campaign and its strategy (refusing a strategy whose check finds errors), the planning horizon,
the send slots (a day of the horizon and a time of day in the contact's own zone), the action set,
the eligibility and selection rules with the critical message's overrides, and the context
featurizer (fresh from the strategy, or the one a stored policy version was fitted with).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.app.strategy import Severity, check_workspace_strategy
from tummler.core.clock import Clock, ensure_utc
from tummler.core.errors import NotFoundError, StrategyError
from tummler.core.vocabulary import Stage
from tummler.decide import (
    ActionSet,
    ContextData,
    ContextFeaturizer,
    EligibilityRules,
    SelectionRules,
    active_overrides,
    build_action_set,
    quiet_slots,
)
from tummler.learn.harm import ChannelHarm
from tummler.strategy import (
    Campaign,
    CampaignDocument,
    Channel,
    Exploration,
    LeverPolicy,
    MessageAttributes,
    Override,
    Strategy,
    Urgency,
    Visibility,
)

#: The history windows of the context features, in days.
HISTORY_WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)


_DEFAULT_HORIZON = timedelta(days=1)


_MAX_HORIZON = timedelta(days=7)


_URGENCY_LEVEL = {
    Urgency.LOW: 0.0,
    Urgency.NORMAL: 1 / 3,
    Urgency.HIGH: 2 / 3,
    Urgency.CRITICAL: 1.0,
}


_STAGES = tuple(s.value for s in Stage)


#: No relevance gate for a critical message that may override it (the threshold must be finite).
_NO_THRESHOLD = -1e9


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
    #: how much exploration the campaign's plans may spend (campaign's, else lever_policy's)
    exploration: Exploration
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
    """The campaign's set-up as of ``now``: its channels, horizon, slots, action set and rules,
    with the overrides a critical message may claim."""
    channels = _planned_channels(strategy, campaign)
    policy = strategy.lever_policy
    overrides = active_overrides(
        campaign.message.urgency is Urgency.CRITICAL, policy.critical_overrides
    )
    attributes = _message_attributes(campaign.message)
    start, end = _horizon(campaign, now)
    reference, slot_minutes, times = _slot_grid(channels, start, end)
    minute_of_day = slot_minutes % 1440
    channel_slot = np.stack([np.isin(minute_of_day, ts) for ts in times])
    fatigue = None if Override.FATIGUE in overrides else policy.fatigue
    use_frequency = Override.FREQUENCY_CAP not in overrides
    return _Setup(
        strategy=strategy,
        campaign=campaign,
        channels=channels,
        actions=build_action_set(
            [c.id for c in channels],
            slot_minutes // 60,
            {c.id: [v.id for v in campaign.variants[c.id]] for c in channels},
            message_attributes=attributes,
        ),
        message=attributes,
        start=start,
        end=end,
        reference=reference,
        slot_minutes=slot_minutes,
        channel_slot=channel_slot,
        quiet_slot=quiet_slots(
            [c.quiet_hours for c in channels],
            minute_of_day,
            overridden=Override.QUIET_HOURS in overrides,
        ),
        eligibility_rules=_eligibility_rules(
            channels,
            campaign.message,
            fatigue_cap=fatigue.cap if fatigue is not None else None,
            use_frequency=use_frequency,
        ),
        selection_rules=_selection_rules(channels, policy, overrides),
        holdout_share=campaign.effective_holdout(policy),
        exploration=campaign.effective_exploration(policy),
        fatigue_window=fatigue.window if fatigue is not None else None,
        frequency_windows=tuple(
            c.frequency_cap.window if use_frequency and c.frequency_cap is not None else None
            for c in channels
        ),
    )


def _planned_channels(strategy: Strategy, campaign: Campaign) -> tuple[Channel, ...]:
    """The campaign's channels that the strategy defines and the campaign has variants for."""
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
    return channels


def _message_attributes(message: MessageAttributes) -> dict[str, float]:
    """The message's attributes as the action features see them (0 to 1)."""
    return {
        "public": 1.0 if message.visibility is Visibility.PUBLIC else 0.0,
        "urgency": _URGENCY_LEVEL[message.urgency],
        "emotional": 1.0 if message.emotion else 0.0,
    }


def _horizon(campaign: Campaign, now: datetime) -> tuple[datetime, datetime]:
    """The planning horizon: from now (or the window's start) to the window's end, at most
    seven days; the next 24 hours for a campaign without a window."""
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
    return start, min(end, start + _MAX_HORIZON)


def _slot_grid(
    channels: Sequence[Channel], start: datetime, end: datetime
) -> tuple[datetime, npt.NDArray[np.int64], list[list[int]]]:
    """The reference Monday, every slot's local minutes after it, and each channel's times of day.

    Slots are local wall times: the grid covers every local day that can hold a slot inside the
    horizon, whatever the contact's offset (−12 h to +14 h); :mod:`.slots` finds their UTC times.
    """
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
    first_day = (naive_start - reference).days - 1
    last_day = math.ceil((end.replace(tzinfo=None) - reference).total_seconds() / 86_400) + 1
    days = range(first_day, last_day + 1)
    slot_minutes = np.array([d * 1440 + t for d in days for t in all_times], np.int64)
    return reference, slot_minutes, times


def _eligibility_rules(
    channels: Sequence[Channel],
    message: MessageAttributes,
    *,
    fatigue_cap: int | None,
    use_frequency: bool,
) -> EligibilityRules:
    """Fatigue and frequency caps, the stages each channel allows, and the channel norms."""
    frequency_caps = np.array(
        [
            c.frequency_cap.count if use_frequency and c.frequency_cap is not None else -1
            for c in channels
        ],
        np.int64,
    )
    return EligibilityRules(
        fatigue_cap=fatigue_cap,
        frequency_caps=frequency_caps if (frequency_caps >= 0).any() else None,
        stage_allowed=np.array(
            [[s in {x.value for x in c.stages_allowed} for s in _STAGES] for c in channels], bool
        ),
        norm_allowed=np.array(
            [not (c.public and message.visibility is Visibility.PRIVATE) for c in channels], bool
        ),
    )


def _selection_rules(
    channels: Sequence[Channel], policy: LeverPolicy, overrides: frozenset[Override]
) -> SelectionRules:
    """Channel costs, the relevance threshold and the lever budget, as overridden."""
    return SelectionRules(
        cost=np.array([c.cost_per_send for c in channels], np.float64),
        threshold=(
            _NO_THRESHOLD if Override.RELEVANCE in overrides else policy.relevance_threshold
        ),
        lever_budget=policy.levers_per_contact,
        critical=Override.LEVER_BUDGET in overrides,
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


@dataclass(eq=False)
class _Features:
    """The featurizer a plan decides with: a stored policy version's, or a fresh one from the
    strategy fitted on the first chunk of the audience that has contacts."""

    fresh: ContextFeaturizer
    fitted: ContextFeaturizer | None = None

    def transform(self, data: ContextData, message: dict[str, float]) -> npt.NDArray[np.float32]:
        """The context features of one chunk (fitting the fresh featurizer on the first)."""
        if self.fitted is None:
            self.fitted = self.fresh.fit(data)
        return self.fitted.transform(data, message)

    def final(self) -> ContextFeaturizer:
        """The featurizer that decided (fitted on nothing when no one was in the audience)."""
        if self.fitted is None:
            empty = ContextData(
                stage=np.zeros(0, np.int64), numeric={k: np.zeros(0) for k in self.fresh.numeric}
            )
            self.fitted = self.fresh.fit(empty)
        return self.fitted
