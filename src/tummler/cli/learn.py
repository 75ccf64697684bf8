"""`tummler learn` and `tummler evaluate`: over the store's logged decisions, or over logged-bandit
files (docs/logged-bandit-format.md) with ``--log``.

Register in ``tummler.cli.main``::

    app.command()(learn.learn)
    app.command()(learn.evaluate)
"""

from __future__ import annotations

import functools
import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tummler.cli.context import console, state
from tummler.core.errors import InputError

if TYPE_CHECKING:
    from tummler.app.learning import Evaluation, ExplorationPrice, PromotionReport

__all__ = ["evaluate", "learn"]

#: ``tummler.app.learning.DEFAULT_POLICY_KIND`` and ``LEARNABLE_KINDS``, copied so that ``--help``
#: does not import the learning service (and SciPy with it); tests/cli/test_cli_startup.py fails when
#: they drift apart.
DEFAULT_POLICY_KIND = "logistic_thompson"
LEARNABLE_KINDS: tuple[str, ...] = ("logistic_thompson", "linear_thompson", "epsilon_greedy")

_Log = Annotated[
    Path | None,
    typer.Option(
        "--log",
        dir_okay=False,
        help="Logged-bandit file: CSV or Parquet with action, reward, propensity and context "
        "columns. Without it: the workspace's logged decisions and attributed events.",
        show_default=False,
    ),
]
_Objective = Annotated[
    str | None, typer.Option(help="Without --log: only this objective (default: every objective).")
]
_Campaign = Annotated[
    str | None, typer.Option(help="Without --log: only this campaign's decisions (by its id).")
]
_Actions = Annotated[
    Path | None,
    typer.Option(
        "--actions", dir_okay=False, help="Optional action-feature file keyed by 'action'."
    ),
]
_Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="With --log: the log's own names for the roles, as role=column pairs, e.g. "
        "action=arm,reward=conversion,propensity=p (roles: action, reward, propensity, "
        "timestamp, position).",
        show_default=False,
    ),
]
_Ignore = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore",
        help="With --log: a column to leave out of the context (an outcome other than the "
        "reward, an identifier, free text). Repeat it, or separate names by commas.",
        show_default=False,
    ),
]
_Categorical = Annotated[
    list[str] | None,
    typer.Option(
        "--categorical",
        help="With --log: a column of numbers to read as categories (a zip code, a segment "
        "id). Repeat it, or separate names by commas.",
        show_default=False,
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
    log: _Log = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", dir_okay=False, help="With --log: where to write the policy file (JSON)."
        ),
    ] = None,
    objective: _Objective = None,
    campaign: _Campaign = None,
    policy_kind: Annotated[
        str,
        typer.Option(
            "--policy-kind",
            help=f"The policy to fit: {', '.join(LEARNABLE_KINDS)}. logistic_thompson needs "
            "rewards in [0, 1].",
        ),
    ] = DEFAULT_POLICY_KIND,
    actions: _Actions = None,
    columns: _Columns = None,
    ignore: _Ignore = None,
    categorical: _Categorical = None,
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
    """Learn from feedback: update each objective's policy from its attributed decisions and store
    the next version (unpromoted), or, with --log, fit a policy on a logged-bandit file."""
    from tummler.app.learning import learn_from_log

    reading = _reading(log, columns, ignore, categorical)
    if log is None:
        _learn_store(ctx, objective, campaign, as_json)
        return
    if out is None:
        raise InputError(
            "learning from a log writes a policy file: give --out POLICY.json", field="out"
        )
    report = learn_from_log(
        log,
        out=out,
        kind=policy_kind,
        action_features=actions,
        params=_params(params),
        engine=_store(ctx, needed=name is not None),
        name=name,
        **reading,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    console.print(
        f"learned {report.kind} from {report.n_rounds:,} rounds "
        f"({report.n_actions} actions, {report.n_features} context features) → {report.out}",
        highlight=False,
        markup=False,
    )
    if report.stored is not None:
        console.print(f"stored as policy version {report.stored}", highlight=False, markup=False)


def _reading(
    log: Path | None, columns: str | None, ignore: list[str] | None, categorical: list[str] | None
) -> dict[str, Any]:
    """How to read the log, from ``--columns``, ``--ignore`` and ``--categorical``: options of a
    log file, refused without ``--log``."""
    given: dict[str, Any] = {
        "columns": _roles(columns),
        "ignore": _names(ignore),
        "categorical": _names(categorical),
    }
    if log is None:
        named = [name for name, value in given.items() if value]
        if named:
            raise InputError(
                f"--{named[0]} tells how to read a log file: give it with --log FILE",
                field=named[0],
            )
    return given


def _roles(text: str | None) -> dict[str, str] | None:
    """``action=arm,reward=conversion`` as ``{"action": "arm", "reward": "conversion"}``."""
    if text is None:
        return None
    roles: dict[str, str] = {}
    for pair in text.split(","):
        role, equals, column = (part.strip() for part in pair.partition("="))
        if not (role and equals and column):
            raise InputError(
                f"--columns takes role=column pairs separated by commas, e.g. "
                f"action=arm,reward=conversion,propensity=p; {pair.strip()!r} is not one",
                field="columns",
            )
        if role in roles:
            raise InputError(f"--columns maps the role {role!r} twice", field="columns")
        roles[role] = column
    return roles


def _names(values: list[str] | None) -> tuple[str, ...]:
    """Repeated options and comma-separated names, as one tuple of column names."""
    return tuple(
        name.strip() for value in values or () for name in value.split(",") if name.strip()
    )


def _learn_store(
    ctx: typer.Context, objective: str | None, campaign: str | None, as_json: bool
) -> None:
    from tummler.app.learning import learn_from_store

    current = state(ctx)
    rows = learn_from_store(
        current.engine, workspace=current.settings.workspace, objective=objective, campaign=campaign
    )
    if as_json:
        typer.echo(json.dumps({"objectives": [row.to_dict() for row in rows]}))
        return
    table = Table(title="learned from the store's decisions", title_justify="left")
    for column in ("objective", "decisions used", "mean reward", "from", "new version"):
        table.add_column(column, justify="right" if column[0] in "dm" else "left")
    for row in rows:
        table.add_row(
            escape(row.objective),
            f"{row.decisions:,}",
            _number(row.mean_reward),
            escape(row.parent or "—"),
            escape(row.stored or "— (nothing to learn from)"),
        )
    console.print(table)
    for row in rows:
        for note in row.notes:
            console.print(f"{row.objective}: {note}", highlight=False, markup=False)
    if any(row.stored for row in rows):
        console.print(
            "evaluate the new versions with: tummler evaluate --objective O [--promote]",
            highlight=False,
            markup=False,
        )


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _promote(
    engine: Any, candidate: str, evaluation: Evaluation, *, estimator: str, force: bool
) -> PromotionReport:
    """Promote ``candidate`` on the evaluation just made: the logs are evaluated once."""
    from tummler.app.learning import promote

    return promote(
        engine,
        candidate,
        evaluation=evaluation,
        estimator=estimator,
        force=force,
        actor=f"cli:{getpass.getuser()}",
    )


def _say_nothing_to_evaluate(reason: str, *, as_json: bool, promote_first: bool) -> None:
    """No send went out yet: a state of the store, not a failure, so it is said and the command
    succeeds (a daily `learn && evaluate --promote` before the first send must not page anyone)."""
    if as_json:
        typer.echo(json.dumps({"evaluated": False, "reason": reason}))
    else:
        stays = "; the promoted version stays as it is" if promote_first else ""
        console.print(f"nothing to evaluate yet: {reason}{stays}", markup=False)


_Policies = Annotated[
    list[str] | None,
    typer.Option(
        "--policy",
        "-p",
        help="A policy file, a stored version (name@version or id), a baseline: "
        "uniform, logged, best-single (best-single: with --log only), or with --log a "
        "probability table TABLE.csv (action,probability, or a context column's values "
        "first: segment,action,probability). Repeat to compare. "
        "Without --log, by default: the objective's latest unpromoted version, the promoted "
        "one, uniform and logged.",
        show_default=False,
    ),
]
_Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
_Bootstrap = Annotated[
    int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the intervals.")
]
_Seed = Annotated[int, typer.Option(help="Seed of the bootstrap and the reward model.")]
_Confidence = Annotated[
    float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")
]
_Draws = Annotated[
    int,
    typer.Option(min=1, help="Posterior draws per round for a Thompson policy's propensities."),
]
_PromoteFirst = Annotated[
    bool,
    typer.Option(
        "--promote",
        help="Promote the first --policy (a stored version) if its lower bound is above the "
        "promoted version's estimate; a tie within rounding keeps the promoted version.",
    ),
]
_Force = Annotated[
    bool, typer.Option("--force", help="With --promote: promote even if it is not better.")
]
_Estimator = Annotated[str, typer.Option(help="With --promote: the estimator that decides.")]
#: ``tummler.evaluate.RewardModelKind``'s values, copied for the same reason as the kinds above.
REWARD_MODELS: tuple[str, ...] = ("auto", "ridge", "logistic", "boosting")
_RewardModel = Annotated[
    str,
    typer.Option(
        "--reward-model",
        help="DM and DR's reward model: auto (logistic for 0/1 rewards, else ridge), ridge, "
        "logistic, or boosting (gradient-boosted trees, one per action; needs scikit-learn).",
    ),
]


def evaluate(
    ctx: typer.Context,
    log: _Log = None,
    policy: _Policies = None,
    objective: _Objective = None,
    campaign: _Campaign = None,
    actions: _Actions = None,
    columns: _Columns = None,
    ignore: _Ignore = None,
    categorical: _Categorical = None,
    as_json: _Json = False,
    bootstrap: _Bootstrap = 200,
    seed: _Seed = 0,
    confidence: _Confidence = 0.95,
    draws: _Draws = 64,
    promote_first: _PromoteFirst = False,
    force: _Force = False,
    estimator: _Estimator = "dr",
    reward_model: _RewardModel = "auto",
) -> None:
    """Estimate policies' values off-policy (IPS, SNIPS, DM, DR, switch-DR) on the store's logged
    decisions, or with --log on a logged-bandit file; --promote the first if it is better. A
    policy that explores is also weighed greedy, and the price of its exploration reported."""
    reading = _reading(log, columns, ignore, categorical)
    shown = list(policy or ())
    _check_tables(log, shown)
    engine = _store(ctx, needed=promote_first or log is None)
    # the promoted version the first would replace is weighed in the same evaluation (not shown)
    rival = _rival(engine, shown) if promote_first else None
    if reward_model not in REWARD_MODELS:
        raise InputError(
            f"--reward-model {reward_model!r}: choose one of {', '.join(REWARD_MODELS)}",
            field="reward_model",
        )
    figures = {
        "n_bootstrap": bootstrap,
        "alpha": 1.0 - confidence,
        "seed": seed,
        "draws": draws,
        "reward_model": reward_model,
    }
    asked = [*shown, rival] if rival is not None else shown
    if log is not None:
        evaluation = _evaluate_log(engine, log, asked, actions, {**figures, **reading})
    else:
        found = _evaluate_store(ctx, engine, asked, objective, campaign, figures)
        if isinstance(found, str):
            _say_nothing_to_evaluate(found, as_json=as_json, promote_first=promote_first)
            return
        evaluation = found
    first = evaluation.results[0].policy
    if promote_first and "@" not in first and not first.isdigit():
        raise InputError(
            f"--promote promotes the first policy, a stored version (name@version), not {first!r}",
            field="policy",
        )
    promotion = functools.partial(
        _promote, engine, first, evaluation, estimator=estimator, force=force
    )
    if rival is not None:
        evaluation = evaluation.without(rival)
    if as_json:
        document = evaluation.to_dict()
        if promote_first:
            report = promotion()
            document["promotion"] = {
                **report.details,
                "promoted": report.promoted,
                "audit_entry_id": report.audit_entry_id,
                "message": report.message,
            }
        typer.echo(json.dumps(document))
        return
    _print_evaluation(evaluation, confidence)
    _print_exploration(evaluation, confidence)
    if promote_first:  # after the table, so that a refusal comes with the figures
        report = promotion()
        colour = "green" if report.promoted is not None else "yellow"
        console.print(f"[{colour}]{escape(report.message)}[/{colour}]", highlight=False)


def _check_tables(log: Path | None, shown: list[str]) -> None:
    """Refuse a probability table without a log: it is weighed on a log file's rounds."""
    tables = [spec for spec in shown if Path(spec).suffix.lower() in (".csv", ".tsv")]
    if tables and log is None:
        raise InputError(
            f"{tables[0]} is a probability table, which is weighed on a log file: give --log FILE",
            field="policy",
        )


def _rival(engine: Any, shown: list[str]) -> str | None:
    """The promoted version the first policy asked for would replace, when not asked for too."""
    from tummler.app.learning import promoted_rival

    rival = promoted_rival(engine, shown[0]) if shown else None
    return None if rival is None or rival in shown else rival


def _evaluate_log(
    engine: Any, log: Path, asked: list[str], actions: Path | None, figures: dict[str, Any]
) -> Evaluation:
    from tummler.app.learning import evaluate_log

    if not asked:
        raise InputError("give at least one policy to evaluate (--policy)", field="policy")
    return evaluate_log(log, asked, engine=engine, action_features=actions, **figures)


def _evaluate_store(
    ctx: typer.Context,
    engine: Any,
    asked: list[str],
    objective: str | None,
    campaign: str | None,
    figures: dict[str, Any],
) -> Evaluation | str:
    """The evaluation on the workspace's logged decisions, or why there is nothing to evaluate."""
    from tummler.app.learning import NothingToEvaluateError, evaluate_store

    try:
        return evaluate_store(
            engine,
            workspace=state(ctx).settings.workspace,
            objective=objective,
            campaign=campaign,
            candidates=asked,
            **figures,
        )
    except NothingToEvaluateError as nothing:
        return nothing.reason


def _print_evaluation(evaluation: Evaluation, confidence: float) -> None:
    """Every estimator's figures for every policy, one section per estimator, then the notes."""
    table = Table(
        title=escape(
            f"{evaluation.log}: {evaluation.n_rounds:,} rounds, {evaluation.n_actions} actions"
        ),
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
                else escape(f"[{_number(estimate.ci_low)}, {_number(estimate.ci_high)}]")
            )
            table.add_row(
                name if index == 0 else "",
                escape(result.policy),
                _number(estimate.value),
                interval,
                f"{estimate.effective_sample_size:,.0f}",
                end_section=index == len(evaluation.results) - 1,
            )
    console.print(table)
    _print_guard_and_warnings(evaluation)
    for note in evaluation.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


def _print_exploration(evaluation: Evaluation, confidence: float) -> None:
    """Each exploring policy's price: as deployed minus greedy, paired, per estimator."""
    if not evaluation.exploration:
        return
    table = Table(
        title="price of exploration: as deployed minus greedy, paired", title_justify="left"
    )
    for column in ("policy", "estimator", "price", f"{confidence:.0%} interval"):
        table.add_column(column, justify="left" if column in ("policy", "estimator") else "right")
    for price in evaluation.exploration:
        for index, difference in enumerate(price.differences):
            table.add_row(
                escape(price.policy) if index == 0 else "",
                difference.name,
                _number(difference.value),
                escape(_interval(difference.ci_low, difference.ci_high)),
                end_section=index == len(price.differences) - 1,
            )
    console.print(table)
    for price in evaluation.exploration:
        console.print(_exploration_verdict(price), highlight=False, markup=False)


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"[{_number(low)}, {_number(high)}]"


def _exploration_verdict(price: ExplorationPrice) -> str:
    """One sentence on a policy's price of exploration, by DR (IPS without a reward model)."""
    names = [d.name for d in price.differences]
    d = price["dr" if "dr" in names else "ips"]
    figures = f"{d.name.upper()} {_number(d.value)} {_interval(d.ci_low, d.ci_high)} per round"
    head = f"{price.policy} ({price.kind}) as deployed minus greedy: {figures}"
    if d.ci_high is not None and d.ci_high < 0:
        return (
            f"{head}: exploring costs that much on these logs; the greedy twin is what the "
            "policy would earn if it stopped learning now"
        )
    if d.ci_low is not None and d.ci_low > 0:
        return f"{head}: the sampled policy did better than its greedy twin on these logs"
    return f"{head}: no price of exploration told apart from 0 on these logs"


def _print_guard_and_warnings(evaluation: Evaluation) -> None:
    """switch-DR's guard where it switched rounds, then each policy's warnings (a warning shared
    by every policy, such as too few rounds, once)."""
    for result in evaluation.results:
        guard = result.guard
        if guard is not None and guard.switched_rounds:
            console.print(
                f"guard: switch-DR valued {guard.switched_rounds:,} round(s) of "
                f"{result.policy} by the reward model (importance weight above "
                f"tau = {guard.tau:g}; largest {guard.largest_weight:.3g})",
                highlight=False,
                markup=False,
            )
    shown: dict[tuple[str, str], list[str]] = {}
    for result in evaluation.results:
        for warning in result.warnings:
            shown.setdefault((warning.code, warning.message), []).append(result.policy)
    everyone = len(evaluation.results)
    for (code, message), policies in shown.items():
        who = "" if len(policies) == everyone > 1 else f" ({', '.join(policies)})"
        console.print(
            f"[yellow]warning[/yellow] {escape(code)}{escape(who)}: {escape(message)}",
            highlight=False,
        )
