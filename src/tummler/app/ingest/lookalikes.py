"""Columns that look like a field but are not read as one: ``timezone`` for ``time_zone``.

A contacts file's column that is not a field becomes an attribute, and another kind's is ignored,
so a field under another name is lost without a word. The import names such columns in its
summary (and, when a required field is missing, in its error), with the ``--map`` that reads them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tummler.app.ingest.schemas import KindSchema

__all__ = ["lookalike_columns", "lookalike_warning"]

#: Other names files use for a field, compared without case, spaces, dashes, dots or underscores
#: (so ``e-mail``, ``E_Mail`` and ``email`` are one name).
_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "customerid", "contactid", "clientid", "userid"),
    "time_zone": ("tz", "tzid", "zone", "timezonename", "ianatimezone", "olson"),
    "locale": ("language", "lang", "languagecode", "languagetag"),
    "stage": ("lifecyclestage", "lifecycle"),
    "email": ("mail", "emailaddress", "mailaddress"),
    "phone": (
        "phonenumber",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "cell",
        "cellphone",
        "telephone",
        "tel",
        "msisdn",
    ),
    "contact_external_id": ("contactid", "customerid", "externalid", "contact", "userid"),
    "at": ("timestamp", "time", "datetime", "date", "occurredat", "createdat", "ts", "when"),
    "type": ("eventtype", "event"),
    "status": ("consent", "consentstatus"),
    "value": ("amount", "revenue", "price"),
    "provider_event_id": ("eventid", "messageid"),
    "source_external_id": ("source", "from", "sourceid"),
    "target_external_id": ("target", "to", "targetid"),
    "author_handle": ("author", "handle"),
    "text": ("body", "content", "message"),
}
#: What goes wrong when a look-alike column is not read as its field.
_CONSEQUENCES = {
    "time_zone": " (until then, new contacts are in UTC and quiet hours fall at the wrong time)",
}


def _plain(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def lookalike_columns(schema: KindSchema, columns: Sequence[str]) -> list[tuple[str, str]]:
    """``(column, field)`` for each column that is not a field but looks like one that is absent.

    ``timezone`` looks like ``time_zone``, ``e-mail`` like ``email``, ``phone_number`` like
    ``phone``: a contact's such column would become an attribute, another kind's would be ignored.
    Columns named ``attributes.NAME`` are attributes on purpose and never look like a field.

    >>> from tummler.app.ingest.schemas import ImportKind, schema_for
    >>> lookalike_columns(schema_for(ImportKind.CONTACTS), ["external_id", "timezone", "city"])
    [('timezone', 'time_zone')]
    """
    absent = [name for name in schema.names if name not in columns]
    found: list[tuple[str, str]] = []
    for column in columns:
        if column in schema.names or column.startswith("attributes."):
            continue
        plain = _plain(column)
        for name in absent:
            if plain == _plain(name) or plain in _ALIASES.get(name, ()):
                found.append((column, name))
                break
    return found


def lookalike_warning(schema: KindSchema, column: str, field: str) -> str:
    """What to tell the user about a ``column`` that looks like ``field``."""
    fate = "imported as an attribute" if schema.extras_to_attributes else "ignored"
    keep = (
        f"; to keep it an attribute, --map attributes.{column}={column}"
        if schema.extras_to_attributes
        else ""
    )
    return (
        f"column {column!r} looks like the field {field} but is {fate}: to read it as {field}, "
        f"pass --map {field}={column}{_CONSEQUENCES.get(field, '')}{keep}"
    )
