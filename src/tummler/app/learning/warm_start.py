"""Warm start: an objective's first learned policy starts from the brand's legacy sends.

A brand that switches to tummler brings months of sends from its old way of sending (blasts to
everyone at one time), imported as provider events: a ``sent`` or ``delivered`` event with a
channel and no decision. When an objective's policy has learned nothing yet (the decisions being
learned from were made by planning's prior), :func:`warm_start` first fits the policy's posterior
on those sends, so that the first learned version knows what the history shows:

- **the sends**: the most recent :data:`MAX_LEGACY_SENDS` send events on the campaign's channels
  (by id, else by kind, the outbox's rule) from before the prior was recorded, of contacts who were
  not forgotten and whose latest consent event on no channel is a revocation (a person who
  withdrew is not learned from). A provider reports one message as ``sent`` then ``delivered``: a
  send event within :data:`SAME_MESSAGE` of the previous one of the same contact and channel is
  the same message;
- **the contexts** as they were before each send: planning's own replay
  (:func:`~tummler.app.planning.planned_contexts`, over :func:`~tummler.app.contacts.contacts_as_of`)
  as of the start of the send's hour, through the prior's featurizer, with the message's attributes
  unknown (0);
- **the action** taken: the channel and the local hour of week of the send (the contact's time
  zone); the variant is unknown, so the action's variant features are 0 and the variant weights
  keep their prior;
- **the reward**: the objective's KPI event (a click) on the same channel within the objective's
  attribution window after the send, claimed by the latest such send, as attribution claims
  events for decisions.

And the *informed prior*: before the fit, each channel's intercept starts at the KPI rate pooled
over those sends (:func:`~tummler.learn.warm_start.informed_intercepts`) instead of even odds. The
fit is :func:`~tummler.learn.warm_start.fit_logistic_posterior`. Memory is bounded: sends are
capped, contexts are read one hour's sends and :data:`CONTEXT_CHUNK` contacts at a time. With no
history, nothing changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, select

from tummler.app.consent import consent_log
from tummler.app.policies import CampaignPolicy
from tummler.core.clock import ensure_utc
from tummler.core.errors import StrategyError
from tummler.core.vocabulary import ConsentStatus, EventType
from tummler.decide import HOURS_PER_WEEK, ActionSet, LogisticThompson, build_action_set
from tummler.learn.warm_start import fit_logistic_posterior, informed_intercepts
from tummler.store import models
from tummler.strategy import Campaign, Strategy

__all__ = ["CONTEXT_CHUNK", "MAX_LEGACY_SENDS", "SAME_MESSAGE", "WarmStart", "warm_start"]

#: The most recent legacy sends a warm start reads (they bound its memory: about 0.5 KB a send).
MAX_LEGACY_SENDS = 500_000
#: Contacts whose contexts are rebuilt at once.
CONTEXT_CHUNK = 5_000
#: A send event this close after the previous one of the same contact and channel reports the same
#: message (``sent``, then ``delivered``).
SAME_MESSAGE = timedelta(days=1)
_SEND_EVENTS = (EventType.SENT.value, EventType.DELIVERED.value)
_HOUR = 3_600
#: How a KPI event's rate reads in the warm start's note.
_RATE_NAMES = {
    "clicked": "click",
    "converted": "conversion",
    "replied": "reply",
    "visited": "visit",
}


@dataclass(frozen=True)
class WarmStart:
    """What a warm start learned from: how many legacy sends, over which days, and the rate of
    the objective's KPI ``event`` pooled over them."""

    sends: int
    first: datetime
    last: datetime
    rate: float
    event: str = "clicked"

    def note(self) -> str:
        """The line ``tummler learn`` prints."""
        rate = _RATE_NAMES.get(self.event, self.event)
        return (
            f"warm start: {self.sends:,} legacy sends from {self.first:%Y-%m-%d} to "
            f"{self.last:%Y-%m-%d}, pooled {rate} rate {self.rate:.2%}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the version's ``learned_from``."""
        return {
            "legacy_sends": self.sends,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "pooled_rate": self.rate,
            "event": self.event,
        }


@dataclass(frozen=True, eq=False)
class _Sends:
    """Legacy sends in time order: contact id, channel index, UTC seconds, and the reward."""

    contact: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    at: npt.NDArray[np.int64]
    reward: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.contact.size)

    def kept(self, keep: npt.NDArray[np.bool_]) -> _Sends:
        return _Sends(self.contact[keep], self.channel[keep], self.at[keep], self.reward[keep])


