"""One consent rule for planning and sending: the latest consent event across a channel's names.

A consent event is recorded under a channel's id (``newsletter``) or under its kind (``email``):
an import file or a signup form may know only the kind, an unsubscribe link names the channel. For
one contact and one channel, the event that decides is the **latest** (by ``at``, then by row id)
among the events recorded under either name, up to "now". A grant under the kind followed by a
revocation under the id is a revocation; no event at all is no consent.

The planner (:mod:`tummler.app.planning`, many contacts at once, :func:`latest_granted`) and the
outbox (one delivery at a time, :func:`latest_consent_statement`) use this module, so that a
contact is never planned for a channel and then skipped at send time for consent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, bindparam, select

from tummler.core.vocabulary import ConsentStatus
from tummler.store import models

__all__ = ["consent_names", "latest_consent_statement", "latest_granted"]


def consent_names(channel_id: str, kind: str) -> tuple[str, ...]:
    """The names consent for a channel may be recorded under: its id, then its kind.

    >>> consent_names("newsletter", "email")
    ('newsletter', 'email')
    >>> consent_names("email", "email")
    ('email',)
    """
    return (channel_id,) if channel_id == kind else (channel_id, kind)


def latest_consent_statement() -> Select[Any]:
    """The latest consent event (``status``, ``source``) of one contact for one channel.

    Bind ``contact_id``, ``names`` (:func:`consent_names`) and ``now``; no row means no consent
    was ever recorded. Ties on ``at`` go to the later row, as in :func:`latest_granted`.
    """
    return (
        select(models.ConsentEvent.status, models.ConsentEvent.source)
        .where(
            models.ConsentEvent.contact_id == bindparam("contact_id"),
            models.ConsentEvent.channel.in_(bindparam("names", expanding=True)),
            models.ConsentEvent.at <= bindparam("now", type_=models.ConsentEvent.at.type),
        )
        .order_by(models.ConsentEvent.at.desc(), models.ConsentEvent.id.desc())
        .limit(1)
    )


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
