"""E-mail over SMTP (aiosmtplib), with STARTTLS, one-click unsubscribe and a stable Message-ID."""

from __future__ import annotations

import hashlib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from types import ModuleType
from typing import ClassVar

from pydantic import SecretStr

from tummler.core.clock import Clock, SystemClock
from tummler.core.errors import ConfigError, MissingDependencyError
from tummler.core.vocabulary import ChannelKind
from tummler.deliver._base import Connector, check_positive
from tummler.deliver._failures import PermanentSendError, TransientSendError
from tummler.deliver._message import OutboundMessage, SendResult, stable_message_id
from tummler.deliver._rate import TokenBucket

__all__ = ["SmtpConnector", "build_email"]


def _import_aiosmtplib() -> ModuleType:
    try:
        import aiosmtplib
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("aiosmtplib", "email") from exc
    return aiosmtplib


def _check_address(value: str, what: str) -> str:
    """Normalise an e-mail address; ``what`` names it in the error."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{what} {value!r} is not a valid e-mail address: {exc}") from None


def build_email(
    message: OutboundMessage, *, sender: str, domain: str, clock: Clock
) -> EmailMessage:
    """The e-mail an :class:`OutboundMessage` becomes: the same message every time it is built.

    Besides ``From``, ``To``, ``Subject`` and ``Date``, it gets:

    - ``Message-ID``: the message's own, or :func:`stable_message_id` of its idempotency key, so
      that a resend after a crash carries the same id and receivers can drop the copy;
    - ``List-Unsubscribe: <url>`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
      (RFC 8058) when the message has an unsubscribe URL: mailbox providers show an unsubscribe
      button that POSTs to it;
    - a ``text/html`` alternative when the message has an HTML body, with a MIME boundary derived
      from the idempotency key (so the bytes are the same on every build).

    Raises
    ------
    ValueError
        When the recipient is not a valid address (the connector turns it into a permanent error).
    """
    recipient = _check_address(message.to, "recipient")
    email = EmailMessage()
    email["From"] = sender
    email["To"] = recipient
    email["Subject"] = message.subject or ""
    email["Date"] = format_datetime(clock.now())
    email["Message-ID"] = message.message_id or stable_message_id(message.idempotency_key, domain)
    if message.unsubscribe_url is not None:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.body_text)
    if message.body_html is not None:
        email.add_alternative(message.body_html, subtype="html")
        # The library draws a random MIME boundary; deriving it from the key keeps a resend
        # byte-for-byte the same message (and keeps randomness out of the connector).
        digest = hashlib.sha256(message.idempotency_key.encode("utf-8")).hexdigest()[:32]
        email.set_boundary(f"==tummler-{digest}==")
    return email


class SmtpConnector(Connector):
    """Sends e-mail to an SMTP server (a relay or the provider's submission endpoint).

    One connection per message: simple, and a fault affects only the message in flight.

    **Exactly once, as far as SMTP allows.** SMTP has no idempotency key: when a worker dies after
    the server answered ``250`` to the message but before the outbox recorded it, the outbox cannot
    know. tummler resends it, with the same ``Message-ID`` (derived from the idempotency key), so
    receivers that de-duplicate on Message-ID drop the copy; no other message is affected.

    Faults map to errors as follows: refused connection, time-out, dropped connection and 4xx
    replies (greylisting, mailbox busy) are transient; 5xx replies (unknown user, rejected content),
    an invalid recipient address and a server without the STARTTLS that was asked for are permanent.

    Parameters
    ----------
    host, port
        The SMTP server.
    sender
        The ``From`` address, e.g. ``"Brand <news@brand.example>"``; its domain names Message-IDs.
    username, password
        Credentials for SMTP AUTH, or neither.
    starttls
        Upgrade the connection with STARTTLS (and refuse to send if the server cannot).
    implicit_tls
        Speak TLS from the first byte (port 465); exclusive with ``starttls``.
    tls_context
        The TLS settings (trusted CAs, client certificate); default: the system's.
    timeout
        Seconds for connecting and for each command.
    clock
        Where the ``Date`` header's time comes from.
    rate_limit
        Optional pacing, see :class:`~tummler.deliver.TokenBucket`.
    """

    name: ClassVar[str] = "smtp"
    #: In doubt, resend: same bytes, same ``Message-ID`` (derived from the key): receivers that
    #: de-duplicate on Message-ID drop the copy.
    resend_in_doubt: ClassVar[bool] = True
    channels: ClassVar[frozenset[ChannelKind]] = frozenset({ChannelKind.EMAIL})

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
        rate_limit: TokenBucket | None = None,
    ) -> None:
        super().__init__(rate_limit=rate_limit)
        self._smtplib = _import_aiosmtplib()
        if not host:
            raise ConfigError("SMTP host is empty; set it to the server's name or address")
        if not 0 < port < 65536:
            raise ConfigError(f"SMTP port must be between 1 and 65535, got {port!r}")
        if (username is None) != (password is None):
            raise ConfigError("give both the SMTP username and password, or neither")
        if starttls and implicit_tls:
            raise ConfigError("choose starttls (port 587) or implicit_tls (port 465), not both")
        try:
            parsed = Address(addr_spec=_check_address(_bare_address(sender), "sender"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.host = host
        self.port = port
        self.sender = sender
        self.domain = parsed.domain
        self._envelope_sender = parsed.addr_spec
        self.username = username
        self._password = password
        self._keep_secret(password)
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self._tls_context = tls_context
        self._timeout = check_positive("timeout", timeout)
        self._clock = clock or SystemClock()

    def _describe(self) -> str:
        tls = "starttls" if self.starttls else "implicit-tls" if self.implicit_tls else "plain"
        return f"host={self.host!r}, port={self.port}, sender={self.sender!r}, tls={tls}"

    async def _send(self, message: OutboundMessage) -> SendResult:
        try:
            email = build_email(message, sender=self.sender, domain=self.domain, clock=self._clock)
        except ValueError as exc:
            raise PermanentSendError(self.name, str(exc)) from None
        smtp = self._smtplib
        try:
            _errors, reply = await smtp.send(
                email,
                sender=self._envelope_sender,
                recipients=[email["To"]],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=None if self._password is None else self._password.get_secret_value(),
                start_tls=self.starttls,
                use_tls=self.implicit_tls,
                tls_context=self._tls_context,
                timeout=self._timeout,
            )
        except smtp.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            raise self._reply_error(refused.code, refused.message) from None
        except smtp.SMTPResponseException as exc:
            raise self._reply_error(exc.code, exc.message) from None
        except smtp.SMTPNotSupported as exc:
            raise PermanentSendError(
                self.name,
                f"{self._mask(str(exc))}; the server cannot do what the connector is configured "
                "for (STARTTLS or AUTH): fix the connector's settings",
            ) from None
        except smtp.SMTPConnectTimeoutError as exc:
            raise TransientSendError(
                self.name, f"connecting timed out: {self._mask(str(exc))}"
            ) from None
        except smtp.SMTPTimeoutError as exc:
            raise TransientSendError(
                self.name, f"timed out: {self._mask(str(exc))}", in_doubt=True
            ) from None
        except smtp.SMTPServerDisconnected as exc:
            raise TransientSendError(
                self.name, f"the connection dropped: {self._mask(str(exc))}", in_doubt=True
            ) from None
        except (smtp.SMTPConnectError, ConnectionError, OSError) as exc:
            raise TransientSendError(
                self.name, f"could not connect to {self.host}:{self.port}: {self._mask(str(exc))}"
            ) from None
        return SendResult(self.name, str(email["Message-ID"]), {"reply": self._mask(reply)})

    def _reply_error(self, code: int, text: str) -> PermanentSendError | TransientSendError:
        reason = self._mask(f"{code} {text}")
        if 400 <= code < 500:
            return TransientSendError(self.name, reason, status=code)
        if code == 535:
            reason += " (check the SMTP username and password)"
        return PermanentSendError(self.name, reason, status=code)


def _bare_address(sender: str) -> str:
    """``news@brand.example`` from ``Brand <news@brand.example>``."""
    if "<" in sender and sender.rstrip().endswith(">"):
        return sender[sender.index("<") + 1 : sender.rstrip().rindex(">")].strip()
    return sender.strip()
