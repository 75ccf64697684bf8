"""What one planning run decided: the summary :func:`~tummler.app.planning.plan_campaign` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from tummler.app.planning.caps import ChannelBudget
from tummler.app.planning.selection import _Planned
from tummler.decide import Reason


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


def _report(
    planned: _Planned,
    *,
    dry_run: bool,
    kept: int,
    replaced: int,
    policy_version_id: int | None,
    seed: int,
    seconds: float,
    notes: tuple[str, ...],
    budgets: tuple[ChannelBudget, ...] = (),
    gaps: dict[str, int] | None = None,
) -> PlanReport:
    setup, result = planned.setup, planned.decided.result
    ids = planned.audience.ids
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
    sends = result.action >= 0
    value = float(np.nansum(np.where(sends, result.expected_value, 0.0)))
    return PlanReport(
        campaign=setup.campaign.id,
        dry_run=dry_run,
        audience=int(ids.size),
        kept=kept,
        replaced=replaced,
        decisions=planned.decided.rows,
        sends_per_channel={name: int(per_channel[c]) for c, name in enumerate(names)},
        sends_per_slot={
            f"{t // 60:02d}:{t % 60:02d}": int(k) for t, k in zip(times, counts, strict=True)
        },
        no_sends=int((~sends.any(axis=1)).sum()),
        holdout=int(result.holdout.sum()),
        removed=_removed(planned),
        expected_value=value,
        policy=f"{planned.policy.kind}@{planned.policy.version}",
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


def _removed(planned: _Planned) -> dict[str, dict[str, int]]:
    """Channel id → rule name → contacts for whom the rule removed some of its levers."""
    reasons = planned.audience.eligibility.reasons
    removed: dict[str, dict[str, int]] = {}
    for c, name in enumerate(planned.setup.names):
        per_rule = {
            reason.name.lower(): int((reasons[:, c] & reason.value).astype(bool).sum())
            for reason in Reason
            if reason.name is not None
        }
        removed[name] = {k: v for k, v in per_rule.items() if v}
    return removed
