"""The report service: gather each campaign's decisions and outcomes and measure them.

Two sources, one shape of answer:

* :func:`store_report` reads the workspace's store — decisions (treated and holdout, with their
  propensity, channel, send time, variant and policy version), what the outbox did with each
  (:func:`tummler.app.attribution.read_send_states`) and the events attributed to them (run
  :func:`tummler.app.attribution.attribute_events` first) — and, per campaign and per objective,
  calls the pure functions of :mod:`tummler.measure`: holdout lift, variant test (probability to
  be best and mSPRT), send-time and channel response, ROI, breadth against depth with the
  audience's movements between relationship stages (read from the contacts' history), goals
  against the strategy's targets, and a learning curve over policy versions.
* :func:`log_report` reads a past experiment in the logged-bandit format
  (docs/logged-bandit-format.md) and gives each action's mean reward, weighted by the known
  propensities, and each action's lift over a control action, with intervals. It needs no
  workspace.

Both return frozen dataclass trees with ``to_dict()`` (plain JSON types; NaN becomes ``None``),
which the terminal tables, ``--json`` and the HTML page (:mod:`tummler.web`) render.

**Decisions whose message has not gone out.** A planned send has a result only once it is sent,
so the store report reads each decision's :class:`~tummler.app.attribution.SendState` as of the
report's time and measures each figure on the decisions it can honestly use
(:class:`SendProgress` counts them):

* *Holdout lift* is intent to treat: the treated group is every decision not held out whose fate
  is settled — sent, ended unsent by the outbox (skipped for consent or fatigue, failed, dead),
  or a choice of *no send* — against every holdout. Sends still *waiting* (not enqueued, pending,
  in doubt) are left out: their attribution window has not opened, so counting them would read
  "not sent yet" as "did nothing". A campaign that planned sends and sent none has no lift: the
  report says that nothing was sent yet, instead of an effect of zero.
* *ROI* counts the cost of the messages sent only, against the incremental value of the same
  intent-to-treat groups; a campaign that sent nothing has no ROI (it spent nothing), never
  "ROI -100%".
* *Breadth and depth*, the send-time, channel and variant figures count only the sends that went
  out; the learning curve counts each version's decisions that happened (sent, or *no send*).
* With some sends still waiting, :attr:`SendProgress.message` states the share sent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from sqlalchemy import Engine, select

from tummler.app.attribution import HAPPENED, SendState, read_send_states
from tummler.app.contacts import stages_as_of
from tummler.app.ingest import read_logged_bandit
from tummler.core.clock import ensure_utc
from tummler.core.errors import InputError, NotFoundError
from tummler.core.vocabulary import EventType
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
from tummler.store.database import session_scope
from tummler.store.models import Campaign, Decision, Event, PolicyVersion, Variant
from tummler.strategy import Strategy

# ``BreadthDepth``, ``CellResponse``, ``GoalProgress``, ``Lift`` and ``StageTransitions`` are re-exported for the
# command's tables: the CLI layer may not import ``tummler.measure`` itself.
__all__ = [
    "ENGAGEMENT_EVENTS",
    "ActionLift",
    "ActionMean",
    "BreadthDepth",
    "CampaignReport",
    "CellResponse",
    "GoalProgress",
    "LearningPoint",
    "Lift",
    "LogReport",
    "ObjectiveReport",
    "ObjectiveSpec",
    "SendProgress",
    "StageTransitions",
    "StoreReport",
    "log_report",
    "objective_specs",
    "parse_as_of",
    "store_report",
    "to_plain",
]

#: Events that count as engagement for breadth against depth (not opens: proxies open mail).
ENGAGEMENT_EVENTS = frozenset(
    {EventType.CLICKED, EventType.REPLIED, EventType.CONVERTED, EventType.VISITED}
)


def to_plain(value: Any) -> Any:
    """A dataclass tree as JSON types: enums by value, tuples as lists, NaN and inf as None."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------- logged bandit


