"""``/docs``: Swagger UI from the installed package, so that the page works without the internet.

FastAPI's own page loads Swagger UI's script and style sheet from a CDN: behind a firewall, or offline,
it stays blank. Here the files come from the ``swagger-ui-bundle-v2`` package (in the ``api`` extra) and
are served by the app itself under ``/docs/assets``; only the three the page needs are served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

__all__ = ["add_docs"]

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
#: The files of Swagger UI that the page loads, with their media types.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def add_docs(app: FastAPI) -> None:
    """Serve the interactive API documentation at ``/docs`` (build ``app`` with ``docs_url=None``)."""
    folder = Path(str(swagger_ui_path))

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — API documentation",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in _ASSETS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such documentation asset")
        return FileResponse(folder / name, media_type=_ASSETS[name])
