"""Finding a person: by external id, or by an identity written ``channel:address``."""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tummler.app.suppression import Suppressions, external_id_key, identity_key
from tummler.core.errors import NotFoundError
from tummler.core.vocabulary import ChannelKind
from tummler.store.models import ChannelIdentity, Contact

__all__ = ["contact_subject", "find_contact", "identities_of"]


def contact_subject(contact_id: int) -> str:
    """The audit subject for a contact: its internal id, which identifies no one outside the store."""
    return f"contact:{contact_id}"


def find_contact(session: Session, *, person: str, for_update: bool = False) -> Contact:
    """The contact ``person`` names: an external id, or ``channel:address`` for an identity.

    A ``channel:`` prefix that names a known channel looks the address up among identities first; when
    no identity matches, the whole text is tried as an external id (external ids may contain colons).

    Raises
    ------
    NotFoundError
        When nobody matches; the message says which forms are accepted.
    """
    channel, _, address = person.partition(":")
    query = select(Contact)
    if for_update:
        query = query.with_for_update()
    if address and channel.lower() in {kind.value for kind in ChannelKind}:
        candidates = _address_forms(channel.lower(), address)
        found = session.scalars(
            query.join(ChannelIdentity, ChannelIdentity.contact_id == Contact.id)
            .where(ChannelIdentity.channel == channel.lower())
            .where(func.lower(ChannelIdentity.address).in_(candidates))
            .order_by(Contact.id)
        ).first()
        if found is not None:
            return found
    contact = session.scalars(query.where(Contact.external_id == person)).one_or_none()
    if contact is None:
        keys = [external_id_key(person)]
        if address and channel.lower() in {kind.value for kind in ChannelKind}:
            keys += [
                identity_key(channel, form) for form in _address_forms(channel.lower(), address)
            ]
        connection = session.connection()
        if Suppressions.load(connection).suppressed(connection, keys):
            raise NotFoundError(
                f"{person!r} belongs to a person who was forgotten: it is on the suppression "
                "list, so imports, the API and provider callbacks refuse it, and nothing else is "
                "held about it"
            )
        raise NotFoundError(
            f"no contact with external id or identity {person!r}: give an external id, or "
            "CHANNEL:ADDRESS such as email:ana@example.org or sms:+33612345678 "
            "(a forgotten person is found only by their forgotten-… token)"
        )
    return contact


def identities_of(session: Session, contact_id: int) -> Sequence[ChannelIdentity]:
    """The contact's channel identities, oldest first: what both seeing and forgetting a person
    start from (the addresses that name them)."""
    return session.scalars(
        select(ChannelIdentity)
        .where(ChannelIdentity.contact_id == contact_id)
        .order_by(ChannelIdentity.id)
    ).all()


def _address_forms(channel: str, address: str) -> list[str]:
    """The lower-cased forms an address may be stored under on ``channel``."""
    address = address.strip()
    forms = {address.lower()}
    if channel == ChannelKind.SMS.value:
        try:
            number = phonenumbers.parse(address, None)
        except phonenumbers.NumberParseException:
            pass
        else:
            forms.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if channel in {ChannelKind.MASTODON.value, ChannelKind.BLUESKY.value}:
        bare = address.lower().lstrip("@")
        forms |= {bare, f"@{bare}"}
    return sorted(forms)