@dataclass(frozen=True)
class ActionMean:
    """One action's mean reward in a logged experiment.

    Attributes
    ----------
    action
        The action's name.
    n
        Rounds in which it was taken.
    mean, interval
        Self-normalized inverse-propensity mean (Hájek): the reward weighted by ``1 / propensity``
        over the rounds of this action. For a uniform randomized experiment it equals the arm's
        plain mean. The interval is the delta method's normal interval.
    ips
        The unnormalized inverse-propensity estimate (Horvitz–Thompson) of the same value, over all
        rounds: it is unbiased but noisier, and differs from ``mean`` when the arms' sizes drift
        from their propensities.
    std_error
        Standard error of ``mean``.
    """

    action: str
    n: int
    mean: float
    interval: Interval
    ips: float
    std_error: float


@dataclass(frozen=True)
class ActionLift:
    """One action against the control action in a logged experiment.

    Attributes
    ----------
    action, control
        The two actions.
    difference, interval
        ``mean(action) - mean(control)`` and its normal interval (the arms are disjoint sets of
        rounds, so their variances add).
    relative_lift, relative_interval
        ``mean(action) / mean(control) - 1`` and its delta-method interval on the log scale; None
        when the control's mean is not positive.
    p_value
        Two-sided p-value of no difference.
    significant
        Whether ``interval`` excludes zero.
    message
        The verdict in plain words.
    """

    action: str
    control: str
    difference: float
    interval: Interval
    relative_lift: float | None
    relative_interval: Interval | None
    p_value: float
    significant: bool
    message: str


