"""Variants are templates: sandboxed Jinja2, filled with the contact's fields, strict about gaps.

A variant's ``subject``, ``headline`` and ``body`` are Jinja2 templates (``Hi {{ first_name }}``).
They are rendered in a :class:`jinja2.sandbox.SandboxedEnvironment` — a campaign file is written by
a marketer, not a programmer, and must not reach Python's internals through ``{{ x.__class__ }}`` —
with :class:`jinja2.StrictUndefined`, so that a field the contact lacks is an error, never an empty
string in a sent message. ``{{ first_name | default("there") }}`` is how a template says a field is
optional.

The fields a template can read (see :func:`contact_fields`): every contact attribute by its name
(``first_name``) and under ``attributes`` (``attributes.first_name``), the fields every contact has
(``external_id``, ``locale``, ``time_zone``, ``stage``), and ``unsubscribe_url`` when the message
has one. :func:`check_templates` runs at plan time over the planned contacts, so that a variant a
contact lacks a field for is never planned for that contact (and a template wrong in itself stops
the plan), rather than failing at send time; the outbox renders again at send time with the same
function (the contact may have changed since) and records a failure with the field's name if it
fails then.

Line endings come out as ``\n`` whatever the template file used (Jinja2 normalises them); the
connectors write the protocol's own (``\r\n`` on the wire for e-mail).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from tummler.core.errors import InputError

__all__ = [
    "TEMPLATE_FIELDS",
    "RenderedVariant",
    "TemplateProblem",
    "check_templates",
    "contact_fields",
    "missing_field",
    "render_template",
    "render_variant",
]

#: The parts of a variant that are templates, in the order they are rendered.
TEMPLATE_FIELDS: tuple[str, ...] = ("subject", "headline", "body")


@functools.cache
def _environment() -> SandboxedEnvironment:
    # No autoescape: bodies are plain text (SMS, posts, the text part of an e-mail); keep_trailing
    # newline so a body renders to exactly what the file holds.
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _environment().from_string(source)


@dataclass(frozen=True, slots=True)
class RenderedVariant:
    """A variant with its fields filled in: what a connector sends."""

    subject: str | None
    headline: str | None
    body: str


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """Why one template cannot be rendered for one contact.

    Attributes
    ----------
    template
        Which template: ``"<variant>.<field>"`` as given to :func:`check_templates`.
    contact
        The contact's external id (or ``"-"`` for a syntax error, which fails for everyone).
    reason
        What went wrong, e.g. ``'first_name' is undefined``.
    missing
        The name of the field the contact lacks (``first_name``), ``None`` when the problem is not a
        missing field: then the template itself is wrong and fails whoever it is rendered for.
    line
        The template's own line (1-based) of a syntax error, when Jinja2 knows it.
    """

    template: str
    contact: str
    reason: str
    missing: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.template} for contact {self.contact}: {self.reason}"


def contact_fields(
    *,
    external_id: str,
    attributes: Mapping[str, Any] | None,
    locale: str | None,
    time_zone: str | None,
    stage: str | None,
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    """The names a template can read for one contact.

    Attributes come first so that the fields every contact has (``external_id``...) win over an
    attribute of the same name: a template cannot be fooled about whom it is rendered for.
    """
    fields: dict[str, Any] = dict(attributes or {})
    fields["attributes"] = dict(attributes or {})
    fields |= {
        "external_id": external_id,
        "locale": locale,
        "time_zone": time_zone,
        "stage": stage,
    }
    if unsubscribe_url is not None:
        fields["unsubscribe_url"] = unsubscribe_url
    return fields


_UNDEFINED = (
    re.compile(r"^'([^']+)' is undefined"),
    re.compile(r"has no attribute '([^']+)'"),
)


def missing_field(reason: str) -> str:
    """The field name in a Jinja2 "undefined" message (``'first_name' is undefined`` → first_name).

    >>> missing_field("'dict object' has no attribute 'city'")
    'city'
    """
    for pattern in _UNDEFINED:
        found = pattern.search(reason)
        if found:
            return found.group(1)
    return reason


def render_template(source: str, fields: Mapping[str, Any], *, name: str = "template") -> str:
    """Render one template with ``fields``.

    Raises
    ------
    InputError
        When the template reads a field that is missing (or ``None`` where text is needed), has a
        syntax error, or tries something the sandbox forbids; the message names the template
        (``name``) and the field.

    Examples
    --------
    >>> render_template("Hi {{ first_name }}", {"first_name": "Ada"})
    'Hi Ada'
    >>> render_template('Hi {{ first_name | default("there") }}', {})
    'Hi there'
    """
    try:
        return str(_compiled(source).render(**fields))
    except UndefinedError as exc:
        raise InputError(
            f"{name}: {exc.message}; give every contact that field, or write "
            '{{ field | default("...") }} in the template',
            field=name,
        ) from None
    except SecurityError as exc:
        raise InputError(f"{name}: not allowed in a template: {exc}", field=name) from None
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InputError(f"{name}: template error{where}: {exc}", field=name) from None


def render_variant(
    *,
    subject: str | None,
    headline: str | None,
    body: str,
    fields: Mapping[str, Any],
    name: str = "variant",
) -> RenderedVariant:
    """Render a variant's three templates for one contact (``None`` parts stay ``None``).

    Raises
    ------
    InputError
        As :func:`render_template`, naming ``"<name>.<part>"``.
    """
    return RenderedVariant(
        subject=None
        if subject is None
        else render_template(subject, fields, name=f"{name}.subject"),
        headline=None
        if headline is None
        else render_template(headline, fields, name=f"{name}.headline"),
        body=render_template(body, fields, name=f"{name}.body"),
    )


def check_templates(
    templates: Mapping[str, str | None],
    contacts: Iterable[Mapping[str, Any]],
    *,
    limit: int = 20,
) -> list[TemplateProblem]:
    """Render every template for every contact and list what fails (at most ``limit`` problems).

    Meant for plan time: ``templates`` maps a name such as ``"email/a.subject"`` to its source,
    ``contacts`` yields :func:`contact_fields` dictionaries of the contacts planned to receive
    them. A syntax error is reported once, for contact ``"-"``, with its line in the template. An
    empty list means every planned message will render; a problem with ``missing`` set is a field
    that contact lacks, any other is a template that renders for no one.

    Examples
    --------
    >>> people = [{"external_id": "c1", "first_name": "Ada"}, {"external_id": "c2"}]
    >>> [str(p) for p in check_templates({"a.body": "Hi {{ first_name }}"}, people)]
    ["a.body for contact c2: 'first_name' is undefined"]
    """
    if limit < 1:
        raise InputError(f"limit must be at least 1, got {limit!r}", field="limit")
    problems: list[TemplateProblem] = []
    compiled: dict[str, Any] = {}
    for name, source in templates.items():
        if source is None:
            continue
        try:
            compiled[name] = _compiled(source)
        except TemplateSyntaxError as exc:
            problems.append(TemplateProblem(name, "-", str(exc.message or exc), line=exc.lineno))
        except TemplateError as exc:
            problems.append(TemplateProblem(name, "-", str(exc)))
    for fields in contacts:
        who = str(fields.get("external_id", "?"))
        for name, template in compiled.items():
            try:
                template.render(**fields)
            except UndefinedError as exc:
                reason = str(exc.message)
                problems.append(TemplateProblem(name, who, reason, missing=missing_field(reason)))
            except (SecurityError, TemplateError) as exc:
                problems.append(TemplateProblem(name, who, str(exc)))
            if len(problems) >= limit:
                return problems
    return problems
