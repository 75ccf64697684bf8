"""One ``Settings`` object for the whole of tummler.

Values come, highest priority first, from keyword arguments, ``TUMMLER_*`` environment variables, the
workspace's ``tummler.toml`` and the defaults below. The workspace is the directory that
``tummler init`` made; it holds the settings file, the strategy and, by default, the SQLite database.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tummler.core.api_settings import API_SETTING_NAMES, ApiSettings, read_api_settings
from tummler.core.errors import ConfigError

__all__ = [
    "SETTINGS_FILE",
    "Environment",
    "Settings",
    "load_settings",
    "mask_url",
    "public_base_url",
]

SETTINGS_FILE = "tummler.toml"
_DEFAULT_SQLITE_NAME = "tummler.db"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def public_base_url(value: str, *, what: str = "public_url") -> str:
    """``value`` as the base of links people follow: an http(s) URL with a host, no trailing ``/``.

    >>> public_base_url(" https://brand.example/ ")
    'https://brand.example'

    Raises
    ------
    ValueError
        When ``value`` is not such a URL; the message calls it ``what``.
    """
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"{what} {value!r} must be an http(s) URL with a host, e.g. https://brand.example"
        )
    return value.strip().rstrip("/")


#: ``scheme://user:password@`` in a URL: what :func:`mask_url` hides when SQLAlchemy cannot parse it.
_USER_PASSWORD = re.compile(r"(?P<head>//[^/:@]*):[^/@]*@")


def mask_url(url: str) -> str:
    """``url`` with its password hidden: the one way tummler prints a database URL.

    >>> mask_url("postgresql+psycopg://brand:s3cret@db.example/tummler")
    'postgresql+psycopg://brand:***@db.example/tummler'
    >>> mask_url("sqlite:///tummler.db")
    'sqlite:///tummler.db'
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL SQLAlchemy reads: hide what looks like one
        return _USER_PASSWORD.sub(r"\g<head>:***@", url)


