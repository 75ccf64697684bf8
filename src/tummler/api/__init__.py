"""tummler's HTTP API (FastAPI): events in, provider callbacks, health.

Install with ``pip install 'tummler[api]'``; run with ``tummler serve``. Build the app in Python with
:func:`create_app`. Authentication: API keys with roles (:class:`Role`), configured hashed in
``TUMMLER_API_KEYS`` (:class:`ApiSettings`); provider callbacks are authenticated by their signatures.
"""

from __future__ import annotations

import importlib.util

from tummler.core.errors import MissingDependencyError

if importlib.util.find_spec("fastapi") is None:  # pragma: no cover - depends on the install
    raise MissingDependencyError("fastapi", "api")
if importlib.util.find_spec("swagger_ui_bundle") is None:  # pragma: no cover - /docs's files
    raise MissingDependencyError("swagger-ui-bundle-v2", "api")

from tummler.api.app import app_from_environment, create_app
from tummler.api.config import ApiSettings, Role, hash_api_key, load_api_settings

__all__ = [
    "ApiSettings",
    "Role",
    "app_from_environment",
    "create_app",
    "hash_api_key",
    "load_api_settings",
]
