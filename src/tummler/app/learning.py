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

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tummler.app.logs import LoggedBandit, read_logged_bandit
from tummler.core.clock import Clock, SystemClock, ensure_utc
from tummler.core.errors import InputError, NotFoundError, PolicyError, StrategyError
from tummler.core.randomness import make_rng
from tummler.decide import (
    POLICIES,
    ActionSet,
    ContextData,
    ContextFeaturizer,
    Policy,
    policy_from_dict,
)
from tummler.evaluate import (
    BASELINES,
    ESTIMATORS,
    Comparison,
    PolicyEvaluation,
    baseline_action_dist,
    compare_values,
    evaluate_policy,
    fit_reward_model,
    tie_tolerance,
)
from tummler.learn.harm import ChannelHarm, clipped_harm
from tummler.store.models import AuditEntry, PolicyVersion

if TYPE_CHECKING:
    from tummler.app.attribution import DecisionRewards

__all__ = [
    "DEFAULT_POLICY_KIND",
    "LEARNABLE_KINDS",
    "LOG_FEATURIZER",
    "POLICY_FILE_FORMAT",
    "PROMOTE_ACTION",
    "CampaignPolicy",
    "Candidate",
    "Evaluation",
    "LearnReport",
    "LearnedPolicy",
    "NothingToEvaluateError",
    "PromotionReport",
    "StoreLearnRow",
    "evaluate_log",
    "evaluate_store",
    "fit_policy",
    "learn_from_log",
    "learn_from_store",
    "load_policy_file",
    "promote",
    "read_policy",
    "resolve_candidate",
    "save_policy_file",
    "store_policy_version",
]

#: The ``format`` key of a policy file and of a stored version's ``parameters``; a later
#: incompatible layout gets a new number. Version 2 is planning's ``{"policy", "featurizer"}``
#: object plus metadata; version 1 files (the log's columns at the top level) are still read.
POLICY_FILE_FORMAT = "tummler.policy/2"
_POLICY_FILE_FORMAT_1 = "tummler.policy/1"
#: ``featurizer.type`` of a policy learned from a logged-bandit file (a campaign's featurizer,
#: :class:`~tummler.decide.ContextFeaturizer`'s fields, has no ``type``).
LOG_FEATURIZER = "logged-bandit"
#: The policy kind ``tummler learn`` fits unless told otherwise.
DEFAULT_POLICY_KIND = "logistic_thompson"
#: The audit action recorded when a policy version is promoted.
PROMOTE_ACTION = "policy.promote"
#: Policy kinds that can be fitted from a log (those that learn from rewards).
LEARNABLE_KINDS: tuple[str, ...] = ("logistic_thompson", "linear_thompson", "epsilon_greedy")


