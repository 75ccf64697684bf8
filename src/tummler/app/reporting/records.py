"""What the store report says: per campaign, per objective, and the learning curve.

Frozen dataclass trees, with the measurements of :mod:`tummler.measure` as they are; the terminal
tables, ``--json`` (:meth:`StoreReport.to_dict`) and the HTML page render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tummler.app.attribution import SendState
from tummler.app.reporting.plain import to_plain
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
)

__all__ = [
    "CampaignReport",
    "LearningPoint",
    "ObjectiveReport",
    "SendProgress",
    "StoreReport",
    "send_progress",
]


@dataclass(frozen=True)
class LearningPoint:
    """The mean KPI of the sends one policy version made, in the order versions were created."""

    policy: str
    version: int
    n: int
    mean: float
    interval: Interval


@dataclass(frozen=True)
class SendProgress:
    """How far a campaign's planned sends got by the report's time.

    Attributes
    ----------
    planned
        Decisions not held out that send something: the messages the campaign meant to send.
    sent
        Of those, the ones the outbox handed over.
    waiting
        Not handed over yet (not enqueued, pending, in doubt): nothing can be measured for them
        yet, so every figure leaves them out until they go out.
    not_sent
        Ended without being sent (skipped at send time for consent or fatigue, failed, dead):
        in the treated group of the lift (intent to treat), not in the ROI's cost nor the reach.
    share_sent
        ``sent / planned``; None when nothing was planned to be sent.
    message
        The above in words.
    """

    planned: int
    sent: int
    waiting: int
    not_sent: int
    share_sent: float | None
    message: str

    @property
    def nothing_sent(self) -> bool:
        """The campaign meant to send and has sent nothing: lift and ROI are not measurable."""
        return self.planned > 0 and self.sent == 0


def send_progress(states: list[SendState]) -> SendProgress:
    """Count a campaign's decisions by what became of their message, and say it in words.

    Examples
    --------
    >>> progress = send_progress([SendState.SENT, SendState.WAITING, SendState.WAITING,
    ...                            SendState.NOT_SENT, SendState.NOTHING_TO_SEND])
    >>> (progress.planned, progress.sent, progress.waiting, progress.not_sent, progress.share_sent)
    (4, 1, 2, 1, 0.25)
    >>> send_progress([SendState.WAITING, SendState.NOTHING_TO_SEND]).nothing_sent
    True
    """
    sent = states.count(SendState.SENT)
    waiting = states.count(SendState.WAITING)
    not_sent = states.count(SendState.NOT_SENT)
    planned = sent + waiting + not_sent
    unsent = ", ".join(
        f"{n:,} {words}"
        for n, words in (
            (waiting, "still waiting to be sent"),
            (not_sent, "skipped, failed or dead at send time"),
        )
        if n
    )
    wait = "lift and ROI wait until messages go out"
    if planned == 0:
        message = "no sends planned"
    elif sent == planned:
        message = f"all {planned:,} planned sends went out"
    elif sent == 0 and not not_sent:
        message = (
            f"nothing sent yet: all {planned:,} planned sends are still waiting to be sent "
            f"(run tummler send); {wait}"
        )
    elif sent == 0 and waiting:
        message = f"nothing sent yet: of {planned:,} planned sends, {unsent}; {wait}"
    elif sent == 0:
        message = (
            f"nothing was sent: all {planned:,} planned sends were skipped, failed or dead at "
            "send time; no lift or ROI to measure"
        )
    else:
        message = (
            f"{sent:,} of {planned:,} planned sends went out ({sent / planned:.0%}); {unsent}; "
            "ROI, reach and depth count the sends that went out"
        )
    return SendProgress(
        planned, sent, waiting, not_sent, sent / planned if planned else None, message
    )


@dataclass(frozen=True)
class CampaignReport:
    """What one campaign changed, for whom, at what cost.

    Attributes
    ----------
    key, objective, kpi
        The campaign, the objective it serves and the KPI's wording (``"converted rate"``).
    n_decisions, n_treated, n_holdout
        Decisions made, split into those not held out (sends, posts, *no send*) and the held-out.
    sending
        How many of the planned sends went out, are still waiting, or ended unsent.
    lift
        Treated against holdout on the KPI, intent to treat over the settled decisions (the
        module's notes); None when either group has fewer than two people, or nothing was sent.
    variants, sequential
        Among sent decisions with a variant: Bayesian probability to be best, and the mSPRT on
        the two most used variants day by day (rate KPIs only); None when fewer than two variants.
    send_time, channels
        Response of the sent messages by hour of week (UTC, from ``send_at``) and by channel,
        weighted by the propensities; ``causal`` says whether the estimate may be read as an
        effect.
    roi
        Incremental value (intent to treat) less the cost of the messages sent, over that cost;
        None when nothing was sent or the strategy gives no cost for its channels.
    breadth
        Reach against depth over the campaign's audience (everyone with a decision): reached are
        the people a message went out to, and only their engagements with it count.
    stages
        The audience's relationship stages as of the report's time (counts), from the contacts'
        history (:mod:`tummler.app.contacts`).
    stage_movement
        How the audience moved between relationship stages: each person's stage as the campaign's
        first decision saw it (at or before its time) against their stage as of the report's time;
        None without decisions. Movements are not effects: the holdout moved too, and other
        campaigns and life did the rest.
    stage_movement_by_group
        The same, for the ``treated`` (anyone not held out: the campaign could reach them, a
        decision of *no send* included) and the ``holdout`` apart: the groups were drawn at
        random, so the difference of their net movements estimates what the campaign did to the
        stages.
    goal
        Progress against the objective's target; None without a target or a lift.
    """

    key: str
    objective: str
    kpi: str
    n_decisions: int
    n_treated: int
    n_holdout: int
    sending: SendProgress
    lift: Lift | None
    variants: VariantPosterior | None
    sequential: SequentialTest | None
    send_time: CellResponse | None
    channels: CellResponse | None
    roi: Roi | None
    breadth: BreadthDepth | None
    stages: dict[str, int]
    goal: GoalProgress | None
    stage_movement: StageTransitions | None = None
    stage_movement_by_group: dict[str, StageTransitions] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveReport:
    """An objective over all its campaigns: pooled lift and progress against the target."""

    id: str
    kpi: str
    campaigns: tuple[str, ...]
    lift: Lift | None
    goal: GoalProgress | None


@dataclass(frozen=True)
class StoreReport:
    """The report of a workspace at a time: campaigns, objectives and the learning curve."""

    as_of: datetime
    campaigns: tuple[CampaignReport, ...]
    objectives: tuple[ObjectiveReport, ...]
    learning_curve: tuple[LearningPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for ``--json``."""
        return {"kind": "store", **to_plain(self)}
