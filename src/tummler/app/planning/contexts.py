"""The chunked contact-context reader: what planning reads of its audience, chunk by chunk.

Contacts are read in chunks of ids (never an ``IN`` list), filtered with the audience expression
first (:func:`tummler.app.audience.in_audience`, which also reads their identities and consent),
then, for the contacts kept: sends already planned or made in the fatigue and frequency-cap windows,
engagement history over 7, 30 and 90 days, mentions and social degree, and each contact's time zone.
Each chunk becomes context data, an eligibility mask and the field shape of its contacts; the
chunks together are the planned :class:`_Audience`.

**Fatigue.** A contact's sends are the decisions of *other* campaigns with a channel, not held out,
whose ``send_at`` falls between the start of the window before now and the end of this plan's
horizon (planned sends count: they will be sent), leaving out those whose delivery failed or was
skipped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, func, select

from tummler.app.audience import (
    ENGAGEMENT_EVENTS,
    ContactReach,
    contact_chunks,
    in_audience,
    read_reach,
)
from tummler.app.consent import consent_names, latest_granted
from tummler.app.planning.setup import _STAGES, HISTORY_WINDOWS_DAYS, _Features, _Setup
from tummler.app.planning.slots import _utc_offset_minutes, _with_slots, _ZoneSlots
from tummler.app.rendering import contact_fields
from tummler.core.clock import ensure_utc
from tummler.core.vocabulary import DeliveryStatus
from tummler.decide import HISTORY_SIGNALS, ContextData, Eligibility, compute_eligibility
from tummler.store import models
from tummler.strategy import Expression, Strategy

#: Called as ``progress(phase, done, total)``; phases ``read`` (contacts) and ``write`` (decisions).
ProgressCallback = Callable[[str, int, int], None]

_FAILED_DELIVERY = (
    DeliveryStatus.FAILED.value,
    DeliveryStatus.DEAD.value,
    DeliveryStatus.SKIPPED.value,
)


@dataclass
class _Chunk:
    """One chunk of the audience, already filtered by the audience expression."""

    ids: npt.NDArray[np.int64]
    zone: npt.NDArray[np.int64]  # index into :class:`_ZoneSlots`
    stage: npt.NDArray[np.int64]
    data: ContextData
    eligibility: Eligibility
    shape: npt.NDArray[np.int64]  # the contact's field shape (:class:`_FieldShapes`)


@dataclass
class _FieldShapes:
    """Contacts grouped by the *shape* of their template fields: which attributes they have, the
    type of each, and which of ``locale``/``time_zone``/``stage`` are missing.

    Whether a template renders depends on that shape (a ``StrictUndefined`` gap is a missing
    name, ``attributes.x`` a missing key), so rendering one representative of every shape checks
    every contact — a handful of renders instead of one per contact and variant.
    """

    index: dict[tuple[Any, ...], int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def of(self, row: Any) -> int:
        attributes = row.attributes or {}
        key = (
            tuple(sorted((k, type(v).__name__) for k, v in attributes.items())),
            row.locale is None,
            row.time_zone is None,
            row.stage is None,
        )
        shape = self.index.get(key)
        if shape is None:
            shape = self.index[key] = len(self.examples)
            self.examples.append(
                contact_fields(
                    external_id=str(row.external_id),
                    attributes=attributes,
                    locale=row.locale,
                    time_zone=row.time_zone,
                    stage=row.stage,
                )
            )
        return shape


def _seconds(values: Iterable[datetime]) -> npt.NDArray[np.float64]:
    return np.fromiter((ensure_utc(v).timestamp() for v in values), dtype=np.float64)


@dataclass(frozen=True)
class _Span:
    """A chunk's contact ids: the range its queries read, and each id's row in the chunk."""

    lo: int
    hi: int
    size: int
    position: dict[int, int]

    @staticmethod
    def of(ids: npt.NDArray[np.int64]) -> _Span:
        return _Span(
            int(ids[0]), int(ids[-1]), int(ids.size), {int(i): p for p, i in enumerate(ids)}
        )

    def between(self, column: Any) -> Any:
        """The query condition: ``column`` within the chunk's range of ids."""
        return and_(column >= self.lo, column <= self.hi)