class NothingToEvaluateError(InputError):
    """No logged send of the objective went out yet: there is nothing to weigh a policy on.

    Not a failure of the caller's input so much as a state of the store (a plan not sent yet):
    ``tummler evaluate`` says so and exits 0, the promoted version staying as it is.
    """


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
            "featurizer": {
                "type": LOG_FEATURIZER,
                "action_names": list(self.action_names),
                "feature_names": list(self.feature_names),
                "center": self.center.tolist(),
                "scale": self.scale.tolist(),
                "action_features": self.action_features.tolist(),
                "action_feature_names": list(self.action_feature_names),
            },
            "source": self.source,
            "n_rounds": self.n_rounds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "policy") -> LearnedPolicy:
        """Rebuild a learned policy from :meth:`to_dict`'s object; ``origin`` names it in errors."""
        if isinstance(data, Mapping) and data.get("format") == POLICY_FILE_FORMAT:
            featurizer = data.get("featurizer")
            if isinstance(featurizer, Mapping):  # version 2: the log's columns under "featurizer"
                data = {**data, **featurizer}
        elif isinstance(data, Mapping) and data.get("format") == _POLICY_FILE_FORMAT_1:
            pass  # version 1: the same keys, flat
        else:
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
    policy = read_policy(data, origin=str(path))
    if not isinstance(policy, LearnedPolicy):
        raise InputError(
            "this policy file holds a campaign policy (a stored version's parameters), which "
            "acts on the store's contacts, not on a log; evaluate it without --log",
            file=path,
        )
    return policy


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
            learned = read_policy(
                version.parameters, origin=f"policy version {version.name}@{version.version}"
            )
            if not isinstance(learned, LearnedPolicy):
                raise InputError(
                    f"{version.name}@{version.version} decides campaigns and acts on the "
                    f"store's contacts, not on a log; evaluate it without --log",
                    field="policy",
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
    """Every candidate's estimates on one log, from the same reward model and resamples.

    Attributes
    ----------
    log, n_rounds, n_actions
        What the candidates were evaluated on.
    results
        One :class:`~tummler.evaluate.PolicyEvaluation` per candidate, in the order asked for.
    reward_scale
        The largest absolute reward of the log: the unit in which two estimates that differ by
        rounding noise are told apart from two that differ (:func:`~tummler.evaluate.tie_tolerance`).
    notes
        What the evaluation left out and why (decisions never sent, campaigns it cannot read).
    """

    log: str
    n_rounds: int
    n_actions: int
    results: tuple[PolicyEvaluation, ...]
    reward_scale: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The one JSON object of ``tummler evaluate --json``."""
        return {
            "log": self.log,
            "n_rounds": self.n_rounds,
            "n_actions": self.n_actions,
            "policies": [result.to_dict() for result in self.results],
            "notes": list(self.notes),
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
        log=logs.source,
        n_rounds=logs.n_rounds,
        n_actions=logs.n_actions,
        results=tuple(results),
        reward_scale=_reward_scale(logs.reward),
    )


def _reward_scale(reward: FloatArray) -> float:
    """The largest absolute reward (0 for an empty log)."""
    return float(np.abs(reward).max()) if reward.size else 0.0


# --- promotion ------------------------------------------------------------------------------


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


def promote(
    engine: Engine,
    candidate: str,
    *,
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
    (:func:`~tummler.evaluate.compare_values`, which calls differences within rounding noise a
    tie):

    * above it: the candidate is promoted;
    * level with it (a tie, such as -3.18e-11 against -1.67e-11 when every reward is still 0):
      the candidate is not better, the current version is kept, and the report says so
      (``promoted`` is ``None``); not an error;
    * below it: the promotion is refused with an error.

    ``force`` promotes in the last two cases too. A first promotion (none promoted yet) goes
    through. A promotion writes an audit entry with the figures, the actor and whether it was
    forced; keeping the current version changes nothing and writes none.

    The evidence is ``log`` (a logged-bandit file) or, without one, the logged decisions of the
    version's objective in the store (:func:`evaluate_store`, which needs ``workspace``). The
    version's name is its objective there.

    Raises
    ------
    PolicyError
        The candidate's lower bound is below the current policy's estimate (beyond rounding
        noise) and ``force`` is off.
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
    if log is not None:
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
    elif workspace is not None:
        evaluation = evaluate_store(
            engine,
            workspace=workspace,
            objective=specs[0].split("@")[0] if "@" in specs[0] else None,
            candidates=specs,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            seed=seed,
            draws=draws,
            clock=clock,
        )
    else:
        raise InputError(
            "promoting needs the evidence: a log (--log) or the workspace's logged decisions",
            field="log",
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
    comparison = (
        None
        if theirs is None
        else compare_values(bound, theirs.value, reward_scale=evaluation.reward_scale)
    )
    forced = force and comparison in (Comparison.TIE, Comparison.WORSE)
    details: dict[str, Any] = {
        "estimator": estimator,
        "log": evaluation.log,
        "n_rounds": evaluation.n_rounds,
        "candidate": {"policy": specs[0], "estimate": ours.value, "ci_low": ours.ci_low},
        "previous": None
        if theirs is None
        else {"policy": specs[1], "estimate": theirs.value, "ci_low": theirs.ci_low},
        "comparison": None if comparison is None else comparison.value,
        "tie_tolerance": None
        if theirs is None
        else tie_tolerance(bound, theirs.value, reward_scale=evaluation.reward_scale),
        "forced": forced,
    }
    report = functools.partial(
        PromotionReport,
        candidate=specs[0],
        previous=None if current_id is None else specs[1],
        estimator=estimator,
        candidate_estimate=ours.value,
        candidate_ci_low=ours.ci_low,
        previous_estimate=None if theirs is None else theirs.value,
        comparison=comparison,
        forced=forced,
        details=details,
    )
    if theirs is not None and not force and comparison is not Comparison.BETTER:
        figures = (
            f"its {estimator} lower bound {bound:.6g} against the promoted {specs[1]}'s "
            f"estimate {theirs.value:.6g} on {evaluation.log}"
        )
        if comparison is Comparison.WORSE:
            raise PolicyError(
                f"refusing to promote {specs[0]}: {figures} is below it; gather more logs, or "
                f"force the promotion (--force) to override"
            )
        return report(
            promoted=None,
            audit_entry_id=None,
            message=(
                f"kept {specs[1]}: {specs[0]} is not better ({figures} is a tie, the same "
                f"within {details['tie_tolerance']:.1g}); gather more outcomes and evaluate again"
            ),
        )
    entry_id = _record_promotion(
        engine, version_id, current_id, specs[0], actor, details, (clock or SystemClock()).now()
    )
    return report(
        promoted=specs[0],
        audit_entry_id=entry_id,
        message=f"promoted {specs[0]}{' (forced)' if forced else ''}; audit entry #{entry_id}",
    )


def _record_promotion(
    engine: Engine,
    version_id: int,
    current_id: int | None,
    spec: str,
    actor: str,
    details: dict[str, Any],
    now: datetime,
) -> int:
    """Promote version ``version_id`` in place of ``current_id``, with its audit entry; its id."""
    with sessionmaker(engine).begin() as session:
        if current_id is not None:
            previous = session.get(PolicyVersion, current_id)
            if previous is not None:
                previous.promoted = False
        chosen = session.get(PolicyVersion, version_id)
        if chosen is None:  # deleted meanwhile
            raise NotFoundError(f"policy version {spec} disappeared during the promotion")
        chosen.promoted = True
        entry = AuditEntry(
            at=now, actor=actor, action=PROMOTE_ACTION, subject=f"policy:{spec}", details=details
        )
        session.add(entry)
        session.flush()
        return int(entry.id)


# --- one reader for policy files and stored parameters ---------------------------------------


@dataclass(frozen=True, eq=False)
class CampaignPolicy:
    """A policy that decides campaigns: planning's policy with the featurizer it reads contexts by.

    Attributes
    ----------
    policy
        The :class:`~tummler.decide.Policy`.
    featurizer
        The fitted :class:`~tummler.decide.ContextFeaturizer` of the plans it made.
    learned_from
        Metadata of the learning run that made it (empty for planning's fresh prior).
    channel_harm
        Per channel, the sends and the unsubscribe and complaint penalties that a logistic
        policy's clipped rewards could not carry (:mod:`tummler.learn.harm`); planning adds the
        harm per send to each channel's cost.
    """

    policy: Policy
    featurizer: ContextFeaturizer
    learned_from: Mapping[str, Any] = field(default_factory=dict)
    channel_harm: ChannelHarm = field(default_factory=ChannelHarm)

    @property
    def kind(self) -> str:
        """The policy's kind, e.g. ``logistic_thompson``."""
        return self.policy.kind

    def to_dict(self) -> dict[str, Any]:
        """Planning's ``{"policy", "featurizer"}`` object, with the format and metadata."""
        featurizer = {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.featurizer).items()
        }
        return {
            "format": POLICY_FILE_FORMAT,
            "policy": self.policy.to_dict(),
            "featurizer": featurizer,
            "learned_from": dict(self.learned_from),
            "channel_harm": self.channel_harm.to_dict(),
        }


def read_policy(data: Any, *, origin: str = "policy") -> LearnedPolicy | CampaignPolicy:
    """Read a policy file's object or a stored version's ``parameters``: the one reader of both.

    Accepted: ``tummler.policy/2`` objects (``{"policy", "featurizer", ...}``; a featurizer of
    ``type`` ``logged-bandit`` is a log's, any other a campaign's), planning's objects without a
    ``format`` key, and ``tummler.policy/1`` policy files.

    Raises
    ------
    InputError
        Naming ``origin`` and what is wrong, when the object is none of these.
    """
    if not isinstance(data, Mapping):
        raise InputError(
            f"a policy must be a JSON object, got {type(data).__name__}",
            file=origin,
            field="format",
        )
    featurizer = data.get("featurizer")
    is_log = data.get("format") == _POLICY_FILE_FORMAT_1 or (
        isinstance(featurizer, Mapping) and featurizer.get("type") == LOG_FEATURIZER
    )
    if is_log or not isinstance(featurizer, Mapping):
        return LearnedPolicy.from_dict(data, origin=origin)
    try:
        policy = policy_from_dict(dict(data["policy"]))
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in featurizer.items()}
        context = ContextFeaturizer(**values)  # type: ignore[arg-type]  # checked by the class
        n_features = len(context.feature_names())
    except (KeyError, TypeError, ValueError, PolicyError, InputError) as exc:
        raise InputError(
            f"the policy's parts cannot be read ({exc}); store it again with tummler learn",
            file=origin,
        ) from exc
    if policy.n_context_features != n_features:
        raise InputError(
            f"the policy reads {policy.n_context_features} context features but its featurizer "
            f"makes {n_features}; store it again with tummler learn",
            file=origin,
            field="featurizer",
        )
    learned_from = data.get("learned_from")
    return CampaignPolicy(
        policy,
        context,
        dict(learned_from) if isinstance(learned_from, Mapping) else {},
        ChannelHarm.from_dict(data.get("channel_harm"), origin=origin),
    )


