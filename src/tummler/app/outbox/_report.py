"""What a run of the outbox did: one outcome per claimed delivery, and the crash recoveries."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DeliveryOutcome", "OutboxReport"]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one claimed delivery in this run.

    ``status`` is the delivery's new status, or ``"retry"`` / ``"deferred"`` when it went back to
    ``pending`` for a later attempt (back-off) or after the quiet hours.
    """

    delivery_id: int
    channel: str
    status: str
    reason: str | None = None


@dataclass
class OutboxReport:
    """What :func:`run_outbox` did: one outcome per claimed delivery, and the crash recoveries."""

    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    recovered: int = 0

    @property
    def counts(self) -> Counter[str]:
        """Outcomes by status (``sent``, ``failed``, ``retry``...)."""
        return Counter(o.status for o in self.outcomes)

    @property
    def by_channel(self) -> dict[str, Counter[str]]:
        """Outcomes by channel and status, for the summary table."""
        table: dict[str, Counter[str]] = {}
        for outcome in self.outcomes:
            table.setdefault(outcome.channel, Counter())[outcome.status] += 1
        return table