def _read_chunk(
    connection: Connection,
    setup: _Setup,
    rows: Sequence[Any],
    *,
    now: datetime,
    campaign_id: int | None,
    zones: dict[str, float | None],
    shapes: _FieldShapes,
    slots: _ZoneSlots | None = None,
    reach: ContactReach | None = None,
) -> _Chunk:
    """Everything planning reads for ``rows``; ``reach``: their identities and consent, when the
    audience filter read them already."""
    ids = np.array([r.id for r in rows], np.int64)
    span = _Span.of(ids)
    if reach is None:
        reach = read_reach(connection, rows, now=now, position=span.position)
    slots = slots if slots is not None else _ZoneSlots(setup)
    # the offset at the horizon's start places past activity in the day; slots use the zone's rules
    offsets = np.array(
        [_utc_offset_minutes(r.time_zone, setup.start, zones) for r in rows], np.float64
    )
    zone = np.array([slots.index(r.time_zone) for r in rows], np.int64)
    stage = np.array([_STAGES.index(r.stage) if r.stage in _STAGES else 0 for r in rows], np.int64)
    shape = np.array([shapes.of(row) for row in rows], np.int64)
    has_identity, consent = _reachability(setup, reach, span)
    sends_total, sends_channel = _window_sends(
        connection, setup, span, now=now, campaign_id=campaign_id
    )
    eligibility = compute_eligibility(
        setup.actions,
        has_identity=has_identity,
        consent=consent,
        stage=stage,
        sends_in_window=sends_total,
        channel_sends=sends_channel,
        rules=setup.eligibility_rules,
    )
    eligibility = _with_slots(eligibility, setup, slots.table[zone])
    data = _context_data(connection, setup, rows, span, stage=stage, offsets=offsets, now=now)
    return _Chunk(ids=ids, zone=zone, stage=stage, data=data, eligibility=eligibility, shape=shape)