# --- the store's logged decisions, with the contexts the plans saw ---------------------------


@dataclass(frozen=True, eq=False)
class _Batch:
    """The logged decisions of one plan (one campaign at one moment), with their contexts."""

    campaign: str
    actions: ActionSet
    message: Mapping[str, float]
    data: ContextData  # per contact of the plan's chunk
    rows: npt.NDArray[np.int64]  # per decision: its contact's row of ``data``
    mask: npt.NDArray[np.bool_]
    cost: FloatArray
    threshold: float
    decision_id: npt.NDArray[np.int64]
    action: npt.NDArray[np.int64]
    propensity: FloatArray
    reward: FloatArray

    def contexts(self, featurizer: ContextFeaturizer) -> npt.NDArray[np.float32]:
        """``(n, d_x)`` each decision's context through ``featurizer``."""
        return np.asarray(featurizer.transform(self.data, self.message)[self.rows], np.float32)


@dataclass(frozen=True)
class _Logged:
    """An objective's usable decisions: which version made them and their plans' batches."""

    objective: str
    version_id: int
    batches: tuple[_Batch, ...]
    skipped: tuple[str, ...]
    unsent: int = 0  # decisions of the version left out: their message never went out
    went_out: int = 0  # sends of the version whose message went out, batched or not

    @property
    def n(self) -> int:
        return sum(b.decision_id.size for b in self.batches)


