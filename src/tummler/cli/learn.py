"""`tummler learn` and `tummler evaluate` over logged-bandit files (docs/logged-bandit-format.md).

Register in ``tummler.cli.main``::

    app.command()(learn.learn)
    app.command()(learn.evaluate)
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tummler.app.learning import (
    DEFAULT_POLICY_KIND,
    LEARNABLE_KINDS,
    PromotionReport,
    evaluate_log,
    learn_from_log,
    promote,
)
from tummler.cli.context import console, state
from tummler.core.errors import InputError

__all__ = ["evaluate", "learn"]

_Log = Annotated[
    Path,
    typer.Option(
        "--log",
        dir_okay=False,
        help="Logged-bandit file: CSV or Parquet with action, reward, propensity and context "
        "columns.",
        show_default=False,
    ),
]
_Actions = Annotated[
    Path | None,
    typer.Option(
        "--actions", dir_okay=False, help="Optional action-feature file keyed by 'action'."
    ),
]


def _store(ctx: typer.Context, needed: bool) -> Any:
    """The store's engine when a workspace is given or needed; None otherwise."""
    current = state(ctx)
    if needed or current.workspace is not None:
        return current.engine
    return None


def _params(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--params must be a JSON object, e.g. '{{\"prior_precision\": 2}}' ({exc})",
            field="params",
        ) from exc
    if not isinstance(value, dict):
        raise InputError("--params must be a JSON object", field="params")
    return value


def learn(
    ctx: typer.Context,
    log: _Log,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", dir_okay=False, help="Where to write the policy file (JSON)."),
    ],
    policy_kind: Annotated[
        str,
        typer.Option(
            "--policy-kind",
            help=f"The policy to fit: {', '.join(LEARNABLE_KINDS)}. logistic_thompson needs "
            "rewards in [0, 1].",
        ),
    ] = DEFAULT_POLICY_KIND,
    actions: _Actions = None,
    params: Annotated[
        str | None,
        typer.Option(help="Policy parameters as a JSON object, e.g. '{\"prior_precision\": 2}'."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Also store the policy in the workspace as the next version of this name."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit a policy on a logged-bandit file and write it as a policy file."""
    report = learn_from_log(
        log,
        out=out,
        kind=policy_kind,
        action_features=actions,
        params=_params(params),
        engine=_store(ctx, needed=name is not None),
        name=name,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    console.print(
        f"learned {report.kind} from {report.n_rounds:,} rounds "
        f"({report.n_actions} actions, {report.n_features} context features) → {report.out}",
        highlight=False,
    )
    if report.stored is not None:
        console.print(f"stored as policy version {report.stored}", highlight=False)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _promote(
    engine: Any, candidate: str, log: Path, actions: Path | None, options: dict[str, Any]
) -> PromotionReport:
    return promote(
        engine,
        candidate,
        log=log,
        actor=f"cli:{getpass.getuser()}",
        action_features=actions,
        **options,
    )


def evaluate(
    ctx: typer.Context,
    log: _Log,
    policy: Annotated[
        list[str],
        typer.Option(
            "--policy",
            "-p",
            help="A policy file, a stored version (name@version or id), or a baseline: "
            "uniform, logged, best-single. Repeat to compare.",
            show_default=False,
        ),
    ],
    actions: _Actions = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the intervals.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and the reward model.")] = 0,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")
    ] = 0.95,
    draws: Annotated[
        int,
        typer.Option(min=1, help="Posterior draws per round for a Thompson policy's propensities."),
    ] = 64,
    promote_first: Annotated[
        bool,
        typer.Option(
            "--promote",
            help="Promote the first --policy (a stored version) if its lower bound reaches the "
            "promoted version's estimate.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --promote: promote even if it looks worse.")
    ] = False,
    estimator: Annotated[
        str, typer.Option(help="With --promote: the estimator that decides.")
    ] = "dr",
) -> None:
    """Estimate policies' values on a logged-bandit file: IPS, SNIPS, DM, DR, switch-DR."""
    engine = _store(ctx, needed=promote_first)
    options = {
        "n_bootstrap": bootstrap,
        "alpha": 1.0 - confidence,
        "seed": seed,
        "draws": draws,
        "estimator": estimator,
        "force": force,
    }
    evaluation = evaluate_log(
        log,
        policy,
        engine=engine,
        action_features=actions,
        n_bootstrap=bootstrap,
        alpha=1.0 - confidence,
        seed=seed,
        draws=draws,
    )
    if as_json:
        document = evaluation.to_dict()
        if promote_first:
            promotion = _promote(engine, policy[0], log, actions, options)
            document["promotion"] = {
                **promotion.details,
                "promoted": promotion.promoted,
                "audit_entry_id": promotion.audit_entry_id,
            }
        typer.echo(json.dumps(document))
        return
    table = Table(
        title=f"{evaluation.log}: {evaluation.n_rounds:,} rounds, {evaluation.n_actions} actions",
        title_justify="left",
    )
    for column in ("estimator", "policy", "estimate", f"{confidence:.0%} interval", "ESS"):
        table.add_column(column, justify="left" if column in ("estimator", "policy") else "right")
    names = [e.name for e in evaluation.results[0].estimates]
    for name in names:
        for index, result in enumerate(evaluation.results):
            estimate = result[name]
            interval = (
                "—"
                if estimate.ci_low is None
                else f"[{_number(estimate.ci_low)}, {_number(estimate.ci_high)}]"
            )
            table.add_row(
                name if index == 0 else "",
                result.policy,
                _number(estimate.value),
                interval,
                f"{estimate.effective_sample_size:,.0f}",
                end_section=index == len(evaluation.results) - 1,
            )
    console.print(table)
    if promote_first:  # after the table, so that a refusal comes with the figures
        promotion = _promote(engine, policy[0], log, actions, options)
        forced = " (forced)" if promotion.forced else ""
        console.print(
            f"promoted {promotion.promoted}{forced}; audit entry #{promotion.audit_entry_id}",
            highlight=False,
        )
