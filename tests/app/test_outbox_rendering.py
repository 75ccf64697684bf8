"""Templates, unsubscribe links and connector configuration: what the outbox builds messages with."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import Engine, select

from tummler.app.connectors import build_connectors, dry_run_path
from tummler.app.outbox import SendRules, Unsubscribe, idempotency_key
from tummler.app.rendering import (
    check_templates,
    contact_fields,
    render_template,
    render_variant,
)
from tummler.app.strategy import read_workspace_strategy, write_example_strategy
from tummler.app.unsubscribe import (
    DEVELOPMENT_KEY,
    UNSUBSCRIBE_SOURCE,
    honour_unsubscribe,
    make_unsubscribe_token,
    read_unsubscribe_token,
    unsubscribe_key,
    unsubscribe_url,
)
from tummler.core.clock import FrozenClock
from tummler.core.errors import ConfigError, InputError, NotFoundError
from tummler.core.settings import Environment, Settings, load_settings
from tummler.core.vocabulary import ChannelKind
from tummler.deliver import FileSinkConnector, SmtpConnector, WebhookConnector, mask_secrets
from tummler.store import models
from tummler.store.database import session_scope

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KEY = SecretStr("a-long-random-test-key")

# ------------------------------------------------------------------------------------ rendering


def test_a_variant_renders_with_the_contacts_fields() -> None:
    fields = contact_fields(
        external_id="c-1",
        attributes={"first_name": "Ada", "city": "Lyon"},
        locale="fr-FR",
        time_zone="Europe/Paris",
        stage="customer",
        unsubscribe_url="https://brand.test/unsubscribe/x",
    )
    rendered = render_variant(
        subject="{{ first_name }}, news from {{ attributes.city }}",
        headline=None,
        body="Hi {{ first_name }} ({{ stage }}). Leave: {{ unsubscribe_url }}\n",
        fields=fields,
    )
    assert rendered.subject == "Ada, news from Lyon"
    assert rendered.headline is None
    assert rendered.body == "Hi Ada (customer). Leave: https://brand.test/unsubscribe/x\n"


def test_fields_every_contact_has_win_over_attributes_of_the_same_name() -> None:
    fields = contact_fields(
        external_id="real",
        attributes={"external_id": "fake"},
        locale=None,
        time_zone=None,
        stage=None,
    )
    assert render_template("{{ external_id }}", fields) == "real"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hi {{ nickname }}", "'nickname' is undefined"),
        ("Hi {{ attributes.nickname }}", "has no attribute 'nickname'"),
        ("{{ first_name.__class__.__mro__ }}", "not allowed in a template"),
        ("{% for %}", "template error"),
        ("{{ first_name ", "template error"),
    ],
)
def test_a_template_that_cannot_render_is_an_error_naming_it(template: str, message: str) -> None:
    fields = contact_fields(
        external_id="c", attributes={"first_name": "Ada"}, locale=None, time_zone=None, stage=None
    )
    with pytest.raises(InputError, match=message) as raised:
        render_template(template, fields, name="spring/email/a.body")
    assert raised.value.field == "spring/email/a.body"


def test_default_makes_a_field_optional() -> None:
    assert render_template('Hi {{ first_name | default("there") }}', {}) == "Hi there"


def test_check_templates_finds_the_contacts_a_template_fails_for() -> None:
    people = [
        contact_fields(
            external_id=f"c{i}", attributes=attrs, locale=None, time_zone=None, stage=None
        )
        for i, attrs in enumerate([{"first_name": "Ada"}, {}, {"first_name": "Bo"}, {}])
    ]
    problems = check_templates(
        {
            "email/a.subject": "Hi {{ first_name }}",
            "email/a.body": "Fixed text",
            "sms/b.body": None,
        },
        people,
    )
    assert [(p.template, p.contact) for p in problems] == [
        ("email/a.subject", "c1"),
        ("email/a.subject", "c3"),
    ]
    assert "undefined" in problems[0].reason
    broken = check_templates({"x": "{{ oops"}, people)
    assert [(p.template, p.contact) for p in broken] == [("x", "-")]
    assert len(check_templates({"y": "{{ nope }}"}, people, limit=2)) == 2


@given(st.text(alphabet=st.characters(blacklist_characters="{}%#\r"), max_size=80))
def test_text_without_template_syntax_renders_to_itself(text: str) -> None:
    assert render_template(text, {}) == text


# ---------------------------------------------------------------------------------- unsubscribe


@given(st.integers(min_value=0, max_value=2**62), st.sampled_from([k.value for k in ChannelKind]))
def test_a_token_reads_back_as_what_it_was_made_for(contact_id: int, channel: str) -> None:
    token = make_unsubscribe_token(contact_id, channel, key=KEY)
    assert read_unsubscribe_token(token, key=KEY) == (contact_id, channel)


def test_forged_or_damaged_tokens_are_refused() -> None:
    token = make_unsubscribe_token(7, "email", key=KEY)
    contact, channel, signature = token.split(".")
    forged = [
        f"8.{channel}.{signature}",  # another person
        f"{contact}.sms.{signature}",  # another channel
        token[:-1],  # truncated
        make_unsubscribe_token(7, "email", key=SecretStr("another-key")),
        "",
        "7.email",
    ]
    for bad in forged:
        with pytest.raises(InputError, match="not valid"):
            read_unsubscribe_token(bad, key=KEY)


def test_the_unsubscribe_url_points_at_the_app() -> None:
    assert (
        unsubscribe_url("https://brand.test/", "1.email.x")
        == "https://brand.test/unsubscribe/1.email.x"
    )
    with pytest.raises(ConfigError, match="must be an http"):
        unsubscribe_url("brand.test", "1.email.x")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("brand.example", "must be an http(s) URL with a host"),
        ("ftp://brand.example", "must be an http(s) URL with a host"),
        ("https://", "must be an http(s) URL with a host"),
    ],
)
def test_a_public_url_no_link_can_be_made_from_is_refused_at_the_door(
    tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"public_url {url!r} {message}")):
        load_settings(tmp_path, public_url=url)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Unsubscribe(url, KEY)


def test_the_public_url_setting_is_read_from_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "tummler.toml").write_text('public_url = "https://brand.example/"\n')
    assert load_settings(tmp_path).public_url == "https://brand.example"
    assert load_settings(tmp_path, public_url="").public_url is None


def test_the_development_key_is_refused_outside_development() -> None:
    assert unsubscribe_key(Settings(environment=Environment.DEVELOPMENT)) == DEVELOPMENT_KEY
    assert unsubscribe_key(Settings(secret_key=KEY)) == KEY
    production = Settings.model_construct(environment=Environment.PRODUCTION, secret_key=None)
    with pytest.raises(ConfigError, match="TUMMLER_SECRET_KEY"):
        unsubscribe_key(production)


def test_honouring_a_link_revokes_consent_once(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact = models.Contact(external_id="c", attributes={}, created_at=NOW, updated_at=NOW)
        session.add(contact)
        session.flush()
        contact_id = contact.id
    token = make_unsubscribe_token(contact_id, "email", key=KEY)
    clock = FrozenClock(NOW)
    first = honour_unsubscribe(engine, token, key=KEY, clock=clock)
    second = honour_unsubscribe(engine, token, key=KEY, clock=clock.advance(timedelta(hours=1)))
    assert first.recorded
    assert not second.recorded
    with engine.connect() as connection:
        events = connection.execute(
            select(models.ConsentEvent.status, models.ConsentEvent.source, models.ConsentEvent.at)
        ).all()
    assert [tuple(e) for e in events] == [("revoked", UNSUBSCRIBE_SOURCE, NOW)]
    with pytest.raises(NotFoundError, match="no longer in the store"):
        honour_unsubscribe(
            engine, make_unsubscribe_token(999, "email", key=KEY), key=KEY, clock=clock
        )


# ----------------------------------------------------------------------------------- connectors


def configured(workspace: Path, environ: dict[str, str]) -> Settings:
    """Settings as the ``TUMMLER_*`` variables in ``environ`` would give them."""
    fields = {name.removeprefix("TUMMLER_").lower(): value for name, value in environ.items()}
    return Settings.model_validate({"workspace": workspace, **fields})


def test_connectors_are_built_from_the_environment_and_secrets_are_masked(tmp_path: Path) -> None:
    environ = {
        "TUMMLER_SMTP_HOST": "smtp.example.org",
        "TUMMLER_SMTP_SENDER": "News <news@brand.example>",
        "TUMMLER_SMTP_USERNAME": "brand",
        "TUMMLER_SMTP_PASSWORD": "smtp-pw-9931-secret",
        "TUMMLER_WEBHOOK_URL": "https://hooks.example.org/in",
        "TUMMLER_WEBHOOK_SECRET": "hook-secret-77120",
        "TUMMLER_WEBHOOK_RATE": "5",
    }
    built = build_connectors(configured(tmp_path, environ), clock=FrozenClock(NOW))
    assert set(built) == {"email", "webhook"}
    assert isinstance(built["email"], SmtpConnector)
    assert built["email"].starttls
    assert isinstance(built["webhook"], WebhookConnector)
    assert built["webhook"].rate_limit is not None
    assert built["webhook"].rate_limit.rate == 5.0
    for connector in built.values():
        assert "secret" not in repr(connector)
    assert (
        mask_secrets("pw smtp-pw-9931-secret and hook-secret-77120") == "pw ******** and ********"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TUMMLER_SMTP_HOST": "h"}, "set TUMMLER_SMTP_SENDER"),
        (
            {
                "TUMMLER_SMTP_HOST": "h",
                "TUMMLER_SMTP_SENDER": "a@b.example",
                "TUMMLER_SMTP_PORT": "x",
            },
            "TUMMLER_SMTP_PORT='x' is not a port",
        ),
        (
            {
                "TUMMLER_SMTP_HOST": "h",
                "TUMMLER_SMTP_SENDER": "a@b.example",
                "TUMMLER_SMTP_TLS": "maybe",
            },
            "TUMMLER_SMTP_TLS='maybe'",
        ),
        (
            {
                "TUMMLER_SMTP_HOST": "h",
                "TUMMLER_SMTP_SENDER": "a@b.example",
                "TUMMLER_SMTP_USERNAME": "u",
            },
            "TUMMLER_SMTP_PASSWORD is not set",
        ),
        ({"TUMMLER_WEBHOOK_URL": "https://h.example"}, "TUMMLER_WEBHOOK_SECRET is not set"),
        (
            {"TUMMLER_SMS_URL": "https://h.example", "TUMMLER_SMS_TOKEN": "tok-123"},
            "set TUMMLER_SMS_SENDER",
        ),
        (
            {
                "TUMMLER_WEBHOOK_URL": "https://h.example",
                "TUMMLER_WEBHOOK_SECRET": "s-1234",
                "TUMMLER_WEBHOOK_RATE": "fast",
            },
            "TUMMLER_WEBHOOK_RATE='fast' is not a number",
        ),
    ],
)
def test_a_partly_configured_connector_names_what_is_missing(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_connectors(configured(tmp_path, environ), clock=FrozenClock(NOW))


def test_connectors_read_the_settings_file_like_every_other_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tummler.toml").write_text(
        'webhook_url = "https://hooks.example.org/in"\nwebhook_rate = "2"\n', encoding="utf-8"
    )
    monkeypatch.setenv("TUMMLER_WEBHOOK_SECRET", "hook-secret-from-env-5521")
    built = build_connectors(load_settings(tmp_path), clock=FrozenClock(NOW))
    assert set(built) == {"webhook"}
    assert built["webhook"].rate_limit is not None
    assert built["webhook"].rate_limit.rate == 2.0
    assert "hook-secret-from-env-5521" not in repr(built["webhook"])


def test_a_dry_run_sends_every_kind_to_the_file_sink(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path)
    built = build_connectors(settings, clock=FrozenClock(NOW), dry_run=True)
    assert set(built) == {k.value for k in ChannelKind}
    sink = built["email"]
    assert isinstance(sink, FileSinkConnector)
    assert sink.path == dry_run_path(settings)
    assert build_connectors(settings, clock=FrozenClock(NOW)) == {}


# ---------------------------------------------------------------------------------------- rules


def test_send_rules_come_from_the_strategy(tmp_path: Path) -> None:
    write_example_strategy(tmp_path)
    loaded = read_workspace_strategy(tmp_path)
    assert loaded.strategy is not None
    rules = SendRules.from_strategy(loaded.strategy.strategy)
    email = rules.rule("email")
    assert email is not None
    assert email.kind is ChannelKind.EMAIL
    assert email.quiet_hours == (time(21), time(8))
    assert email.frequency_cap == (2, timedelta(days=7))
    assert (rules.fatigue_window, rules.fatigue_cap) == (timedelta(days=7), 3)
    assert rules.critical_overrides == {"lever_budget", "fatigue"}
    assert rules.rule("webhook") is not None  # a bare kind gets a default rule
    assert rules.rule("no-such-channel") is None


def test_the_idempotency_key_names_campaign_contact_and_channel() -> None:
    assert idempotency_key("spring", 3, "email") == "spring:3:email"
