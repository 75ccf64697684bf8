"""``GET /v1/health``: is the service up, can it reach its store."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

import tummler
from tummler.api.deps import EngineDep
from tummler.api.schemas import HealthPublic
from tummler.app.workspace import store_reachable

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=HealthPublic)
def health(engine: EngineDep, response: Response) -> HealthPublic:
    """Liveness and store reachability, without authentication (for load balancers)."""
    if not store_reachable(engine):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthPublic(status="unavailable", database="unavailable", version=_version())
    return HealthPublic(status="ok", database="ok", version=_version())


def _version() -> str:
    return tummler.__version__