class Settings(BaseSettings):
    """tummler's settings.

    Build it with :func:`load_settings`, which finds the workspace and reads its settings file.
    """

    model_config = SettingsConfigDict(env_prefix="TUMMLER_", extra="forbid", validate_default=True)

    workspace: Path = Field(
        default_factory=Path.cwd,
        description="The workspace directory (settings file, strategy, SQLite database).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default: SQLite in the workspace.",
    )
    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="`production` refuses unsafe defaults (embedded secrets, missing API keys).",
    )
    log_level: str = Field(default="WARNING", description="Python logging level name.")
    data_dir: Path | None = Field(
        default=None,
        description="Where real public data sets live (benchmarks and optional tests).",
    )
    import_batch_size: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Rows committed per import batch."
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs unsubscribe links and webhook payloads."
    )
    seed: int | None = Field(default=None, description="Default seed for planning and demos.")
    public_url: str | None = Field(
        default=None,
        description="Where the HTTP app (`tummler serve`) is reachable from the internet, e.g. "
        "https://brand.example: e-mails' unsubscribe links point to it.",
    )

    # The channel connectors (``tummler send``): raw text, checked where the connectors are
    # built (:func:`tummler.app.connectors.build_connectors`), whose errors name the variable.
    smtp_host: str | None = Field(default=None, description="SMTP server: enables e-mail.")
    smtp_port: str | None = Field(default=None, description="SMTP port (587).")
    smtp_sender: str | None = Field(default=None, description="The From of e-mails.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_tls: str | None = Field(default=None, description="starttls (default), implicit, none.")
    webhook_url: str | None = Field(default=None, description="Webhook endpoint: enables it.")
    webhook_secret: SecretStr | None = Field(default=None, description="Signs webhook bodies.")
    sms_url: str | None = Field(default=None, description="SMS provider endpoint: enables SMS.")
    sms_token: SecretStr | None = Field(default=None, description="SMS provider token.")
    sms_sender: str | None = Field(default=None, description="The SMS sender id or number.")
    mastodon_url: str | None = Field(default=None, description="Mastodon instance: enables it.")
    mastodon_token: SecretStr | None = Field(default=None, description="Mastodon access token.")
    bluesky_identifier: str | None = Field(default=None, description="Bluesky handle: enables it.")
    bluesky_app_password: SecretStr | None = Field(
        default=None, description="Bluesky app password."
    )
    bluesky_service: str | None = Field(default=None, description="atproto service URL.")
    email_rate: str | None = Field(default=None, description="E-mails a second (a token bucket).")
    webhook_rate: str | None = Field(default=None, description="Webhook calls a second.")
    sms_rate: str | None = Field(default=None, description="SMS a second.")
    mastodon_rate: str | None = Field(default=None, description="Mastodon posts a second.")
    bluesky_rate: str | None = Field(default=None, description="Bluesky posts a second.")

    # The HTTP API (``tummler serve``): kept as given, checked by :meth:`api` when the API is
    # built, so that a malformed one stops the API and no other command.
    api_keys: object = Field(
        default=None,
        repr=False,
        description="Each API key's SHA-256 hex digest → its role: JSON text, or a table in "
        "tummler.toml.",
    )
    api_max_body_bytes: object = Field(
        default=None, description="The largest request body, in bytes (2 MiB)."
    )
    signature_tolerance_s: object = Field(
        default=None, description="How old a signed provider callback may be, in seconds (300)."
    )
    sendgrid_verification_key: SecretStr | None = Field(
        default=None, description="Verifies SendGrid's signed event webhook (base64 public key)."
    )
    mailgun_signing_key: SecretStr | None = Field(
        default=None, description="Verifies Mailgun's webhooks."
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Verifies Twilio's status callbacks."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(
                f"unknown log level {value!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        return level

    @field_validator("public_url")
    @classmethod
    def _public_url_with_host(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return public_base_url(value)

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION and self.secret_key is None:
            raise ValueError(
                "TUMMLER_SECRET_KEY must be set in production (it signs unsubscribe links)"
            )
        return self

    def api(self) -> ApiSettings:
        """The HTTP API's settings, checked now: what ``tummler serve`` and the app factory use.

        Raises
        ------
        ConfigError
            ``invalid API settings: ...`` when one of them holds a value the API cannot use; in
            production, when no API key is configured (every event route would answer 401).
        """
        given = {field: getattr(self, name) for field, name in API_SETTING_NAMES.items()}
        return self.refuse_unsafe_api(read_api_settings(given))

    def refuse_unsafe_api(self, api: ApiSettings) -> ApiSettings:
        """``api``, unless it is unsafe to serve in this environment.

        Raises
        ------
        ConfigError
            In production, when ``api`` has no API key.
        """
        if self.environment is Environment.PRODUCTION and not api.api_keys:
            raise ConfigError(
                "no API key configured: set TUMMLER_API_KEYS to a JSON object of "
                '{"<sha256 hex of a key>": "<role>"} (see tummler.api.hash_api_key)'
            )
        return api

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the workspace's SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.default_sqlite_path.resolve()}"

    @property
    def masked_database_url(self) -> str:
        """:attr:`resolved_database_url` with its password hidden, for anything printed."""
        return mask_url(self.resolved_database_url)

    @property
    def default_sqlite_path(self) -> Path:
        """Where the embedded store lives when no ``database_url`` is set."""
        return self.workspace / _DEFAULT_SQLITE_NAME

    @property
    def settings_file(self) -> Path:
        return self.workspace / SETTINGS_FILE

    @property
    def strategy_file(self) -> Path:
        return self.workspace / "strategy.yaml"

    @property
    def campaigns_dir(self) -> Path:
        return self.workspace / "campaigns"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        workspace = _workspace_from(init_settings)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=workspace / SETTINGS_FILE)
        return (init_settings, env_settings, toml)


def _workspace_from(init_settings: PydanticBaseSettingsSource) -> Path:
    given: Any = init_settings().get("workspace")
    if given is None:
        given = os.environ.get("TUMMLER_WORKSPACE") or Path.cwd()
    return Path(given)


def load_settings(workspace: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the settings for ``workspace`` (default: ``$TUMMLER_WORKSPACE`` or the current directory).

    Raises
    ------
    ConfigError
        When the settings file or an environment variable holds a value tummler cannot use.
    """
    if workspace is not None:
        overrides["workspace"] = Path(workspace)
    try:
        return Settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError and tomllib's decode error
        raise ConfigError(f"invalid settings: {exc}") from exc
