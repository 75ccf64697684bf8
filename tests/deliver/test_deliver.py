"""What each connector promises beyond the shared contract, and the pieces they are made of."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import ssl
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

import tummler.deliver
from deliver_servers import BLUESKY_DID, Fault, HttpServer, SmtpServer, self_signed_certificate
from tummler.core.clock import FrozenClock
from tummler.core.errors import ConfigError, DeliveryError, InputError, MissingDependencyError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver import (
    BlueskyConnector,
    Connector,
    FileSinkConnector,
    MastodonConnector,
    OutboundMessage,
    PermanentSendError,
    Publicity,
    SecretMaskingFilter,
    SendResult,
    SmsConnector,
    SmtpConnector,
    TokenBucket,
    TransientSendError,
    WebhookConnector,
    build_email,
    is_e164,
    mask_secrets,
    parse_retry_after,
    register_secret,
    secret_from_env,
    sign_webhook,
    stable_message_id,
    verify_webhook,
)

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SECRET = "hook-secret-Zq7-do-not-log"


def send(connector: Connector, *messages: OutboundMessage) -> list[SendResult | DeliveryError]:
    """Send each message in turn on one connector, then close it; errors are returned in place."""

    async def run() -> list[SendResult | DeliveryError]:
        outcomes: list[SendResult | DeliveryError] = []
        async with connector:
            for message in messages:
                try:
                    outcomes.append(await connector.send(message))
                except DeliveryError as exc:
                    outcomes.append(exc)
        return outcomes

    return asyncio.run(run())


def send_one(connector: Connector, message: OutboundMessage) -> SendResult:
    [outcome] = send(connector, message)
    if isinstance(outcome, DeliveryError):
        raise outcome
    return outcome


def email_message(key: str = "camp-1:contact-1:email", **changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "channel": ChannelKind.EMAIL,
        "to": "ada@example.org",
        "subject": "Autumn news",
        "body_text": "Hello Ada",
        "body_html": "<p>Hello Ada</p>",
        "idempotency_key": key,
        "unsubscribe_url": "https://brand.example/u/abc",
    }
    fields.update(changes)
    return OutboundMessage(**fields)


# --------------------------------------------------------------------------- the message


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"idempotency_key": " "}, "idempotency_key", "idempotency key is empty"),
        ({"to": ""}, "to", "needs a recipient"),
        ({"channel": "pigeon"}, "channel", "unknown channel 'pigeon'"),
        ({"publicity": "secret"}, "publicity", "unknown publicity"),
        ({"subject": "Hi\r\nBcc: all@example.org"}, "subject", "line break"),
        ({"headers": {"X-Tag": "a\nb"}}, "headers['X-Tag']", "line break"),
        ({"headers": {"Message-ID": "<x@y>"}}, "headers", "set by the connector"),
        ({"headers": {"from": "evil@example.org"}}, "headers", "set by the connector"),
        ({"message_id": "no-brackets@example.org"}, "message_id", "angle brackets"),
    ],
)
def test_a_bad_message_is_refused_naming_the_field(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InputError, match=words) as caught:
        email_message(**changes)
    assert caught.value.field == field


def test_a_message_is_immutable_down_to_its_headers() -> None:
    headers = {"X-Campaign": "autumn"}
    message = email_message(headers=headers)
    headers["X-Campaign"] = "changed"
    assert message.headers["X-Campaign"] == "autumn"
    with pytest.raises(TypeError):
        message.headers["X-New"] = "1"  # type: ignore[index]


def test_a_public_post_needs_no_recipient() -> None:
    post = OutboundMessage(
        channel=ChannelKind.MASTODON,
        to="",
        body_text="Autumn is here",
        idempotency_key="k",
        publicity=Publicity.PUBLIC,
    )
    assert post.publicity is Publicity.PUBLIC


@given(st.text(min_size=1), st.text(min_size=1))
def test_stable_message_ids_are_stable_and_distinct(key: str, other: str) -> None:
    first = stable_message_id(key, "brand.example")
    assert first == stable_message_id(key, "brand.example")
    assert first.startswith("<")
    assert first.endswith("@brand.example>")
    if other != key:
        assert stable_message_id(other, "brand.example") != first


# --------------------------------------------------------------------------- e-mail


def test_an_email_carries_one_click_unsubscribe_and_a_stable_message_id() -> None:
    clock = FrozenClock(NOW)
    message = email_message()
    first = build_email(
        message, sender="Brand <news@brand.example>", domain="brand.example", clock=clock
    )
    again = build_email(
        message, sender="Brand <news@brand.example>", domain="brand.example", clock=clock
    )

    assert first["List-Unsubscribe"] == "<https://brand.example/u/abc>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["Message-ID"] == stable_message_id(message.idempotency_key, "brand.example")
    assert first["Date"] == "Sun, 01 Mar 2026 09:30:00 +0000"
    assert first.as_bytes() == again.as_bytes()
    assert first.get_content_type() == "multipart/alternative"


def test_an_email_without_unsubscribe_url_has_no_unsubscribe_headers() -> None:
    email = build_email(
        email_message(unsubscribe_url=None, message_id="<given@brand.example>"),
        sender="news@brand.example",
        domain="brand.example",
        clock=FrozenClock(NOW),
    )
    assert "List-Unsubscribe" not in email
    assert email["Message-ID"] == "<given@brand.example>"


def test_smtp_resends_an_in_doubt_message_with_the_same_message_id() -> None:
    """The documented crash behaviour: the server got the message but never said 250; the
    resend is the same message with the same Message-ID, so the receiver can drop the copy."""
    server = SmtpServer()
    try:
        connector = SmtpConnector(
            host="127.0.0.1", port=server.port, sender="news@brand.example", timeout=2.0
        )
        message = email_message()
        server.fault = Fault.DROP
        with pytest.raises(TransientSendError) as caught:
            send_one(connector, message)
        assert caught.value.in_doubt
        server.fault = None
        result = send_one(connector, message)
    finally:
        server.close()

    [lost] = server.in_doubt
    [accepted] = server.received
    assert (
        lost.message["Message-ID"] == accepted.message["Message-ID"] == result.provider_message_id
    )
    assert accepted.message["List-Unsubscribe"] == "<https://brand.example/u/abc>"
    assert accepted.rcpt_tos == ["ada@example.org"]
    assert accepted.mail_from == "news@brand.example"


def test_smtp_refuses_an_invalid_address_permanently_without_connecting() -> None:
    connector = SmtpConnector(host="127.0.0.1", port=9, sender="news@brand.example")
    with pytest.raises(PermanentSendError, match="not a valid e-mail address"):
        send_one(connector, email_message(to="ada@@example"))


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)


# asyncio.run closes its loop before the TLS close_notify exchange ends, so the socket under the
# TLS transport is closed by the garbage collector (the outbox's long-lived loop does not have
# this); collect here so that the warning belongs to this test and nowhere else.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_smtp_upgrades_with_starttls_when_configured(tls_files: tuple[Path, Path]) -> None:
    server = SmtpServer(credentials=("brand", SECRET), tls=tls_files)
    trusted = ssl.create_default_context(cafile=str(tls_files[0]))
    try:
        with_tls = SmtpConnector(
            host="127.0.0.1",
            port=server.port,
            sender="news@brand.example",
            username="brand",
            password=SecretStr(SECRET),
            starttls=True,
            tls_context=trusted,
            timeout=2.0,
        )
        send_one(with_tls, email_message())
        without = SmtpConnector(
            host="127.0.0.1", port=server.port, sender="news@brand.example", timeout=2.0
        )
        with pytest.raises(PermanentSendError) as caught:
            send_one(without, email_message(key="k-2"))
    finally:
        server.close()
    gc.collect()
    assert [m.message["Subject"] for m in server.received] == ["Autumn news"]
    assert caught.value.status == 530  # "Must issue a STARTTLS command first"


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"host": ""}, "host is empty"),
        ({"port": 0}, "port must be between"),
        ({"username": "brand"}, "both the SMTP username and password"),
        ({"starttls": True, "implicit_tls": True}, "not both"),
        ({"sender": "not an address"}, "sender 'not an address'"),
        ({"timeout": 0}, "timeout must be a positive number"),
    ],
)
def test_smtp_settings_are_checked_when_built(arguments: dict[str, Any], words: str) -> None:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 25,
        "sender": "news@brand.example",
    } | arguments
    with pytest.raises(ConfigError, match=words):
        SmtpConnector(**settings)


# --------------------------------------------------------------------------- webhook


def _webhook_server() -> HttpServer:
    return HttpServer(webhook_secret=SECRET)


def test_the_webhook_signature_verifies_on_the_receiving_side() -> None:
    server = _webhook_server()
    try:
        connector = WebhookConnector(
            url=f"{server.url}/hook", secret=SecretStr(SECRET), clock=FrozenClock(NOW)
        )
        send_one(connector, _webhook_message("k-1"))
    finally:
        server.close()
    [request] = server.posted("/hook")
    assert server.signatures_ok == [True]
    assert request.headers["idempotency-key"] == "k-1"
    assert request.headers["x-tummler-timestamp"] == str(int(NOW.timestamp()))
    assert request.json()["metadata"] == {"campaign": "autumn"}
    assert verify_webhook(
        SecretStr(SECRET),
        timestamp=request.headers["x-tummler-timestamp"],
        signature=request.headers["x-tummler-signature"],
        body=request.body,
        now=NOW.timestamp() + 10,
    )


def test_a_webhook_signed_with_another_key_is_refused_by_the_receiver() -> None:
    server = _webhook_server()
    try:
        connector = WebhookConnector(url=f"{server.url}/hook", secret=SecretStr("other-key"))
        with pytest.raises(PermanentSendError, match="bad signature") as caught:
            send_one(connector, _webhook_message("k-1"))
    finally:
        server.close()
    assert caught.value.status == 401
    assert server.signatures_ok == [False]


def _webhook_message(key: str) -> OutboundMessage:
    return OutboundMessage(
        channel=ChannelKind.WEBHOOK,
        to="crm",
        body_text="Hello",
        idempotency_key=key,
        metadata={"campaign": "autumn"},
    )


@given(body=st.binary(max_size=200), timestamp=st.integers(0, 2**32), flip=st.integers(0, 199))
def test_a_tampered_webhook_body_or_an_old_timestamp_does_not_verify(
    body: bytes, timestamp: int, flip: int
) -> None:
    key = SecretStr("k3y")
    signature = sign_webhook(key, timestamp, body)
    good = {"timestamp": str(timestamp), "signature": signature, "now": timestamp + 1.0}
    assert verify_webhook(key, body=body, **good)  # type: ignore[arg-type]
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        assert not verify_webhook(key, body=tampered, **good)  # type: ignore[arg-type]
    assert not verify_webhook(
        key, body=body, timestamp=str(timestamp), signature=signature, now=timestamp + 301.0
    )


# --------------------------------------------------------------------------- SMS


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("+14155552671", True),
        ("+447911123456", True),
        ("4155552671", False),
        ("+0123456789", False),
        ("+1 415 555 2671", False),
        ("+1415555267100000", False),
        ("", False),
    ],
)
def test_e164_numbers(number: str, ok: bool) -> None:
    assert is_e164(number) is ok


def test_sms_to_a_number_without_country_code_is_permanent_and_never_sent() -> None:
    server = HttpServer(sms_token=SECRET)
    try:
        connector = SmsConnector(url=f"{server.url}/sms", token=SecretStr(SECRET), sender="BRAND")
        message = OutboundMessage(
            channel=ChannelKind.SMS, to="0415 555 2671", body_text="Hi", idempotency_key="k"
        )
        with pytest.raises(PermanentSendError, match=r"E\.164"):
            send_one(connector, message)
    finally:
        server.close()
    assert server.received == []


def test_a_provider_that_echoes_the_token_gets_it_masked_in_the_reason() -> None:
    server = HttpServer(sms_token=SECRET, fault=Fault.UNAUTHORIZED, fault_paths=frozenset({"/sms"}))
    message = OutboundMessage(
        channel=ChannelKind.SMS, to="+14155552671", body_text="Hi", idempotency_key="k"
    )
    try:
        connector = SmsConnector(url=f"{server.url}/sms", token=SecretStr(SECRET), sender="BRAND")
        with pytest.raises(PermanentSendError) as caught:
            send_one(connector, message)
    finally:
        server.close()
    assert "invalid credentials: Bearer ********" in caught.value.reason
    assert "check the connector's credentials" in caught.value.reason
    assert SECRET not in str(caught.value)


# --------------------------------------------------------------------------- Mastodon


def test_mastodon_sends_the_idempotency_key_so_a_retry_posts_once() -> None:
    server = HttpServer(mastodon_token=SECRET)
    message = OutboundMessage(
        channel=ChannelKind.MASTODON,
        to="@ada@example.social",
        body_text="Thanks for the feedback!",
        idempotency_key="camp-1:contact-1:mastodon",
    )
    try:
        connector = MastodonConnector(api_base_url=server.url, access_token=SecretStr(SECRET))
        first, again = send(connector, message, message)
    finally:
        server.close()
    assert isinstance(first, SendResult)
    assert isinstance(again, SendResult)
    assert first.provider_message_id == again.provider_message_id
    assert len(server.mastodon_idempotency) == 1
    assert first.details["visibility"] == "direct"
    request = server.posted("/api/v1/statuses")[0]
    assert request.headers["idempotency-key"] == "camp-1:contact-1:mastodon"
    assert b"status=%40ada%40example.social+Thanks" in request.body


def test_mastodon_refuses_a_dm_to_something_that_is_not_a_handle() -> None:
    connector = MastodonConnector(
        api_base_url="http://127.0.0.1:9", access_token=SecretStr("tok-1")
    )
    message = OutboundMessage(
        channel=ChannelKind.MASTODON, to="not a handle!", body_text="Hi", idempotency_key="k"
    )
    with pytest.raises(PermanentSendError, match="not a Mastodon handle"):
        send_one(connector, message)


# --------------------------------------------------------------------------- Bluesky


def test_bluesky_posts_to_its_own_repo_and_writes_dms_through_the_chat_proxy() -> None:
    server = HttpServer(bluesky_password=SECRET)
    post, dm = (
        OutboundMessage(
            channel=ChannelKind.BLUESKY,
            to="@friend.test",
            body_text=text,
            idempotency_key=f"k-{publicity}",
            publicity=publicity,
        )
        for text, publicity in (("Autumn is here", Publicity.PUBLIC), ("Hi!", Publicity.PRIVATE))
    )
    try:
        connector = BlueskyConnector(
            identifier="brand.test", app_password=SecretStr(SECRET), service_url=server.url
        )
        posted, sent = send(connector, post, dm)
    finally:
        server.close()
    assert isinstance(posted, SendResult)
    assert isinstance(sent, SendResult)
    assert posted.provider_message_id.startswith(f"at://{BLUESKY_DID}/app.bsky.feed.post/")
    assert sent.provider_message_id == "msg-1"
    [record] = server.posted("/xrpc/com.atproto.repo.createRecord")
    assert record.json()["repo"] == BLUESKY_DID
    assert record.json()["collection"] == "app.bsky.feed.post"
    [resolve] = [r for r in server.received if r.path.endswith("resolveHandle")]
    assert resolve.method == "GET"
    [message] = server.posted("/xrpc/chat.bsky.convo.sendMessage")
    assert message.headers["atproto-proxy"] == "did:web:api.bsky.chat#bsky_chat"
    assert message.json()["convoId"] == "convo-1"
    assert message.json()["message"]["text"] == "Hi!"
    logins = server.posted("/xrpc/com.atproto.server.createSession")
    assert len(logins) == 1  # one session for both sends


# --------------------------------------------------------------------------- file sink


def test_the_file_sink_writes_every_field_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "out" / "dry-run.jsonl"
    connector = FileSinkConnector(path, clock=FrozenClock(NOW))
    messages = [email_message(key=f"k-{n}", headers={"X-N": str(n)}) for n in range(3)]

    async def send_all() -> None:
        await asyncio.gather(*(connector.send(m) for m in messages))

    asyncio.run(send_all())
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["idempotency_key"] for line in lines) == ["k-0", "k-1", "k-2"]
    first = next(line for line in lines if line["idempotency_key"] == "k-0")
    assert first == {
        "written_at": NOW.isoformat(),
        "channel": "email",
        "to": "ada@example.org",
        "subject": "Autumn news",
        "body_text": "Hello Ada",
        "body_html": "<p>Hello Ada</p>",
        "headers": {"X-N": "0"},
        "idempotency_key": "k-0",
        "message_id": None,
        "publicity": "private",
        "unsubscribe_url": "https://brand.example/u/abc",
        "metadata": {},
    }


def test_the_file_sink_refuses_a_folder_as_its_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        FileSinkConnector(tmp_path)


# --------------------------------------------------------------------------- rate limiting


class FakeTime:
    """A monotonic clock that only moves when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@settings(max_examples=50, deadline=None)
