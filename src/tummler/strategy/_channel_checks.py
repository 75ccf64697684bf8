"""Checks of one channel of the strategy: its send slots and quiet hours, consent, stages, spend caps."""

from __future__ import annotations

from tummler.strategy._findings import Finding, Severity
from tummler.strategy._loading import SourceMap, StrategyDocument
from tummler.strategy._models import Channel

__all__ = ["check_channel", "spend_cap_findings"]


def _in_quiet_hours(channel: Channel, slot_minutes: int) -> bool:
    if channel.quiet_hours is None:
        return False
    start = channel.quiet_hours.start.hour * 60 + channel.quiet_hours.start.minute
    end = channel.quiet_hours.end.hour * 60 + channel.quiet_hours.end.minute
    if start <= end:
        return start <= slot_minutes < end
    return slot_minutes >= start or slot_minutes < end


def check_channel(channel: Channel, index: int, document: StrategyDocument) -> list[Finding]:
    """Problems with channel number ``index`` of the strategy, as findings on its lines."""
    findings = []
    for slot_index, slot in enumerate(channel.send_slots):
        if _in_quiet_hours(channel, slot.hour * 60 + slot.minute):
            findings.append(
                document.source.finding(
                    Severity.WARNING,
                    "slot-in-quiet-hours",
                    f"channel {channel.id!r}: send slot {slot.strftime('%H:%M')} falls in its quiet "
                    "hours, so it will never be used; move the slot or the quiet hours",
                    "channels",
                    index,
                    "send_slots",
                    slot_index,
                )
            )
    if not channel.public and not channel.consent_required:
        findings.append(
            document.source.finding(
                Severity.WARNING,
                "norm-consent",
                f"channel {channel.id!r} is private but sends without consent: 1:1 messages need "
                "the person's consent in most places (GDPR, ePrivacy, TCPA); set "
                "`consent_required: true` unless you are sure",
                "channels",
                index,
                "consent_required",
            )
        )
    cap = channel.spend_cap
    if cap is not None:
        findings += spend_cap_findings(
            channel,
            cap.amount,
            f"channel {channel.id!r}: spend_cap.amount",
            document.source,
            ("channels", index, "spend_cap", "amount"),
        )
    if not channel.stages_allowed:
        findings.append(
            document.source.finding(
                Severity.WARNING,
                "no-stage-allowed",
                f"channel {channel.id!r} allows no stage: no one can be reached on it",
                "channels",
                index,
                "stages_allowed",
            )
        )
    return findings


def spend_cap_findings(
    channel: Channel,
    amount: float,
    what: str,
    source: SourceMap,
    path: tuple[str | int, ...],
) -> list[Finding]:
    """A cap that allows no send at all is a mistake (drop the channel instead); a cap on a free
    channel caps nothing."""
    cost = channel.cost_per_send
    if cost == 0:
        return [
            source.finding(
                Severity.WARNING,
                "spend-cap-no-cost",
                f"{what} caps spend on a channel whose cost_per_send is 0: it caps nothing; give "
                f"channel {channel.id!r} its cost_per_send in the strategy, or remove the cap",
                *path,
            )
        ]
    if amount < cost:
        return [
            source.finding(
                Severity.ERROR,
                "spend-cap-below-cost",
                f"{what} is {amount:g}, less than one send on {channel.id!r} costs "
                f"({cost:g}): no send could go out; raise it to at least {cost:g}, or drop the "
                "channel if it is not to be used",
                *path,
            )
        ]
    return []
