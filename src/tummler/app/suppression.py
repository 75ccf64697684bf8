"""The suppression list: a forgotten person stays forgotten, whatever way their identifiers come back.

Forgetting a person (:mod:`tummler.app.privacy`) erases what the store held about them. Without a
trace, re-importing last month's CRM export, or a provider retrying an old webhook, would bring them
back with their address and a consent "granted" they withdrew. So forgetting writes each of their
identifiers — the external id, every ``channel:address`` identity, every handle they posted under —
to ``suppressions`` as a **keyed one-way digest**, and every way into the store asks this module
before it writes: imports (every kind), ``POST /v1/events``, provider callbacks, SMS replies and
unsubscribe links. A suppressed row is counted and reported as *suppressed*, never as an error: it
is the store keeping a promise, not bad input.

Why a keyed digest. The list must answer "is this identifier one of theirs?" and nothing else. A
plain SHA-256 of an e-mail address is the join key that advertising data sets use to match people
across companies; a digest keyed with the store's own random secret (``store_secrets``, made by
migration 0004, never in the settings so that rotating ``secret_key`` cannot silently empty the
list) matches nothing outside this store. Whoever holds both the store and its secret can still
test a guessed address — the list exists to be tested — but cannot read it, and no digest links to
the anonymous contact row the person left behind.

What is digested (:func:`external_id_key`, :func:`identity_key`): ``external_id:<id as given>`` and
``identity:<channel>:<address>``, the address normalized the way identities are stored (lower case;
a leading ``@`` dropped from social handles). Phone numbers are stored in E.164 already, so the
import's normalization makes ``+33 6 12 34 56 78`` and ``+33612345678`` one key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from tummler.core.errors import StoreError
from tummler.core.vocabulary import ChannelKind
from tummler.store.database import conflict_insert, one_of
from tummler.store.models import StoreSecret, Suppression

__all__ = [
    "SECRET_NAME",
    "Suppressions",
    "external_id_key",
    "identity_key",
    "suppress",
]

#: The ``store_secrets`` row whose value keys the digests.
SECRET_NAME = "suppression"
_SOCIAL = frozenset({ChannelKind.MASTODON.value, ChannelKind.BLUESKY.value})


def external_id_key(external_id: str) -> str:
    """The suppression key of an external id (exactly as given: ids are case-sensitive).

    >>> external_id_key("c-42")
    'external_id:c-42'
    """
    return f"external_id:{external_id}"


def identity_key(channel: str, address: str) -> str:
    """The suppression key of an address or handle on a channel, normalized as identities are.

    >>> identity_key("email", " Ana@Example.ORG ")
    'identity:email:ana@example.org'
    >>> identity_key("mastodon", "@ana@example.social")
    'identity:mastodon:ana@example.social'
    """
    channel = channel.strip().lower()
    normalized = address.strip().lower()
    if channel in _SOCIAL:
        normalized = normalized.lstrip("@")
    return f"identity:{channel}:{normalized}"


class Suppressions:
    """The suppression list as one transaction sees it: ask :meth:`suppressed` before writing.

    Load it once per transaction (:meth:`load`); with an empty list every question is answered at
    once, without hashing, so that a store that never forgot anyone imports at full speed.
    """

    def __init__(self, key: bytes | None) -> None:
        self._key = key

    @property
    def empty(self) -> bool:
        """Nobody was ever forgotten (then the key is not even read)."""
        return self._key is None

    @classmethod
    def load(cls, connection: Connection) -> Suppressions:
        """The list as ``connection`` sees it: one query when it is empty, two when it is not."""
        if connection.execute(select(Suppression.id).limit(1)).first() is None:
            return cls(None)
        return cls(_secret(connection, empty=False))

    def digest(self, key: str) -> str:
        """The keyed digest of one key (:func:`external_id_key`, :func:`identity_key`)."""
        assert self._key is not None, "an empty list has no digests to compare with"
        return hmac.new(self._key, key.encode("utf-8"), hashlib.sha256).hexdigest()

    def suppressed(self, connection: Connection, keys: Iterable[str]) -> set[str]:
        """The ``keys`` that belong to a forgotten person — one query, whatever their number."""
        if self.empty:
            return set()
        by_digest = {self.digest(key): key for key in set(keys)}
        if not by_digest:
            return set()
        table = Suppression.__table__
        found = connection.execute(
            select(table.c.digest).where(
                one_of(table.c.digest, sorted(by_digest), dialect=connection.dialect.name)
            )
        ).scalars()
        return {by_digest[digest] for digest in found}


def suppress(connection: Connection, keys: Mapping[str, str], *, now: datetime) -> int:
    """Add ``keys`` (key → ``external_id`` or ``identity``) to the list; returns how many were new."""
    if not keys:
        return 0
    empty = connection.execute(select(Suppression.id).limit(1)).first() is None
    suppressions = Suppressions(_secret(connection, empty=empty))
    rows = [
        {"digest": suppressions.digest(key), "kind": kind, "created_at": now}
        for key, kind in sorted(keys.items())
    ]
    statement = (
        conflict_insert(Suppression, dialect=connection.dialect.name)
        .on_conflict_do_nothing(index_elements=["digest"])
        .returning(Suppression.id)
    )
    return len(connection.execute(statement, rows).all())


def _secret(connection: Connection, *, empty: bool) -> bytes:
    """The digests' key; made here when the store has none yet and nobody is suppressed."""
    query = select(StoreSecret.value).where(StoreSecret.name == SECRET_NAME)
    value = connection.scalar(query)
    if value is None:
        if not empty:
            # A new key would make every digest in the list unrecognisable: forgotten people
            # would come back on the next import. Refuse instead of guessing.
            raise StoreError(
                "the suppression list's key is missing from store_secrets while the list holds "
                "digests: restore the store_secrets row from a backup of this store"
            )
        connection.execute(
            conflict_insert(StoreSecret, dialect=connection.dialect.name)
            .values(name=SECRET_NAME, value=secrets.token_hex(32), created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = connection.scalar(query)
    return bytes.fromhex(str(value))