@given(
    rate=st.floats(0.1, 100.0),
    burst=st.integers(1, 10),
    sends=st.integers(1, 60),
)
def test_the_token_bucket_never_exceeds_its_rate(rate: float, burst: int, sends: int) -> None:
    time = FakeTime()
    bucket = TokenBucket(rate, burst=burst, monotonic=time.monotonic, sleep=time.sleep)
    stamps: list[float] = []

    async def run() -> None:
        async def one() -> None:
            await bucket.acquire()
            stamps.append(time.now)

        await asyncio.gather(*(one() for _ in range(sends)))

    asyncio.run(run())
    # A full bucket lets `burst` through at once; after that exactly one send per 1/rate.
    assert time.now == pytest.approx(max(0, sends - burst) / rate)
    # In any window, at most `burst` sends plus `rate` per second of the window's length.
    for j in range(len(stamps)):
        for i in range(j, len(stamps)):
            assert i - j + 1 <= burst + rate * (stamps[i] - stamps[j]) + 1e-6


def test_the_token_bucket_refills_while_idle() -> None:
    time = FakeTime()
    bucket = TokenBucket(2.0, burst=2, monotonic=time.monotonic, sleep=time.sleep)

    async def run() -> None:
        for _ in range(2):
            await bucket.acquire()
        time.now += 10.0  # idle: refills to the burst, not beyond
        for _ in range(3):
            await bucket.acquire()

    asyncio.run(run())
    assert time.sleeps == [pytest.approx(0.5)]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"rate": 0}, "rate must be a positive"),
        ({"rate": 1, "burst": 0}, "burst must be at least 1"),
    ],
)
def test_token_bucket_arguments_are_checked(arguments: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        TokenBucket(**arguments)


def test_a_connector_waits_for_its_rate_limiter(tmp_path: Path) -> None:
    time = FakeTime()
    bucket = TokenBucket(4.0, burst=1, monotonic=time.monotonic, sleep=time.sleep)
    connector = FileSinkConnector(tmp_path / "out.jsonl", rate_limit=bucket)

    async def run() -> None:
        for n in range(5):
            await connector.send(email_message(key=f"k-{n}"))

    asyncio.run(run())
    assert time.now == pytest.approx(1.0)


# --------------------------------------------------------------------------- secrets and errors


def test_the_masking_filter_hides_registered_secrets_from_any_logger() -> None:
    secret = SecretStr("api-token-8Hq2")
    register_secret(secret)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(SecretMaskingFilter())
    library = logging.getLogger("some.library")
    library.addHandler(handler)
    try:
        library.warning("sending Authorization: Bearer %s", "api-token-8Hq2")
        try:
            raise RuntimeError("token api-token-8Hq2 refused")
        except RuntimeError:
            library.exception("failed")
    finally:
        library.removeHandler(handler)
    assert all("api-token-8Hq2" not in line for line in records), records
    assert "Bearer ********" in records[0]
    assert "token ******** refused" in records[1]


def test_mask_secrets_leaves_text_without_secrets_alone() -> None:
    assert mask_secrets("nothing to hide", ["s3cr3t"]) == "nothing to hide"


def test_secret_from_env_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUMMLER_TEST_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="TUMMLER_TEST_TOKEN is not set"):
        secret_from_env("TUMMLER_TEST_TOKEN")
    monkeypatch.setenv("TUMMLER_TEST_TOKEN", "from-env-123")
    secret = secret_from_env("TUMMLER_TEST_TOKEN")
    assert secret.get_secret_value() == "from-env-123"
    assert "from-env-123" not in repr(secret)


