"""The deciding policy: the latest promoted version of the campaign's objective that fits the
action set, or a fresh logistic Thompson sampling prior.

Versions are owned by :mod:`tummler.app.policies` (numbering, the one parser of stored parameters,
choice among promoted versions). The fresh prior's featurizer is fitted on the first chunk of the
audience and stored with it, promoted (it is the only policy there is), so that later plans — and
``learn`` — start from exactly the same features. A learned version's ``channel_harm``
(:mod:`tummler.learn.harm`) is added to each channel's cost per send: the unsubscribes and
complaints its rewards could not carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from tummler.app import policies
from tummler.app.planning.setup import _Setup
from tummler.decide import ContextFeaturizer, LogisticThompson, Policy
from tummler.learn.harm import ChannelHarm


@dataclass(frozen=True, eq=False)
class _PolicyChoice:
    policy: Policy
    featurizer: ContextFeaturizer | None  # None: fit a fresh one on the first chunk
    row_id: int | None  # the stored version, when it exists already
    notes: tuple[str, ...] = ()
    harm: ChannelHarm = field(default_factory=ChannelHarm)
    #: the stored version's number (``name@number``): learned versions before it; 0 for a prior
    version: int = 0


def _choose_policy(
    connection: Connection, setup: _Setup, fresh: ContextFeaturizer
) -> _PolicyChoice:
    """The latest promoted version for the campaign's objective that fits this action set, else a
    fresh logistic Thompson sampling prior."""
    actions = setup.actions

    def fits(stored: policies.CampaignPolicy) -> bool:
        featurizer = stored.featurizer or fresh
        return (
            stored.policy.n_action_features == actions.n_features
            and stored.policy.n_channels == actions.n_channels
            and stored.policy.n_context_features == len(featurizer.feature_names())
        )

    chosen, notes = policies.choose_promoted(connection, setup.campaign.objective, fits)
    if chosen is not None:
        stored = chosen.policy
        number = chosen.spec.rsplit("@", 1)[-1]
        return _PolicyChoice(
            stored.policy,
            stored.featurizer,
            chosen.id,
            notes,
            stored.channel_harm,
            int(number) if number.isdigit() else 0,
        )
    prior = LogisticThompson(len(fresh.feature_names()), actions.n_features, actions.n_channels)
    return _PolicyChoice(prior, None, None, notes)


def _record_prior(
    session: Session, setup: _Setup, policy: Policy, featurizer: ContextFeaturizer, now: datetime
) -> int:
    """The fresh prior's version row (:func:`tummler.app.policies.record_prior`)."""
    return policies.record_prior(session, setup.campaign.objective, policy, featurizer, now)
