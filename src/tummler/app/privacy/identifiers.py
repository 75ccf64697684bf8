"""One person's identifiers: gathered from the store, found and redacted in text and JSON.

Identifiers are matched case-insensitively: exactly (a JSON string equal to one) and, for those of
at least :data:`MIN_SUBSTRING_LENGTH` characters, inside longer text too. A distinctive attribute
value is matched exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from tummler.store.models import Contact, Mention

__all__ = ["MIN_SUBSTRING_LENGTH", "REDACTED", "PersonMatcher", "mentions_of", "person_handles"]

#: What replaces an identifier inside text that is kept.
REDACTED = "[forgotten]"
#: Shorter identifiers are only matched exactly, never inside longer text (``"42"`` is everywhere).
MIN_SUBSTRING_LENGTH = 4


def person_handles(session: Session, contact: Contact, addresses: Iterable[str]) -> set[str]:
    """The person's addresses and the author handles of the mentions linked to them, lower-cased."""
    handles = {address.lower() for address in addresses}
    handles |= {
        handle.lower()
        for handle in session.scalars(
            select(Mention.author_handle).where(Mention.contact_id == contact.id).distinct()
        )
        if handle
    }
    return handles


def mentions_of(contact_id: int, handles: set[str]) -> Select[tuple[Mention]]:
    """Mentions linked to the contact, or written under one of their handles (``@`` or not)."""
    forms = {form for handle in handles for form in (handle, handle.lstrip("@"), f"@{handle}")}
    condition = Mention.contact_id == contact_id
    if forms:
        condition = or_(condition, func.lower(Mention.author_handle).in_(sorted(forms)))
    return select(Mention).where(condition)


@dataclass(frozen=True, slots=True)
class PersonMatcher:
    """Finds and redacts one person's identifiers in strings and JSON documents."""

    #: Lower-cased values matched exactly (a whole string).
    exact: frozenset[str]
    #: Lower-cased identifiers also matched inside longer text, longest first.
    needles: tuple[str, ...]
    #: The needles as one case-insensitive pattern; ``None`` when there are none.
    pattern: re.Pattern[str] | None
    #: The lower-cased identifiers alone (external id, addresses, handles): what names the person,
    #: unlike an attribute value another person may share ("Berlin").
    identifiers: frozenset[str] = frozenset()

    @classmethod
    def for_person(
        cls,
        contact: Contact,
        addresses: Iterable[str],
        handles: Iterable[str],
        past_attributes: Iterable[Mapping[str, Any]] = (),
    ) -> PersonMatcher:
        strong = {contact.external_id, *addresses, *handles}
        strong |= {handle.lstrip("@") for handle in handles}
        strong = {value.lower() for value in strong if value}
        attribute_values = {
            value.lower()
            for document in (contact.attributes or {}, *past_attributes)
            for value in (document or {}).values()
            if isinstance(value, str) and len(value) >= MIN_SUBSTRING_LENGTH
        }
        needles = sorted(
            (value for value in strong if len(value) >= MIN_SUBSTRING_LENGTH),
            key=lambda value: (-len(value), value),
        )
        pattern = (
            re.compile("|".join(re.escape(needle) for needle in needles), re.IGNORECASE)
            if needles
            else None
        )
        return cls(
            exact=frozenset(strong | attribute_values),
            needles=tuple(needles),
            pattern=pattern,
            identifiers=frozenset(strong),
        )

    def identifiers_only(self) -> PersonMatcher:
        """The same matcher without the attribute values: for records that may be anyone's (a
        file's rows), where "Berlin" in a cell says nothing about whose row it is."""
        return PersonMatcher(self.identifiers, self.needles, self.pattern, self.identifiers)

    def redact_text(self, text: str) -> str:
        """``text`` with every identifier replaced; wholly when it equals an exact value."""
        if text.lower() in self.exact:
            return REDACTED
        return text if self.pattern is None else self.pattern.sub(REDACTED, text)

    def redact(self, document: Any) -> Any:
        """A copy of a JSON document with every identifier replaced by :data:`REDACTED`."""
        if isinstance(document, str):
            return self.redact_text(document)
        if isinstance(document, dict):
            return {self.redact_text(str(k)): self.redact(v) for k, v in document.items()}
        if isinstance(document, list):
            return [self.redact(item) for item in document]
        return document

    def matches(self, document: Any) -> bool:
        """Whether a string or JSON document holds any of the identifiers."""
        return bool(self.redact(document) != document)
