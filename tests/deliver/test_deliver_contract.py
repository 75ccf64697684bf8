"""One contract, every connector: what the outbox may rely on, checked against real servers.

Every connector exported by ``tummler.deliver`` must have at least one :class:`Case` here (a test
fails otherwise). Each case says how to build the connector against a loopback server, what to
send, and how to read back what the server received; the tests then send for real and provoke
every fault the server can produce: try later, never, rate limit, bad credentials, hang, drop the
connection mid-message, and nobody listening at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr

import tummler.deliver
from deliver_servers import (
    HANG_LIMIT_S,
    PROVIDER_REASON,
    RETRY_AFTER_S,
    Fault,
    HttpServer,
    SmtpServer,
    free_port,
)
from tummler.core.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver import (
    BlueskyConnector,
    Connector,
    FileSinkConnector,
    MastodonConnector,
    OutboundMessage,
    PermanentSendError,
    Publicity,
    SmsConnector,
    SmtpConnector,
    TransientSendError,
    WebhookConnector,
)

SECRET = "s3cr3t-Tk9-never-log-me"
#: Generous for answers on a busy CI machine; the hang test uses the short one to stay fast.
TIMEOUT_S = 5.0
HANG_TIMEOUT_S = 0.3
#: Loggers of the loopback servers themselves (the other side of the wire), not of tummler's client.
SERVER_LOGGERS = ("mail.log",)


@dataclass
class Loopback:
    """The servers a case runs against (only the one it needs is started)."""

    tmp_path: Path
    timeout: float = TIMEOUT_S
    smtp: SmtpServer | None = None
    http: HttpServer | None = None

    def smtp_server(self) -> SmtpServer:
        assert self.smtp is not None
        return self.smtp

    def http_server(self) -> HttpServer:
        assert self.http is not None
        return self.http


@dataclass(frozen=True)
class Case:
    """How one connector meets the contract.

    ``build(loopback, port)`` makes the connector; ``port`` replaces the server's port (to point it
    where nobody listens). ``read_back`` returns the bodies the server accepted.
    """

    id: str
    connector: type[Connector]
    server: str  # "smtp", "http" or "file"
    build: Callable[[Loopback, int | None], Connector]
    message: Callable[[str], OutboundMessage]
    read_back: Callable[[Loopback], list[str]]
    fault_paths: frozenset[str] = frozenset()
    faults: frozenset[Fault] = frozenset()


HTTP_FAULTS = frozenset(Fault)
SMTP_FAULTS = frozenset(Fault) - {Fault.RATE_LIMITED}  # SMTP has no Retry-After


def _port(loopback_port: int, override: int | None) -> int:
    return loopback_port if override is None else override


def _smtp(loopback: Loopback, port: int | None) -> Connector:
    return SmtpConnector(
        host="127.0.0.1",
        port=_port(loopback.smtp_server().port, port),
        sender="Brand News <news@brand.example>",
        username="brand",
        password=SecretStr(SECRET),
        timeout=loopback.timeout,
    )


def _smtp_bodies(loopback: Loopback) -> list[str]:
    bodies = []
    for mail in loopback.smtp_server().received:
        part = mail.message.get_body(("plain",))
        assert isinstance(part, EmailMessage)
        bodies.append(str(part.get_content()).strip())
    return bodies


def _http_url(loopback: Loopback, port: int | None, path: str) -> str:
    return f"http://127.0.0.1:{_port(loopback.http_server().port, port)}{path}"


def _message(
    channel: ChannelKind, to: str, publicity: Publicity = Publicity.PRIVATE
) -> Callable[[str], OutboundMessage]:
    def make(key: str) -> OutboundMessage:
        return OutboundMessage(
            channel=channel,
            to=to,
            subject="Autumn news",
            body_text=f"Hello from the brand, delivery {key}",
            idempotency_key=key,
            publicity=publicity,
            unsubscribe_url="https://brand.test/u/abc",
            metadata={"campaign": "autumn"},
        )

    return make


def _bluesky_text(request: Any) -> str:
    body = request.json()
    return str(body["record"]["text"] if "record" in body else body["message"]["text"])


CASES = [
    Case(
        "smtp",
        SmtpConnector,
        "smtp",
        _smtp,
        _message(ChannelKind.EMAIL, "ada@example.org"),
        _smtp_bodies,
        faults=SMTP_FAULTS,
    ),
    Case(
        "webhook",
        WebhookConnector,
        "http",
        lambda lb, port: WebhookConnector(
            url=_http_url(lb, port, "/hook"), secret=SecretStr(SECRET), timeout=lb.timeout
        ),
        _message(ChannelKind.WEBHOOK, "subscriber-17"),
        lambda lb: [r.json()["text"] for r in lb.http_server().posted("/hook")],
        frozenset({"/hook"}),
        HTTP_FAULTS,
    ),
    Case(
        "sms",
        SmsConnector,
        "http",
        lambda lb, port: SmsConnector(
            url=_http_url(lb, port, "/sms"),
            token=SecretStr(SECRET),
            sender="BRAND",
            timeout=lb.timeout,
        ),
        _message(ChannelKind.SMS, "+14155552671"),
        lambda lb: [r.json()["body"] for r in lb.http_server().posted("/sms")],
        frozenset({"/sms"}),
        HTTP_FAULTS,
    ),
    *[
        Case(
            f"mastodon-{publicity}",
            MastodonConnector,
            "http",
            lambda lb, port: MastodonConnector(
                api_base_url=_http_url(lb, port, ""),
                access_token=SecretStr(SECRET),
                timeout=lb.timeout,
            ),
            _message(ChannelKind.MASTODON, "@ada@example.social", publicity),
            lambda lb: [
                parse_qs(r.body.decode())["status"][0].removeprefix("@ada@example.social ")
                for r in lb.http_server().posted("/api/v1/statuses")
            ],
            frozenset({"/api/v1/statuses"}),
            HTTP_FAULTS,
        )
        for publicity in Publicity
    ],
    *[
        Case(
            f"bluesky-{publicity}",
            BlueskyConnector,
            "http",
            lambda lb, port: BlueskyConnector(
                identifier="brand.test",
                app_password=SecretStr(SECRET),
                service_url=_http_url(lb, port, ""),
                timeout=lb.timeout,
            ),
            _message(ChannelKind.BLUESKY, "@friend.test", publicity),
            lambda lb: [
                _bluesky_text(r)
                for path in (
                    "/xrpc/com.atproto.repo.createRecord",
                    "/xrpc/chat.bsky.convo.sendMessage",
                )
                for r in lb.http_server().posted(path)
            ],
            frozenset({"/xrpc/com.atproto.repo.createRecord", "/xrpc/chat.bsky.convo.sendMessage"}),
            HTTP_FAULTS,
        )
        for publicity in Publicity
    ],
    Case(
        "file",
        FileSinkConnector,
        "file",
        lambda lb, port: FileSinkConnector(lb.tmp_path / "dry-run" / "out.jsonl"),
        _message(ChannelKind.EMAIL, "ada@example.org"),
        lambda lb: [
            json.loads(line)["body_text"]
            for line in (lb.tmp_path / "dry-run" / "out.jsonl").read_text().splitlines()
        ],
    ),
]


def _cases_with(fault: Fault) -> list[Any]:
    return [pytest.param(case, id=case.id) for case in CASES if fault in case.faults]


def _networked() -> list[Any]:
    return [pytest.param(case, id=case.id) for case in CASES if case.server != "file"]


@pytest.fixture
def loopback(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loopback]:
    case: Case = request.node.callspec.params["case"]
    env = Loopback(tmp_path)
    if case.server == "smtp":
        env.smtp = SmtpServer(credentials=("brand", SECRET))
    elif case.server == "http":
        env.http = HttpServer(
            webhook_secret=SECRET,
            bluesky_password=SECRET,
            mastodon_token=SECRET,
            sms_token=SECRET,
            fault_paths=case.fault_paths,
        )
    yield env
    if env.smtp is not None:
        env.smtp.close()
    if env.http is not None:
        env.http.close()


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here, success or fault, logs at DEBUG; no client-side line may hold the secret."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        if record.name.startswith(SERVER_LOGGERS):
            continue
        assert SECRET not in record.getMessage(), (record.name, record.getMessage())
        assert SECRET not in (record.exc_text or ""), record.name


def _set_fault(loopback: Loopback, fault: Fault | None) -> None:
    if loopback.smtp is not None:
        loopback.smtp.fault = fault
    if loopback.http is not None:
        loopback.http.fault = fault


def _in_doubt(loopback: Loopback) -> int:
    if loopback.smtp is not None:
        return len(loopback.smtp.in_doubt)
    assert loopback.http is not None
    return len(loopback.http.in_doubt)


async def _send(connector: Connector, message: OutboundMessage) -> Any:
    async with connector:
        return await connector.send(message)


def _send_expecting(
    connector: Connector, message: OutboundMessage, error: type[DeliveryError]
) -> DeliveryError:
    with pytest.raises(error) as caught:
        asyncio.run(_send(connector, message))
    return caught.value


# --------------------------------------------------------------------------- discovery


def test_every_exported_connector_has_a_contract_case() -> None:
    exported = {
        value
        for name in tummler.deliver.__all__
        if isinstance(value := getattr(tummler.deliver, name), type)
        and issubclass(value, Connector)
        and value is not Connector
    }
    covered = {case.connector for case in CASES}
    assert exported - covered == set(), "add a Case for each new connector"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_connector_names_and_channels_are_declared(case: Case, loopback: Loopback) -> None:
    connector = case.build(loopback, None)
    assert connector.name
    assert connector.channels
    assert case.message("k").channel in connector.channels


#: Whether each connector's provider de-duplicates a resend, so that the outbox may send an
#: in-doubt delivery again; Bluesky (atproto) has no idempotency key.
RESENDS_IN_DOUBT = {
    "smtp": True,
    "webhook": True,
    "sms": True,
    "mastodon": True,
    "file": True,
    "bluesky": False,
}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_each_connector_declares_whether_an_in_doubt_resend_is_safe(case: Case) -> None:
    declared = vars(case.connector).get("resend_in_doubt")
    assert declared is not None, f"{case.connector.__name__} must declare resend_in_doubt itself"
    assert declared is RESENDS_IN_DOUBT[case.connector.name]


def test_a_connector_that_says_nothing_makes_no_resend_promise() -> None:
    assert Connector.resend_in_doubt is False


# --------------------------------------------------------------------------- the happy path


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_a_sent_message_arrives_and_is_read_back(case: Case, loopback: Loopback) -> None:
    messages = [case.message(f"camp-1:contact-{n}:{case.id}") for n in (1, 2)]

    async def send_both() -> list[Any]:
        async with case.build(loopback, None) as connector:
            return [await connector.send(m) for m in messages]

    results = asyncio.run(send_both())

    assert case.read_back(loopback) == [m.body_text for m in messages]
    ids = [r.provider_message_id for r in results]
    assert all(ids), ids
    assert len(set(ids)) == 2, ids
    assert {r.connector for r in results} == {case.build(loopback, None).name}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_a_message_for_another_channel_is_refused_before_sending(
    case: Case, loopback: Loopback
) -> None:
    connector = case.build(loopback, None)
    others = [kind for kind in ChannelKind if kind not in connector.channels]
    if not others:
        pytest.skip(f"{case.id} carries every channel")
    message = OutboundMessage(
        channel=others[0], to="someone", body_text="hi", idempotency_key="k-1"
    )
    error = _send_expecting(connector, message, PermanentSendError)
    assert "not carried" in str(error)
    assert case.read_back(loopback) == []


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("case", _networked())
def test_nobody_listening_is_transient_and_not_in_doubt(case: Case, loopback: Loopback) -> None:
    connector = case.build(loopback, free_port())
    error = _send_expecting(connector, case.message("k-refused"), TransientSendError)
    assert isinstance(error, TransientSendError)
    assert error.in_doubt is False
    assert error.connector == connector.name


@pytest.mark.parametrize("case", _cases_with(Fault.TEMPORARY))
def test_try_later_is_transient_with_the_providers_reason(case: Case, loopback: Loopback) -> None:
    _set_fault(loopback, Fault.TEMPORARY)
    error = _send_expecting(case.build(loopback, None), case.message("k-1"), TransientSendError)
    assert isinstance(error, TransientSendError)
    assert PROVIDER_REASON in error.reason
    assert error.status in {451, 503}
    assert error.in_doubt is False
    assert isinstance(error, TransientDeliveryError)


@pytest.mark.parametrize("case", _cases_with(Fault.REJECTED))
def test_never_is_permanent_with_the_providers_reason(case: Case, loopback: Loopback) -> None:
    _set_fault(loopback, Fault.REJECTED)
    error = _send_expecting(case.build(loopback, None), case.message("k-1"), PermanentSendError)
    assert isinstance(error, PermanentSendError)
    assert PROVIDER_REASON in error.reason
    assert error.status in {550, 422}
    assert isinstance(error, PermanentDeliveryError)
    assert case.read_back(loopback) == []


@pytest.mark.parametrize("case", _cases_with(Fault.RATE_LIMITED))
def test_rate_limited_is_transient_with_retry_after(case: Case, loopback: Loopback) -> None:
    _set_fault(loopback, Fault.RATE_LIMITED)
    error = _send_expecting(case.build(loopback, None), case.message("k-1"), TransientSendError)
    assert isinstance(error, TransientSendError)
    assert error.status == 429
    assert error.retry_after == pytest.approx(RETRY_AFTER_S)


@pytest.mark.parametrize("case", _cases_with(Fault.HANG))
def test_a_server_that_never_answers_times_out_in_doubt(case: Case, loopback: Loopback) -> None:
    _set_fault(loopback, Fault.HANG)
    loopback.timeout = HANG_TIMEOUT_S
    started = time.monotonic()
    error = _send_expecting(case.build(loopback, None), case.message("k-1"), TransientSendError)
    assert time.monotonic() - started < 4 * HANG_LIMIT_S
    assert isinstance(error, TransientSendError)
    assert error.in_doubt is True
    assert _in_doubt(loopback) == 1


@pytest.mark.parametrize("case", _cases_with(Fault.DROP))
def test_a_connection_dropped_mid_message_is_transient_in_doubt(
    case: Case, loopback: Loopback
) -> None:
    _set_fault(loopback, Fault.DROP)
    error = _send_expecting(case.build(loopback, None), case.message("k-1"), TransientSendError)
    assert isinstance(error, TransientSendError)
    assert error.in_doubt is True
    assert _in_doubt(loopback) == 1
    assert case.read_back(loopback) == []


@pytest.mark.parametrize("case", _cases_with(Fault.UNAUTHORIZED))
def test_rejected_credentials_are_permanent_and_never_shown(
    case: Case, loopback: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    connector = case.build(loopback, None)
    assert SECRET not in repr(connector)
    asyncio.run(_send(connector, case.message("k-ok")))  # log a success too
    _set_fault(loopback, Fault.UNAUTHORIZED)
    error = _send_expecting(case.build(loopback, None), case.message("k-1"), PermanentSendError)
    assert isinstance(error, PermanentSendError)
    assert error.status in {401, 535}
    assert SECRET not in str(error)
    assert SECRET not in repr(error.args)
    # The autouse fixture then checks every log line; make sure there were lines to check.
    client_records = [r for r in caplog.records if not r.name.startswith(SERVER_LOGGERS)]
    assert any(r.name == "tummler.deliver" for r in client_records)
