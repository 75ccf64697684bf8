"""History under a legacy policy, and rounds of any policy against the oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind, EventType, Stage
from tummler.simulate import (
    CHANNELS,
    CONTACT_REF,
    EVENT_TYPES,
    IMPORT_COLUMNS,
    MENTION_TOPICS,
    STAGES,
    BestSingleAction,
    EventLog,
    History,
    Message,
    OraclePolicy,
    Outcomes,
    Population,
    RandomPolicy,
    ResponseModel,
    RewardWeights,
    Round,
    Sends,
    SendToAll,
    Variant,
    history,
    make_population,
    run_rounds,
)

ORIGIN = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)
DAYS = 90
MESSAGE = Message(
    "launch",
    topic="product",
    variants=(Variant("plain"), Variant("happy", emotion="joy"), Variant("long", length="long")),
)
MODEL = ResponseModel()
EMAIL, SMS = CHANNELS.index(ChannelKind.EMAIL), CHANNELS.index(ChannelKind.SMS)


@pytest.fixture(scope="module")
def population() -> Population:
    return make_population(20_000, np.random.default_rng(31), origin=ORIGIN)


@pytest.fixture(scope="module")
def past(population: Population) -> History:
    return history(population, MODEL, np.random.default_rng(32), days=DAYS, brand="Acme")


def _start(past: History) -> datetime:
    return past.state.at + timedelta(hours=2)


def _per_contact_rewards(
    population: Population, past: History, decide: object, rounds: int
) -> tuple[np.ndarray, np.ndarray]:
    totals = np.zeros(population.n)

    def learn(round_: Round, sends: Sends, outcomes: Outcomes) -> None:
        np.add.at(totals, outcomes.contact, outcomes.reward)

    result = run_rounds(
        population,
        MODEL,
        decide,  # type: ignore[arg-type]
        messages=MESSAGE,
        rounds=rounds,
        start=_start(past),
        rng=np.random.default_rng(40),
        state=past.state,
        learn=learn,
    )
    return totals, result.regret


def test_the_oracle_beats_every_baseline_by_many_standard_errors(
    population: Population, past: History
) -> None:
    rounds = 3
    oracle, oracle_regret = _per_contact_rewards(population, past, OraclePolicy(MODEL), rounds)
    np.testing.assert_allclose(oracle_regret, 0.0, atol=1e-6)
    baselines = {
        "random": RandomPolicy(np.random.default_rng(41)),
        "send to all": SendToAll(),
        "best single": BestSingleAction(MODEL),
    }
    means = {"oracle": oracle.mean()}
    for name, policy in baselines.items():
        totals, regret = _per_contact_rewards(population, past, policy, rounds)
        means[name] = totals.mean()
        se = np.sqrt(oracle.var() / population.n + totals.var() / population.n)
        assert (oracle.mean() - totals.mean()) / se > 5, name
        assert regret.sum() > 0, name
    # The usual order: personalized > best fixed action > random > every lever at once.
    assert means["oracle"] > means["best single"] > means["random"] > means["send to all"], means


def test_an_oracle_of_the_wrong_model_has_regret(population: Population, past: History) -> None:
    careless = ResponseModel(reward=RewardWeights(unsubscribed=0.0, complained=0.0))
    result = run_rounds(
        population,
        MODEL,
        OraclePolicy(careless),
        messages=MESSAGE,
        rounds=1,
        start=_start(past),
        rng=np.random.default_rng(2),
        state=past.state,
    )
    assert result.regret[0] > 0.01 * result.oracle[0]


def test_single_lever_policies_never_have_negative_regret(
    population: Population, past: History
) -> None:
    result = run_rounds(
        population,
        MODEL,
        RandomPolicy(np.random.default_rng(1)),
        messages=MESSAGE,
        rounds=2,
        start=_start(past),
        rng=np.random.default_rng(2),
        state=past.state,
    )
    assert (result.regret > 0).all()
    np.testing.assert_allclose(result.cumulative_regret, np.cumsum(result.oracle - result.expected))
    assert (np.diff(result.cumulative_regret) > 0).all()


def test_runs_are_reproducible_and_messages_rotate(population: Population, past: History) -> None:
    second = Message("care", topic="support", urgency="high", variants=(Variant("a"),))
    seen: list[tuple[int, str, int]] = []

    def learn(round_: Round, sends: Sends, outcomes: Outcomes) -> None:
        assert len(sends) == len(outcomes)
        seen.append((round_.index, round_.message.key, len(sends)))

    def run() -> tuple[np.ndarray, np.ndarray]:
        result = run_rounds(
            population,
            MODEL,
            RandomPolicy(np.random.default_rng(5)),
            messages=[MESSAGE, second],
            rounds=3,
            start=_start(past),
            rng=np.random.default_rng(6),
            state=past.state,
            learn=learn,
        )
        return result.reward, result.sends

    first, again = run(), run()
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert [key for _, key, _ in seen[:3]] == ["launch", "care", "launch"]
    assert [sends for _, _, sends in seen[:3]] == first[1].tolist()


def test_baselines_do_what_they_say(population: Population, past: History) -> None:
    captured: list[tuple[Round, Sends]] = []

    def learn(round_: Round, sends: Sends, outcomes: Outcomes) -> None:
        captured.append((round_, sends))

    for policy in (
        SendToAll(slot=1),
        BestSingleAction(MODEL),
        RandomPolicy(np.random.default_rng(3)),
    ):
        run_rounds(
            population,
            MODEL,
            policy,
            messages=MESSAGE,
            rounds=1,
            start=_start(past),
            rng=np.random.default_rng(0),
            state=past.state,
            learn=learn,
        )
    (round_, to_all), (_, single), (_, random) = captured
    allowed = population.identity & round_.state.consent
    assert len(to_all) == allowed.sum(), "one send per allowed channel"
    assert set(np.unique(to_all.hour).tolist()) == {float(round_.actions.hours[1])}
    assert np.unique(single.channel).shape[0] == 1
    assert np.unique(single.hour).shape[0] == 1
    assert allowed[single.contact, single.channel].all()
    assert allowed[random.contact, random.channel].all()
    assert len(random) < population.n


@pytest.mark.parametrize(
    ("decide", "rounds", "messages", "field"),
    [
        (lambda r: np.zeros(3, dtype=np.int64), 1, MESSAGE, "decide"),
        (lambda r: np.zeros(r.population.n, dtype=np.int64), -1, MESSAGE, "rounds"),
        (lambda r: np.zeros(r.population.n, dtype=np.int64), 1, [], "messages"),
        (lambda r: np.full(r.population.n, 10_000), 1, MESSAGE, "chosen"),
    ],
)
def test_bad_runs_are_refused_by_name(
    decide: object, rounds: int, messages: object, field: str
) -> None:
    population = make_population(100, np.random.default_rng(0), origin=ORIGIN)
    with pytest.raises(InputError) as caught:
        run_rounds(
            population,
            MODEL,
            decide,  # type: ignore[arg-type]
            messages=messages,  # type: ignore[arg-type]
            rounds=rounds,
            start=ORIGIN,
            rng=np.random.default_rng(0),
        )
    assert caught.value.field == field


def test_history_is_reproducible(population: Population, past: History) -> None:
    again = history(population, MODEL, np.random.default_rng(32), days=DAYS, brand="Acme")
    np.testing.assert_array_equal(again.events.at, past.events.at)
    np.testing.assert_array_equal(again.events.type, past.events.type)
    np.testing.assert_array_equal(again.mentions.text, past.mentions.text)
    np.testing.assert_array_equal(again.state.stage, past.state.stage)


def test_history_follows_the_legacy_schedule(population: Population, past: History) -> None:
    events = past.events
    assert past.state.now == int((ORIGIN + timedelta(days=DAYS)).timestamp())
    assert (np.diff(events.at) >= 0).all(), "sorted by time"
    assert (events.at >= ORIGIN.timestamp()).all()
    delivered = events.type == EVENT_TYPES.index(EventType.DELIVERED)
    send_times = [datetime.fromtimestamp(s, UTC) for s in np.unique(events.send_at[delivered])]
    email = np.unique(events.send_at[delivered & (events.channel == EMAIL)])
    sms = np.unique(events.send_at[delivered & (events.channel == SMS)])
    assert len(send_times) == email.shape[0] + sms.shape[0]
    for moment in (datetime.fromtimestamp(s, UTC) for s in email):
        assert moment.weekday() in (1, 3)
        assert (moment.hour, moment.minute) == (15, 0)
    for moment in (datetime.fromtimestamp(s, UTC) for s in sms):
        assert moment.day == 1
        assert moment.hour == 17
    assert email.shape[0] == 26
    assert sms.shape[0] == 3
    assert past.sends > 20 * 13_000


def test_history_events_are_consistent_per_send(population: Population, past: History) -> None:
    events = past.events
    ids = events.provider_event_ids()
    assert len(set(ids)) == len(ids)
    send_key = (events.contact * len(CHANNELS) + events.channel) * 10**10 + events.send_at

    def keys(event_type: EventType) -> set[int]:
        return set(send_key[events.type == EVENT_TYPES.index(event_type)].tolist())

    delivered = keys(EventType.DELIVERED)
    assert keys(EventType.CLICKED) <= keys(EventType.OPENED) <= delivered
    assert keys(EventType.CONVERTED) <= keys(EventType.CLICKED)
    assert keys(EventType.UNSUBSCRIBED) | keys(EventType.COMPLAINED) <= delivered
    assert not keys(EventType.BOUNCED) & delivered
    converted = events.type == EVENT_TYPES.index(EventType.CONVERTED)
    assert (events.value[converted] > 0).all()
    assert np.isnan(events.value[~converted]).all()
    assert (events.at >= events.send_at).all()
    counts = {t: events.count(t) for t in EventType}
    # Realistic funnel: most delivered, some opened, few clicked, fewer converted.
    assert counts[EventType.DELIVERED] > 10 * counts[EventType.BOUNCED]
    assert (
        counts[EventType.OPENED] > 2 * counts[EventType.CLICKED] > 4 * counts[EventType.CONVERTED]
    )
    assert 0.01 < counts[EventType.CLICKED] / counts[EventType.DELIVERED] < 0.15
    assert counts[EventType.UNSUBSCRIBED] < 0.02 * counts[EventType.DELIVERED]
    assert counts[EventType.COMPLAINED] < counts[EventType.UNSUBSCRIBED]


def test_history_moves_stages_and_revokes_consent(population: Population, past: History) -> None:
    lapsed = STAGES.index(Stage.LAPSED)
    assert (past.state.stage == lapsed).sum() > (population.stage == lapsed).sum()
    revocations = past.consent_rows(population)
    assert len(revocations) == past.events.count(EventType.UNSUBSCRIBED)
    revoked = (population.consent & ~past.state.consent).sum()
    assert revoked == len(revocations)
    assert {row["status"] for row in revocations} == {"revoked"}


def test_opens_happen_around_each_persons_peak_hour(population: Population, past: History) -> None:
    events = past.events
    opened = events.type == EVENT_TYPES.index(EventType.OPENED)
    contact = events.contact[opened]
    offsets = np.asarray(
        [
            ZoneInfo(zone).utcoffset(ORIGIN + timedelta(days=45)).total_seconds()  # type: ignore[union-attr]
            for zone in population.time_zones
        ]
    )[population.time_zone]
    local = ((events.at[opened] + offsets[contact]) % 86_400) / 3600.0
    angle = 2 * np.pi * local / 24
    n = population.n
    count = np.bincount(contact, minlength=n)
    mean_angle = np.arctan2(
        np.bincount(contact, np.sin(angle), minlength=n),
        np.bincount(contact, np.cos(angle), minlength=n),
    )
    estimate = (mean_angle * 24 / (2 * np.pi)) % 24
    gap = np.abs((estimate - population.hidden.peak_hour + 12) % 24 - 12)
    enough = count >= 6
    assert enough.sum() > 1000
    assert (gap[enough] < 3).mean() > 0.6  # by chance: 0.25


def test_mentions_reflect_stage_and_experience(population: Population, past: History) -> None:
    mentions = past.mentions
    assert len(mentions) > 500
    assert len(set(mentions.external_id.tolist())) == len(mentions)
    assert all("Acme" in text for text in mentions.text.tolist())
    assert set(np.unique(mentions.sentiment).tolist()) == {-1.0, 0.0, 1.0}
    assert set(np.unique(mentions.topic).tolist()) == set(range(len(MENTION_TOPICS)))
    social = {
        CHANNELS.index(c) for c in (ChannelKind.MASTODON, ChannelKind.BLUESKY, ChannelKind.LINKEDIN)
    }
    assert set(np.unique(mentions.channel).tolist()) <= social
    known = mentions.contact >= 0
    assert (~known).sum() > 0.5 * 3 * DAYS
    assert population.identity[mentions.contact[known], mentions.channel[known]].all()
    stage = past.state.stage[mentions.contact[known]]
    sentiment = mentions.sentiment[known]
    advocates = sentiment[stage == STAGES.index(Stage.ADVOCATE)]
    lapsed = sentiment[stage == STAGES.index(Stage.LAPSED)]
    assert advocates.mean() > 0.3 > -0.1 > lapsed.mean()
    rows = mentions.rows()
    assert tuple(rows[0]) == IMPORT_COLUMNS["mentions"]
    first = next(mentions.records())
    assert first.author_handle == rows[0]["author_handle"]


def test_events_become_import_rows_and_columns(population: Population, past: History) -> None:
    part = EventLog(
        **{
            name: getattr(past.events, name)[:500]
            for name in ("contact", "type", "channel", "at", "value", "send_at", "variant")
        }
    )
    rows = part.rows(population)
    assert tuple(rows[0]) == IMPORT_COLUMNS["events"]
    columns = part.columns(population)
    assert set(columns) == set(rows[0])
    assert all(len(column) == 500 for column in columns.values())
    assert [str(v) for v in columns["provider_event_id"]] == [r["provider_event_id"] for r in rows]
    assert rows[0][CONTACT_REF] == str(population.external_id[part.contact[0]])
    assert [value is None for value in columns["value"]] == [r["value"] is None for r in rows]
    assert rows[0]["at"].tzinfo is not None
    assert {r["type"] for r in rows} <= {t.value for t in EventType}


def test_history_refuses_bad_arguments(population: Population) -> None:
    with pytest.raises(InputError) as caught:
        history(population, MODEL, np.random.default_rng(0), days=-1)
    assert caught.value.field == "days"