def warm_start(
    engine: Engine,
    current: CampaignPolicy,
    *,
    strategy: Strategy,
    campaign: Campaign,
    actions: ActionSet,
    message: Mapping[str, float],
    objective: str,
    before: datetime,
) -> tuple[CampaignPolicy, WarmStart | None]:
    """``current`` (planning's prior) fitted on the store's legacy sends, and what it learned from.

    Parameters
    ----------
    engine
        The store.
    current
        The prior, with the featurizer its plans read contexts by; a policy other than logistic
        Thompson sampling, or one without a featurizer, comes back unchanged.
    strategy, campaign, actions, message
        A campaign the prior planned, its action set and its message's attributes: the levers
        and contexts to read the legacy sends as (the old messages' attributes are unknown: 0).
    objective
        The objective whose KPI event and attribution window make the reward.
    before
        When the prior was recorded: only sends before it are legacy.

    Returns
    -------
    tuple
        The warm-started policy (``current`` itself when there was nothing to learn from) and the
        :class:`WarmStart` (``None`` then).
    """
    policy, featurizer = current.policy, current.featurizer
    if not isinstance(policy, LogisticThompson) or featurizer is None:
        return current, None
    goal = next(o for o in strategy.objectives if o.id == objective)
    channel_of = _channel_indices(strategy, actions)
    with engine.connect() as connection:
        sends = _read_sends(connection, channel_of, before=ensure_utc(before))
        if not len(sends):
            return current, None
        sends = _rewarded(connection, sends, channel_of, goal.kpi.event, goal.attribution_window)
        try:
            x, sends, hour = _contexts(connection, strategy, campaign, current, sends)
        except StrategyError:  # the campaign cannot be set up at the history's times
            return current, None
    if not len(sends):
        return current, None
    phi = _action_features(actions, message, sends.channel, hour)
    if phi.shape[1] != policy.n_action_features:
        return current, None
    rate = float(sends.reward.mean())
    prior = informed_intercepts(
        policy.m,
        n_action_features=policy.n_action_features,
        n_channels=actions.n_channels,
        rate=rate,
    )
    posterior = fit_logistic_posterior(x, phi, sends.reward, prior, policy.q)
    policy.m, policy.q = posterior.mean, posterior.precision
    policy.version += 1
    first, last = _utc(int(sends.at.min())), _utc(int(sends.at.max()))
    done = WarmStart(len(sends), first, last, rate, str(goal.kpi.event))
    return replace(current, policy=policy), done


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _channel_indices(strategy: Strategy, actions: ActionSet) -> dict[str, int]:
    """Raw channel name → index into ``actions``: each channel's id, and its kind where no
    channel has that id (the outbox's rule)."""
    kinds = {c.id: c.kind.value for c in strategy.channels}
    named = {name: c for c, name in enumerate(actions.channel_names)}
    by_kind: dict[str, int] = {}
    for name, c in named.items():
        by_kind.setdefault(kinds.get(name, name), c)
    return {**by_kind, **named}


def _read_sends(
    connection: Connection, channel_of: Mapping[str, int], *, before: datetime
) -> _Sends:
    """The most recent legacy sends on the campaign's channels before ``before``, one row per
    message, of contacts neither forgotten nor revoked."""
    event, contact = models.Event, models.Contact
    rows = connection.execute(
        select(event.contact_id, event.channel, event.at)
        .join(contact, contact.id == event.contact_id)
        .where(
            event.type.in_(_SEND_EVENTS),
            event.decision_id.is_(None),
            event.channel.in_(list(channel_of)),
            event.at < before,
            contact.forgotten_at.is_(None),
        )
        .order_by(event.at.desc(), event.id.desc())
        .limit(MAX_LEGACY_SENDS)
    ).all()
    if not rows:
        return _Sends(*(np.zeros(0, np.int64),) * 3, np.zeros(0))
    ids = np.array([r.contact_id for r in rows], np.int64)
    channel = np.array([channel_of[r.channel] for r in rows], np.int64)
    at = np.array([int(ensure_utc(r.at).timestamp()) for r in rows], np.int64)
    order = np.lexsort((at, channel, ids))
    ids, channel, at = ids[order], channel[order], at[order]
    same = np.zeros(ids.size, bool)  # another report of the previous row's message
    same[1:] = (
        (ids[1:] == ids[:-1])
        & (channel[1:] == channel[:-1])
        & (at[1:] - at[:-1] <= SAME_MESSAGE.total_seconds())
    )
    keep = ~same & ~np.isin(ids, list(_revoked(connection, ids, before)))
    ids, channel, at = ids[keep], channel[keep], at[keep]
    order = np.argsort(at, kind="stable")
    return _Sends(ids[order], channel[order], at[order], np.zeros(order.size))


def _revoked(connection: Connection, ids: npt.NDArray[np.int64], now: datetime) -> set[int]:
    """The contacts of ``ids`` whose latest consent event on some channel is a revocation."""
    revoked: set[int] = set()
    for lo, hi in _id_ranges(np.unique(ids)):
        latest: dict[tuple[int, str], str] = {}
        for contact_id, channel, status in consent_log(connection, now=now, contacts=(lo, hi)):
            latest[(contact_id, channel)] = status
        revoked |= {c for (c, _), s in latest.items() if s == ConsentStatus.REVOKED.value}
    return revoked