def _strategy(workspace: Path, clock: Clock) -> Any:
    from tummler.app.strategy import check_workspace_strategy

    loaded, _ = check_workspace_strategy(workspace, engine=None, clock=clock)
    if loaded.strategy is None:
        raise InputError(
            "the workspace has no readable strategy; run tummler strategy check",
            file=workspace / "strategy.yaml",
        )
    return loaded.strategy.strategy


def _logged_decisions(
    engine: Engine,
    *,
    workspace: Path,
    clock: Clock,
    strategy: Any,
    rewards: DecisionRewards,
    objective: str,
    sends_only: bool,
    version_id: int | None = None,
) -> _Logged:
    """Rebuild the contexts of an objective's non-holdout decisions, as their plans saw them.

    ``sends_only``: decisions with a channel (learning); otherwise lever 0 of every non-holdout
    decision, *no send* included (evaluation: the logging policy's full choice). The decisions are
    those of ``version_id``, by default of the newest version of the objective that made any, and
    of ``rewards`` (:func:`_rewards`, read once for every objective).

    Each contact's stage and attributes are read as of the decision's ``decided_at`` from the
    contacts' history (:func:`tummler.app.contacts.contacts_as_of`): the latest change at or before
    it. When no change predates it, the earliest recorded one gives the stage it moved from (and
    the earliest attributes known), and a contact without any history is read as it is now. The
    rest of the profile (time zone, locale) and the consent, identities and events are read as of
    the decision by planning's own readers. One query per 5,000 contacts of each plan.
    """
    # planning's readers, until planning exposes one public function (see the module's notes)
    from tummler.app import planning
    from tummler.app.attribution import HAPPENED
    from tummler.app.contacts import contacts_as_of
    from tummler.store import models

    wanted = (rewards.objective == objective) & ~rewards.holdout
    ids = rewards.decision_id[wanted].tolist()
    reward_of = dict(zip(ids, rewards.reward[wanted].tolist(), strict=True))
    state_of = dict(zip(ids, rewards.send_state[wanted].tolist(), strict=True))
    with engine.connect() as connection:
        query = (
            select(
                models.Decision.id,
                models.Decision.contact_id,
                models.Decision.channel,
                models.Decision.lever,
                models.Decision.action,
                models.Decision.propensity,
                models.Decision.decided_at,
                models.Decision.policy_version_id,
                models.Decision.campaign_id,
                models.Campaign.key,
                models.PolicyVersion.version,
            )
            .join(models.Campaign, models.Campaign.id == models.Decision.campaign_id)
            .join(
                models.PolicyVersion,
                models.PolicyVersion.id == models.Decision.policy_version_id,
            )
            .where(
                models.Campaign.objective == objective,
                models.Decision.holdout.is_(False),
                models.PolicyVersion.name == objective,
            )
            .order_by(models.Decision.id)
        )
        rows = [r for r in connection.execute(query) if int(r.id) in reward_of]
        if sends_only:
            rows = [r for r in rows if r.channel is not None]
        else:
            rows = [r for r in rows if r.lever == 0]
        if version_id is None and rows:
            version_id = int(max(rows, key=lambda r: (r.version, r.id)).policy_version_id)
        rows = [r for r in rows if r.policy_version_id == version_id]
        # A send that never went out has no reward: leave it out rather than read it as 0.
        unsent = Counter(state_of[int(r.id)] for r in rows if state_of[int(r.id)] not in HAPPENED)
        rows = [r for r in rows if state_of[int(r.id)] in HAPPENED]
        groups: dict[tuple[int, str, datetime], list[Any]] = {}
        for r in rows:
            groups.setdefault(
                (int(r.campaign_id), str(r.key), ensure_utc(r.decided_at)), []
            ).append(r)
        batches: list[_Batch] = []
        skipped: list[str] = [_unsent_note(unsent)] if unsent else []
        campaigns: dict[str, Any] = {}
        for (campaign_id, key, decided_at), group in sorted(groups.items(), key=lambda g: g[0][2]):
            if key not in campaigns:
                try:
                    campaigns[key] = planning.load_campaign(workspace, key, clock)[1]
                except (NotFoundError, StrategyError) as exc:
                    skipped.append(f"campaign {key!r}: {exc}")
                    campaigns[key] = None
            if campaigns[key] is None:
                continue
            # The stage and attributes the plan saw, not today's: a stage the message moved
            # would otherwise teach the policy from a context it never decided on.
            contacts = contacts_as_of(connection, {int(r.contact_id) for r in group}, decided_at)
            if not contacts:
                continue
            seen = planning.planned_contexts(
                connection,
                strategy,
                campaigns[key],
                contacts=contacts,
                campaign_id=campaign_id,
                at=decided_at,
            )
            where = {int(c): i for i, c in enumerate(seen.ids.tolist())}
            kept = [r for r in group if int(r.contact_id) in where and r.action <= seen.actions.k]
            take = np.array([where[int(r.contact_id)] for r in kept], np.int64)
            mask = seen.mask[take]
            batches.append(
                _Batch(
                    campaign=key,
                    actions=seen.actions,
                    message=seen.message,
                    data=seen.data,
                    rows=take,
                    mask=mask,
                    cost=np.asarray(seen.selection_rules.cost, np.float64),
                    threshold=float(seen.selection_rules.threshold),
                    decision_id=np.array([r.id for r in kept], np.int64),
                    action=np.array([r.action for r in kept], np.int64),
                    propensity=np.array([r.propensity for r in kept], np.float64),
                    reward=np.array([reward_of[int(r.id)] for r in kept], np.float64),
                )
            )
    return _Logged(
        objective,
        version_id or 0,
        tuple(batches),
        tuple(skipped),
        sum(unsent.values()),
        sum(1 for r in rows if r.channel is not None),
    )