@pytest.mark.parametrize(
    ("module", "build", "extra"),
    [
        (
            "aiosmtplib",
            lambda: SmtpConnector(host="h", port=25, sender="news@brand.example"),
            "email",
        ),
        ("httpx", lambda: WebhookConnector(url="http://h", secret=SecretStr("k3y!")), "webhook"),
        (
            "mastodon",
            lambda: MastodonConnector(api_base_url="http://h", access_token=SecretStr("t0k!")),
            "social",
        ),
    ],
)
def test_a_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, build: Any, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like to import
    with pytest.raises(MissingDependencyError, match=rf"tummler\[{extra}\]"):
        build()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("Sun, 01 Mar 2026 09:31:00 GMT", 60.0),
        ("Sun, 01 Mar 2026 09:00:00 GMT", 0.0),
        ("nan", None),
        ("later", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_send_errors_say_what_to_do() -> None:
    transient = TransientSendError("sms", "503 Service Unavailable", status=503, retry_after=30)
    permanent = PermanentSendError("smtp", "550 no such user", status=550)
    assert (
        str(transient) == "sms: temporary failure (503): 503 Service Unavailable; retry after 30 s"
    )
    assert str(permanent) == "smtp: rejected (550): 550 no such user; do not retry"
    assert len(PermanentSendError("x", "a" * 5000).reason) == 500


def test_importing_deliver_loads_no_channel_sdk() -> None:
    """Optional SDKs load only when their connector is built, so `import tummler.deliver` works
    with none of them installed."""
    code = (
        "import sys, tummler.deliver; "
        "print(sorted(m for m in ('aiosmtplib', 'httpx', 'mastodon', 'atproto_client', 'requests')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_public_names_are_importable_and_say_where_they_come_from() -> None:
    for name in tummler.deliver.__all__:
        member = getattr(tummler.deliver, name)
        assert getattr(member, "__module__", "tummler.deliver").startswith("tummler.deliver"), name


_GOOD = SecretStr("s3cret")


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: WebhookConnector(url="ftp://hooks.example", secret=_GOOD), "webhook url 'ftp:"),
        (
            lambda: WebhookConnector(url="https://hooks.example", secret=SecretStr("")),
            "webhook secret",
        ),
        (
            lambda: SmsConnector(url="https://sms.example", token="plain", sender="Brand"),  # type: ignore[arg-type]
            "SMS provider token must be a non-empty SecretStr",
        ),
        (
            lambda: MastodonConnector(api_base_url="mastodon.social", access_token=_GOOD),
            "e.g. https://mastodon.social",
        ),
        (
            lambda: BlueskyConnector(identifier="brand.bsky.social", app_password=SecretStr("")),
            "Bluesky app_password",
        ),
    ],
)
def test_http_connectors_check_their_endpoint_and_credential(
    build: Callable[[], Any], words: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        build()
