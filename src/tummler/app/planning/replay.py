"""Replaying a plan for learning: what planning a campaign at some moment saw for some contacts.

Learning and off-policy evaluation (:mod:`tummler.app.learning`) rebuild these contexts for logged
decisions, so that a policy is updated and judged on the features and levers it decided with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from tummler.app.planning.contexts import _FieldShapes, _read_chunk
from tummler.app.planning.setup import _setup
from tummler.app.planning.templates import _check_templates, _VariantAccess
from tummler.core.errors import StrategyError
from tummler.decide import ActionSet, ContextData, SelectionRules
from tummler.strategy import Campaign, Strategy


@dataclass(frozen=True, slots=True)
class PlannedContexts:
    """What a plan of one campaign saw for some contacts at one moment: the action set, the message's
    attributes, the selection rules, and per contact its context data and eligibility mask.

    Learning and off-policy evaluation rebuild these for logged decisions, so that a policy is
    updated and judged on the features and levers it decided with.
    """

    actions: ActionSet
    message: dict[str, float]
    selection_rules: SelectionRules
    ids: npt.NDArray[np.int64]
    data: ContextData
    mask: npt.NDArray[np.bool_]


def planned_contexts(
    connection: Connection,
    strategy: Strategy,
    campaign: Campaign,
    *,
    contacts: Sequence[Any],
    campaign_id: int | None,
    at: datetime,
) -> PlannedContexts:
    """Rebuild what planning ``campaign`` at ``at`` computed for ``contacts`` (rows with ``id``,
    ``external_id``, ``locale``, ``time_zone``, ``stage``, ``attributes``), without the audience
    filter: the contacts were decided for, so they were in the audience then."""
    setup = _setup(strategy, campaign, at)
    shapes = _FieldShapes()
    chunk = _read_chunk(
        connection,
        setup,
        contacts,
        now=at,
        campaign_id=campaign_id,
        zones={},
        shapes=shapes,
    )
    actions = setup.actions
    mask = chunk.eligibility.mask(actions)
    try:
        access: _VariantAccess | None = _check_templates(
            setup, chunk.eligibility, chunk.shape, shapes
        )
    except StrategyError:
        access = None  # the templates broke since: they no longer say who could get what
    if access is not None:  # a variant whose fields a contact lacks was never its to get
        mask &= access.of(chunk.shape)[:, actions.channel, actions.variant]
    return PlannedContexts(
        actions=actions,
        message=setup.message,
        selection_rules=setup.selection_rules,
        ids=chunk.ids,
        data=chunk.data,
        mask=mask,
    )