def _rewards(engine: Engine, strategy: Any, campaign: str | None) -> DecisionRewards:
    """Every decision's reward under the strategy's objectives (of ``campaign`` only, when
    given), and what became of its message."""
    from tummler.app.attribution import load_rewards, reward_specs

    return load_rewards(engine, specs=reward_specs(strategy), campaign=campaign)


def _unsent_note(unsent: Mapping[str, int]) -> str:
    """Say how many decisions were left out because their message never went out, and why."""
    from tummler.app.attribution import SendState

    total = sum(unsent.values())
    parts = [
        f"{unsent[state]:,} {words}"
        for state, words in (
            (SendState.WAITING, "still waiting to be sent"),
            (SendState.NOT_SENT, "skipped, failed or dead at send time"),
        )
        if unsent.get(state)
    ]
    return (
        f"left out {total:,} decision{'s' if total != 1 else ''} whose message never went out "
        f"({', '.join(parts)}): an action never executed has no reward"
    )


def _objectives(engine: Engine, objective: str | None, campaign: str | None) -> list[str]:
    from tummler.store import models

    if objective is not None:
        return [objective]
    query = select(models.Campaign.objective).distinct().order_by(models.Campaign.objective)
    if campaign is not None:
        query = query.where(models.Campaign.key == campaign)
    with engine.connect() as connection:
        found = [str(o) for o in connection.scalars(query)]
    if campaign is not None and not found:
        raise NotFoundError(
            f"no campaign {campaign!r} in the store; plan it first (tummler plan {campaign})"
        )
    return found


