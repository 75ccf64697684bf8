"""``POST /v1/events``: events from a brand's own systems (shop, CRM, app), one or many."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from tummler.api.config import Role
from tummler.api.deps import (
    ClockDep,
    ConsentRulesDep,
    EngineDep,
    KeyFirstRoute,
    Principal,
    require_role,
)
from tummler.api.schemas import EventBatch, EventsAccepted
from tummler.app.callbacks import record_events

router = APIRouter(prefix="/v1", tags=["events"], route_class=KeyFirstRoute)

#: Who may report events: everyone but analysts, who read.
_Writer = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.MARKETER, Role.PARTNER))]


@router.post(
    "/events",
    response_model=EventsAccepted,
    responses={
        401: {"description": "No API key, or an unknown one."},
        403: {"description": "The key's role may not report events (analyst)."},
        422: {"description": "A malformed item or an unknown contact; nothing was stored."},
    },
)
def post_events(
    batch: Annotated[EventBatch, Body()],
    engine: EngineDep,
    rules: ConsentRulesDep,
    clock: ClockDep,
    _caller: _Writer,
) -> EventsAccepted:
    """Store one event or a list, all or nothing; events already stored count as duplicates.

    An ``unsubscribed`` or ``complained`` event revokes consent in the same transaction; an event
    about a forgotten person is counted as suppressed and not stored.
    """
    report = record_events(
        engine,
        [item.to_incoming() for item in batch.root],
        on_complaint=rules.on_complaint,
        clock=clock,
    )
    return EventsAccepted.of(report)
