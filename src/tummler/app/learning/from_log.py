"""Learning from a logged-bandit file: ``tummler learn --log``.

A team brings the decision logs of any tool (docs/logged-bandit-format.md); a policy is fitted on
them (:mod:`tummler.learn.fitting`), written as a policy file and, when named, stored as the next
version of that name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from tummler.app import policies
from tummler.app.ingest import LoggedBandit, read_logged_bandit
from tummler.app.policy_file import LearnedPolicy, save_policy_file
from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import InputError
from tummler.learn import fitting
from tummler.learn.fitting import DEFAULT_POLICY_KIND
from tummler.store.models import PolicyVersion

__all__ = ["LearnReport", "fit_policy", "learn_from_log", "store_policy_version"]


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
        The rounds, as :func:`~tummler.app.ingest.read_logged_bandit` returns them.
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
    fitting.check_learnable(kind, logs.reward, source=logs.source or None)
    center, scale = fitting.standardize(logs.context)
    features, names = fitting.action_features(
        logs.action_names, logs.action_context, logs.action_feature_names
    )
    k = logs.n_actions
    learned = LearnedPolicy(
        policy=fitting.new_policy(kind, logs.context.shape[1] + 1, features.shape[1], k, params),
        action_names=logs.action_names,
        feature_names=logs.feature_names,
        center=center,
        scale=scale,
        action_features=features,
        action_feature_names=names,
        source=logs.source,
        n_rounds=logs.n_rounds,
    )
    fitting.update_in_chunks(
        learned.policy,
        learned.contexts(logs),
        learned.action_set(),
        logs.action,
        logs.reward,
        logs.propensity,
        chunk_rows=chunk_rows,
    )
    return learned


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
    categorical: Iterable[str] = (),
    ignore: Iterable[str] = (),
    engine: Engine | None = None,
    name: str | None = None,
    clock: Clock | None = None,
) -> LearnReport:
    """Fit a policy on a logged-bandit file and save it as a policy file; optionally store it.

    Parameters
    ----------
    log, action_features, columns, categorical, ignore
        The log and how to read it (:func:`~tummler.app.ingest.read_logged_bandit`).
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
    logs = read_logged_bandit(
        log,
        action_features=action_features,
        columns=columns,
        categorical=categorical,
        ignore=ignore,
    )
    learned = fit_policy(logs, kind=kind, params=params)
    path = save_policy_file(learned, out)
    stored = None
    if name is not None:
        if engine is None:
            raise InputError("storing a policy version needs a workspace", field="name")
        version = store_policy_version(engine, learned, name=name, clock=clock)
        stored = policies.spec_of(version)
    return LearnReport(
        out=path,
        kind=learned.kind,
        n_rounds=logs.n_rounds,
        n_actions=logs.n_actions,
        n_features=len(logs.feature_names),
        stored=stored,
    )


def store_policy_version(
    engine: Engine, learned: LearnedPolicy, *, name: str, clock: Clock | None = None
) -> PolicyVersion:
    """Store a learned policy as the next version of ``name``, with the latest as its parent."""
    now = (clock or SystemClock()).now()
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        latest = next(iter(policies.versions_of(session, name)), None)
        return policies.record_version(
            session,
            name=name,
            kind=learned.kind,
            parameters=learned.to_dict(),
            parent_id=None if latest is None else latest.id,
            now=now,
        )