@dataclass(frozen=True)
class StoreLearnRow:
    """One objective's learning run: how many decisions, their mean reward, what was stored."""

    objective: str
    decisions: int
    mean_reward: float | None
    parent: str | None
    stored: str | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "objective": self.objective,
            "decisions": self.decisions,
            "mean_reward": self.mean_reward,
            "parent": self.parent,
            "stored": self.stored,
            "notes": list(self.notes),
        }


def _version_spec(session: Session, version_id: int) -> tuple[PolicyVersion, str]:
    row = session.get(PolicyVersion, version_id)
    if row is None:
        raise NotFoundError(f"policy version id {version_id} disappeared; run learn again")
    return row, f"{row.name}@{row.version}"


def learn_from_store(
    engine: Engine,
    *,
    workspace: Path,
    objective: str | None = None,
    campaign: str | None = None,
    clock: Clock | None = None,
) -> list[StoreLearnRow]:
    """Update each objective's policy from its attributed decisions and store the next version.

    For every objective (or only ``objective``, or the objective of ``campaign``), events are
    attributed to decisions first, then the non-holdout decisions with a channel made by the
    newest version that made any are read with their rewards; their contexts are rebuilt as the
    plans computed them (the version's own featurizer over the store as of each decision), and
    the version's policy is updated with them. Only sends whose message went out count: one
    still waiting to be sent, or skipped, failed or dead at send time, was never executed and
    has no reward (reading it as 0 would teach the policy that its channel never works); the
    row's notes say how many were left out. The result is stored as a new, unpromoted version
    of the same name (number one past the highest), its parent the version it was learned from,
    in planning's format so that ``tummler plan`` uses it once promoted.

    A logistic policy needs rewards in [0, 1]: penalties that take a reward below 0 are clipped
    to 0 for it (an unsubscribe then counts as no success), and amounts above 1 to 1. What the
    clipping took below 0 is added, per channel, to the parent's
    :class:`~tummler.learn.harm.ChannelHarm`, which planning adds to each channel's cost per send.

    Parameters
    ----------
    engine
        The store.
    workspace
        The workspace whose strategy and campaign files the decisions were planned with.
    objective, campaign
        Restrict the run to one objective or to one campaign's decisions.
    clock
        "Now", for the attribution's reading of the strategy and the new version's time.

    Returns
    -------
    list of StoreLearnRow
        One row per objective; ``stored`` is ``None`` when there was nothing to learn from.
    """
    from tummler.app.attribution import attribute_events, objective_windows

    clock = clock or SystemClock()
    strategy = _strategy(workspace, clock)
    attribute_events(engine, windows=objective_windows(strategy))
    rewards = _rewards(engine, strategy, campaign)
    rows: list[StoreLearnRow] = []
    for name in _objectives(engine, objective, campaign):
        logged = _logged_decisions(
            engine,
            workspace=workspace,
            clock=clock,
            strategy=strategy,
            rewards=rewards,
            objective=name,
            sends_only=True,
        )
        if not logged.n:
            rows.append(StoreLearnRow(name, 0, None, None, None, logged.skipped))
            continue
        with Session(engine) as session:
            parent_row, parent = _version_spec(session, logged.version_id)
            current = read_policy(parent_row.parameters, origin=f"policy version {parent}")
            kind = parent_row.kind
        if not isinstance(current, CampaignPolicy):
            rows.append(
                StoreLearnRow(
                    name,
                    0,
                    None,
                    parent,
                    None,
                    (*logged.skipped, f"{parent} was learned from a log, not for campaigns"),
                )
            )
            continue
        policy, notes, used, total = current.policy, list(logged.skipped), 0, 0.0
        harm = current.channel_harm
        for batch in logged.batches:
            fits = (
                policy.n_channels == batch.actions.n_channels
                and policy.n_action_features == batch.actions.n_features
            )
            if not fits:
                notes.append(f"campaign {batch.campaign!r}: other channels than {parent}'s")
                continue
            x = batch.contexts(current.featurizer)
            reward = batch.reward
            if kind == "logistic_thompson":
                reward = np.clip(reward, 0.0, 1.0)
                # the penalties the clipped rewards cannot carry become a cost per send
                channel = np.asarray(batch.actions.channel_names, object)
                harm = harm.add(
                    channel[batch.actions.channel[batch.action]], clipped_harm(batch.reward)
                )
            policy.update(x, batch.actions, batch.action, reward, batch.propensity)
            used += batch.decision_id.size
            total += float(batch.reward.sum())
        if not used:
            rows.append(StoreLearnRow(name, 0, None, parent, None, tuple(notes)))
            continue
        if harm:
            notes.append(
                "harm per send from unsubscribes and complaints: "
                + harm.listing(sorted(harm.sends))
            )
        now = clock.now()
        learned = CampaignPolicy(
            policy,
            current.featurizer,
            {"parent": parent, "decisions": used, "at": ensure_utc(now).isoformat()},
            harm,
        )
        with sessionmaker(engine, expire_on_commit=False).begin() as session:
            highest = session.scalar(
                select(func.max(PolicyVersion.version)).where(PolicyVersion.name == name)
            )
            version = PolicyVersion(
                name=name,
                version=int(highest or 0) + 1,
                kind=policy.kind,
                parameters=learned.to_dict(),
                parent_id=logged.version_id,
                promoted=False,
                created_at=now,
            )
            session.add(version)
            session.flush()
            stored = f"{version.name}@{version.version}"
        rows.append(StoreLearnRow(name, used, total / used, parent, stored, tuple(notes)))
    return rows


