"""The response model: draws match the known probabilities, fatigue, contagion and stages move as designed."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind, Stage
from tummler.simulate import (
    CHANNELS,
    STAGES,
    ActionSpace,
    Message,
    Population,
    ResponseModel,
    RewardWeights,
    Sends,
    SimulationState,
    Variant,
    eligible_actions,
    expected_reward,
    initial_state,
    local_hours,
    make_population,
    oracle_policy,
    respond,
)

ORIGIN = datetime(2026, 3, 1, tzinfo=UTC)
AT = ORIGIN + timedelta(days=1, hours=3)
MESSAGE = Message(
    "launch",
    topic="product",
    variants=(Variant("plain"), Variant("happy", emotion="joy"), Variant("long", length="long")),
)
SPACE = ActionSpace.for_message(MESSAGE)
EMAIL = CHANNELS.index(ChannelKind.EMAIL)
NO_COST = (0.0,) * len(CHANNELS)


@pytest.fixture(scope="module")
def population() -> Population:
    return make_population(20_000, np.random.default_rng(21), origin=ORIGIN)


@pytest.fixture(scope="module")
def small() -> Population:
    return make_population(300, np.random.default_rng(3), origin=ORIGIN)


def _only(**weights: float) -> ResponseModel:
    """The default model with a reward that counts one outcome only (so expected = its rate)."""
    zero = {
        "clicked": 0.0,
        "replied": 0.0,
        "converted": 0.0,
        "value": 0.0,
        "unsubscribed": 0.0,
        "complained": 0.0,
    }
    return ResponseModel(reward=RewardWeights(**{**zero, **weights}, channel_cost=NO_COST))


def _random_sends(population: Population, seed: int) -> Sends:
    """One random allowed send per contact who has any allowed channel."""
    state = initial_state(population)
    eligible = eligible_actions(population, state, SPACE)[:, : SPACE.k]
    scores = np.where(eligible, np.random.default_rng(seed).random(eligible.shape), -1.0)
    chosen = np.where(eligible.any(axis=1), scores.argmax(axis=1), SPACE.k)
    return SPACE.sends(chosen)


def _email_to_all(population: Population, state: SimulationState, hour: float = 12.0) -> Sends:
    contacts = np.flatnonzero(population.identity[:, EMAIL] & state.consent[:, EMAIL])
    m = contacts.shape[0]
    return Sends(
        contact=contacts,
        channel=np.full(m, EMAIL),
        hour=np.full(m, hour),
        variant=np.zeros(m, dtype=np.int64),
    )


def test_same_seed_same_outcomes(population: Population) -> None:
    model = ResponseModel()
    state = initial_state(population)
    sends = _random_sends(population, 1)
    first_state, first = respond(
        population, model, state, MESSAGE, sends, AT, np.random.default_rng(4)
    )
    again_state, again = respond(
        population, model, state, MESSAGE, sends, AT, np.random.default_rng(4)
    )
    for name in ("delivered", "clicked", "converted", "value", "unsubscribed", "reward"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)
    np.testing.assert_array_equal(first_state.stage, again_state.stage)
    _, other = respond(population, model, state, MESSAGE, sends, AT, np.random.default_rng(5))
    assert not np.array_equal(first.clicked, other.clicked)


def test_respond_returns_a_new_state_and_mutates_nothing(population: Population) -> None:
    state = initial_state(population)
    stage, consent = state.stage.copy(), state.consent.copy()
    sends = _random_sends(population, 2)
    new, outcomes = respond(
        population, ResponseModel(), state, MESSAGE, sends, AT, np.random.default_rng(0)
    )
    np.testing.assert_array_equal(state.stage, stage)
    np.testing.assert_array_equal(state.consent, consent)
    assert state.send_contact.shape == (0,)
    assert new is not state
    assert new.now == int(AT.timestamp())
    assert new.send_contact.shape[0] == outcomes.allowed.sum()
    np.testing.assert_array_equal(population.stage, initial_state(population).stage)


@pytest.mark.parametrize(
    "outcome", ["clicked", "replied", "converted", "unsubscribed", "complained", "value"]
)
def test_empirical_rates_match_expected_reward(population: Population, outcome: str) -> None:
    model = _only(**{outcome: 1.0})
    state = initial_state(population)
    sends = _random_sends(population, 3)
    _, outcomes = respond(population, model, state, MESSAGE, sends, AT, np.random.default_rng(7))
    expected = outcomes.expected
    if outcome == "value":
        # value = converted × mean × Gamma(2, 1/2): E = p·μ, E[X²] = 1.5·p·μ².
        mean = population.hidden.value_mean[outcomes.contact] * MESSAGE.value_scale
        p = np.divide(expected, mean, out=np.zeros_like(expected), where=mean > 0)
        variance = 1.5 * p * mean**2 - expected**2
        realized = outcomes.value
    else:
        variance = expected * (1 - expected)
        realized = getattr(outcomes, outcome).astype(np.float64)
    z = (realized.sum() - expected.sum()) / np.sqrt(variance.sum())
    assert abs(z) < 4, f"{outcome}: observed {realized.sum():.1f}, expected {expected.sum():.1f}"
    assert realized.sum() > 0


def test_outcome_expectations_are_the_expected_reward_table(population: Population) -> None:
    model = ResponseModel()
    state = initial_state(population)
    table = expected_reward(population, model, state, MESSAGE, SPACE, AT)
    assert table.shape == (population.n, SPACE.k + 1)
    assert (table[:, SPACE.k] == 0).all()
    eligible = eligible_actions(population, state, SPACE)
    assert (table[~eligible] == 0).all()
    chosen = np.random.default_rng(8).integers(0, SPACE.k, size=population.n)
    _, outcomes = respond(
        population, model, state, MESSAGE, SPACE.sends(chosen), AT, np.random.default_rng(0)
    )
    np.testing.assert_allclose(outcomes.expected, table[np.arange(population.n), chosen])
    # Chunking changes nothing.
    np.testing.assert_allclose(
        expected_reward(population, model, state, MESSAGE, SPACE, AT, chunk=777), table
    )


def test_the_oracle_takes_the_best_allowed_action_or_none(population: Population) -> None:
    model = ResponseModel()
    state = initial_state(population)
    table = expected_reward(population, model, state, MESSAGE, SPACE, AT)
    eligible = eligible_actions(population, state, SPACE)
    chosen = oracle_policy(population, model, state, MESSAGE, SPACE, AT)
    value = table[np.arange(population.n), chosen]
    best_send = np.where(eligible[:, : SPACE.k], table[:, : SPACE.k], -np.inf).max(axis=1)
    np.testing.assert_allclose(value, np.maximum(best_send, 0.0))
    assert eligible[np.arange(population.n), chosen].all()
    no_send = chosen == SPACE.k
    assert 0.02 < no_send.mean() < 0.6, "some people are better left alone, most are not"


def _tired_state(population: Population, tired: np.ndarray, sends_each: int) -> SimulationState:
    state = initial_state(population)
    contacts = np.repeat(np.flatnonzero(tired), sends_each)
    times = int(AT.timestamp()) - 3_600 * np.tile(
        np.arange(1, sends_each + 1) * 20, int(tired.sum())
    )
    return replace(state, send_contact=contacts, send_time=times)


def test_fatigue_lowers_response_and_raises_unsubscribes(population: Population) -> None:
    tired = np.random.default_rng(9).random(population.n) < 0.5
    state = _tired_state(population, tired, 8)
    sends = _email_to_all(population, state)
    _, outcomes = respond(
        population, ResponseModel(), state, MESSAGE, sends, AT, np.random.default_rng(10)
    )
    group = tired[outcomes.contact]

    def gap(flags: np.ndarray) -> tuple[float, float]:
        a, b = flags[group].mean(), flags[~group].mean()
        se = np.sqrt(a * (1 - a) / group.sum() + b * (1 - b) / (~group).sum())
        return a - b, se

    click_gap, click_se = gap(outcomes.clicked)
    unsub_gap, unsub_se = gap(outcomes.unsubscribed)
    assert click_gap < -5 * click_se
    assert unsub_gap > 4 * unsub_se


def test_every_extra_recent_send_lowers_every_click_probability(population: Population) -> None:
    model = _only(clicked=1.0)
    everyone = np.ones(population.n, dtype=np.bool_)
    tables = [
        expected_reward(
            population, model, _tired_state(population, everyone, r), MESSAGE, SPACE, AT
        )
        for r in range(4)
    ]
    allowed = eligible_actions(population, initial_state(population), SPACE)[:, : SPACE.k]
    for fresher, tireder in itertools.pairwise(tables):
        assert (tireder[:, : SPACE.k][allowed] < fresher[:, : SPACE.k][allowed]).all()


def test_several_sends_in_one_round_tire_each_other(population: Population) -> None:
    model = _only(clicked=1.0)
    state = initial_state(population)
    single = SPACE.sends(np.zeros(population.n, dtype=np.int64))
    per_channel = len(SPACE.hours) * SPACE.n_variants
    double = SPACE.sends(np.tile([0, per_channel], (population.n, 1)))
    _, alone = respond(population, model, state, MESSAGE, single, AT, np.random.default_rng(0))
    _, together = respond(population, model, state, MESSAGE, double, AT, np.random.default_rng(0))
    first_of_two = together.channel == SPACE.channel[0]
    both = np.bincount(together.contact[together.allowed], minlength=population.n) == 2
    keep = both[alone.contact] & alone.allowed
    keep_two = both[together.contact] & first_of_two & together.allowed
    assert (together.expected[keep_two] < alone.expected[keep]).all()


def _logit(p: np.ndarray) -> np.ndarray:
    logit: np.ndarray = np.log(p) - np.log1p(-p)
    return logit


def test_contagion_strength_is_recovered_from_responses(population: Population) -> None:
    """Neighbours of responders respond more, by the known log-odds per unit of exposure."""
    perfect = (1.0,) * len(CHANNELS)
    model = replace(_only(clicked=1.0), deliver=perfect)
    without = replace(model, contagion=0.0)
    responders = np.random.default_rng(12).random(population.n) < 0.3
    base = initial_state(population)
    state = replace(
        base,
        response_contact=np.flatnonzero(responders),
        response_time=np.full(int(responders.sum()), int(AT.timestamp()) - 86_400),
    )
    sends = _email_to_all(population, state)
    _, outcomes = respond(population, model, state, MESSAGE, sends, AT, np.random.default_rng(13))
    exposure = population.graph.adjacency @ responders.astype(np.float64)
    exposure = np.minimum(exposure[outcomes.contact], model.contagion_cap)
    table = expected_reward(population, without, state, MESSAGE, SPACE, AT)
    hour_slot = SPACE.hours.index(12)
    offset = _logit(table[outcomes.contact, hour_slot * SPACE.n_variants])
    clicked = outcomes.clicked.astype(np.float64)

    beta = 0.0
    for _ in range(25):  # Newton on the one free coefficient, the rest is the known model.
        p = 1 / (1 + np.exp(-(offset + beta * exposure)))
        gradient = (exposure * (clicked - p)).sum()
        information = (exposure**2 * p * (1 - p)).sum()
        beta += gradient / information
    standard_error = 1 / np.sqrt(information)
    assert abs(beta - model.contagion) < 4 * standard_error, (beta, standard_error)
    assert beta > 3 * standard_error

    exposed = exposure > 0
    assert clicked[exposed].mean() > clicked[~exposed].mean()


def test_stages_move_with_good_and_bad_experiences(population: Population) -> None:
    model = ResponseModel()
    state = initial_state(population)
    sends = SPACE.sends(oracle_policy(population, model, state, MESSAGE, SPACE, AT))
    new, outcomes = respond(population, model, state, MESSAGE, sends, AT, np.random.default_rng(1))
    n = population.n

    def who(flags: np.ndarray) -> np.ndarray:
        return np.bincount(outcomes.contact[flags], minlength=n) > 0

    bad = who(outcomes.unsubscribed | outcomes.complained)
    converted = who(outcomes.converted)
    engaged = who(outcomes.clicked | outcomes.replied)
    code = {stage: STAGES.index(stage) for stage in Stage}
    assert bad.sum() > 10
    assert converted.sum() > 50
    assert engaged.sum() > 500
    assert (new.stage[bad] == code[Stage.LAPSED]).all()
    good_buyers = converted & ~bad
    assert np.isin(new.stage[good_buyers], [code[Stage.CUSTOMER], code[Stage.ADVOCATE]]).all()
    woken = (
        engaged
        & ~converted
        & ~bad
        & np.isin(state.stage, [code[Stage.PROSPECT], code[Stage.LAPSED]])
    )
    assert woken.sum() > 20
    assert (new.stage[woken] == code[Stage.SUBSCRIBER]).all()
    untouched = ~engaged & ~converted & ~bad
    np.testing.assert_array_equal(new.stage[untouched], state.stage[untouched])
    np.testing.assert_array_equal(
        new.conversions, np.bincount(outcomes.contact[outcomes.converted], minlength=n)
    )

    eager = replace(model, advocate_after=1)
    promoted, outcomes = respond(
        population, eager, state, MESSAGE, sends, AT, np.random.default_rng(1)
    )
    buyers = (np.bincount(outcomes.contact[outcomes.converted], minlength=n) > 0) & ~bad
    assert (promoted.stage[buyers] == code[Stage.ADVOCATE]).all()


def test_an_unsubscribe_revokes_consent_on_its_channel_only(population: Population) -> None:
    model = replace(ResponseModel(), unsub_base=(-1.0,) * len(CHANNELS))
    state = initial_state(population)
    sends = _email_to_all(population, state)
    new, outcomes = respond(population, model, state, MESSAGE, sends, AT, np.random.default_rng(2))
    gone = outcomes.contact[outcomes.unsubscribed]
    assert gone.shape[0] > 1000
    assert not new.consent[gone, EMAIL].any()
    others = [c for c in range(len(CHANNELS)) if c != EMAIL]
    np.testing.assert_array_equal(new.consent[gone][:, others], state.consent[gone][:, others])
    later = AT + timedelta(days=1)
    again = Sends(
        gone, np.full(gone.shape[0], EMAIL), np.full(gone.shape[0], 12.0), np.zeros_like(gone)
    )
    _, refused = respond(population, model, new, MESSAGE, again, later, np.random.default_rng(3))
    assert not refused.allowed.any()
    assert not refused.delivered.any()
    assert (refused.reward == 0).all()


def test_sends_go_out_at_the_contacts_local_hour(population: Population) -> None:
    sends = SPACE.sends(np.random.default_rng(4).integers(0, SPACE.k, size=population.n))
    _, outcomes = respond(
        population,
        ResponseModel(),
        initial_state(population),
        MESSAGE,
        sends,
        AT,
        np.random.default_rng(0),
    )
    delay = outcomes.sent_at - int(AT.timestamp())
    assert ((delay >= 0) & (delay < 86_400)).all()
    for i in range(0, len(outcomes), 997):
        zone = ZoneInfo(population.time_zones[population.time_zone[outcomes.contact[i]]])
        local = datetime.fromtimestamp(int(outcomes.sent_at[i]), UTC).astimezone(zone)
        assert (local.hour, local.minute) == (int(outcomes.hour[i]), 0)


def _sends(contact: list[int], channel: list[int], hour: list[float], variant: list[int]) -> Sends:
    return Sends(
        np.asarray(contact, dtype=np.int64),
        np.asarray(channel, dtype=np.int64),
        np.asarray(hour, dtype=np.float64),
        np.asarray(variant, dtype=np.int64),
    )


@pytest.mark.parametrize(
    ("sends", "at", "field", "message"),
    [
        (_sends([300], [0], [9.0], [0]), AT, "contact", "[0, 300)"),
        (_sends([-1], [0], [9.0], [0]), AT, "contact", "[0, 300)"),
        (_sends([1], [6], [9.0], [0]), AT, "channel", "[0, 6)"),
        (_sends([1], [0], [9.0], [3]), AT, "variant", "[0, 3)"),
        (_sends([1], [0], [24.0], [0]), AT, "hour", "[0, 24)"),
        (_sends([1], [0], [float("nan")], [0]), AT, "hour", "[0, 24)"),
        (_sends([1, 2], [0], [9.0], [0]), AT, "channel", "like sends.contact"),
        (_sends([1], [0], [9.0], [0]), ORIGIN - timedelta(days=1), "at", "move forward"),
    ],
)
def test_bad_sends_are_refused_by_name(
    small: Population, sends: Sends, at: datetime, field: str, message: str
) -> None:
    with pytest.raises(InputError, match=field) as caught:
        respond(
            small,
            ResponseModel(),
            initial_state(small),
            MESSAGE,
            sends,
            at,
            np.random.default_rng(0),
        )
    assert caught.value.field == field
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Variant("a", emotion="rage"), "emotion"),
        (lambda: Variant("a", length="epic"), "length"),
        (lambda: Message("m", topic="gossip"), "topic"),
        (lambda: Message("m", urgency="now"), "urgency"),
        (lambda: Message("m", variants=()), "variants"),
        (lambda: Message("m", value_scale=-1.0), "value_scale"),
        (lambda: ActionSpace(channels=()), "channels"),
        (lambda: ActionSpace(channels=(0, 0)), "channels"),
        (lambda: ActionSpace(channels=(9,)), "channels"),
        (lambda: ActionSpace(hours=(24,)), "hours"),
        (lambda: ActionSpace(n_variants=0), "n_variants"),
        (lambda: RewardWeights(channel_cost=(0.0,)), "channel_cost"),
        (lambda: ResponseModel(deliver=(1.0,)), "deliver"),
        (lambda: ResponseModel(topic=((0.0,) * 6,)), "topic"),
        (lambda: ResponseModel(fatigue_window=timedelta(0)), "window"),
    ],
)
def test_bad_definitions_are_refused_by_name(build: object, field: str) -> None:
    with pytest.raises(InputError) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def test_action_space_indexing() -> None:
    space = ActionSpace(channels=(0, 1), hours=(9, 18), n_variants=3)
    assert space.k == 12
    a = (1 * 2 + 1) * 3 + 2  # second channel, second hour, third variant
    assert (space.channel[a], space.hour[a], space.variant[a]) == (1, 18, 2)
    assert space.names()[a] == "sms@18:00/v2"
    assert space.names()[-1] == "no send"
    sends = space.sends([[a, 12], [12, 0], [-1, 12]])
    np.testing.assert_array_equal(sends.contact, [0, 1])
    np.testing.assert_array_equal(sends.channel, [1, 0])
    with pytest.raises(InputError, match="only 12 send actions"):
        space.sends([13])
    with pytest.raises(InputError, match="chosen"):
        space.sends(np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="for_message"):
        population = make_population(50, np.random.default_rng(0), origin=ORIGIN)
        expected_reward(
            population, ResponseModel(), initial_state(population), Message("one"), space
        )


@settings(max_examples=40, deadline=None)
@given(
    sends=st.lists(
        st.tuples(
            st.integers(0, 299),
            st.integers(0, len(CHANNELS) - 1),
            st.integers(0, 23),
            st.integers(0, 2),
        ),
        max_size=60,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_respond_invariants(
    small: Population, sends: list[tuple[int, int, int, int]], seed: int
) -> None:
    columns: list[Sequence[int]] = list(zip(*sends, strict=True)) if sends else [[], [], [], []]
    batch = _sends(
        list(columns[0]), list(columns[1]), [float(h) for h in columns[2]], list(columns[3])
    )
    model = ResponseModel()
    state = initial_state(small)
    new, out = respond(small, model, state, MESSAGE, batch, AT, np.random.default_rng(seed))
    assert len(out) == len(batch)
    assert not (out.delivered & ~out.allowed).any()
    assert not (out.clicked & ~out.delivered).any()
    assert not (out.clicked & ~out.opened).any()
    assert not (out.converted & ~out.clicked).any()
    assert ((out.value > 0) == out.converted).all()
    assert not ((out.unsubscribed | out.complained | out.replied) & ~out.delivered).any()
    weights = model.reward
    cost = np.asarray(weights.channel_cost)[out.channel]
    recomputed = np.where(
        out.allowed,
        weights.clicked * out.clicked
        + weights.replied * out.replied
        + weights.unsubscribed * out.unsubscribed
        + weights.complained * out.complained
        - cost,
        0.0,
    )
    np.testing.assert_allclose(out.reward, recomputed)
    assert not (new.consent & ~state.consent).any(), "consent is only ever revoked"
    assert ((new.stage >= 0) & (new.stage < len(STAGES))).all()
    assert (new.conversions >= state.conversions).all()


def test_local_hours_follow_each_time_zone(population: Population) -> None:
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    hours = local_hours(population, summer)
    for i in range(0, population.n, 1013):
        zone = ZoneInfo(population.time_zones[population.time_zone[i]])
        local = summer.astimezone(zone)
        assert hours[i] == pytest.approx(local.hour + local.minute / 60)
