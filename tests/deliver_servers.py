"""Real servers on 127.0.0.1 for the connector contract suite: SMTP (aiosmtpd) and HTTP.

Each server keeps what it received so a test can read it back, and can be told to misbehave the
way providers do: answer "try later" or "never", rate-limit, hang, or drop the connection in the
middle of a message. Faults are named the same for every protocol (see :class:`Fault`); each
server translates them into its own words (``451`` / ``503``, ``550`` / ``422``...).

Nothing here sleeps to let things settle: servers are ready when their constructor returns, hangs
wait on an event that :meth:`close` sets, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: Longest any fault hangs before giving up on its own (the client's time-out is much shorter).
HANG_LIMIT_S = 5.0


class Fault(StrEnum):
    """How a server misbehaves for the next requests (until it is told otherwise)."""

    TEMPORARY = "temporary"  # SMTP 451, HTTP 503: try later
    REJECTED = "rejected"  # SMTP 550, HTTP 422: never
    RATE_LIMITED = "rate_limited"  # HTTP 429 with Retry-After
    UNAUTHORIZED = "unauthorized"  # SMTP 535, HTTP 401, echoing the credential it was sent
    HANG = "hang"  # accept the message and never answer
    DROP = "drop"  # read the message, then close the connection without an answer


RETRY_AFTER_S = 7
PROVIDER_REASON = "provider says: mailbox over quota"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- SMTP


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


class _SmtpHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd calls
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self.server.fault
        if fault is Fault.REJECTED:
            return f"550 5.1.1 {PROVIDER_REASON}"
        if fault is Fault.TEMPORARY:
            return f"451 4.7.1 {PROVIDER_REASON}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = bytes(envelope.original_content or envelope.content)
        fault = self.server.fault
        if fault is Fault.DROP:
            # The server has the whole message and vanishes before saying 250: the in-doubt case.
            self.server.record(envelope, raw, dropped=True)
            server.transport.close()
            return "421 closing"
        if fault is Fault.HANG:
            self.server.record(envelope, raw, dropped=True)
            await asyncio.sleep(HANG_LIMIT_S)
            return "451 too late"
        number = self.server.record(envelope, raw)
        return f"250 2.0.0 OK queued as Q{number}"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that keeps every message it accepted.

    Parameters
    ----------
    credentials
        ``(username, password)`` to require AUTH (offered without TLS, for the test only).
    tls
        ``(certificate file, key file)`` to offer STARTTLS and require it.
    """

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.fault: Fault | None = None
        self.received: list[ReceivedMail] = []
        self.in_doubt: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            user, password = credentials

            def authenticate(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> Any:
                if self.fault is Fault.UNAUTHORIZED:
                    return AuthResult(success=False, handled=False)
                ok = data.login == user.encode() and data.password == password.encode()
                return AuthResult(success=ok)

            kwargs |= {"authenticator": authenticate, "auth_require_tls": tls is not None}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            kwargs |= {"tls_context": context, "require_starttls": True}
        self._controller = Controller(
            _SmtpHandler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="loopback.test",
            ready_timeout=5.0,
            **kwargs,
        )
        self._controller.start()

    def record(self, envelope: Any, raw: bytes, *, dropped: bool = False) -> int:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed, raw)
        with self._lock:
            (self.in_doubt if dropped else self.received).append(mail)
            return len(self.received)

    def close(self) -> None:
        self._controller.stop()