def evaluate_store(
    engine: Engine,
    *,
    workspace: Path,
    objective: str | None = None,
    campaign: str | None = None,
    candidates: Sequence[str] = (),
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    draws: int = 64,
    clock: Clock | None = None,
) -> Evaluation:
    """Estimate candidate policies' values on the store's logged decisions of one objective.

    The logged decisions are lever 0 of the non-holdout decisions made by the objective's newest
    version that made any (*no send* included), with their propensities and attributed rewards;
    their contexts are rebuilt as the plans computed them. A send whose message never went out
    (still waiting, or skipped, failed or dead at send time) is left out and counted in the
    notes: the logged action was never executed, so it has no reward to weigh, and reading it
    as a reward of 0 would make every policy that sends look worse than it is. A stored
    candidate acts on the same contacts with its own featurizer and harm per send, the same
    eligibility, costs and relevance threshold, as a single-lever decision. ``uniform`` picks uniformly among the eligible actions
    and *no send*; ``logged`` is the logging policy as far as the rows reveal it (the logged
    action with its propensity, the rest spread over the other eligible actions), so its IPS
    estimate is the observed mean reward.

    Parameters
    ----------
    candidates
        Stored versions (``name@version`` or id) and baselines; by default the latest unpromoted
        version of the objective, the promoted one, ``uniform`` and ``logged``.
    objective, campaign
        The objective (or the campaign whose objective it is, and only its decisions); needed
        when the store holds several objectives.

    Raises
    ------
    NothingToEvaluateError
        When no logged send of the objective went out yet.
    InputError
        When the objective is ambiguous, or a candidate does not fit.
    """
    clock = clock or SystemClock()
    names = _objectives(engine, objective, campaign)
    if len(names) != 1:
        raise InputError(
            f"the store holds decisions of {len(names)} objectives ({', '.join(names)}); "
            f"choose one with --objective",
            field="objective",
        )
    name = names[0]
    strategy = _strategy(workspace, clock)
    logged = _logged_decisions(
        engine,
        workspace=workspace,
        clock=clock,
        strategy=strategy,
        rewards=_rewards(engine, strategy, campaign),
        objective=name,
        sends_only=False,
    )
    sent = sum(int((b.action < b.actions.k).sum()) for b in logged.batches)
    if not sent and logged.went_out:  # messages went out, but no plan could be rebuilt for them
        raise InputError(
            f"{logged.went_out} logged send(s) of objective {name!r} went out, but their "
            f"contexts could not be rebuilt: {'; '.join(logged.skipped)}; fix the campaign "
            "files (tummler strategy check) and try again",
            field="objective",
        )
    if not sent:  # *no send* rows alone say nothing about any send
        unsent = f" ({'; '.join(logged.skipped)})" if logged.unsent else ""
        raise NothingToEvaluateError(
            f"no logged decisions of objective {name!r} with a message that went out, to "
            f"evaluate on{unsent}; plan a campaign, send it (tummler send), import its events, "
            f"and try again",
            field="objective",
        )
    specs = list(candidates) or _default_candidates(engine, name)
    width = max(b.actions.k for b in logged.batches) + 1
    with Session(engine) as session:
        logging_row, _ = _version_spec(session, logged.version_id)
        logging = read_policy(logging_row.parameters, origin="the logging policy")
    assert isinstance(logging, CampaignPolicy)
    x_log = np.concatenate([b.contexts(logging.featurizer) for b in logged.batches])
    action = np.concatenate([b.action for b in logged.batches])
    reward = np.concatenate([b.reward for b in logged.batches])
    propensity = np.concatenate([b.propensity for b in logged.batches])
    dists = [_store_dist(engine, spec, logged.batches, width, draws, seed) for spec in specs]
    estimated = fit_reward_model(
        x_log.astype(np.float64),
        action,
        reward,
        n_actions=width,
        kind="auto",
        n_folds=min(3, action.size),
        rng=make_rng(seed),
    )
    results = [
        evaluate_policy(
            reward,
            action,
            propensity,
            dist,
            estimated_rewards=estimated,
            policy=spec,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            rng=make_rng(seed),
        )
        for spec, dist in zip(specs, dists, strict=True)
    ]
    return Evaluation(
        log=f"store:{name}",
        n_rounds=int(action.size),
        n_actions=width,
        results=tuple(results),
        reward_scale=_reward_scale(reward),
        notes=logged.skipped,
    )


