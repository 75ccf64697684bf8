"""The fields a variant's Jinja-style template reads, and what a rendering's length is at least."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tummler.strategy._expression import CONTACT_FIELDS
from tummler.strategy._models import Strategy

__all__ = ["template_fields"]

_FIELD = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True, slots=True)
class _TemplateField:
    name: str
    offset: int


def template_fields(template: str) -> tuple[list[_TemplateField], list[str]]:
    """The fields a Jinja-style template reads (``{{ first_name | default("there") }}`` reads
    ``first_name``), and problems with its syntax."""
    problems: list[str] = []
    fields: list[_TemplateField] = []
    for match in _FIELD.finditer(template):
        expression = match.group(1).split("|", 1)[0].strip()
        if not _FIELD_NAME.match(expression):
            problems.append(
                f"{{{{{match.group(1)}}}}} is not a field name like {{{{ first_name }}}}"
            )
            continue
        fields.append(_TemplateField(expression, match.start()))
    remainder = _FIELD.sub("", template)
    if "{{" in remainder or "}}" in remainder:
        problems.append("a '{{' without its '}}' (or the other way round)")
    return fields, problems


def _rendered_length(template: str) -> int:
    """The length without its fields: a lower bound of every rendering (a field may be empty)."""
    return len(_FIELD.sub("", template))


def _known_template_fields(strategy: Strategy) -> set[str]:
    """The fields a template may read: a contact's own and the strategy's declared attributes."""
    known = set(CONTACT_FIELDS)
    for name in strategy.attributes:
        known |= {name, f"attributes.{name}"}
    return known