@dataclass(frozen=True)
class LogReport:
    """A past experiment read from a logged-bandit file: each action's mean and lift."""

    source: str
    n_rounds: int
    control: str
    alpha: float
    actions: tuple[ActionMean, ...]
    lifts: tuple[ActionLift, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for ``--json``."""
        return {"kind": "log", **to_plain(self)}


def _exp(value: float) -> float:
    """``exp`` that saturates to infinity instead of raising ``OverflowError``."""
    return math.inf if value > 700.0 else math.exp(value)


def _hajek(reward: NDArray[np.float64], weight: NDArray[np.float64]) -> tuple[float, float]:
    total = float(weight.sum())
    mean = float((weight * reward).sum() / total)
    variance = float((weight**2 * (reward - mean) ** 2).sum() / total**2)
    return mean, variance


def log_report(path: str | Path, *, control: str, alpha: float = 0.05) -> LogReport:
    """Each action's mean reward and its lift over ``control`` in a logged-bandit file.

    The means weight every round by ``1 / propensity`` and normalize within the action (Hájek), so
    that a past experiment with known but unequal assignment probabilities is measured without
    bias from who got what; for a uniform randomized experiment they are the arms' plain means.

    Parameters
    ----------
    path
        The logged-bandit file (CSV or Parquet; docs/logged-bandit-format.md).
    control
        The action the others are compared to (``"No E-Mail"``), as written in the file.
    alpha
        One minus the confidence level of every interval.

    Returns
    -------
    LogReport

    Raises
    ------
    InputError
        When the file cannot be read (see :func:`~tummler.app.ingest.read_logged_bandit`), when
        ``control`` is not one of its actions, or when ``alpha`` is outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha = {alpha}: give a number in (0, 1), e.g. 0.05", field="alpha")
    logged = read_logged_bandit(path)
    names = list(logged.action_names)
    if control not in names:
        raise InputError(
            f"--control {control!r} is not an action of the log; its actions are "
            f"{', '.join(map(repr, names))}",
            file=path,
            field="control",
        )
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    weight_all = 1.0 / logged.propensity
    n_rounds = int(logged.reward.size)
    means: list[ActionMean] = []
    moments: dict[str, tuple[float, float]] = {}
    for index, name in enumerate(names):
        rows = logged.action == index
        if not rows.any():
            continue
        mean, variance = _hajek(logged.reward[rows], weight_all[rows])
        moments[name] = (mean, variance)
        se = math.sqrt(variance)
        ips = float((logged.reward[rows] * weight_all[rows]).sum() / n_rounds)
        means.append(
            ActionMean(
                name,
                int(rows.sum()),
                mean,
                Interval(mean - z * se, mean + z * se, "hajek-normal"),
                ips,
                se,
            )
        )
    base_mean, base_var = moments[control]
    lifts: list[ActionLift] = []
    for action in means:
        if action.action == control:
            continue
        mean, var = moments[action.action]
        difference = mean - base_mean
        se = math.sqrt(var + base_var)
        low, high = difference - z * se, difference + z * se
        if se > 0:
            p_value = float(2.0 * stats.norm.sf(abs(difference) / se))
        else:
            p_value = 1.0 if difference == 0 else 0.0
        relative: float | None = None
        relative_interval: Interval | None = None
        if base_mean > 0 and mean > 0:
            relative = mean / base_mean - 1.0
            # Coefficients of variation as ratios first: squaring a tiny mean would underflow.
            cv, base_cv = math.sqrt(var) / mean, math.sqrt(base_var) / base_mean
            log_se = math.sqrt(cv * cv + base_cv * base_cv)
            centre = math.log(mean) - math.log(base_mean)
            relative_interval = Interval(
                _exp(centre - z * log_se) - 1.0, _exp(centre + z * log_se) - 1.0, "log-delta"
            )
        significant = low > 0 or high < 0
        level = f"{1 - alpha:.0%}"
        if significant:
            direction = "raised" if difference > 0 else "lowered"
            message = (
                f"{action.action} {direction} the reward by {difference:+.4f} against {control} "
                f"({level} interval {low:+.4f} to {high:+.4f})."
            )
        else:
            message = (
                f"{action.action} cannot be told apart from {control}: {difference:+.4f} "
                f"({level} interval {low:+.4f} to {high:+.4f} includes zero)."
            )
        lifts.append(
            ActionLift(
                action.action,
                control,
                difference,
                Interval(low, high, "normal"),
                relative,
                relative_interval,
                p_value,
                significant,
                message,
            )
        )
    return LogReport(str(path), n_rounds, control, alpha, tuple(means), tuple(lifts))


# ---------------------------------------------------------------------------------------- store


@dataclass(frozen=True)
class ObjectiveSpec:
    """What an objective counts and aims at, as the strategy file says.

    Attributes
    ----------
    id
        The objective's id.
    event, measure
        The KPI: an event type, counted per decision (``rate``) or summed by value (``value``).
    relative_lift, absolute_rate
        The target (one of them), or neither when the report has no strategy.
    """

    id: str
    event: str = EventType.CONVERTED.value
    measure: Literal["rate", "value"] = "rate"
    relative_lift: float | None = None
    absolute_rate: float | None = None


def _kpi_words(spec: ObjectiveSpec) -> str:
    if spec.measure == "rate":
        return f"the share who {spec.event}"
    return f"the value of {spec.event} events"


def objective_specs(strategy: Strategy) -> dict[str, ObjectiveSpec]:
    """Each objective's KPI and target, by objective id, from a parsed strategy."""
    return {
        objective.id: ObjectiveSpec(
            objective.id,
            objective.kpi.event.value,
            objective.kpi.measure,
            objective.target.relative_lift,
            objective.target.absolute_rate,
        )
        for objective in strategy.objectives
    }


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


def _send_progress(states: list[SendState]) -> SendProgress:
    """Count a campaign's decisions by what became of their message, and say it in words.

    Examples
    --------
    >>> progress = _send_progress([SendState.SENT, SendState.WAITING, SendState.WAITING,
    ...                            SendState.NOT_SENT, SendState.NOTHING_TO_SEND])
    >>> (progress.planned, progress.sent, progress.waiting, progress.not_sent, progress.share_sent)
    (4, 1, 2, 1, 0.25)
    >>> _send_progress([SendState.WAITING, SendState.NOTHING_TO_SEND]).nothing_sent
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


@dataclass(frozen=True)
class _Stages:
    """The audience's stages from the contacts' history: at the report's time, and per campaign
    as its first decision saw them."""

    now: dict[int, str]
    before: dict[int, dict[int, str]]


def _read_store(
    engine: Engine, *, campaign: str | None, as_of: datetime, specs: Mapping[str, ObjectiveSpec]
) -> tuple[list[tuple[int, str, str]], dict[int, dict[str, Any]], _Stages]:
    with session_scope(engine) as session:
        campaign_query = select(Campaign.id, Campaign.key, Campaign.objective).order_by(
            Campaign.key
        )
        if campaign is not None:
            campaign_query = campaign_query.where(Campaign.key == campaign)
        campaigns = [(int(r[0]), str(r[1]), str(r[2])) for r in session.execute(campaign_query)]
        if campaign is not None and not campaigns:
            known = sorted(session.scalars(select(Campaign.key)).all())
            raise NotFoundError(
                f"no campaign {campaign!r} in the store; known: "
                f"{', '.join(known) if known else 'none (run tummler strategy sync)'}"
            )
        ids = [c[0] for c in campaigns]
        decisions = session.execute(
            select(
                Decision.id,
                Decision.campaign_id,
                Decision.contact_id,
                Decision.holdout,
                Decision.channel,
                Decision.send_at,
                Variant.key,
                Decision.propensity,
                PolicyVersion.name,
                PolicyVersion.version,
                PolicyVersion.created_at,
                Decision.decided_at,
            )
            .outerjoin(Variant, Variant.id == Decision.variant_id)
            .outerjoin(PolicyVersion, PolicyVersion.id == Decision.policy_version_id)
            .where(Decision.campaign_id.in_(ids), Decision.decided_at <= as_of)
            .order_by(Decision.id)
        ).all()
        events = session.execute(
            select(Event.decision_id, Event.type, Event.value)
            .join(Decision, Decision.id == Event.decision_id)
            .where(
                Decision.campaign_id.in_(ids),
                Decision.decided_at <= as_of,
                Event.at <= as_of,
            )
        ).all()
        states = read_send_states(
            session,
            select(Decision.id).where(Decision.campaign_id.in_(ids), Decision.decided_at <= as_of),
            as_of=as_of,
        )
        audience: dict[int, set[int]] = defaultdict(set)
        first: dict[int, datetime] = {}
        for d in decisions:
            audience[int(d[1])].add(int(d[2]))
            decided = ensure_utc(d[11])
            first[int(d[1])] = min(first.get(int(d[1]), decided), decided)
        connection = session.connection()
        everyone = {cid for members in audience.values() for cid in members}
        stages = _Stages(
            now=stages_as_of(connection, everyone, as_of),
            before={
                cid: stages_as_of(connection, members, first[cid])
                for cid, members in audience.items()
            },
        )
    objective_of = {c[0]: c[2] for c in campaigns}
    outcome: dict[int, dict[str, Any]] = {}
    by_decision: dict[int, list[tuple[str, float | None]]] = defaultdict(list)
    for decision_id, kind, value in events:
        by_decision[int(decision_id)].append((str(kind), None if value is None else float(value)))
    for row in decisions:
        decision_id = int(row[0])
        spec = specs.get(objective_of[int(row[1])], ObjectiveSpec(objective_of[int(row[1])]))
        happened = by_decision.get(decision_id, [])
        mine = [v for kind, v in happened if kind == spec.event]
        if spec.measure == "rate":
            kpi = 1.0 if mine else 0.0
        else:
            kpi = float(sum(v for v in mine if v is not None))
        value = float(
            sum(v for kind, v in happened if kind == EventType.CONVERTED.value and v is not None)
        )
        engagements = sum(1 for kind, _ in happened if kind in ENGAGEMENT_EVENTS)
        outcome[decision_id] = {
            "campaign": int(row[1]),
            "contact": int(row[2]),
            "holdout": bool(row[3]),
            "channel": row[4],
            "send_at": None if row[5] is None else ensure_utc(row[5]),
            "variant": row[6],
            "propensity": float(row[7]),
            "policy": None if row[8] is None else (str(row[8]), int(row[9]), ensure_utc(row[10])),
            "decided_at": ensure_utc(row[11]),
            "send": states[decision_id],
            "kpi": kpi,
            "value": value,
            "engagements": engagements,
        }
    return campaigns, outcome, stages


def _settled(rows: list[dict[str, Any]], sending: SendProgress) -> list[dict[str, Any]]:
    """The decisions of a campaign the lift and the ROI compare (intent to treat): all but the
    sends still waiting, or none when the campaign meant to send and sent nothing."""
    if sending.nothing_sent:
        return []
    return [r for r in rows if r["send"] is not SendState.WAITING]


def _sent(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["send"] is SendState.SENT]


def _lift(
    rows: list[dict[str, Any]], spec: ObjectiveSpec, treatment: str, rng: np.random.Generator
) -> Lift | None:
    """Treated against holdout over ``rows`` (already :func:`_settled`)."""
    treated = [r["kpi"] for r in rows if not r["holdout"]]
    held = [r["kpi"] for r in rows if r["holdout"]]
    if len(treated) < 2 or len(held) < 2:
        return None
    return holdout_lift(
        np.asarray(treated),
        np.asarray(held),
        kind="rate" if spec.measure == "rate" else "mean",
        treatment=treatment,
        kpi=_kpi_words(spec),
        n_bootstrap=500,
        rng=rng,
    )


def _variants(
    rows: list[dict[str, Any]], spec: ObjectiveSpec, mixture_sd: float
) -> tuple[VariantPosterior | None, SequentialTest | None]:
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


def _insights(
    rows: list[dict[str, Any]],
) -> tuple[CellResponse | None, CellResponse | None]:
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


def _breadth(rows: list[dict[str, Any]]) -> BreadthDepth | None:
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


def _movements(
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


def _roi(
    rows: list[dict[str, Any]],
    costs: Mapping[str, float],
    label: str,
    rng: np.random.Generator,
) -> Roi | None:
    """ROI over ``rows`` (already :func:`_settled`): the cost of the messages that went out,
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


def _goal(lift: Lift | None, spec: ObjectiveSpec, name: str) -> GoalProgress | None:
    if lift is None or (spec.relative_lift is None and spec.absolute_rate is None):
        return None
    return goal_from_lift(
        lift, objective=name, relative_lift=spec.relative_lift, absolute_rate=spec.absolute_rate
    )


def _learning_curve(rows: list[dict[str, Any]], alpha: float) -> tuple[LearningPoint, ...]:
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
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha = {alpha}: give a number in (0, 1), e.g. 0.05", field="alpha")
    if not mixture_sd > 0.0:
        raise InputError(f"mixture_sd = {mixture_sd}: give a positive number", field="mixture_sd")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    as_of = ensure_utc(as_of)
    specs = dict(specs or {})
    costs = dict(channel_costs or {})
    campaigns, outcome, stages = _read_store(engine, campaign=campaign, as_of=as_of, specs=specs)
    by_campaign: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in outcome.values():
        by_campaign[row["campaign"]].append(row)
    reports: list[CampaignReport] = []
    settled_by_campaign: dict[int, list[dict[str, Any]]] = {}
    for cid, key, objective in campaigns:
        spec = specs.get(objective, ObjectiveSpec(objective))
        rows = by_campaign.get(cid, [])
        sending = _send_progress([r["send"] for r in rows])
        settled = settled_by_campaign[cid] = _settled(rows, sending)
        lift = _lift(settled, spec, f"campaign {key}", generator)
        variants, sequential = _variants(rows, spec, mixture_sd)
        send_time, channels = _insights(rows)
        campaign_roi = _roi(settled, costs, f"campaign {key}", generator)
        audience_stages: dict[str, int] = defaultdict(int)
        members = sorted({r["contact"] for r in rows})
        for contact_id in members:
            audience_stages[stages.now.get(contact_id, "unknown")] += 1
        movement, by_group = _movements(rows, stages.before.get(cid, {}), stages.now)
        reports.append(
            CampaignReport(
                key=key,
                objective=objective,
                kpi=_kpi_words(spec),
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
                breadth=_breadth(rows),
                stages=dict(sorted(audience_stages.items())),
                goal=_goal(lift, spec, objective),
                stage_movement=movement,
                stage_movement_by_group=by_group,
            )
        )
    objectives: list[ObjectiveReport] = []
    for objective in sorted({c[2] for c in campaigns}):
        spec = specs.get(objective, ObjectiveSpec(objective))
        mine = [cid for cid, _, o in campaigns if o == objective]
        rows = [r for cid in mine for r in settled_by_campaign[cid]]
        lift = _lift(rows, spec, f"objective {objective}", generator)
        objectives.append(
            ObjectiveReport(
                objective,
                _kpi_words(spec),
                tuple(key for cid, key, o in campaigns if o == objective),
                lift,
                _goal(lift, spec, objective),
            )
        )
    curve = _learning_curve(list(outcome.values()), alpha)
    return StoreReport(as_of, tuple(reports), tuple(objectives), curve)


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