# --------------------------------------------------------------------------- HTTP


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 that plays webhook receiver, SMS provider, Mastodon
    instance and Bluesky PDS at once.

    ``fault`` applies to the paths in ``fault_paths`` only (a Bluesky login still works when the
    post fails); ``received`` keeps every request that was answered with success, ``in_doubt``
    those the server read but did not answer.
    """

    webhook_secret: str = "unset"
    bluesky_password: str = "unset"
    mastodon_token: str = "unset"
    sms_token: str = "unset"
    fault: Fault | None = None
    fault_paths: frozenset[str] = frozenset()
    received: list[ReceivedRequest] = field(default_factory=list)
    in_doubt: list[ReceivedRequest] = field(default_factory=list)
    signatures_ok: list[bool] = field(default_factory=list)
    mastodon_idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        handler = type("Handler", (_HttpHandler,), {"app": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=HANG_LIMIT_S)

    def faulty(self, path: str) -> Fault | None:
        return self.fault if path in self.fault_paths else None

    def hang(self) -> None:
        self._release.wait(HANG_LIMIT_S)

    def keep(self, request: ReceivedRequest, *, in_doubt: bool = False) -> None:
        with self._lock:
            (self.in_doubt if in_doubt else self.received).append(request)

    def posted(self, path: str) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.received if r.path == path]


class _HttpHandler(BaseHTTPRequestHandler):
    app: HttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads `received`
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = ReceivedRequest(
            method, path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        fault = self.app.faulty(path)
        if fault is Fault.DROP:
            self.app.keep(request, in_doubt=True)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is Fault.HANG:
            self.app.keep(request, in_doubt=True)
            self.app.hang()
            self.close_connection = True
            return
        if fault is Fault.TEMPORARY:
            return self._json(503, {"error": PROVIDER_REASON})
        if fault is Fault.REJECTED:
            return self._json(422, {"error": PROVIDER_REASON})
        if fault is Fault.RATE_LIMITED:
            return self._json(
                429, {"error": "slow down"}, headers={"Retry-After": str(RETRY_AFTER_S)}
            )
        if fault is Fault.UNAUTHORIZED:
            # Some providers echo what they were sent; the connector must mask it.
            echoed = self.headers.get("Authorization", "") + " " + body.decode(errors="replace")
            return self._json(401, {"error": f"invalid credentials: {echoed}"})
        route = _ROUTES.get((method, path))
        if route is None:
            return self._json(404, {"error": f"no route {method} {path}"})
        status, payload = route(self.app, request)
        if 200 <= status < 300:
            self.app.keep(request)
        self._json(status, payload)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _webhook(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    # Verified here independently of tummler's own helper: HMAC-SHA256 over "timestamp." + body.
    timestamp = request.headers.get("x-tummler-timestamp", "")
    expected = hmac.new(
        app.webhook_secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    ok = hmac.compare_digest(request.headers.get("x-tummler-signature", ""), f"v1={expected}")
    app.signatures_ok.append(ok)
    if not ok:
        return 401, {"error": "bad signature"}
    return 202, {"id": f"hook-{len(app.posted('/hook')) + 1}"}


def _sms(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    if request.headers.get("authorization") != f"Bearer {app.sms_token}":
        return 401, {"error": "bad token"}
    return 201, {"id": f"SM{len(app.posted('/sms')) + 1:04d}", "status": "queued"}


def _mastodon_instance(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    return 200, {"uri": "127.0.0.1", "title": "loopback", "version": "4.3.0", "urls": {}}


def _mastodon_status(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    if request.headers.get("authorization") != f"Bearer {app.mastodon_token}":
        return 401, {"error": "The access token is invalid"}
    key = request.headers.get("idempotency-key")
    if key and key in app.mastodon_idempotency:
        return 200, app.mastodon_idempotency[key]
    from urllib.parse import parse_qs

    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    number = len(app.mastodon_idempotency) + 1
    status = {
        "id": str(110_000 + number),
        "uri": f"{app.url}/users/brand/statuses/{110_000 + number}",
        "url": f"{app.url}/@brand/{110_000 + number}",
        "content": f"<p>{form.get('status', '')}</p>",
        "visibility": form.get("visibility", "public"),
        "created_at": "2026-01-01T00:00:00.000Z",
        "account": {"id": "1", "username": "brand", "acct": "brand"},
        "mentions": [],
        "media_attachments": [],
    }
    if key:
        app.mastodon_idempotency[key] = status
    return 200, status


BLUESKY_DID = "did:plc:brand000000000000000000"
FRIEND_DID = "did:plc:friend00000000000000000"


def _jwt(subject: str, lifetime_s: int) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + lifetime_s, "scope": "com.atproto.access"}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def _create_session(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    data = request.json()
    if data.get("password") != app.bluesky_password:
        return 401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
    return 200, {
        "accessJwt": _jwt(BLUESKY_DID, 3600),
        "refreshJwt": _jwt(BLUESKY_DID, 86_400),
        "handle": data.get("identifier"),
        "did": BLUESKY_DID,
        "active": True,
    }


def _get_session(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    return 200, {"handle": "brand.test", "did": BLUESKY_DID, "active": True}


def _create_record(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return 401, {"error": "AuthenticationRequired", "message": "no token"}
    number = len(app.posted("/xrpc/com.atproto.repo.createRecord")) + 1
    rkey = f"3kpost{number:07d}"
    return 200, {
        "uri": f"at://{BLUESKY_DID}/app.bsky.feed.post/{rkey}",
        "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
    }


def _resolve_handle(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    return 200, {"did": FRIEND_DID}


def _member(did: str) -> dict[str, Any]:
    return {"did": did, "handle": "friend.test" if did == FRIEND_DID else "brand.test"}


def _convo_for_members(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    return 200, {
        "convo": {
            "id": "convo-1",
            "rev": "1",
            "members": [_member(BLUESKY_DID), _member(FRIEND_DID)],
            "muted": False,
            "unreadCount": 0,
        }
    }


def _send_message(app: HttpServer, request: ReceivedRequest) -> tuple[int, Any]:
    if request.headers.get("atproto-proxy", "").split("#")[-1] != "bsky_chat":
        return 400, {"error": "InvalidRequest", "message": "chat needs the atproto-proxy header"}
    data = request.json()
    number = len(app.posted("/xrpc/chat.bsky.convo.sendMessage")) + 1
    return 200, {
        "id": f"msg-{number}",
        "rev": str(number),
        "text": data["message"]["text"],
        "sender": {"did": BLUESKY_DID},
        "sentAt": dt.datetime.now(dt.UTC).isoformat(),
    }


_ROUTES = {
    ("POST", "/hook"): _webhook,
    ("POST", "/sms"): _sms,
    ("GET", "/api/v1/instance"): _mastodon_instance,
    ("POST", "/api/v1/statuses"): _mastodon_status,
    ("POST", "/xrpc/com.atproto.server.createSession"): _create_session,
    ("GET", "/xrpc/com.atproto.server.getSession"): _get_session,
    ("POST", "/xrpc/com.atproto.repo.createRecord"): _create_record,
    ("GET", "/xrpc/com.atproto.identity.resolveHandle"): _resolve_handle,
    ("GET", "/xrpc/chat.bsky.convo.getConvoForMembers"): _convo_for_members,
    ("POST", "/xrpc/chat.bsky.convo.sendMessage"): _send_message,
}


# --------------------------------------------------------------------------- TLS


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``folder`` (for STARTTLS tests)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