def _id_ranges(ids: npt.NDArray[np.int64]) -> Iterator[tuple[int, int]]:
    """``(first, last)`` of each run of :data:`CONTEXT_CHUNK` sorted ids."""
    for start in range(0, ids.size, CONTEXT_CHUNK):
        part = ids[start : start + CONTEXT_CHUNK]
        yield int(part[0]), int(part[-1])


def _rewarded(
    connection: Connection,
    sends: _Sends,
    channel_of: Mapping[str, int],
    kpi: str,
    window: timedelta,
) -> _Sends:
    """``sends`` with reward 1 where a KPI event no decision claimed followed on the same channel
    within ``window``; the latest send before the event claims it."""
    event = models.Event
    lo, hi = _utc(int(sends.at.min())), _utc(int(sends.at.max())) + window
    claims: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
    for p, key in enumerate(zip(sends.contact.tolist(), sends.channel.tolist(), strict=True)):
        claims[key].append(p)  # in time order: sends are sorted by time
    reward = np.zeros(len(sends))
    for contact_id, channel, at in connection.execute(
        select(event.contact_id, event.channel, event.at).where(
            event.type == kpi,
            event.decision_id.is_(None),
            event.channel.in_(list(channel_of)),
            event.at >= lo,
            event.at < hi,
        )
    ):
        candidates = claims.get((int(contact_id), channel_of[channel]), [])
        when = ensure_utc(at).timestamp()
        latest = [p for p in candidates if sends.at[p] <= when]
        if latest and when < sends.at[latest[-1]] + window.total_seconds():
            reward[latest[-1]] = 1.0
    return replace(sends, reward=reward)


def _contexts(
    connection: Connection,
    strategy: Strategy,
    campaign: Campaign,
    current: CampaignPolicy,
    sends: _Sends,
) -> tuple[npt.NDArray[np.float32], _Sends, npt.NDArray[np.int64]]:
    """Each send's context as of the start of its hour, the sends whose contact could be read,
    and each one's local hour of week."""
    from tummler.app.contacts import contacts_as_of
    from tummler.app.planning import planned_contexts

    assert current.featurizer is not None
    message = dict.fromkeys(current.featurizer.message_attributes, 0.0)  # the old message: unknown
    d_x = len(current.featurizer.feature_names())
    x = np.zeros((len(sends), d_x), np.float32)
    hour = np.full(len(sends), -1, np.int64)
    bucket = sends.at // _HOUR
    for b in np.unique(bucket):
        at = _utc(int(b) * _HOUR)
        rows_of_hour = np.flatnonzero(bucket == b)
        for lo, hi in _id_ranges(np.unique(sends.contact[rows_of_hour])):
            who = sends.contact[rows_of_hour]
            part = rows_of_hour[(who >= lo) & (who <= hi)]
            people = contacts_as_of(connection, set(sends.contact[part].tolist()), at)
            if not people:
                continue
            seen = planned_contexts(
                connection, strategy, campaign, contacts=people, campaign_id=None, at=at
            )
            where = {int(c): i for i, c in enumerate(seen.ids.tolist())}
            zone = {p.id: p.time_zone for p in people}
            found = part[[int(c) in where for c in sends.contact[part].tolist()]]
            rows = [where[int(c)] for c in sends.contact[found].tolist()]
            x[found] = current.featurizer.transform(seen.data, message)[rows]
            hour[found] = [
                _hour_of_week(int(sends.at[p]), zone[int(sends.contact[p])]) for p in found
            ]
    kept = hour >= 0
    return x[kept], sends.kept(kept), hour[kept]


def _hour_of_week(seconds: int, time_zone: str | None) -> int:
    """The local hour of week (Monday 00:00 is 0) of a UTC time in ``time_zone`` (UTC when
    unknown), as slot hours count them."""
    try:
        zone: Any = ZoneInfo(time_zone) if time_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = _utc(seconds).astimezone(zone)
    return local.weekday() * 24 + local.hour


def _action_features(
    actions: ActionSet,
    message: Mapping[str, float],
    channel: npt.NDArray[np.int64],
    hour: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """``(n, d_a)`` the features of each legacy send's action: its channel and local hour of week
    as the campaign's action set encodes them; message attributes and variant unknown (0)."""
    variants = {
        name: [v for v in actions.variant_names[c] if v]
        for c, name in enumerate(actions.channel_names)
    }
    hourly = build_action_set(
        actions.channel_names,
        np.arange(HOURS_PER_WEEK),
        variants,
        message_attributes=dict.fromkeys(message, 0.0),
    )
    return np.asarray(
        hourly.channel_features[channel] + hourly.slot_features[hour % HOURS_PER_WEEK], np.float64
    )
