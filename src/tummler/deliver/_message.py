"""What a connector is given and what it gives back."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind

__all__ = ["OutboundMessage", "Publicity", "SendResult", "stable_message_id"]

#: Headers a connector writes itself; a message may not set them (they would contradict the envelope).
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "idempotency-key",
        "authorization",
    }
)


class Publicity(StrEnum):
    """Who can see a message: everyone (a public post) or only its recipient (a DM, an e-mail)."""

    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message, ready for one connector to hand over.

    The outbox builds it from a delivery; the connector must not need anything else to send it, so
    that a resend after a crash produces the same bytes (same idempotency key, same Message-ID).

    Parameters
    ----------
    channel
        The channel the message goes out on; a connector refuses a message for another channel.
    to
        The recipient's address on that channel: an e-mail address, an E.164 phone number, a
        Mastodon handle (``@user@instance``), a Bluesky handle, a webhook subscriber id. A public
        social post is a broadcast: ``to`` is recorded but not mentioned.
    body_text
        The plain-text body (every channel has one).
    idempotency_key
        Unique per delivery (campaign, contact, channel). Connectors pass it to providers that
        de-duplicate on it and derive a stable Message-ID from it where they do not.
    subject
        E-mail subject; ignored by channels without one.
    body_html
        Optional HTML alternative (e-mail only).
    headers
        Extra protocol headers (e-mail headers, webhook HTTP headers). Headers a connector sets
        itself (``From``, ``Message-ID``, ``Idempotency-Key``...) are refused.
    message_id
        The Message-ID to use, with angle brackets; default: :func:`stable_message_id` of the
        idempotency key.
    publicity
        Public post or private message (Mastodon and Bluesky choose status or DM by it).
    unsubscribe_url
        One-click unsubscribe link; e-mail gets ``List-Unsubscribe`` headers from it.
    metadata
        Free-form strings passed to providers that accept them (webhook payload, SMS reference).
    """

    channel: ChannelKind
    to: str
    body_text: str
    idempotency_key: str
    subject: str | None = None
    body_html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None
    publicity: Publicity = Publicity.PRIVATE
    unsubscribe_url: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "channel", ChannelKind(self.channel))
        except ValueError:
            known = ", ".join(kind.value for kind in ChannelKind)
            raise InputError(
                f"unknown channel {self.channel!r}; use one of {known}", field="channel"
            ) from None
        try:
            object.__setattr__(self, "publicity", Publicity(self.publicity))
        except ValueError:
            raise InputError(
                f"unknown publicity {self.publicity!r}; use 'public' or 'private'",
                field="publicity",
            ) from None
        if not self.idempotency_key.strip():
            raise InputError(
                "the idempotency key is empty; the outbox must give every delivery one",
                field="idempotency_key",
            )
        if not self.to.strip() and self.publicity is Publicity.PRIVATE:
            raise InputError("a private message needs a recipient address", field="to")
        for name, value in (
            ("to", self.to),
            ("subject", self.subject),
            ("message_id", self.message_id),
            ("unsubscribe_url", self.unsubscribe_url),
            ("idempotency_key", self.idempotency_key),
        ):
            _refuse_line_breaks(name, value)
        if self.message_id is not None and not (
            self.message_id.startswith("<") and self.message_id.endswith(">")
        ):
            raise InputError(
                f"Message-ID {self.message_id!r} must be enclosed in angle brackets, e.g. <id@example.org>",
                field="message_id",
            )
        headers = dict(self.headers)
        for name, value in headers.items():
            if name.lower() in _RESERVED_HEADERS:
                raise InputError(
                    f"header {name!r} is set by the connector; remove it from the message",
                    field="headers",
                )
            _refuse_line_breaks(f"headers[{name!r}]", name)
            _refuse_line_breaks(f"headers[{name!r}]", value)
        object.__setattr__(self, "headers", MappingProxyType(headers))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


def _refuse_line_breaks(name: str, value: str | None) -> None:
    # A CR or LF in a header value would let a template inject headers (or a second message).
    if value is not None and ("\r" in value or "\n" in value):
        raise InputError(
            f"{name} contains a line break; header values must be one line", field=name
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a provider said when it accepted a message.

    Parameters
    ----------
    connector
        The connector's name (``smtp``, ``webhook``...).
    provider_message_id
        The provider's id for the message (status id, record URI, SMS id, Message-ID): the key
        that provider callbacks (delivered, bounced, clicked) will refer to.
    details
        Anything else worth recording (the SMTP server's reply, a post's URL).
    """

    connector: str
    provider_message_id: str
    details: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


def stable_message_id(idempotency_key: str, domain: str) -> str:
    """The Message-ID an e-mail gets when the outbox gives none: a hash of its idempotency key.

    SMTP has no idempotency key, so when a worker dies after the server accepted a message but
    before the outbox recorded it, the message is sent again. Deriving the Message-ID from the
    delivery's idempotency key makes the resend byte-for-byte the same message with the same
    Message-ID, which lets receivers and mailbox providers that de-duplicate on Message-ID drop the
    copy. (Not every receiver does; the outbox records such a delivery so a person can see it.)

    >>> stable_message_id("campaign-1:contact-9:email", "news.example.org")
    '<71324a3fec01c0ceeb01fce9a3cf9cc7@news.example.org>'
    """
    if not domain or any(char in domain for char in "<>@ \r\n"):
        raise InputError(f"domain {domain!r} is not a host name", field="domain")
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"
