"""Past activity under a legacy policy, to seed a demo store: batch blasts and public mentions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind
from tummler.simulate._model import ResponseModel
from tummler.simulate._population import Population
from tummler.simulate._records import (
    MENTION_TOPICS,
    EventLog,
    MentionLog,
    outcome_events,
)
from tummler.simulate._respond import respond
from tummler.simulate._sends import Message, Sends
from tummler.simulate._state import SimulationState, initial_state, local_hours
from tummler.simulate._tables import CHANNELS, IntArray

__all__ = ["MENTION_TEMPLATES", "History", "LegacyPolicy", "history"]

_EMAIL = CHANNELS.index(ChannelKind.EMAIL)
_SMS = CHANNELS.index(ChannelKind.SMS)
_SOCIAL = tuple(
    CHANNELS.index(c) for c in (ChannelKind.MASTODON, ChannelKind.BLUESKY, ChannelKind.LINKEDIN)
)

#: Texts of mentions by (topic, sentiment); ``{brand}`` is replaced by the brand's name.
MENTION_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("delivery", "negative"): (
        "Still waiting for my {brand} order, two weeks late and no update.",
        "{brand} lost my parcel again. Tracking says delivered, it was not.",
    ),
    ("delivery", "neutral"): (
        "Does anyone know how long {brand} shipping takes to Europe?",
        "My {brand} order shipped today.",
    ),
    ("delivery", "positive"): (
        "My {brand} order arrived a day early, nicely packed!",
        "Fast delivery from {brand} as usual.",
    ),
    ("billing", "negative"): (
        "{brand} charged me twice this month and support will not refund it.",
        "Why did my {brand} subscription renew without a reminder?",
    ),
    ("billing", "neutral"): (
        "Can I change the payment method on my {brand} account?",
        "Got the new {brand} invoice format today.",
    ),
    ("billing", "positive"): (
        "{brand} refunded my order within a day, painless.",
        "Clear pricing at {brand}, no surprises on the bill.",
    ),
    ("product", "negative"): (
        "The new {brand} release broke the feature I use most.",
        "Disappointed with the quality of my latest {brand} purchase.",
    ),
    ("product", "neutral"): (
        "Trying out the {brand} product line this week.",
        "Is the {brand} spring collection out yet?",
    ),
    ("product", "positive"): (
        "Absolutely love my new {brand} gear, best purchase this year.",
        "The {brand} update is great, works much better now.",
    ),
    ("support", "negative"): (
        "Third day waiting for {brand} support to answer my ticket.",
        "{brand} support closed my ticket without fixing anything.",
    ),
    ("support", "neutral"): (
        "Opened a ticket with {brand} support about my account.",
        "Is {brand} support reachable on weekends?",
    ),
    ("support", "positive"): (
        "Shout-out to {brand} support, sorted my problem in minutes.",
        "Helpful and friendly {brand} support team, thank you!",
    ),
}
_SENTIMENT_NAMES = ("negative", "neutral", "positive")
#: Sentiment mix (negative, neutral, positive) of mentions by stage, and after a bad experience.
_SENTIMENT_BY_STAGE = (
    (0.15, 0.6, 0.25),
    (0.2, 0.5, 0.3),
    (0.2, 0.4, 0.4),
    (0.05, 0.25, 0.7),
    (0.55, 0.3, 0.15),
)
_SENTIMENT_AFTER_BAD = (0.85, 0.1, 0.05)
#: Topic mix (delivery, billing, product, support) by sentiment.
_TOPIC_BY_SENTIMENT = (
    (0.35, 0.25, 0.15, 0.25),
    (0.25, 0.2, 0.4, 0.15),
    (0.25, 0.1, 0.5, 0.15),
)
#: How much more often each stage posts about the brand than a subscriber.
_MENTION_RATE_BY_STAGE = (0.5, 1.0, 1.5, 5.0, 2.0)


@dataclass(frozen=True)
class LegacyPolicy:
    """How the brand sent before tummler: the same message to everyone at one UTC time.

    E-mail blasts to every consenting contact on ``email_weekdays`` (Monday is 0) at
    ``email_utc_hour``, an SMS blast on ``sms_days`` of each month, messages in rotation.
    """

    email_weekdays: tuple[int, ...] = (1, 3)
    email_utc_hour: int = 15
    sms_days: tuple[int, ...] = (1,)
    sms_utc_hour: int = 17
    messages: tuple[Message, ...] = (
        Message("newsletter", topic="news"),
        Message("spring-sale", topic="promotion", urgency="high"),
        Message("new-collection", topic="product"),
    )

    def __post_init__(self) -> None:
        if not self.messages:
            raise InputError("a legacy policy needs at least one message", field="messages")
        for name in ("email_utc_hour", "sms_utc_hour"):
            if not 0 <= getattr(self, name) < 24:
                raise InputError(f"{name} must be an hour 0 to 23", field=name)


@dataclass(frozen=True, eq=False)
class History:
    """Simulated past: the state it leaves, the events providers reported, the public mentions."""

    state: SimulationState
    events: EventLog
    mentions: MentionLog
    sends: int = field(default=0)

    def consent_rows(
        self, population: Population, source: str = "unsubscribe link"
    ) -> list[dict[str, Any]]:
        """Rows for ``tummler import consent``: one revocation per unsubscribe event."""
        return self.events.consent_rows(population, source)


def history(
    population: Population,
    model: ResponseModel,
    rng: np.random.Generator,
    *,
    days: int = 90,
    legacy: LegacyPolicy | None = None,
    state: SimulationState | None = None,
    brand: str = "Northwind",
    mention_rate: float = 0.002,
    outsider_mentions: float = 3.0,
) -> History:
    """Simulate ``days`` days of legacy blasts and mentions from ``state`` (default: the origin).

    Parameters
    ----------
    population, model
        Who, and how they respond.
    rng
        The only source of randomness.
    days
        Length of the history; the returned state's time is ``days`` days after the start.
    legacy
        The blast schedule (default :class:`LegacyPolicy`).
    brand
        Name used in the mention texts.
    mention_rate
        Daily chance that a subscriber with a social identity posts about the brand (scaled by
        stage, and ten-fold in the week after a complaint or unsubscribe).
    outsider_mentions
        Mean number of mentions a day by people outside the contact base.

    Raises
    ------
    InputError
        When ``days`` is negative or a rate is negative.
    """
    if days < 0:
        raise InputError(f"days must be >= 0, got {days}", field="days")
    if mention_rate < 0 or outsider_mentions < 0:
        raise InputError("mention_rate and outsider_mentions must be >= 0", field="mention_rate")
    legacy = legacy or LegacyPolicy()
    state = state or initial_state(population)
    start = state.now
    logs: list[EventLog] = []
    mention_parts: list[dict[str, np.ndarray]] = []
    last_bad = np.full(population.n, np.iinfo(np.int64).min // 2, dtype=np.int64)
    blasts = 0
    total_sends = 0
    for day in range(days):
        midnight = _midnight(start + day * 86_400)
        date = datetime.fromtimestamp(midnight, UTC)
        planned: list[tuple[int, int]] = []
        if date.weekday() in legacy.email_weekdays:
            planned.append((_EMAIL, legacy.email_utc_hour))
        if date.day in legacy.sms_days:
            planned.append((_SMS, legacy.sms_utc_hour))
        for channel, hour in planned:
            at_s = midnight + hour * 3600
            if at_s < state.now:
                continue
            message = legacy.messages[blasts % len(legacy.messages)]
            blasts += 1
            at = datetime.fromtimestamp(at_s, UTC)
            contacts = np.flatnonzero(population.identity[:, channel] & state.consent[:, channel])
            sends = Sends(
                contact=contacts,
                channel=np.full(contacts.shape[0], channel, dtype=np.int64),
                hour=local_hours(population, at)[contacts],
                variant=np.zeros(contacts.shape[0], dtype=np.int64),
            )
            state, outcomes = respond(population, model, state, message, sends, at, rng)
            total_sends += len(sends)
            logs.append(outcome_events(population, outcomes, rng))
            bad = outcomes.unsubscribed | outcomes.complained
            last_bad[outcomes.contact[bad]] = outcomes.sent_at[bad]
        mention_parts.append(
            _mentions_of_day(
                population,
                state.stage,
                last_bad,
                midnight,
                rng,
                mention_rate,
                outsider_mentions,
            )
        )
    end = start + days * 86_400
    state = SimulationState(
        now=max(end, state.now),
        stage=state.stage,
        consent=state.consent,
        conversions=state.conversions,
        complaints=state.complaints,
        send_contact=state.send_contact,
        send_time=state.send_time,
        response_contact=state.response_contact,
        response_time=state.response_time,
    )
    return History(
        state=state,
        events=EventLog.concat(logs),
        mentions=_mention_log(mention_parts, brand, population, start),
        sends=total_sends,
    )


def _midnight(seconds: int) -> int:
    return seconds - seconds % 86_400


def _mentions_of_day(
    population: Population,
    stage: IntArray,
    last_bad: IntArray,
    midnight: int,
    rng: np.random.Generator,
    rate: float,
    outsiders: float,
) -> dict[str, np.ndarray]:
    social = population.identity[:, list(_SOCIAL)]
    recent_bad = last_bad >= midnight - 7 * 86_400
    chance = rate * np.asarray(_MENTION_RATE_BY_STAGE)[stage] * np.where(recent_bad, 10.0, 1.0)
    posts = np.flatnonzero(
        social.any(axis=1) & (rng.random(population.n) < np.minimum(chance, 1.0))
    )
    # Post on one of the person's social channels, picked at random.
    pick = rng.random((posts.shape[0], len(_SOCIAL))) * social[posts]
    channel = np.asarray(_SOCIAL)[np.argmax(pick, axis=1)]
    mix = np.asarray(_SENTIMENT_BY_STAGE)[stage[posts]]
    mix[recent_bad[posts]] = _SENTIMENT_AFTER_BAD
    sentiment = _categorical(rng, mix)

    outsider_count = int(rng.poisson(outsiders))
    outsider_sentiment = _categorical(rng, np.tile([0.3, 0.4, 0.3], (outsider_count, 1)))
    outsider_channel = np.asarray(_SOCIAL)[rng.integers(0, len(_SOCIAL), size=outsider_count)]
    contact = np.concatenate([posts, np.full(outsider_count, -1, dtype=np.int64)])
    sentiment = np.concatenate([sentiment, outsider_sentiment])
    topic = _categorical(rng, np.asarray(_TOPIC_BY_SENTIMENT)[sentiment])
    count = contact.shape[0]
    return {
        "contact": contact,
        "channel": np.concatenate([channel, outsider_channel]).astype(np.int64),
        "sentiment": sentiment,
        "topic": topic,
        "template": np.asarray(rng.integers(0, 2, size=count), dtype=np.int64),
        "outsider": np.asarray(rng.integers(0, 1_000_000, size=count), dtype=np.int64),
        "at": midnight + np.asarray(rng.integers(0, 86_400, size=count), dtype=np.int64),
    }


def _categorical(rng: np.random.Generator, probabilities: np.ndarray) -> IntArray:
    """One draw per row of a ``(m, K)`` matrix of probabilities."""
    if probabilities.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    cumulative = np.cumsum(probabilities, axis=1)
    u = np.asarray(rng.random(probabilities.shape[0]))[:, None] * cumulative[:, -1:]
    return np.asarray((u >= cumulative).sum(axis=1), dtype=np.int64)


def _mention_log(
    parts: list[dict[str, np.ndarray]], brand: str, population: Population, start: int
) -> MentionLog:
    names = ("contact", "channel", "sentiment", "topic", "template", "outsider", "at")
    if parts:
        merged = {name: np.concatenate([part[name] for part in parts]) for name in names}
    else:
        merged = {name: np.zeros(0, dtype=np.int64) for name in names}
    order = np.argsort(merged["at"], kind="stable")
    merged = {name: array[order] for name, array in merged.items()}
    texts = []
    handles = []
    for contact, channel, sentiment, topic, template, outsider in zip(
        merged["contact"].tolist(),
        merged["channel"].tolist(),
        merged["sentiment"].tolist(),
        merged["topic"].tolist(),
        merged["template"].tolist(),
        merged["outsider"].tolist(),
        strict=True,
    ):
        options = MENTION_TEMPLATES[(MENTION_TOPICS[topic], _SENTIMENT_NAMES[sentiment])]
        texts.append(options[template % len(options)].format(brand=brand))
        if contact >= 0:
            handles.append(population.address(contact, channel))
        else:
            handles.append(_outsider_handle(outsider, channel))
    count = len(texts)
    return MentionLog(
        channel=merged["channel"],
        external_id=np.asarray([f"sim-{start}-{i:07d}" for i in range(count)], dtype=np.str_),
        author_handle=np.asarray(handles, dtype=np.str_),
        text=np.asarray(texts, dtype=np.str_),
        at=merged["at"],
        contact=merged["contact"],
        sentiment=merged["sentiment"].astype(np.float64) - 1.0,
        topic=merged["topic"],
    )


def _outsider_handle(number: int, channel: int) -> str:
    kind = CHANNELS[channel]
    if kind is ChannelKind.MASTODON:
        return f"@fan{number}@social.example"
    if kind is ChannelKind.BLUESKY:
        return f"fan{number}.bsky.example"
    return f"https://www.linkedin.com/in/fan{number}"
