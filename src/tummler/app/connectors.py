"""Which connector carries which channel kind, built from the settings.

Connectors are configured by :class:`~tummler.core.settings.Settings`, read like every other setting
(``TUMMLER_*`` environment variables over ``tummler.toml``, under the lower-case name without the
prefix: ``smtp_host``); credentials are registered so that
:class:`~tummler.deliver.SecretMaskingFilter` and every recorded reason mask them. They are never
read from, nor written to, the database.

=========== ================================================================================
kind        variables (``*`` required to enable the connector)
=========== ================================================================================
email       ``TUMMLER_SMTP_HOST``\\*, ``TUMMLER_SMTP_PORT`` (587), ``TUMMLER_SMTP_SENDER``\\*,
            ``TUMMLER_SMTP_USERNAME`` and ``TUMMLER_SMTP_PASSWORD``, ``TUMMLER_SMTP_TLS``
            (``starttls`` default, ``implicit`` or ``none``)
webhook     ``TUMMLER_WEBHOOK_URL``\\*, ``TUMMLER_WEBHOOK_SECRET``\\*
sms         ``TUMMLER_SMS_URL``\\*, ``TUMMLER_SMS_TOKEN``\\*, ``TUMMLER_SMS_SENDER``\\*
mastodon    ``TUMMLER_MASTODON_URL``\\*, ``TUMMLER_MASTODON_TOKEN``\\*
bluesky     ``TUMMLER_BLUESKY_IDENTIFIER``\\*, ``TUMMLER_BLUESKY_APP_PASSWORD``\\*,
            ``TUMMLER_BLUESKY_SERVICE`` (https://bsky.social)
=========== ================================================================================

``TUMMLER_<KIND>_RATE`` (sends a second, e.g. ``TUMMLER_SMS_RATE=1``) paces a connector with a
:class:`~tummler.deliver.TokenBucket`. With ``dry_run``, :func:`build_connectors` sends every kind
to one :class:`~tummler.deliver.FileSinkConnector` at :func:`dry_run_path` instead (the demo's
simulated sends); ``tummler send --dry-run`` sends nothing at all and renders the planned messages
to that file with :func:`tummler.app.dry_run.dry_run_outbox`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import SecretStr

from tummler.core.clock import Clock
from tummler.core.errors import ConfigError
from tummler.core.settings import Settings
from tummler.core.vocabulary import ChannelKind
from tummler.deliver import (
    BlueskyConnector,
    Connector,
    FileSinkConnector,
    MastodonConnector,
    SmsConnector,
    SmtpConnector,
    TokenBucket,
    WebhookConnector,
    register_secret,
)

__all__ = ["DRY_RUN_FILE", "build_connectors", "dry_run_path"]

#: Where a dry run writes, under the workspace.
DRY_RUN_FILE = Path("outbox") / "dry-run.jsonl"


def dry_run_path(settings: Settings) -> Path:
    """The dry run's JSONL file, ``<workspace>/outbox/dry-run.jsonl``: ``tummler send --dry-run``
    replaces it, the file sink of :func:`build_connectors` appends to it."""
    return settings.workspace / DRY_RUN_FILE


def _secret(environ: Mapping[str, str], name: str) -> SecretStr:
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set; set it to the credential")
    secret = SecretStr(value)
    register_secret(secret)
    return secret


def _required(environ: Mapping[str, str], name: str, kind: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{kind} is partly configured: set {name} too (or unset the others)")
    return value


def _rate(environ: Mapping[str, str], kind: ChannelKind) -> TokenBucket | None:
    name = f"TUMMLER_{kind.value.upper()}_RATE"
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        rate = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of sends a second") from None
    return TokenBucket(rate, burst=max(1, int(rate)))


def _configured(settings: Settings) -> dict[str, str]:
    """The connector settings that are set, under their ``TUMMLER_*`` names (which every error
    names), secrets in clear for the connectors."""
    found: dict[str, str] = {}
    for name in _CONNECTOR_SETTINGS:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            found[f"TUMMLER_{name.upper()}"] = value
    return found


#: The settings :func:`build_connectors` reads.
_CONNECTOR_SETTINGS = tuple(
    name
    for name in Settings.model_fields
    if name.split("_")[0] in {"smtp", "webhook", "sms", "mastodon", "bluesky"}
    or name.endswith("_rate")
)


def build_connectors(
    settings: Settings,
    *,
    clock: Clock,
    dry_run: bool = False,
) -> dict[str, Connector]:
    """Connectors by channel kind, for :func:`tummler.app.outbox.run_outbox`.

    Parameters
    ----------
    settings
        The connectors' settings (``smtp_host``...) and the workspace (for the dry run's file).
    clock
        Dates messages and the dry run's lines.
    dry_run
        Route every kind to the file sink at :func:`dry_run_path`.

    Returns
    -------
    dict
        ``{kind: connector}`` for each configured kind; a kind that is not configured is absent,
        and its deliveries stay pending.

    Raises
    ------
    ConfigError
        When a connector is partly configured (the message names the missing variable) or a value
        is invalid.
    """
    if dry_run:
        sink = FileSinkConnector(dry_run_path(settings), clock=clock)
        return {kind.value: sink for kind in ChannelKind}
    env = _configured(settings)
    return {kind.value: build(env, clock) for kind, switch, build in _BUILDERS if env.get(switch)}


def _smtp(env: Mapping[str, str], clock: Clock) -> Connector:
    """The e-mail connector: host, port, sender, optional login and the TLS mode."""
    port_text = env.get("TUMMLER_SMTP_PORT", "587")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"TUMMLER_SMTP_PORT={port_text!r} is not a port number") from None
    tls = env.get("TUMMLER_SMTP_TLS", "starttls").strip().lower()
    if tls not in {"starttls", "implicit", "none"}:
        raise ConfigError(f"TUMMLER_SMTP_TLS={tls!r} is not one of starttls, implicit, none")
    username = env.get("TUMMLER_SMTP_USERNAME") or None
    return SmtpConnector(
        host=env["TUMMLER_SMTP_HOST"],
        port=port,
        sender=_required(env, "TUMMLER_SMTP_SENDER", "SMTP"),
        username=username,
        password=_secret(env, "TUMMLER_SMTP_PASSWORD") if username else None,
        starttls=tls == "starttls",
        implicit_tls=tls == "implicit",
        clock=clock,
        rate_limit=_rate(env, ChannelKind.EMAIL),
    )


def _webhook(env: Mapping[str, str], clock: Clock) -> Connector:
    """The webhook connector: a URL and the secret its requests are signed with."""
    return WebhookConnector(
        url=env["TUMMLER_WEBHOOK_URL"],
        secret=_secret(env, "TUMMLER_WEBHOOK_SECRET"),
        clock=clock,
        rate_limit=_rate(env, ChannelKind.WEBHOOK),
    )


def _sms(env: Mapping[str, str], clock: Clock) -> Connector:
    """The SMS gateway connector: its URL, token and sender."""
    return SmsConnector(
        url=env["TUMMLER_SMS_URL"],
        token=_secret(env, "TUMMLER_SMS_TOKEN"),
        sender=_required(env, "TUMMLER_SMS_SENDER", "SMS"),
        clock=clock,
        rate_limit=_rate(env, ChannelKind.SMS),
    )


def _mastodon(env: Mapping[str, str], clock: Clock) -> Connector:
    """The Mastodon connector: the instance's API and an access token."""
    return MastodonConnector(
        api_base_url=env["TUMMLER_MASTODON_URL"],
        access_token=_secret(env, "TUMMLER_MASTODON_TOKEN"),
        clock=clock,
        rate_limit=_rate(env, ChannelKind.MASTODON),
    )


def _bluesky(env: Mapping[str, str], clock: Clock) -> Connector:
    """The Bluesky connector: an identifier, an app password and the service."""
    return BlueskyConnector(
        identifier=env["TUMMLER_BLUESKY_IDENTIFIER"],
        app_password=_secret(env, "TUMMLER_BLUESKY_APP_PASSWORD"),
        service_url=env.get("TUMMLER_BLUESKY_SERVICE", "https://bsky.social"),
        clock=clock,
        rate_limit=_rate(env, ChannelKind.BLUESKY),
    )


#: Per kind, in the order they are built: the setting that enables it, and its builder.
_BUILDERS: tuple[tuple[ChannelKind, str, Callable[[Mapping[str, str], Clock], Connector]], ...] = (
    (ChannelKind.EMAIL, "TUMMLER_SMTP_HOST", _smtp),
    (ChannelKind.WEBHOOK, "TUMMLER_WEBHOOK_URL", _webhook),
    (ChannelKind.SMS, "TUMMLER_SMS_URL", _sms),
    (ChannelKind.MASTODON, "TUMMLER_MASTODON_URL", _mastodon),
    (ChannelKind.BLUESKY, "TUMMLER_BLUESKY_IDENTIFIER", _bluesky),
)
