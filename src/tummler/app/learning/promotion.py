"""Promotion: a stored policy version replaces the promoted one when the logs show it is better.

The evidence is an :class:`~tummler.app.learning.evaluation.Evaluation` that weighs both versions
on the same rounds; ``tummler evaluate --promote`` passes the one it just printed, so the logs are
evaluated once. The verdict (better, a tie, worse; forced or not) is the pure
:func:`~tummler.evaluate.promotion_verdict`; the flag flip and its audit entry are
:func:`~tummler.app.policies.promote_version`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tummler.app import policies
from tummler.app.ingest import LoggedBandit
from tummler.app.learning.evaluation import Evaluation, evaluate_log
from tummler.app.learning.store_evaluation import evaluate_store
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError, NotFoundError, PolicyError
from tummler.evaluate import (
    ESTIMATORS,
    Comparison,
    Estimate,
    PromotionVerdict,
    promotion_verdict,
)

__all__ = ["PromotionReport", "promote", "promoted_rival"]


@dataclass(frozen=True)
class PromotionReport:
    """What a promotion compared and decided.

    Attributes
    ----------
    candidate
        The version asked to be promoted (``name@version``).
    promoted
        The version promoted: ``candidate``, or ``None`` when the current version was kept because
        the candidate was not better (a tie within rounding noise).
    previous
        The version promoted before; ``None`` at a first promotion.
    estimator, candidate_estimate, candidate_ci_low, previous_estimate
        The figures compared, on the same log.
    comparison
        The candidate's lower bound against the previous version's estimate; ``None`` at a first
        promotion.
    forced
        Whether ``force`` promoted a candidate that was not better.
    audit_entry_id
        The audit entry of the promotion; ``None`` when nothing changed.
    message
        The decision in words.
    details
        The figures as the audit entry records them.
    """

    candidate: str
    promoted: str | None
    previous: str | None
    estimator: str
    candidate_estimate: float
    candidate_ci_low: float | None
    previous_estimate: float | None
    comparison: Comparison | None
    forced: bool
    audit_entry_id: int | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Contenders:
    """The version asked to be promoted and the promoted one of its name (when there is one)."""

    id: int
    spec: str
    rival_id: int | None
    rival: str | None

    def labels(self, rival: bool = False) -> tuple[str, ...]:
        """The labels an evaluation may give the candidate (or the rival): spec or id."""
        if rival:
            return () if self.rival is None else (self.rival, str(self.rival_id))
        return (self.spec, str(self.id))


def promoted_rival(engine: Engine, candidate: str) -> str | None:
    """The promoted version (``name@version``) that stored version ``candidate`` would replace;
    ``None`` when there is none or ``candidate`` names no stored version."""
    with Session(engine) as session:
        version = policies.find_version(session, candidate)
        current = None if version is None else policies.promoted_version(session, version.name)
        return None if current is None else policies.spec_of(current)


def promote(
    engine: Engine,
    candidate: str,
    *,
    evaluation: Evaluation | None = None,
    log: str | Path | LoggedBandit | None = None,
    workspace: Path | None = None,
    estimator: str = "dr",
    force: bool = False,
    actor: str = "cli",
    action_features: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    draws: int = 64,
    clock: Clock | None = None,
) -> PromotionReport:
    """Promote a stored policy version when the logs show it is better than the current one.

    The candidate's lower confidence bound under ``estimator`` is compared with the currently
    promoted version's (same name) point estimate on the same log
    (:func:`~tummler.evaluate.promotion_verdict`, which calls differences within rounding noise a
    tie):

    * above it: the candidate is promoted;
    * level with it (a tie, such as -3.18e-11 against -1.67e-11 when every reward is still 0):
      the candidate is not better, the current version is kept, and the report says so
      (``promoted`` is ``None``); not an error;
    * below it: the promotion is refused with an error.

    ``force`` promotes in the last two cases too. A first promotion (none promoted yet) goes
    through. A promotion writes an audit entry with the figures, the actor and whether it was
    forced; keeping the current version changes nothing and writes none.

    The evidence is ``evaluation`` when given (it must weigh the candidate and the promoted
    version, as :func:`promoted_rival` names it); otherwise it is evaluated here on ``log`` (a
    logged-bandit file) or, without one, on the logged decisions of the version's objective in
    the store (:func:`~tummler.app.learning.evaluate_store`, which needs ``workspace``). The
    version's name is its objective there.

    Raises
    ------
    PolicyError
        The candidate's lower bound is below the current policy's estimate (beyond rounding
        noise) and ``force`` is off.
    NotFoundError, InputError
        The candidate is not a stored version, or the evaluation does not weigh both.
    """
    if estimator not in ESTIMATORS:
        raise InputError(
            f"estimator {estimator!r} is unknown; choose one of {', '.join(ESTIMATORS)}",
            field="estimator",
        )
    contenders = _contenders(engine, candidate)
    if evaluation is None:
        evaluation = _evidence(
            engine,
            contenders,
            log=log,
            workspace=workspace,
            action_features=action_features,
            columns=columns,
            figures={"n_bootstrap": n_bootstrap, "alpha": alpha, "seed": seed, "draws": draws},
            clock=clock,
        )
    figures = _weigh(evaluation, contenders, estimator, force)
    if not figures.verdict.promote:
        return _keep(figures)
    entry_id = policies.promote_version(
        engine,
        contenders.id,
        replacing=contenders.rival_id,
        actor=actor,
        details=figures.details(),
        now=(clock or SystemClock()).now(),
    )
    forced = " (forced)" if figures.verdict.forced else ""
    return figures.report(
        promoted=contenders.spec,
        audit_entry_id=entry_id,
        message=f"promoted {contenders.spec}{forced}; audit entry #{entry_id}",
    )


def _evidence(
    engine: Engine,
    contenders: _Contenders,
    *,
    log: str | Path | LoggedBandit | None,
    workspace: Path | None,
    action_features: str | Path | None,
    columns: Mapping[str, str] | None,
    figures: dict[str, Any],
    clock: Clock | None,
) -> Evaluation:
    """Both versions evaluated on ``log``, or else on the store's decisions of their objective."""
    specs = [contenders.spec, *([] if contenders.rival is None else [contenders.rival])]
    if log is not None:
        return evaluate_log(
            log, specs, engine=engine, action_features=action_features, columns=columns, **figures
        )
    if workspace is not None:
        return evaluate_store(
            engine,
            workspace=workspace,
            objective=contenders.spec.split("@")[0],
            candidates=specs,
            clock=clock,
            **figures,
        )
    raise InputError(
        "promoting needs the evidence: a log (--log) or the workspace's logged decisions",
        field="log",
    )


