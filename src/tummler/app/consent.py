"""One consent rule for planning and sending: the latest consent event across a channel's names.

A consent event is recorded under a channel's id (``newsletter``) or under its kind (``email``):
an import file or a signup form may know only the kind, an unsubscribe link names the channel. For
one contact and one channel, the event that decides is the **latest** (by ``at``, then by row id)
among the events recorded under either name, up to "now". A grant under the kind followed by a
revocation under the id is a revocation; no event at all is no consent.

The planner (:mod:`tummler.app.planning`, many contacts at once, :func:`latest_granted`), the
outbox (one delivery at a time) and ``tummler person show`` (both through :func:`current_consent`)
use this module, so that a contact is never planned for a channel and then skipped at send time for
consent, and what a person is shown is what the engine acts on. A property test holds the bulk and
the one-contact rule equal.

Revocations from what people do. An ``unsubscribed`` or ``complained`` event, whichever way it
arrives (``POST /v1/events``, a provider callback, an SMS ``STOP``, an imported events file), appends
a ``revoked`` consent event in the same transaction that stores it (:func:`revocations`,
:func:`write_revocations`): for the channel the event names, for every channel when it names none,
and for a complaint, for every channel when the strategy says ``consent: {on_complaint: all}``. The
revocation is dated at the event's time and its source says which event made it
(``unsubscribed:sendgrid``), so that storing the same event again (a retried webhook, a re-imported
file) writes nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, select

from tummler.core.vocabulary import ChannelKind, ConsentStatus, EventType
from tummler.store import models
from tummler.strategy import ComplaintScope

__all__ = [
    "REVOKING_EVENTS",
    "ConsentState",
    "Revocation",
    "consent_log",
    "consent_names",
    "current_consent",
    "latest_granted",
    "revocations",
    "write_revocations",
]

#: The events that withdraw consent on their own.
REVOKING_EVENTS = frozenset({EventType.UNSUBSCRIBED, EventType.COMPLAINED})
#: Every channel kind: a revocation recorded under all of them stops every channel, whatever its id.
_EVERY_KIND = tuple(kind.value for kind in ChannelKind)


def consent_names(channel_id: str, kind: str) -> tuple[str, ...]:
    """The names consent for a channel may be recorded under: its id, then its kind.

    >>> consent_names("newsletter", "email")
    ('newsletter', 'email')
    >>> consent_names("email", "email")
    ('email',)
    """
    return (channel_id,) if channel_id == kind else (channel_id, kind)


#: The latest consent event of one contact among a channel's names, up to now; ties on ``at`` go
#: to the later row, as in :func:`latest_granted`.
_LATEST = (
    select(
        models.ConsentEvent.status,
        models.ConsentEvent.source,
        models.ConsentEvent.at,
        models.ConsentEvent.channel,
    )
    .where(
        models.ConsentEvent.contact_id == bindparam("contact_id"),
        models.ConsentEvent.channel.in_(bindparam("names", expanding=True)),
        models.ConsentEvent.at <= bindparam("now", type_=models.ConsentEvent.at.type),
    )
    .order_by(models.ConsentEvent.at.desc(), models.ConsentEvent.id.desc())
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class ConsentState:
    """One contact's consent for one channel as planning and the outbox see it now.

    ``status`` is ``None`` when no consent was ever recorded (which is no consent); ``name`` is the
    channel name the deciding event was recorded under (the channel's id or its kind).
    """

    status: str | None
    at: datetime | None = None
    source: str | None = None
    name: str | None = None

    @property
    def granted(self) -> bool:
        return self.status == ConsentStatus.GRANTED.value


def current_consent(
    connection: Connection, *, contact_id: int, names: Sequence[str], now: datetime
) -> ConsentState:
    """The consent state of one contact for the channel whose names are ``names``, at ``now``.

    The single-contact form of the rule; :func:`latest_granted` is the bulk form planning uses.
    """
    row = connection.execute(
        _LATEST, {"contact_id": contact_id, "names": list(names), "now": now}
    ).first()
    if row is None:
        return ConsentState(None)
    return ConsentState(row.status, row.at, row.source, row.channel)


def consent_log(
    connection: Connection, *, now: datetime, contacts: tuple[int, int] | None = None
) -> list[tuple[int, str, str]]:
    """``(contact id, channel name, status)`` of every consent event up to ``now``, in the order
    they happened (by ``at``, then row id): what :func:`latest_granted` reads.

    ``contacts``: only the ids from the first to the second, both included (a chunk of a plan).
    """
    event = models.ConsentEvent
    query = select(event.contact_id, event.channel, event.status).where(event.at <= now)
    if contacts is not None:
        query = query.where(event.contact_id >= contacts[0], event.contact_id <= contacts[1])
    return [
        (int(contact_id), str(channel), str(status))
        for contact_id, channel, status in connection.execute(query.order_by(event.at, event.id))
    ]


def latest_granted(
    events: Iterable[tuple[int, str, str]],
    names: Sequence[Sequence[str]],
    position: Mapping[int, int],
    size: int,
) -> npt.NDArray[np.bool_]:
    """Whether each contact's latest consent event for each channel is a grant.

    Parameters
    ----------
    events
        ``(contact_id, channel name, status)`` **in the order they happened** (by ``at``, then by
        row id), up to now; a later event overrides an earlier one of any of the channel's names.
    names
        Per channel, the names its consent may be recorded under (:func:`consent_names`).
    position
        Contact id → row in the result; events of other contacts are ignored.
    size
        Rows of the result.

    Returns
    -------
    numpy.ndarray
        ``(size, len(names))`` booleans: ``True`` where the latest event is ``granted``.

    Examples
    --------
    >>> events = [(7, "email", "granted"), (7, "newsletter", "revoked"), (8, "email", "granted")]
    >>> latest_granted(events, [("newsletter", "email")], {7: 0, 8: 1}, 2).ravel().tolist()
    [False, True]
    """
    channels_of: dict[str, list[int]] = {}
    for c, channel_names in enumerate(names):
        for name in channel_names:
            channels_of.setdefault(name, []).append(c)
    granted = np.zeros((size, len(names)), bool)
    yes = ConsentStatus.GRANTED.value
    for contact_id, channel, status in events:
        p = position.get(contact_id)
        columns = channels_of.get(channel)
        if p is None or columns is None:
            continue
        granted[p, columns] = status == yes
    return granted


@dataclass(frozen=True, slots=True)
class Revocation:
    """A ``revoked`` consent event to append: for whom, under which channel name, why, since when."""

    contact_id: int
    channel: str
    source: str
    at: datetime


def revocations(
    contact_id: int,
    event_type: str,
    channel: str | None,
    *,
    source: str,
    at: datetime,
    on_complaint: ComplaintScope = ComplaintScope.CHANNEL,
) -> list[Revocation]:
    """The revocations one stored event implies (none for an event that is not a revocation).

    Parameters
    ----------
    contact_id
        Whose event it is.
    event_type
        The event's type; only ``unsubscribed`` and ``complained`` revoke.
    channel
        The channel name the event names (a kind such as ``email`` stops every channel of that
        kind); ``None``: the person withdrew from everything, so every channel is revoked.
    source
        Where the event came from (``sendgrid``, ``api``, ``import``...).
    at
        The event's time: the revocation holds from then on.
    on_complaint
        The strategy's ``consent.on_complaint``: ``channel`` or ``all``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> at = datetime(2026, 3, 1, tzinfo=UTC)
    >>> [r.channel for r in revocations(7, "unsubscribed", "email", source="mailgun", at=at)]
    ['email']
    >>> revocations(7, "complained", "email", source="api", at=at, on_complaint="all")[-1].source
    'complained:api'
    >>> revocations(7, "clicked", "email", source="api", at=at)
    []
    """
    if event_type not in REVOKING_EVENTS:
        return []
    everywhere = channel is None or (
        event_type == EventType.COMPLAINED and ComplaintScope(on_complaint) is ComplaintScope.ALL
    )
    names = _EVERY_KIND if everywhere else (str(channel),)
    why = f"{event_type}:{source}"[:255]
    return [Revocation(contact_id, name, why, at) for name in names]


def write_revocations(
    connection: Connection, revoked: Iterable[Revocation], *, now: datetime
) -> int:
    """Append ``revoked`` on ``connection`` (inside the caller's transaction); returns how many
    were new. The same revocation twice (contact, channel, source and time) is written once."""
    # here, not at the top: the import service, which tummler.app.ingest loads, imports this module
    from tummler.app.ingest.loader import write_consent

    return write_consent(
        connection,
        [(r.contact_id, r.channel, ConsentStatus.REVOKED.value, r.source, r.at) for r in revoked],
        now=now,
    )
