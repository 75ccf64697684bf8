"""Learn a policy from a logged-bandit file, evaluate candidates on one, promote the better one.

These are the services behind ``tummler learn --log`` and ``tummler evaluate --log``: a team brings
the decision logs of any tool (docs/logged-bandit-format.md) and sees what tummler would have done.

A log's ``k`` actions become a generic :class:`~tummler.decide.ActionSet`: each action is its own
"channel" with one slot and one variant, its features the action's one-hot followed by its
standardized columns of the action-feature file when there is one. The context is standardized
with the training log's means and spreads and gets a constant column, so a bilinear policy
(``x·B·φ(a)``) holds an intercept and a slope per action, plus what the action features share.

A learned policy is saved as a *policy file*: one JSON object holding the policy's own
``to_dict()`` and everything needed to apply it to another log (action names, feature names,
scaling, the action set's features). Stored policy versions
(:class:`~tummler.store.models.PolicyVersion`) learned from a log keep the same object as their
``parameters``.

Learning is batch Laplace updates in chunks of rows (Chapelle & Li's algorithm for logistic
Thompson sampling), so memory stays bounded for any log length. The policies learn the reward of
each action in each context and do not reweight by the logging propensities: a reward model is
consistent under the logging policy's covariate shift when it is well specified, and off-policy
evaluation (not the learner) is what corrects for the logging policy.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tummler.app.logs import LoggedBandit, read_logged_bandit
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError, NotFoundError, PolicyError
from tummler.core.randomness import make_rng
from tummler.decide import POLICIES, ActionSet, Policy, policy_from_dict
from tummler.evaluate import (
    BASELINES,
    ESTIMATORS,
    PolicyEvaluation,
    baseline_action_dist,
    evaluate_policy,
    fit_reward_model,
)
from tummler.store.models import AuditEntry, PolicyVersion

__all__ = [
    "DEFAULT_POLICY_KIND",
    "LEARNABLE_KINDS",
    "POLICY_FILE_FORMAT",
    "PROMOTE_ACTION",
    "Candidate",
    "Evaluation",
    "LearnReport",
    "LearnedPolicy",
    "PromotionReport",
    "evaluate_log",
    "fit_policy",
    "learn_from_log",
    "load_policy_file",
    "promote",
    "resolve_candidate",
    "save_policy_file",
    "store_policy_version",
]

#: The ``format`` key of a policy file; a later incompatible layout gets a new number.
POLICY_FILE_FORMAT = "tummler.policy/1"
#: The policy kind ``tummler learn`` fits unless told otherwise.
DEFAULT_POLICY_KIND = "logistic_thompson"
#: The audit action recorded when a policy version is promoted.
PROMOTE_ACTION = "policy.promote"
#: Policy kinds that can be fitted from a log (those that learn from rewards).
LEARNABLE_KINDS: tuple[str, ...] = ("logistic_thompson", "linear_thompson", "epsilon_greedy")
#: Context × action-feature cells per learning chunk: bounds the design matrix at ~160 MB.
_CHUNK_CELLS = 20_000_000

FloatArray = npt.NDArray[np.float64]
_STORED = re.compile(r"^(?P<name>[^@\s]+)@(?P<version>\d+)$")


# --- the learned policy and its file --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LearnedPolicy:
    """A policy fitted on a logged-bandit file, with what it needs to act on another log.

    Attributes
    ----------
    policy
        The fitted :class:`~tummler.decide.Policy`.
    action_names
        The ``k`` actions, in the order of the policy's action set.
    feature_names
        The encoded context columns the policy reads (before its constant column).
    center, scale
        Per context column: the training log's mean and standard deviation (1 when constant).
    action_features
        ``(k, d_a)`` the action set's features: one-hot, then standardized action-file columns.
    action_feature_names
        ``d_a`` names of those features.
    source
        The log it was learned from; ``n_rounds`` how many rounds it saw.
    """

    policy: Policy
    action_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    center: FloatArray
    scale: FloatArray
    action_features: FloatArray
    action_feature_names: tuple[str, ...]
    source: str = ""
    n_rounds: int = 0

    @property
    def kind(self) -> str:
        """The policy's kind, e.g. ``logistic_thompson``."""
        return self.policy.kind

    def action_set(self) -> ActionSet:
        """The generic action set: one channel per action, one slot, one variant."""
        return _action_set(self.action_names, self.action_features, self.action_feature_names)

    def contexts(self, logs: LoggedBandit) -> npt.NDArray[np.float32]:
        """The policy's input for the rounds of ``logs``: columns matched by name, scaled.

        A one-hot (``col=value``) or hashed (``col#b``) column the log lacks is 0 there (the
        category never occurs); a missing numeric column is an error, since no value stands in.
        """
        index = {name: i for i, name in enumerate(logs.feature_names)}
        x = np.zeros((logs.n_rounds, len(self.feature_names) + 1), dtype=np.float32)
        for j, name in enumerate(self.feature_names):
            i = index.get(name)
            if i is not None:
                x[:, j] = (logs.context[:, i] - self.center[j]) / self.scale[j]
            elif "=" in name or "#" in name:
                x[:, j] = (0.0 - self.center[j]) / self.scale[j]
            else:
                raise InputError(
                    f"the policy reads the context column {name!r}, which this log lacks; "
                    f"evaluate on a log with the columns the policy was learned from",
                    file=logs.source or None,
                    field=name,
                )
        x[:, -1] = 1.0
        return x

    def action_dist(
        self, logs: LoggedBandit, *, draws: int = 64, rng: np.random.Generator | int = 0
    ) -> FloatArray:
        """The policy's ``(n, k_log)`` action distribution over the actions of ``logs``.

        Actions the policy knows but the log never names are masked out: the policy is evaluated
        as if restricted to the log's actions. A stochastic policy's probabilities are Monte Carlo
        estimates over ``draws`` posterior draws from ``rng``.
        """
        lookup = {name: i for i, name in enumerate(self.action_names)}
        missing = [name for name in logs.action_names if name not in lookup]
        if missing:
            raise InputError(
                f"the log has action(s) {', '.join(map(repr, missing[:5]))} that the policy "
                f"does not know; it knows {', '.join(self.action_names[:10])}",
                file=logs.source or None,
                field="action",
            )
        columns = np.array([lookup[name] for name in logs.action_names], dtype=np.int64)
        mask = np.zeros((logs.n_rounds, len(self.action_names)), dtype=bool)
        mask[:, columns] = True
        dist = self.policy.action_distribution(
            self.contexts(logs),
            self.action_set(),
            mask,
            threshold=-math.inf,  # "no send" is not an action of a log unless the log names one
            draws=draws,
            rng=make_rng(rng),
        )
        # An epsilon share lands on "no send" too; spread it over the log's actions instead.
        picked = dist[:, columns]
        return np.asarray(picked / picked.sum(axis=1, keepdims=True), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a policy file (and of a stored version's ``parameters``)."""
        return {
            "format": POLICY_FILE_FORMAT,
            "policy": self.policy.to_dict(),
            "action_names": list(self.action_names),
            "feature_names": list(self.feature_names),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "action_features": self.action_features.tolist(),
            "action_feature_names": list(self.action_feature_names),
            "source": self.source,
            "n_rounds": self.n_rounds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "policy") -> LearnedPolicy:
        """Rebuild a learned policy from :meth:`to_dict`'s object; ``origin`` names it in errors."""
        if not isinstance(data, Mapping) or data.get("format") != POLICY_FILE_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise InputError(
                f"not a tummler policy file (format {found!r}, expected {POLICY_FILE_FORMAT!r}); "
                f"write one with: tummler learn --log FILE --out POLICY.json",
                file=origin,
                field="format",
            )
        try:
            features = tuple(str(n) for n in data["feature_names"])
            actions = tuple(str(n) for n in data["action_names"])
            center = np.asarray(data["center"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
            action_features = np.asarray(data["action_features"], dtype=np.float64)
            action_feature_names = tuple(str(n) for n in data["action_feature_names"])
            policy = policy_from_dict(dict(data["policy"]))
        except KeyError as exc:
            raise InputError(
                f"the policy file lacks {exc}; write it again with tummler learn",
                file=origin,
                field=str(exc.args[0]),
            ) from exc
        except (TypeError, ValueError, PolicyError) as exc:
            raise InputError(
                f"the policy file is malformed ({exc}); write it again with tummler learn",
                file=origin,
            ) from exc
        d, k = len(features), len(actions)
        shapes_ok = (
            center.shape == (d,)
            and scale.shape == (d,)
            and bool((scale > 0).all())
            and action_features.shape == (k, len(action_feature_names))
            and policy.n_context_features == d + 1
            and policy.n_action_features == len(action_feature_names)
            and policy.n_channels == k
        )
        if not shapes_ok:
            raise InputError(
                f"the policy file's parts disagree ({d} features, {k} actions, scale, center, "
                f"action features and the policy's sizes must match); write it again with "
                f"tummler learn",
                file=origin,
            )
        return cls(
            policy=policy,
            action_names=actions,
            feature_names=features,
            center=center,
            scale=scale,
            action_features=action_features,
            action_feature_names=action_feature_names,
            source=str(data.get("source", "")),
            n_rounds=int(data.get("n_rounds", 0)),
        )


def _action_set(
    names: Sequence[str], features: FloatArray, feature_names: Sequence[str]
) -> ActionSet:
    k, d_a = features.shape
    return ActionSet(
        channel_names=tuple(names),
        slot_hours=np.zeros(1, dtype=np.int64),
        variant_names=(("",),) * k,
        variant_available=np.ones((k, 1), dtype=bool),
        channel_features=features.astype(np.float32),
        slot_features=np.zeros((1, d_a), dtype=np.float32),
        variant_features=np.zeros((k, 1, d_a), dtype=np.float32),
        feature_names=tuple(feature_names),
    )


def _standardize(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    center = values.mean(axis=0) if values.shape[0] else np.zeros(values.shape[1])
    scale = values.std(axis=0) if values.shape[0] else np.ones(values.shape[1])
    scale = np.where(scale > 1e-12, scale, 1.0)
    return np.asarray(center, dtype=np.float64), np.asarray(scale, dtype=np.float64)


def fit_policy(
    logs: LoggedBandit,
    *,
    kind: str = DEFAULT_POLICY_KIND,
    params: Mapping[str, Any] | None = None,
    chunk_rows: int | None = None,
) -> LearnedPolicy:
    """Fit a policy of ``kind`` on every round of a logged-bandit file's arrays.

    Parameters
    ----------
    logs
        The rounds, as :func:`~tummler.app.logs.read_logged_bandit` returns them.
    kind
        A learning policy kind: ``logistic_thompson`` (rewards in [0, 1]), ``linear_thompson`` or
        ``epsilon_greedy`` (any real reward).
    params
        Extra keyword arguments of the policy (``prior_precision``, ``epsilon``, ...).
    chunk_rows
        Rows per batch update; by default as many as keep the design matrix near 160 MB.

    Returns
    -------
    LearnedPolicy

    Raises
    ------
    InputError
        An unknown or non-learning kind, rewards outside [0, 1] for ``logistic_thompson``, or
        parameters the policy does not take.
    """
    if kind not in POLICIES or kind not in LEARNABLE_KINDS:
        raise InputError(
            f"policy kind {kind!r} cannot be learned from a log; choose one of "
            f"{', '.join(LEARNABLE_KINDS)}",
            field="policy_kind",
        )
    if kind == "logistic_thompson" and ((logs.reward < 0) | (logs.reward > 1)).any():
        row = int(np.flatnonzero((logs.reward < 0) | (logs.reward > 1))[0])
        raise InputError(
            f"reward {logs.reward[row]} of round {row + 1} is outside [0, 1], which "
            f"logistic_thompson needs (clicks, conversions); for amounts use "
            f"--policy-kind linear_thompson",
            file=logs.source or None,
            field="reward",
        )
    center, scale = _standardize(logs.context)
    k = logs.n_actions
    one_hot = np.eye(k)
    names = [f"action={name}" for name in logs.action_names]
    if logs.action_context is not None and logs.action_context.shape[1]:
        a_center, a_scale = _standardize(logs.action_context)
        scaled = (logs.action_context - a_center) / a_scale
        action_features = np.concatenate([one_hot, scaled], axis=1)
        names += list(logs.action_feature_names)
    else:
        action_features = one_hot
    learned = LearnedPolicy(
        policy=_new_policy(kind, logs.context.shape[1] + 1, action_features.shape[1], k, params),
        action_names=logs.action_names,
        feature_names=logs.feature_names,
        center=center,
        scale=scale,
        action_features=action_features,
        action_feature_names=tuple(names),
        source=logs.source,
        n_rounds=logs.n_rounds,
    )
    actions = learned.action_set()
    x = learned.contexts(logs)
    if chunk_rows is None:
        cells = x.shape[1] * action_features.shape[1]
        chunk_rows = max(1_000, _CHUNK_CELLS // max(cells, 1))
    if chunk_rows < 1:
        raise InputError(f"chunk_rows = {chunk_rows} must be at least 1", field="chunk_rows")
    for start in range(0, logs.n_rounds, chunk_rows):
        stop = min(logs.n_rounds, start + chunk_rows)
        learned.policy.update(
            x[start:stop],
            actions,
            logs.action[start:stop],
            logs.reward[start:stop],
            logs.propensity[start:stop],
        )
    return learned


def _new_policy(kind: str, d_x: int, d_a: int, k: int, params: Mapping[str, Any] | None) -> Policy:
    try:
        return POLICIES[kind](d_x, d_a, k, **dict(params or {}))
    except TypeError as exc:
        raise InputError(f"{kind} does not take these parameters ({exc})", field="params") from exc
    except PolicyError as exc:
        raise InputError(f"{kind}: {exc}", field="params") from exc


def save_policy_file(learned: LearnedPolicy, path: str | Path) -> Path:
    """Write a policy file (JSON); return its path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(learned.to_dict()) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the policy file: {exc.strerror}", file=path) from exc
    return path


def load_policy_file(path: str | Path) -> LearnedPolicy:
    """Read a policy file written by :func:`save_policy_file` (``tummler learn --out``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("policy file not found; check the path", file=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a JSON policy file ({exc})", file=path) from exc
    return LearnedPolicy.from_dict(data, origin=str(path))


@dataclass(frozen=True)
class LearnReport:
    """What ``tummler learn --log`` did."""

    out: Path
    kind: str
    n_rounds: int
    n_actions: int
    n_features: int
    stored: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "out": str(self.out),
            "kind": self.kind,
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "n_features": self.n_features,
            "stored": self.stored,
        }


def learn_from_log(
    log: str | Path,
    *,
    out: str | Path,
    kind: str = DEFAULT_POLICY_KIND,
    action_features: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    columns: Mapping[str, str] | None = None,
    ignore: Iterable[str] = (),
    engine: Engine | None = None,
    name: str | None = None,
    clock: Clock | None = None,
) -> LearnReport:
    """Fit a policy on a logged-bandit file and save it as a policy file; optionally store it.

    Parameters
    ----------
    log, action_features, columns, ignore
        The log and how to read it (:func:`~tummler.app.logs.read_logged_bandit`).
    out
        Where to write the policy file.
    kind, params
        The policy kind and its parameters (:func:`fit_policy`).
    engine, name
        With both, the policy is also stored as the next version of ``name`` in the store, its
        parent the latest earlier version (lineage).
    clock
        The time stored with the version (default: the wall clock).
    """
    logs = read_logged_bandit(log, action_features=action_features, columns=columns, ignore=ignore)
    learned = fit_policy(logs, kind=kind, params=params)
    path = save_policy_file(learned, out)
    stored = None
    if name is not None:
        if engine is None:
            raise InputError("storing a policy version needs a workspace", field="name")
        version = store_policy_version(engine, learned, name=name, clock=clock)
        stored = f"{version.name}@{version.version}"
    return LearnReport(
        out=path,
        kind=learned.kind,
        n_rounds=logs.n_rounds,
        n_actions=logs.n_actions,
        n_features=len(logs.feature_names),
        stored=stored,
    )


# --- stored versions ------------------------------------------------------------------------


def store_policy_version(
    engine: Engine, learned: LearnedPolicy, *, name: str, clock: Clock | None = None
) -> PolicyVersion:
    """Store a learned policy as the next version of ``name``, with the latest as its parent."""
    if not name or "@" in name or len(name) > 128 or name.strip() != name:
        raise InputError(
            f"policy name {name!r} must be 1-128 characters without '@' or surrounding spaces",
            field="name",
        )
    now = (clock or SystemClock()).now()
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        latest = session.scalars(
            select(PolicyVersion)
            .where(PolicyVersion.name == name)
            .order_by(PolicyVersion.version.desc())
            .limit(1)
        ).first()
        version = PolicyVersion(
            name=name,
            version=1 if latest is None else latest.version + 1,
            kind=learned.kind,
            parameters=learned.to_dict(),
            parent_id=None if latest is None else latest.id,
            promoted=False,
            created_at=now,
        )
        session.add(version)
        session.flush()
    return version


def _find_version(session: Session, spec: str) -> PolicyVersion | None:
    match = _STORED.match(spec)
    if match is not None:
        return session.scalars(
            select(PolicyVersion).where(
                PolicyVersion.name == match["name"],
                PolicyVersion.version == int(match["version"]),
            )
        ).first()
    if spec.isdigit():
        return session.get(PolicyVersion, int(spec))
    return None


# --- candidates and evaluation --------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Candidate:
    """A policy to evaluate: a baseline by name, or a learned policy from a file or the store."""

    label: str
    baseline: str | None = None
    learned: LearnedPolicy | None = None
    version_id: int | None = None

    def action_dist(
        self, logs: LoggedBandit, *, draws: int, rng: np.random.Generator
    ) -> FloatArray:
        """The candidate's ``(n, k)`` action distribution on the rounds of ``logs``."""
        if self.baseline is not None:
            return baseline_action_dist(
                self.baseline,
                reward=logs.reward,
                action=logs.action,
                propensity=logs.propensity,
                n_actions=logs.n_actions,
            )
        assert self.learned is not None
        return self.learned.action_dist(logs, draws=draws, rng=rng)


def resolve_candidate(spec: str, *, engine: Engine | None = None) -> Candidate:
    """Turn ``--policy P`` into a :class:`Candidate`.

    ``P`` is a baseline name (``uniform``, ``logged``, ``best-single``), a policy file (an
    existing path), or a stored version as ``name@version`` or its numeric id.
    """
    if spec in BASELINES:
        return Candidate(label=spec, baseline=spec)
    path = Path(spec)
    if path.is_file() or path.suffix.lower() == ".json":
        return Candidate(label=spec, learned=load_policy_file(path))
    if _STORED.match(spec) or spec.isdigit():
        if engine is None:
            raise InputError(
                f"{spec!r} names a stored policy version; run inside a workspace (--workspace)",
                field="policy",
            )
        with Session(engine) as session:
            version = _find_version(session, spec)
            if version is None:
                raise NotFoundError(
                    f"no stored policy version {spec!r}; list them or give a policy file"
                )
            learned = LearnedPolicy.from_dict(
                version.parameters, origin=f"policy version {version.name}@{version.version}"
            )
            return Candidate(
                label=f"{version.name}@{version.version}", learned=learned, version_id=version.id
            )
    raise InputError(
        f"{spec!r} is neither a baseline ({', '.join(BASELINES)}), an existing policy file, "
        f"nor a stored version (name@version or id)",
        field="policy",
    )


@dataclass(frozen=True)
class Evaluation:
    """Every candidate's estimates on one log, from the same reward model and resamples."""

    log: str
    n_rounds: int
    n_actions: int
    results: tuple[PolicyEvaluation, ...]

    def to_dict(self) -> dict[str, Any]:
        """The one JSON object of ``tummler evaluate --json``."""
        return {
            "log": self.log,
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "policies": [result.to_dict() for result in self.results],
        }


def evaluate_log(
    log: str | Path | LoggedBandit,
    candidates: Sequence[str | Candidate],
    *,
    engine: Engine | None = None,
    action_features: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    ignore: Iterable[str] = (),
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    draws: int = 64,
    reward_model: Literal["auto", "ridge", "logistic"] = "auto",
) -> Evaluation:
    """Estimate each candidate's value on a logged-bandit file with every estimator.

    One cross-fitted reward model serves every candidate, and every candidate is resampled with
    the same bootstrap draws (same ``seed``), so their figures are comparable side by side.

    Parameters
    ----------
    log
        The logged-bandit file, or its arrays already read.
    candidates
        ``--policy`` values (see :func:`resolve_candidate`) or resolved candidates.
    engine
        The store, for stored versions.
    n_bootstrap, alpha, seed
        The bootstrap's resamples, ``1 - confidence`` and seed.
    draws
        Posterior draws per round for the propensities of stochastic policies.
    """
    if not candidates:
        raise InputError("give at least one policy to evaluate (--policy)", field="policy")
    logs = (
        log
        if isinstance(log, LoggedBandit)
        else read_logged_bandit(
            log, action_features=action_features, columns=columns, ignore=ignore
        )
    )
    resolved = [
        c if isinstance(c, Candidate) else resolve_candidate(c, engine=engine) for c in candidates
    ]
    # Every candidate's distribution first: a policy that does not fit the log fails fast.
    dists = [c.action_dist(logs, draws=draws, rng=make_rng(seed)) for c in resolved]
    estimated = None
    if logs.context.shape[1] or logs.position is not None:
        estimated = fit_reward_model(
            logs.context,
            logs.action,
            logs.reward,
            n_actions=logs.n_actions,
            position=logs.position,
            kind=reward_model,
            n_folds=min(3, logs.n_rounds),
            rng=make_rng(seed),
        )
    results = []
    for candidate, dist in zip(resolved, dists, strict=True):
        results.append(
            evaluate_policy(
                logs.reward,
                logs.action,
                logs.propensity,
                dist,
                estimated_rewards=estimated,
                policy=candidate.label,
                n_bootstrap=n_bootstrap,
                alpha=alpha,
                rng=make_rng(seed),
            )
        )
    return Evaluation(
        log=logs.source, n_rounds=logs.n_rounds, n_actions=logs.n_actions, results=tuple(results)
    )


# --- promotion ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionReport:
    """What a promotion compared and decided."""

    promoted: str
    previous: str | None
    estimator: str
    candidate_estimate: float
    candidate_ci_low: float | None
    previous_estimate: float | None
    forced: bool
    audit_entry_id: int
    details: dict[str, Any] = field(default_factory=dict)


def promote(
    engine: Engine,
    candidate: str,
    *,
    log: str | Path | LoggedBandit,
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
    """Promote a stored policy version when the logs show it is not worse than the current one.

    The candidate's lower confidence bound under ``estimator`` must reach the currently promoted
    version's (same name) point estimate on the same log; otherwise the promotion is refused
    unless ``force``. A first promotion (none promoted yet) goes through. Either way an audit
    entry records the figures, the actor and whether it was forced.

    Raises
    ------
    PolicyError
        The candidate's lower bound is below the current policy's estimate and ``force`` is off.
    NotFoundError, InputError
        The candidate is not a stored version.
    """
    if estimator not in ESTIMATORS:
        raise InputError(
            f"estimator {estimator!r} is unknown; choose one of {', '.join(ESTIMATORS)}",
            field="estimator",
        )
    with Session(engine) as session:
        version = _find_version(session, candidate)
        if version is None:
            raise NotFoundError(
                f"no stored policy version {candidate!r}; promote a stored version "
                f"(name@version or id); store one with tummler learn --name"
            )
        current = session.scalars(
            select(PolicyVersion).where(
                PolicyVersion.name == version.name, PolicyVersion.promoted.is_(True)
            )
        ).first()
        if current is not None and current.id == version.id:
            raise InputError(
                f"{version.name}@{version.version} is already the promoted version", field="policy"
            )
        specs = [f"{version.name}@{version.version}"]
        if current is not None:
            specs.append(f"{current.name}@{current.version}")
        version_id, current_id = version.id, None if current is None else current.id
    evaluation = evaluate_log(
        log,
        specs,
        engine=engine,
        action_features=action_features,
        columns=columns,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        seed=seed,
        draws=draws,
    )
    try:
        ours = evaluation.results[0][estimator]
    except KeyError:
        raise InputError(
            f"estimator {estimator!r} needs a reward model, and this log has no context "
            f"features; promote on ips or snips",
            field="estimator",
        ) from None
    theirs = evaluation.results[1][estimator] if current_id is not None else None
    bound = ours.ci_low if ours.ci_low is not None else ours.value
    worse = theirs is not None and bound < theirs.value
    details: dict[str, Any] = {
        "estimator": estimator,
        "log": evaluation.log,
        "n_rounds": evaluation.n_rounds,
        "candidate": {"policy": specs[0], "estimate": ours.value, "ci_low": ours.ci_low},
        "previous": None
        if theirs is None
        else {"policy": specs[1], "estimate": theirs.value, "ci_low": theirs.ci_low},
        "forced": bool(force and worse),
    }
    if worse and not force:
        assert theirs is not None
        raise PolicyError(
            f"refusing to promote {specs[0]}: its {estimator} lower bound {bound:.6g} is below "
            f"the promoted {specs[1]}'s estimate {theirs.value:.6g} on {evaluation.log}; gather "
            f"more logs, or force the promotion (--force) to override"
        )
    now = (clock or SystemClock()).now()
    with sessionmaker(engine).begin() as session:
        if current_id is not None:
            previous = session.get(PolicyVersion, current_id)
            if previous is not None:
                previous.promoted = False
        chosen = session.get(PolicyVersion, version_id)
        if chosen is None:  # deleted meanwhile
            raise NotFoundError(f"policy version {specs[0]} disappeared during the promotion")
        chosen.promoted = True
        entry = AuditEntry(
            at=now,
            actor=actor,
            action=PROMOTE_ACTION,
            subject=f"policy:{specs[0]}",
            details=details,
        )
        session.add(entry)
        session.flush()
        entry_id = entry.id
    return PromotionReport(
        promoted=specs[0],
        previous=None if current_id is None else specs[1],
        estimator=estimator,
        candidate_estimate=ours.value,
        candidate_ci_low=ours.ci_low,
        previous_estimate=None if theirs is None else theirs.value,
        forced=bool(force and worse),
        audit_entry_id=entry_id,
        details=details,
    )
