"""Provider webhooks signed as SendGrid, Mailgun and Twilio sign them, for the API tests.

The SendGrid key pair is made once per test session; the app under test is given
:data:`SENDGRID_PUBLIC`, :data:`MAILGUN_KEY` and :data:`TWILIO_TOKEN` (see :func:`provider_settings`)
and answers at :data:`PUBLIC_URL` as far as Twilio's signature is concerned (the workspace's
``public_url``: :func:`workspace_settings`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from tummler.api import ApiSettings
from tummler.api.signatures import twilio_signature
from tummler.core.settings import Settings

#: The signing time of the API tests' clock (2026-03-02 12:00 UTC).
STAMP = str(int(datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()))
MAILGUN_KEY = "mailgun-signing-key"
TWILIO_TOKEN = "twilio-auth-token"
PUBLIC_URL = "https://tummler.example.org"

_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    _PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def provider_settings(**extra: Any) -> ApiSettings:
    """API settings that accept the webhooks this module signs."""
    return ApiSettings(
        sendgrid_verification_key=SENDGRID_PUBLIC,
        mailgun_signing_key=MAILGUN_KEY,
        twilio_auth_token=TWILIO_TOKEN,
        **extra,
    )


def workspace_settings(workspace: Path) -> Settings:
    """The settings of a workspace served at :data:`PUBLIC_URL` (behind a proxy, as Twilio sees
    it); the trailing ``/`` is the settings' to drop."""
    return Settings(workspace=workspace, public_url=PUBLIC_URL + "/")


def sendgrid_headers(body: bytes, timestamp: str = STAMP) -> dict[str, str]:
    signature = _PRIVATE.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def mailgun_body(event: dict[str, Any], *, key: str = MAILGUN_KEY, timestamp: str = STAMP) -> Any:
    token = "a" * 50
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": digest},
        "event-data": event,
    }


def signed_then_redated(event: dict[str, Any]) -> Any:
    """A body signed for an old timestamp whose timestamp was then changed to now."""
    body = mailgun_body(event, timestamp="1000")
    body["signature"]["timestamp"] = STAMP
    return body


def twilio_post(
    client: TestClient,
    params: dict[str, str],
    *,
    token: str = TWILIO_TOKEN,
    path: str = "/v1/callbacks/twilio",
) -> Any:
    signature = twilio_signature(token, f"{PUBLIC_URL}{path}", list(params.items()))
    return client.post(
        path,
        content=urlencode(params).encode(),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
