"""``POST /v1/callbacks/{sendgrid,mailgun,twilio,twilio/messages}``: provider webhooks, signed.

Each route reads the raw body (signatures cover the bytes as sent), checks the provider's signature,
maps the provider's event names onto tummler's (tables in :mod:`tummler.app.callbacks`) and stores the
events in one transaction, with the consent revocations that unsubscribes and complaints imply. A
provider whose secret is not configured gets 503, so it retries later rather than losing events, and
nothing unauthenticated is ever stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from tummler.api.config import ApiSettings
from tummler.api.deps import ApiSettingsDep, ClockDep, ConsentRulesDep, EngineDep, SettingsDep
from tummler.api.json_body import parse_json
from tummler.api.schemas import EventsAccepted, unstorable
from tummler.api.signatures import mailgun_problem, sendgrid_problem, twilio_problem
from tummler.app.callbacks import (
    EventProblem,
    IncomingEvent,
    RejectedEventsError,
    mailgun_event,
    record_events,
    sendgrid_events,
    twilio_event,
    twilio_reply,
)
from tummler.app.strategy import ConsentRules
from tummler.core.clock import Clock

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong provider signature; nothing was stored."},
    422: {"description": "A malformed event or an unknown recipient; nothing was stored."},
    503: {"description": "The provider's secret is not configured."},
}


def _secret(value: Any, variable: str, provider: str) -> str:
    if value is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{provider} callbacks are not configured: set {variable}",
        )
    secret: str = value.get_secret_value()
    return secret


def _refuse(problem: str | None) -> None:
    if problem is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, problem)


async def _record(
    engine: Engine, events: Sequence[IncomingEvent | None], rules: ConsentRules, clock: Clock
) -> EventsAccepted:
    report = await run_in_threadpool(
        record_events, engine, events, on_complaint=rules.on_complaint, clock=clock
    )
    return EventsAccepted.of(report)


@router.post("/sendgrid", response_model=EventsAccepted, responses=_RESPONSES)
async def sendgrid(
    request: Request,
    engine: EngineDep,
    api_settings: ApiSettingsDep,
    clock: ClockDep,
    rules: ConsentRulesDep,
) -> EventsAccepted:
    """SendGrid Event Webhook (signed): a JSON array of events."""
    key = _secret(
        api_settings.sendgrid_verification_key, "TUMMLER_SENDGRID_VERIFICATION_KEY", "SendGrid"
    )
    body = await request.body()
    _refuse(
        sendgrid_problem(
            key,
            body,
            request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"),
            now=clock.now(),
            tolerance_s=api_settings.signature_tolerance_s,
        )
    )
    return await _record(engine, sendgrid_events(parse_json(body)), rules, clock)


@router.post("/mailgun", response_model=EventsAccepted, responses=_RESPONSES)
async def mailgun(
    request: Request,
    engine: EngineDep,
    api_settings: ApiSettingsDep,
    clock: ClockDep,
    rules: ConsentRulesDep,
) -> EventsAccepted:
    """Mailgun webhook: ``signature`` {timestamp, token, signature} and ``event-data``."""
    key = _secret(api_settings.mailgun_signing_key, "TUMMLER_MAILGUN_SIGNING_KEY", "Mailgun")
    payload = parse_json(await request.body())
    signature = payload.get("signature") if isinstance(payload, dict) else None
    parts = (
        [signature.get(name) for name in ("timestamp", "token", "signature")]
        if isinstance(signature, dict)
        else [None, None, None]
    )
    if not all(isinstance(part, str | int) and str(part) for part in parts):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "no signature: the body needs signature.timestamp, signature.token and "
            "signature.signature",
        )
    timestamp, token, digest = (str(part) for part in parts)
    _refuse(
        mailgun_problem(
            key,
            timestamp,
            token,
            digest,
            now=clock.now(),
            tolerance_s=api_settings.signature_tolerance_s,
        )
    )
    return await _record(engine, [mailgun_event(payload)], rules, clock)


@router.post("/twilio", response_model=EventsAccepted, responses=_RESPONSES)
async def twilio(
    request: Request,
    engine: EngineDep,
    api_settings: ApiSettingsDep,
    settings: SettingsDep,
    clock: ClockDep,
    rules: ConsentRulesDep,
) -> EventsAccepted:
    """Twilio SMS status callback (form-encoded), signed with ``X-Twilio-Signature``."""
    params = await _twilio_params(request, api_settings, settings.public_url)
    return await _record(engine, [twilio_event(params, now=clock.now())], rules, clock)


#: An empty TwiML answer: Twilio sends no reply of its own on tummler's behalf.
_NO_REPLY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@router.post(
    "/twilio/messages",
    response_class=Response,
    responses={**_RESPONSES, 200: {"content": {"text/xml": {}}}},
)
async def twilio_messages(
    request: Request,
    engine: EngineDep,
    api_settings: ApiSettingsDep,
    settings: SettingsDep,
    clock: ClockDep,
    rules: ConsentRulesDep,
) -> Response:
    """Twilio incoming SMS (the number's message webhook), signed with ``X-Twilio-Signature``.

    Stores the reply; a STOP (or another opt-out keyword) also revokes SMS consent at once.
    """
    params = await _twilio_params(request, api_settings, settings.public_url)
    await _record(engine, twilio_reply(params, now=clock.now()), rules, clock)
    return Response(_NO_REPLY, media_type="text/xml")


async def _twilio_params(
    request: Request, api_settings: ApiSettings, public_url: str | None
) -> dict[str, str]:
    """The form fields of a Twilio webhook, once its signature is checked and each can be stored."""
    token = _secret(api_settings.twilio_auth_token, "TUMMLER_TWILIO_AUTH_TOKEN", "Twilio")
    body = await request.body()
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise RejectedEventsError(
            [EventProblem(None, "body", "not form-encoded UTF-8 text")]
        ) from None
    url = _called_url(request, public_url)
    _refuse(twilio_problem(token, url, params, request.headers.get("X-Twilio-Signature")))
    unusable = [
        EventProblem(None, name, f"text with {why}: it cannot be stored")
        for name, value in params
        if (why := unstorable(name + value)) is not None
    ]
    if unusable:
        raise RejectedEventsError(unusable)
    return dict(params)


def _called_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio called, which its signature covers: behind a proxy, the public one."""
    if public_url is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public_url}{request.url.path}{query}"
