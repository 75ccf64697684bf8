"""Checks of the signatures providers put on their callbacks.

Each check answers ``None`` when the callback is authentic, or the reason it is not (shown to the caller
with a 401, so it must not leak the secret). Comparisons are constant-time. Signed timestamps older (or
newer) than the tolerance are refused, so a captured callback cannot be replayed later; a replay within
the tolerance changes nothing either, because events are de-duplicated by provider event id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

from tummler.core.errors import MissingDependencyError

__all__ = [
    "mailgun_problem",
    "sendgrid_problem",
    "twilio_problem",
    "twilio_signature",
]


def _stale(timestamp: str, now: datetime, tolerance_s: int) -> str | None:
    try:
        seconds = float(timestamp)
    except ValueError:
        return "the signed timestamp is not a number of unix seconds"
    if abs(now.timestamp() - seconds) > tolerance_s:
        return (
            f"the signed timestamp is more than {tolerance_s} s from now (replayed or clock skew)"
        )
    return None


def mailgun_problem(
    signing_key: str, timestamp: str, token: str, signature: str, *, now: datetime, tolerance_s: int
) -> str | None:
    """Mailgun: ``signature`` = hex HMAC-SHA256 of ``timestamp + token`` under the signing key."""
    expected = hmac.new(
        signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        return "signature.signature does not match the Mailgun signing key"
    return _stale(timestamp, now, tolerance_s)


def twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Twilio: base64 HMAC-SHA1 of the URL followed by each POST parameter's name and value.

    Names are sorted; a name given several times contributes each distinct value once, sorted — as
    Twilio's own helper libraries compute it.

    >>> twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", [
    ...     ("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
    ...     ("From", "+14158675309"), ("To", "+18005551212")])
    'RSOYDt4T1cUTdK1PDd93/VVr8B8='
    """
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_problem(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], signature: str | None
) -> str | None:
    """Whether ``X-Twilio-Signature`` is the signature of this URL and these parameters."""
    if not signature:
        return "no X-Twilio-Signature header"
    if not hmac.compare_digest(twilio_signature(auth_token, url, params), signature):
        return "X-Twilio-Signature does not match the auth token and the called URL"
    return None


def sendgrid_problem(
    public_key_b64: str,
    body: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    *,
    now: datetime,
    tolerance_s: int,
) -> str | None:
    """SendGrid Signed Event Webhook: ECDSA (P-256, SHA-256) over ``timestamp + body``.

    Needs ``cryptography`` (the ``api`` extra).
    """
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_der_public_key
    except ModuleNotFoundError as exc:  # pragma: no cover - the api extra installs it
        raise MissingDependencyError("cryptography", "api") from exc
    if not signature_b64 or not timestamp:
        return (
            "no X-Twilio-Email-Event-Webhook-Signature or X-Twilio-Email-Event-Webhook-Timestamp "
            "header: turn on the Signed Event Webhook in SendGrid"
        )
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        return "the signature header is not base64 (or the configured key is not a public key)"
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return "the configured SendGrid verification key is not an elliptic-curve public key"
    try:
        key.verify(signature, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "the signature does not match the SendGrid verification key"
    return _stale(timestamp, now, tolerance_s)
