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

Where each job lives: :mod:`~tummler.app.reporting.store_rows` reads the decisions and what became
of them, :mod:`~tummler.app.reporting.measures` measures a campaign's rows,
:mod:`~tummler.app.reporting.records` holds what the report says,
:mod:`~tummler.app.reporting.store` puts the store report together,
:mod:`~tummler.app.reporting.logged` reports a logged experiment, and
:mod:`~tummler.app.reporting.plain` turns either into JSON types.
"""

from tummler.app.reporting.logged import LogReport, log_report
from tummler.app.reporting.objectives import ObjectiveSpec, objective_specs
from tummler.app.reporting.plain import to_plain
from tummler.app.reporting.records import (
    CampaignReport,
    LearningPoint,
    ObjectiveReport,
    SendProgress,
    StoreReport,
)
from tummler.app.reporting.store import parse_as_of, store_report
from tummler.app.reporting.store_rows import ENGAGEMENT_EVENTS

# The measurements' records are re-exported for the command's tables and the HTML page: the CLI
# and web layers may not import ``tummler.measure`` themselves.
from tummler.measure import (
    ActionLift,
    ActionMean,
    BreadthDepth,
    CellResponse,
    GoalProgress,
    Lift,
    StageTransitions,
)

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