def _default_candidates(engine: Engine, objective: str) -> list[str]:
    with Session(engine) as session:
        rows = session.scalars(
            select(PolicyVersion)
            .where(PolicyVersion.name == objective)
            .order_by(PolicyVersion.version.desc())
        ).all()
    fresh = next((r for r in rows if not r.promoted), None)
    promoted = next((r for r in rows if r.promoted), None)
    specs = [f"{r.name}@{r.version}" for r in (fresh, promoted) if r is not None]
    return [*specs, "uniform", "logged"]


def _store_dist(
    engine: Engine, spec: str, batches: Sequence[_Batch], width: int, draws: int, seed: int
) -> FloatArray:
    """A candidate's ``(n, width)`` distribution over each batch's actions and *no send* (at
    column ``k`` of its batch)."""
    parts = []
    candidate: CampaignPolicy | None = None
    if spec not in ("uniform", "logged"):
        with Session(engine) as session:
            row = _find_version(session, spec)
            if row is None:
                raise NotFoundError(f"no stored policy version {spec!r}; give name@version or id")
            found = read_policy(row.parameters, origin=f"policy version {spec}")
        if not isinstance(found, CampaignPolicy):
            raise InputError(
                f"{spec} was learned from a log file; evaluate it with --log FILE",
                field="policy",
            )
        candidate = found
    rng = make_rng(seed)
    for b in batches:
        n, k = b.action.size, b.actions.k
        dist = np.zeros((n, width))
        if spec == "logged":
            # the logged action with its propensity, the rest spread over the other eligible
            # actions and *no send*: importance weights 1, so IPS is the observed mean
            others = np.concatenate([b.mask, np.ones((n, 1), bool)], axis=1)
            others[np.arange(n), b.action] = False
            m = others.sum(axis=1)
            rest = np.where(m > 0, (1.0 - b.propensity) / np.maximum(m, 1), 0.0)
            dist[:, : k + 1] = others * rest[:, None]
            dist[np.arange(n), b.action] = np.where(m > 0, b.propensity, 1.0)
        elif spec == "uniform":
            m = b.mask.sum(axis=1, keepdims=True) + 1.0
            dist[:, :k] = b.mask / m
            dist[:, k] = 1.0 / m[:, 0]
        else:
            assert candidate is not None
            policy = candidate.policy
            if (
                policy.n_channels != b.actions.n_channels
                or policy.n_action_features != b.actions.n_features
            ):
                raise InputError(
                    f"{spec} was made for other channels or variants than campaign "
                    f"{b.campaign!r}'s; evaluate a version of this objective",
                    field="policy",
                )
            x = b.contexts(candidate.featurizer)
            dist[:, : k + 1] = policy.action_distribution(
                x,
                b.actions,
                b.mask,
                cost=b.cost + candidate.channel_harm.per_send(b.actions.channel_names),
                threshold=b.threshold,
                draws=draws,
                rng=rng,
            )
        parts.append(dist)
    return np.concatenate(parts)