def _contenders(engine: Engine, candidate: str) -> _Contenders:
    """The stored version ``candidate`` names and the promoted one of its name."""
    with Session(engine) as session:
        version = policies.find_version(session, candidate)
        if version is None:
            raise NotFoundError(
                f"no stored policy version {candidate!r}; promote a stored version "
                f"(name@version or id); store one with tummler learn --name"
            )
        current = policies.promoted_version(session, version.name)
        spec = policies.spec_of(version)
        if current is not None and current.id == version.id:
            raise InputError(f"{spec} is already the promoted version", field="policy")
        if current is None:
            return _Contenders(version.id, spec, None, None)
        return _Contenders(version.id, spec, current.id, policies.spec_of(current))


@dataclass(frozen=True)
class _Figures:
    """The two versions' estimates on one evaluation, and the verdict they give."""

    contenders: _Contenders
    estimator: str
    ours: Estimate
    theirs: Estimate | None
    verdict: PromotionVerdict
    log: str
    n_rounds: int

    def details(self) -> dict[str, Any]:
        """The figures as the audit entry (and ``--json``) records them."""
        ours, theirs, verdict = self.ours, self.theirs, self.verdict
        return {
            "estimator": self.estimator,
            "log": self.log,
            "n_rounds": self.n_rounds,
            "candidate": {
                "policy": self.contenders.spec,
                "estimate": ours.value,
                "ci_low": ours.ci_low,
            },
            "previous": None
            if theirs is None
            else {
                "policy": self.contenders.rival,
                "estimate": theirs.value,
                "ci_low": theirs.ci_low,
            },
            "comparison": None if verdict.comparison is None else verdict.comparison.value,
            "tie_tolerance": verdict.tolerance,
            "forced": verdict.forced,
        }

    def report(
        self, *, promoted: str | None, audit_entry_id: int | None, message: str
    ) -> PromotionReport:
        """The report of what was decided on these figures."""
        return PromotionReport(
            candidate=self.contenders.spec,
            promoted=promoted,
            previous=self.contenders.rival,
            estimator=self.estimator,
            candidate_estimate=self.ours.value,
            candidate_ci_low=self.ours.ci_low,
            previous_estimate=None if self.theirs is None else self.theirs.value,
            comparison=self.verdict.comparison,
            forced=self.verdict.forced,
            audit_entry_id=audit_entry_id,
            message=message,
            details=self.details(),
        )


def _weigh(
    evaluation: Evaluation, contenders: _Contenders, estimator: str, force: bool
) -> _Figures:
    """The candidate's and the promoted version's estimates under ``estimator``, and the verdict."""
    ours = evaluation.result(*contenders.labels())
    theirs = evaluation.result(*contenders.labels(rival=True)) if contenders.rival else None
    for spec, result in ((contenders.spec, ours), (contenders.rival, theirs)):
        if spec is not None and result is None:
            raise InputError(
                f"the evaluation does not weigh {spec}; evaluate it next to the candidate",
                field="policy",
            )
    assert ours is not None
    try:
        mine, other = ours[estimator], None if theirs is None else theirs[estimator]
    except KeyError:
        raise InputError(
            f"estimator {estimator!r} needs a reward model, and this log has no context "
            f"features; promote on ips or snips",
            field="estimator",
        ) from None
    verdict = promotion_verdict(mine, other, reward_scale=evaluation.reward_scale, force=force)
    return _Figures(
        contenders, estimator, mine, other, verdict, evaluation.log, evaluation.n_rounds
    )


def _keep(figures: _Figures) -> PromotionReport:
    """The candidate is not better: refuse when it is worse, keep the promoted one at a tie."""
    contenders, verdict, theirs = figures.contenders, figures.verdict, figures.theirs
    assert theirs is not None  # a first promotion always goes through
    said = (
        f"its {figures.estimator} lower bound {verdict.bound:.6g} against the promoted "
        f"{contenders.rival}'s estimate {theirs.value:.6g} on {figures.log}"
    )
    if verdict.refused:
        raise PolicyError(
            f"refusing to promote {contenders.spec}: {said} is below it; gather more logs, "
            f"or force the promotion (--force) to override"
        )
    return figures.report(
        promoted=None,
        audit_entry_id=None,
        message=(
            f"kept {contenders.rival}: {contenders.spec} is not better ({said} is a tie, the "
            f"same within {verdict.tolerance or 0.0:.1g}); gather more outcomes and evaluate again"
        ),
    )
