"""The policy file: a policy learned from a logged-bandit file, with what it needs to act on another.

``tummler learn --log`` writes one (``--out``) and ``tummler evaluate --log`` reads one back. It is a
JSON object holding the policy's own ``to_dict()`` and everything needed to apply it to another log:
action names, feature names, the context's scaling, the action set's features
(:mod:`tummler.learn.fitting` says how they are made). Stored policy versions learned from a log
keep the same object as their ``parameters``; :func:`tummler.app.policies.read_policy` reads both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.app.ingest import LoggedBandit
from tummler.core.errors import InputError, PolicyError
from tummler.core.randomness import make_rng
from tummler.decide import ActionSet, Policy, policy_from_dict
from tummler.learn.fitting import generic_action_set

__all__ = [
    "LOG_FEATURIZER",
    "POLICY_FILE_FORMAT",
    "POLICY_FILE_FORMAT_1",
    "LearnedPolicy",
    "save_policy_file",
]

#: The ``format`` key of a policy file and of a stored version's ``parameters``; a later
#: incompatible layout gets a new number. Version 2 is planning's ``{"policy", "featurizer"}``
#: object plus metadata; version 1 files (the log's columns at the top level) are still read.
POLICY_FILE_FORMAT = "tummler.policy/2"
POLICY_FILE_FORMAT_1 = "tummler.policy/1"
#: ``featurizer.type`` of a policy learned from a logged-bandit file (a campaign's featurizer,
#: :class:`~tummler.decide.ContextFeaturizer`'s fields, has no ``type``).
LOG_FEATURIZER = "logged-bandit"

FloatArray = npt.NDArray[np.float64]


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
        return generic_action_set(
            self.action_names, self.action_features, self.action_feature_names
        )

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
        elif isinstance(data, Mapping) and data.get("format") == POLICY_FILE_FORMAT_1:
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


def save_policy_file(learned: LearnedPolicy, path: str | Path) -> Path:
    """Write a policy file (JSON); return its path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(learned.to_dict()) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the policy file: {exc.strerror}", file=path) from exc
    return path
