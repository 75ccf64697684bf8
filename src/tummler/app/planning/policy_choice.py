"""The deciding policy: the latest promoted version of the campaign's objective that fits the
action set, or a fresh logistic Thompson sampling prior, stored as version 0 of the objective.

A version's ``parameters`` are ``{"policy": Policy.to_dict(), "featurizer": {...ContextFeaturizer
fields...}}`` (a bare ``Policy.to_dict()`` is accepted too, the featurizer then being rebuilt from
the strategy). The fresh prior's featurizer is fitted on the first chunk of the audience and stored
with it, promoted (it is the only policy there is), so that later plans — and ``learn`` — start
from exactly the same features. A learned version's ``channel_harm`` (:mod:`tummler.learn.harm`) is
added to each channel's cost per send: the unsubscribes and complaints its rewards could not carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from tummler.app.planning.setup import _featurizer_from_dict, _featurizer_to_dict, _Setup
from tummler.core.errors import InputError, PolicyError
from tummler.decide import ContextFeaturizer, LogisticThompson, Policy, policy_from_dict
from tummler.learn.harm import ChannelHarm
from tummler.store import models


@dataclass(frozen=True, eq=False)
class _PolicyChoice:
    policy: Policy
    featurizer: ContextFeaturizer | None  # None: fit a fresh one on the first chunk
    row_id: int | None  # the stored version, when it exists already
    notes: tuple[str, ...] = ()
    harm: ChannelHarm = field(default_factory=ChannelHarm)


def _policy_parameters(
    stored: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A version's policy and featurizer: ``{"policy": ..., "featurizer": ...}`` as this service
    stores them, or the bare ``Policy.to_dict()`` (the featurizer is then rebuilt from the
    strategy)."""
    parameters = dict(stored or {})
    policy = parameters.get("policy", parameters)
    featurizer = parameters.get("featurizer")
    return dict(policy), dict(featurizer) if isinstance(featurizer, dict) else None


def _choose_policy(
    connection: Connection, setup: _Setup, fresh: ContextFeaturizer
) -> _PolicyChoice:
    """The latest promoted version for the campaign's objective that fits this action set, else a
    fresh logistic Thompson sampling prior."""
    objective = setup.campaign.objective
    notes: list[str] = []
    promoted = connection.execute(
        select(
            models.PolicyVersion.id,
            models.PolicyVersion.name,
            models.PolicyVersion.version,
            models.PolicyVersion.parameters,
        )
        .where(models.PolicyVersion.name == objective, models.PolicyVersion.promoted.is_(True))
        .order_by(models.PolicyVersion.version.desc(), models.PolicyVersion.id.desc())
    ).all()
    actions = setup.actions
    for row in promoted:
        policy_data, featurizer_data = _policy_parameters(row.parameters)
        try:
            policy = policy_from_dict(policy_data)
            featurizer = (
                _featurizer_from_dict(featurizer_data) if featurizer_data is not None else fresh
            )
            harm = ChannelHarm.from_dict(
                (row.parameters or {}).get("channel_harm"),
                origin=f"policy version {row.name}@{row.version}",
            )
        except (PolicyError, InputError, KeyError, TypeError, ValueError) as exc:
            notes.append(f"policy version {row.name}@{row.version} cannot be loaded: {exc}")
            continue
        fits = (
            policy.n_action_features == actions.n_features
            and policy.n_channels == actions.n_channels
            and policy.n_context_features == len(featurizer.feature_names())
        )
        if fits:
            return _PolicyChoice(
                policy,
                featurizer if featurizer_data is not None else None,
                int(row.id),
                tuple(notes),
                harm,
            )
        notes.append(
            f"policy version {row.name}@{row.version} was made for other channels, variants or "
            "features than this campaign's; planned with a fresh prior instead"
        )
    prior = LogisticThompson(len(fresh.feature_names()), actions.n_features, actions.n_channels)
    return _PolicyChoice(prior, None, None, tuple(notes))


def _record_prior(
    session: Session, setup: _Setup, policy: Policy, featurizer: ContextFeaturizer, now: datetime
) -> int:
    """The fresh prior's version row: reuse an identical one, else add it (promoted, as the
    objective's only policy so far)."""
    parameters = {"policy": policy.to_dict(), "featurizer": _featurizer_to_dict(featurizer)}
    name = setup.campaign.objective
    rows = session.scalars(
        select(models.PolicyVersion)
        .where(models.PolicyVersion.name == name)
        .order_by(models.PolicyVersion.version)
    ).all()
    for row in rows:
        if row.parent_id is None and row.kind == policy.kind and row.parameters == parameters:
            return int(row.id)
    row = models.PolicyVersion(
        name=name,
        version=(rows[-1].version + 1) if rows else 0,
        kind=policy.kind,
        parameters=parameters,
        parent_id=None,
        promoted=True,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return int(row.id)