def _reachability(
    setup: _Setup, reach: ContactReach, span: _Span
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """``(n, n_channels)`` identity on each planned channel, and granted consent (or none needed).

    The outbox's rule: a channel is known by its id and its kind, and the latest consent event
    across both names decides.
    """
    has_identity = np.zeros((span.size, len(setup.channels)), bool)
    consent = latest_granted(
        reach.consent_events,
        [consent_names(channel.id, channel.kind.value) for channel in setup.channels],
        span.position,
        span.size,
    )
    for c, channel in enumerate(setup.channels):
        for name in {channel.id, channel.kind.value}:
            if name in reach.identities:
                has_identity[:, c] |= reach.identities[name]
        if not channel.consent_required:
            consent[:, c] = True
    return has_identity, consent


def _window_sends(
    connection: Connection,
    setup: _Setup,
    span: _Span,
    *,
    now: datetime,
    campaign_id: int | None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per contact, sends in the fatigue window (all channels) and, per channel, in its
    frequency-cap window: other campaigns' levers, planned or sent, not failed."""
    n_ch = len(setup.channels)
    sends_total = np.zeros(span.size, np.int64)
    sends_channel = np.zeros((span.size, n_ch), np.int64)
    windows = [w for w in (setup.fatigue_window, *setup.frequency_windows) if w is not None]
    if not windows:
        return sends_total, sends_channel
    lookup = setup.lookup()
    failed = (
        select(models.Delivery.decision_id)
        .where(models.Delivery.status.in_(_FAILED_DELIVERY))
        .scalar_subquery()
    )
    query = select(
        models.Decision.contact_id, models.Decision.channel, models.Decision.send_at
    ).where(
        span.between(models.Decision.contact_id),
        models.Decision.channel.is_not(None),
        models.Decision.holdout.is_(False),
        models.Decision.send_at >= now - max(windows),
        models.Decision.send_at < setup.end,
        models.Decision.id.not_in(failed),
    )
    if campaign_id is not None:
        query = query.where(models.Decision.campaign_id != campaign_id)
    for contact_id, channel, send_at in connection.execute(query):
        p = span.position.get(contact_id)
        if p is None or send_at is None:
            continue
        at = ensure_utc(send_at)
        if setup.fatigue_window is not None and at >= now - setup.fatigue_window:
            sends_total[p] += 1
        index = lookup.get(channel)
        window = setup.frequency_windows[index] if index is not None else None
        if index is not None and window is not None and at >= now - window:
            sends_channel[p, index] += 1
    return sends_total, sends_channel


def _context_data(
    connection: Connection,
    setup: _Setup,
    rows: Sequence[Any],
    span: _Span,
    *,
    stage: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.float64],
    now: datetime,
) -> ContextData:
    """The context features' inputs: the strategy's attributes, engagement history, social."""
    categorical, numeric = _attribute_columns(setup.strategy, rows)
    history, recency, activity = _history(connection, setup, span, offsets=offsets, now=now)
    mentions, sentiment, degree = _social(connection, span)
    return ContextData(
        stage=stage,
        categorical=categorical,
        numeric=numeric,
        history=history,
        recency_days=recency,
        activity_hours=activity,
        mentions=mentions,
        sentiment=sentiment,
        degree=degree,
    )


def _attribute_columns(
    strategy: Strategy, rows: Sequence[Any]
) -> tuple[dict[str, npt.NDArray[np.object_]], dict[str, npt.NDArray[np.float64]]]:
    """The strategy's attributes of ``rows``: text for ``string`` ones, numbers for the rest."""
    size = len(rows)
    attributes: defaultdict[str, list[Any]] = defaultdict(lambda: [None] * size)
    for i, row in enumerate(rows):
        for name, value in (row.attributes or {}).items():
            attributes[name][i] = value
    categorical: dict[str, npt.NDArray[np.object_]] = {}
    numeric: dict[str, npt.NDArray[np.float64]] = {}
    for name, spec in strategy.attributes.items():
        values = attributes.get(name, [None] * size)
        if spec.type == "string":
            text = np.empty(size, dtype=object)
            text[:] = ["" if v is None else str(v) for v in values]
            categorical[name] = text
        else:
            numeric[name] = np.array([_number(v) for v in values], np.float64)
    return categorical, numeric


def _history(
    connection: Connection,
    setup: _Setup,
    span: _Span,
    *,
    offsets: npt.NDArray[np.float64],
    now: datetime,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Engagement history: ``(n, n_ch, n_windows, n_signals)`` event counts per channel and
    window, ``(n, n_ch)`` days since the last engagement, ``(n, 24)`` engagements per local hour."""
    n_ch = len(setup.channels)
    history = np.zeros((span.size, n_ch, len(HISTORY_WINDOWS_DAYS), len(HISTORY_SIGNALS)))
    recency = np.full((span.size, n_ch), np.inf)
    activity = np.zeros((span.size, 24))
    since = now - timedelta(days=max(HISTORY_WINDOWS_DAYS))
    events = connection.execute(
        select(
            models.Event.contact_id, models.Event.channel, models.Event.type, models.Event.at
        ).where(
            span.between(models.Event.contact_id), models.Event.at >= since, models.Event.at <= now
        )
    ).all()
    if not events:
        return history, recency, activity
    now_s = now.timestamp()
    lookup = setup.lookup()
    where = np.array([span.position.get(e.contact_id, -1) for e in events], np.int64)
    channel_index = np.array([lookup.get(e.channel or "", -1) for e in events], np.int64)
    signal_of = {name: i for i, name in enumerate(HISTORY_SIGNALS)}
    signal = np.array([signal_of.get(e.type, -1) for e in events], np.int64)
    age_days = (now_s - _seconds(e.at for e in events)) / 86_400
    known = where >= 0
    per_channel = known & (channel_index >= 0) & (signal >= 0)
    for w, days in enumerate(HISTORY_WINDOWS_DAYS):
        inside = per_channel & (age_days <= days)
        window_index = np.full(int(inside.sum()), w, np.int64)
        np.add.at(
            history, (where[inside], channel_index[inside], window_index, signal[inside]), 1.0
        )
    engaging = np.isin([e.type for e in events], [e.value for e in ENGAGEMENT_EVENTS])
    rec = per_channel & engaging
    np.minimum.at(recency, (where[rec], channel_index[rec]), age_days[rec])
    act = known & engaging
    local_hour = np.floor(
        ((now_s - age_days[act] * 86_400) / 3600 + offsets[where[act]] / 60) % 24
    ).astype(np.int64)
    np.add.at(activity, (where[act], np.minimum(local_hour, 23)), 1.0)
    return history, recency, activity


def _social(
    connection: Connection, span: _Span
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per contact: mentions, their mean sentiment (``nan``: none), and social degree."""
    mentions = np.zeros(span.size)
    sentiment = np.full(span.size, np.nan)
    for contact_id, count, mean in connection.execute(
        select(
            models.Mention.contact_id,
            func.count(models.Mention.id),
            func.avg(models.Mention.sentiment),
        )
        .where(span.between(models.Mention.contact_id))
        .group_by(models.Mention.contact_id)
    ):
        p = span.position.get(contact_id)
        if p is not None:
            mentions[p] = count
            sentiment[p] = np.nan if mean is None else float(mean)
    degree = np.zeros(span.size)
    for end in (models.SocialEdge.source_contact_id, models.SocialEdge.target_contact_id):
        for contact_id, count in connection.execute(
            select(end, func.count()).where(span.between(end)).group_by(end)
        ):
            p = span.position.get(contact_id)
            if p is not None:
                degree[p] += count
    return mentions, sentiment, degree


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return math.nan


@dataclass(frozen=True)
class _PreviousPlan:
    """The campaign's row id in the store (``None``: never stored) and the contacts whose
    decisions already have a delivery: kept, not planned again."""

    campaign_id: int | None
    kept: set[int] = field(default_factory=set)


def _previous_plan(connection: Connection, key: str) -> _PreviousPlan:
    """What the store holds of campaign ``key``'s previous plan."""
    campaign_id = connection.scalar(select(models.Campaign.id).where(models.Campaign.key == key))
    if campaign_id is None:
        return _PreviousPlan(None)
    kept = set(
        connection.scalars(
            select(models.Decision.contact_id)
            .join(models.Delivery, models.Delivery.decision_id == models.Decision.id)
            .where(models.Decision.campaign_id == campaign_id)
            .distinct()
        )
    )
    return _PreviousPlan(int(campaign_id), kept)


@dataclass(frozen=True, eq=False)
class _Audience:
    """The planned audience, every chunk together, in contact id order.

    Attributes
    ----------
    ids, zone, stage
        ``(n,)`` contact ids, time-zone index (into ``slots``), stage index.
    eligibility
        The eligibility mask of every contact.
    x
        ``(n, n_features)`` the context features.
    shape
        ``(n,)`` each contact's field shape (into ``shapes``).
    unknown_zones
        Time zones that :mod:`zoneinfo` does not know, planned as UTC.
    """

    ids: npt.NDArray[np.int64]
    zone: npt.NDArray[np.int64]
    stage: npt.NDArray[np.int64]
    eligibility: Eligibility
    x: npt.NDArray[np.float32]
    shape: npt.NDArray[np.int64]
    slots: _ZoneSlots
    shapes: _FieldShapes
    unknown_zones: tuple[str, ...] = ()


def _read_audience(
    connection: Connection,
    setup: _Setup,
    *,
    now: datetime,
    previous: _PreviousPlan,
    audience: Expression | None,
    features: _Features,
    chunk_size: int,
    progress: ProgressCallback | None,
) -> _Audience:
    """Read the campaign's audience chunk by chunk, leaving out the contacts whose decisions of
    the ``previous`` plan are kept."""
    zones: dict[str, float | None] = {}
    slots = _ZoneSlots(setup)
    shapes = _FieldShapes()
    chunks: list[_Chunk] = []
    x_parts: list[npt.NDArray[np.float32]] = []
    total = _contact_count(connection)
    done = 0
    for rows in contact_chunks(connection, chunk_size):
        done += len(rows)
        kept = [r for r in rows if int(r.id) not in previous.kept]
        members, reach = in_audience(connection, kept, now=now, audience=audience)
        if members:
            chunk = _read_chunk(
                connection,
                setup,
                members,
                now=now,
                campaign_id=previous.campaign_id,
                zones=zones,
                shapes=shapes,
                slots=slots,
                reach=reach,
            )
            x_parts.append(features.transform(chunk.data, setup.message))
            chunks.append(chunk)
        if progress is not None:
            progress("read", done, total)
    n_features = len(features.final().feature_names())
    return _Audience(
        *_concat(chunks, setup.actions.n_channels, setup.actions.n_slots),
        x=np.concatenate(x_parts) if x_parts else np.zeros((0, n_features), np.float32),
        shape=np.concatenate([c.shape for c in chunks]) if chunks else np.zeros(0, np.int64),
        slots=slots,
        shapes=shapes,
        unknown_zones=tuple(sorted(z for z, v in zones.items() if v is None)),
    )


def _contact_count(connection: Connection) -> int:
    """The contacts that were not forgotten (the read's progress total)."""
    return (
        connection.scalar(
            select(func.count())
            .select_from(models.Contact)
            .where(models.Contact.forgotten_at.is_(None))
        )
        or 0
    )


def _concat(
    chunks: Sequence[_Chunk], n_ch: int, n_sl: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], Eligibility]:
    if not chunks:
        return (
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            Eligibility(
                np.zeros((0, n_ch), bool),
                np.zeros((0, n_ch, n_sl), bool),
                np.zeros((0, n_ch), np.uint8),
            ),
        )
    return (
        np.concatenate([c.ids for c in chunks]),
        np.concatenate([c.zone for c in chunks]),
        np.concatenate([c.stage for c in chunks]),
        Eligibility(
            np.concatenate([c.eligibility.channel_ok for c in chunks]),
            np.concatenate([c.eligibility.slot_ok for c in chunks]),
            np.concatenate([c.eligibility.reasons for c in chunks]),
        ),
    )
