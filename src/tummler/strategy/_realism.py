"""Is a campaign's target realistic? A power calculation for a two-proportion z-test.

The campaign's effect is measured against its holdout: a share ``h`` of the audience gets nothing, the
rest is treated. With baseline rate ``p0`` (the KPI's rate in the audience without the campaign) and
target rate ``p1``, the number of holdout contacts needed for a two-sided test at level ``alpha`` with
power ``1 - beta`` is, with ``k = (1 - h) / h`` treated contacts per holdout contact (unequal
allocation, unpooled variance)::

    n_holdout = (z_{1-alpha/2} + z_{1-beta})^2 * (p1 (1 - p1) / k + p0 (1 - p0)) / (p1 - p0)^2
    n_treated = k * n_holdout

both rounded up. For an audience of ``N`` contacts (``n_t = (1 - h) N``, ``n_c = h N``), the smallest
lift ``d = p1 - p0`` that the test can detect solves the same equation for ``d``; it is a quadratic::

    (1 + Z^2 / n_t) d^2 - (Z^2 (1 - 2 p0) / n_t) d - Z^2 p0 (1 - p0) (1 / n_t + 1 / n_c) = 0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from tummler.core.errors import StrategyError
from tummler.strategy._findings import Finding, Severity
from tummler.strategy._loading import CampaignDocument
from tummler.strategy._models import Strategy

__all__ = [
    "AudienceBaseline",
    "RealismAssessment",
    "assess_target",
    "check_realism",
    "minimum_detectable_rate",
    "sample_size_two_proportions",
]


@dataclass(frozen=True, slots=True)
class AudienceBaseline:
    """What the store says about an audience: its size and the KPI's rate in recent windows.

    ``window_rates`` holds, for consecutive windows as long as the objective's attribution window over
    its horizon (newest first), the share of the audience with at least one KPI event in that window.
    """

    audience_size: int
    window_rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.audience_size < 0:
            raise StrategyError(f"audience_size must be 0 or more, got {self.audience_size}")
        for rate in self.window_rates:
            if not 0.0 <= rate <= 1.0:
                raise StrategyError(f"window rate {rate} is not a share between 0 and 1")

    @property
    def rate(self) -> float | None:
        """The baseline rate p0: the mean over the windows, ``None`` without any window."""
        if not self.window_rates:
            return None
        return math.fsum(self.window_rates) / len(self.window_rates)

    @property
    def highest_rate(self) -> float | None:
        return max(self.window_rates) if self.window_rates else None


def _check_rate(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:  # false for NaN too
        raise StrategyError(f"{name} must be a rate strictly between 0 and 1, got {value}")


def _z(alpha: float, power: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise StrategyError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0.0 < power < 1.0:
        raise StrategyError(f"power must be between 0 and 1, got {power}")
    standard = NormalDist()
    return standard.inv_cdf(1.0 - alpha / 2.0) + standard.inv_cdf(power)


def sample_size_two_proportions(
    p0: float, p1: float, *, holdout_share: float, alpha: float = 0.05, power: float = 0.8
) -> tuple[int, int]:
    """Contacts needed in each arm to detect ``p1`` against ``p0``: ``(treated, holdout)``.

    Two-sided two-proportion z-test, unequal allocation set by ``holdout_share`` (see the module's
    docstring for the formula).

    Raises
    ------
    StrategyError
        When a rate is outside (0, 1), the rates are equal, or the holdout share is outside (0, 1).

    Examples
    --------
    >>> sample_size_two_proportions(0.10, 0.15, holdout_share=0.5)
    (683, 683)
    """
    _check_rate("p0", p0)
    _check_rate("p1", p1)
    _check_rate("holdout_share", holdout_share)
    if p0 == p1:
        raise StrategyError("p1 equals p0: a zero effect needs an infinite sample")
    k = (1.0 - holdout_share) / holdout_share
    z = _z(alpha, power)
    n_holdout = z**2 * (p1 * (1.0 - p1) / k + p0 * (1.0 - p0)) / (p1 - p0) ** 2
    # a relative tolerance keeps 683.0000000001 from becoming 684
    holdout = math.ceil(n_holdout * (1 - 1e-12))
    treated = math.ceil(k * n_holdout * (1 - 1e-12))
    return treated, holdout


def minimum_detectable_rate(
    p0: float, audience_size: int, *, holdout_share: float, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """The smallest rate above ``p0`` that an audience of ``audience_size`` can show significant.

    Returns ``None`` when the audience is too small to detect anything (an arm would be empty or the
    detectable rate exceeds 1).
    """
    _check_rate("p0", p0)
    _check_rate("holdout_share", holdout_share)
    n_t = (1.0 - holdout_share) * audience_size
    n_c = holdout_share * audience_size
    if n_t < 1.0 or n_c < 1.0:
        return None
    z2 = _z(alpha, power) ** 2
    a = 1.0 + z2 / n_t
    b = z2 * (1.0 - 2.0 * p0) / n_t
    c = z2 * p0 * (1.0 - p0) * (1.0 / n_t + 1.0 / n_c)
    delta = (b + math.sqrt(b * b + 4.0 * a * c)) / (2.0 * a)
    rate = p0 + delta
    return rate if rate < 1.0 else None


@dataclass(frozen=True, slots=True)
class RealismAssessment:
    """The outcome of the realism check for one campaign."""

    baseline_rate: float
    target_rate: float
    needed_treated: int
    needed_holdout: int
    audience_size: int
    realistic_rate: float | None
    too_small: bool
    beyond_seen: bool

    @property
    def needed_total(self) -> int:
        return self.needed_treated + self.needed_holdout

    @property
    def realistic_lift(self) -> float | None:
        """The realistic target as a relative lift over the baseline."""
        if self.realistic_rate is None or self.baseline_rate == 0:
            return None
        return self.realistic_rate / self.baseline_rate - 1.0


def assess_target(
    baseline: AudienceBaseline,
    *,
    relative_lift: float | None = None,
    absolute_rate: float | None = None,
    holdout_share: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> RealismAssessment | None:
    """Compare the sample the target needs with the audience at hand.

    Returns ``None`` when the baseline cannot be estimated (no history, or a rate of 0 or 1: nothing
    to learn a variance from).

    Raises
    ------
    StrategyError
        Unless exactly one of ``relative_lift`` and ``absolute_rate`` is given.
    """
    if (relative_lift is None) == (absolute_rate is None):
        raise StrategyError("give exactly one of relative_lift and absolute_rate")
    p0 = baseline.rate
    if p0 is None or not 0.0 < p0 < 1.0:
        return None
    p1 = p0 * (1.0 + relative_lift) if relative_lift is not None else float(absolute_rate or 0.0)
    highest = baseline.highest_rate or 0.0
    realistic = minimum_detectable_rate(
        p0, baseline.audience_size, holdout_share=holdout_share, alpha=alpha, power=power
    )
    if p1 >= 1.0 or p1 == p0:
        unreachable = p1 >= 1.0
        return RealismAssessment(
            baseline_rate=p0,
            target_rate=p1,
            needed_treated=0,
            needed_holdout=0,
            audience_size=baseline.audience_size,
            realistic_rate=realistic,
            too_small=not unreachable,
            beyond_seen=unreachable,
        )
    treated, holdout = sample_size_two_proportions(
        p0, p1, holdout_share=holdout_share, alpha=alpha, power=power
    )
    n_t = math.floor((1.0 - holdout_share) * baseline.audience_size)
    n_c = baseline.audience_size - n_t
    return RealismAssessment(
        baseline_rate=p0,
        target_rate=p1,
        needed_treated=treated,
        needed_holdout=holdout,
        audience_size=baseline.audience_size,
        realistic_rate=realistic,
        too_small=n_t < treated or n_c < holdout,
        beyond_seen=p1 > highest,
    )


def window_rates_from_counts(counts: Sequence[int], audience_size: int) -> tuple[float, ...]:
    """Rates per window from counts of contacts with an event (empty for an empty audience)."""
    if audience_size <= 0:
        return ()
    return tuple(min(1.0, c / audience_size) for c in counts)


def check_realism(
    document: CampaignDocument, strategy: Strategy, baseline: AudienceBaseline
) -> list[Finding]:
    """Warn when the campaign's audience cannot show its objective's target, and say what can be shown.

    The baseline is the KPI's rate in the audience (from the store's events); the sample size is the
    two-proportion z-test's at the strategy's ``checks.alpha`` and ``checks.power`` with the campaign's
    holdout share. For a ``value`` KPI the check reads the rate of contacts with at least one KPI event,
    a proxy: a lift in value that comes with no lift in that rate is not seen here.
    """
    campaign, source = document.campaign, document.source
    objective = strategy.objective(campaign.objective)
    if objective is None:
        return []
    audience_name = campaign.audience or "all contacts"
    holdout = campaign.effective_holdout(strategy.lever_policy)
    if baseline.audience_size == 0:
        return [
            source.finding(
                Severity.WARNING,
                "realism-empty-audience",
                f"audience {audience_name!r} has no contact in the store that a channel of this "
                "campaign may reach: import contacts and consent, or widen the audience",
                "audience" if campaign.audience else "objective",
            )
        ]
    target = objective.target
    assessment = assess_target(
        baseline,
        relative_lift=target.relative_lift,
        absolute_rate=target.absolute_rate,
        holdout_share=holdout,
        alpha=strategy.checks.alpha,
        power=strategy.checks.power,
    )
    if assessment is None:
        event = objective.kpi.event.value
        horizon = _days(objective.horizon.total_seconds())
        seen = (
            f"no contact of audience {audience_name!r} had a {event} event"
            if not baseline.rate
            else f"every contact of audience {audience_name!r} had a {event} event"
        )
        return [
            source.finding(
                Severity.INFO,
                "realism-no-baseline",
                f"{seen} in the last {horizon}, so there is no baseline rate to test a lift "
                "against: import events to enable the realism check",
                "objective",
            )
        ]
    findings: list[Finding] = []
    realistic = _realistic_text(assessment.realistic_rate, assessment.baseline_rate)
    power = f"{strategy.checks.power:.0%}"
    if assessment.too_small:
        findings.append(
            source.finding(
                Severity.WARNING,
                "realism-audience-too-small",
                f"objective {objective.id!r}: moving {objective.kpi.event.value} from "
                f"{assessment.baseline_rate:.2%} to {assessment.target_rate:.2%} needs "
                f"{assessment.needed_treated:,} treated and {assessment.needed_holdout:,} holdout "
                f"contacts ({power} power, holdout {holdout:.0%}); audience {audience_name!r} has "
                f"{assessment.audience_size:,}. {realistic}",
                "objective",
            )
        )
    if assessment.beyond_seen:
        highest = baseline.highest_rate or 0.0
        findings.append(
            source.finding(
                Severity.WARNING,
                "realism-target-unseen",
                f"objective {objective.id!r}: the target rate {assessment.target_rate:.2%} is beyond "
                f"anything seen in audience {audience_name!r} (highest rate in any window: "
                f"{highest:.2%}, baseline {assessment.baseline_rate:.2%})."
                + ("" if assessment.too_small else f" {realistic}"),
                "objective",
            )
        )
    return findings


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} days"


def _realistic_text(rate: float | None, baseline: float) -> str:
    if rate is None:
        return "This audience is too small to detect any effect; widen it or lengthen the campaign."
    return (
        f"A realistic target for this audience: a rate of {rate:.2%} "
        f"(relative lift {rate / baseline - 1.0:+.1%})."
    )
