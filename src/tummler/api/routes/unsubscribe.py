"""``/unsubscribe/{token}``: GET shows a confirmation page and changes nothing (link scanners follow
GETs); POST unsubscribes, and is also the RFC 8058 one-click target. The signed token is the
authorisation: no API key."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from tummler.api.deps import ClockDep, EngineDep, SettingsDep
from tummler.app.unsubscribe import honour_unsubscribe, read_unsubscribe_token, unsubscribe_key
from tummler.core.errors import InputError, NotFoundError

router = APIRouter(tags=["unsubscribe"])

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""


def _page(title: str, body: str, code: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=code)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
def confirm_unsubscribe(token: str, settings: SettingsDep) -> HTMLResponse:
    try:
        _, channel = read_unsubscribe_token(token, key=unsubscribe_key(settings))
    except InputError as exc:
        return _page("Link not valid", f"<p>{escape(exc.reason)}</p>", 400)
    return _page(
        "Unsubscribe",
        f"<p>Stop receiving {escape(channel)} messages from us?</p>"
        f'<form method="post" action="/unsubscribe/{escape(token)}">'
        '<button type="submit">Unsubscribe</button></form>',
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe(
    token: str, engine: EngineDep, settings: SettingsDep, clock: ClockDep
) -> HTMLResponse:
    try:
        await run_in_threadpool(
            honour_unsubscribe, engine, token, key=unsubscribe_key(settings), clock=clock
        )
    except InputError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, exc.reason) from None
    except NotFoundError:
        pass  # the person was erased: nobody is left to send to
    return _page("Unsubscribed", "<p>You will not receive these messages any more.</p>")
