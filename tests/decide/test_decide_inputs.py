"""The inputs of planning: the action set, the eligibility mask with its reasons, context features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.core.errors import InputError, PolicyError
from tummler.core.vocabulary import Stage
from tummler.decide import (
    HISTORY_SIGNALS,
    ContextData,
    ContextFeaturizer,
    Eligibility,
    EligibilityRules,
    Reason,
    build_action_set,
    channel_norms_allow,
    compute_eligibility,
    reason_names,
)
from tummler.decide._eligibility import _count_true

ACTIONS = build_action_set(
    ["email", "sms"],
    [8, 12, 22, 24 + 9],  # mon 08h, mon 12h, mon 22h, tue 09h (local)
    {"email": ["A", "B"], "sms": ["A"]},
    message_attributes={"emotional": 1.0},
)


def test_actions_are_a_channel_major_product() -> None:
    assert ACTIONS.k == 2 * 4 * 2
    a = ACTIONS.index(1, 2, 0)
    assert (ACTIONS.channel[a], ACTIONS.slot[a], ACTIONS.variant[a]) == (1, 2, 0)
    assert ACTIONS.name(a) == "sms@mon-22h/A"
    assert ACTIONS.name(ACTIONS.k) == "no-send"
    assert not ACTIONS.available[ACTIONS.index(1, 0, 1)]  # sms has one variant only
    dense = ACTIONS.features
    assert dense.shape == (ACTIONS.k, ACTIONS.n_features) == (16, len(ACTIONS.feature_names))
    np.testing.assert_allclose(
        dense[a],
        ACTIONS.channel_features[1] + ACTIONS.slot_features[2] + ACTIONS.variant_features[1, 0],
    )
    hour = ACTIONS.feature_names.index("hour_sin")
    np.testing.assert_allclose(dense[ACTIONS.index(0, 1, 0), hour], np.sin(np.pi), atol=1e-6)
    assert (
        ACTIONS.features[
            ACTIONS.index(1, 0, 0), ACTIONS.feature_names.index("channel=sms×emotional")
        ]
        == 1.0
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: build_action_set([], [1], 1), "at least one channel"),
        (lambda: build_action_set(["email", "email"], [1], 1), "duplicates"),
        (lambda: build_action_set(["email"], [-1], 1), "slot_hours"),
        (lambda: build_action_set(["email"], [1], 0), "variants"),
        (lambda: build_action_set(["email", "sms"], [1], {"email": ["A"]}), "sms"),
    ],
)
def test_bad_action_sets(call: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        call()


def _eligibility(**overrides: Any) -> Any:
    args: dict[str, Any] = {
        "has_identity": np.ones((4, 2), bool),
        "consent": np.ones((4, 2), bool),
        "stage": np.zeros(4, int),
        "utc_offset_hours": np.zeros(4),
        "sends_in_window": np.zeros(4, int),
        "channel_sends": np.zeros((4, 2), int),
    }
    rules = overrides.pop("rules", EligibilityRules())
    args.update(overrides)
    return compute_eligibility(ACTIONS, rules=rules, **args)


def test_identity_and_consent_remove_whole_channels() -> None:
    e = _eligibility(
        has_identity=np.array([[1, 1], [0, 1], [1, 1], [1, 1]], bool),
        consent=np.array([[1, 1], [1, 1], [1, 0], [1, 1]], bool),
    )
    mask = e.mask(ACTIONS).reshape(4, 2, 4, 2)
    assert not mask[1, 0].any()
    assert not mask[2, 1].any()
    assert mask[3, 0].any()
    assert e.reasons[1, 0] == Reason.NO_IDENTITY
    assert e.reasons[2, 1] == Reason.NO_CONSENT
    assert e.reasons[0].tolist() == [0, 0]
    assert e.n_eligible(ACTIONS).tolist() == [12, 4, 8, 12]


def test_quiet_hours_wrap_midnight_and_can_spare_a_channel() -> None:
    rules = EligibilityRules(quiet_hours=(21, 9), quiet_channels=np.array([False, True]))
    e = _eligibility(rules=rules)
    assert e.slot_ok[0, 0].tolist() == [True, True, True, True]  # email ignores quiet hours
    assert e.slot_ok[0, 1].tolist() == [False, True, False, True]  # 08h and 22h are quiet
    assert reason_names(int(e.reasons[0, 1])) == ["quiet_hours"]
    assert e.reasons[0, 0] == 0


def test_the_window_is_checked_in_utc_with_each_contacts_offset() -> None:
    # window: Monday 10:00 to 23:00 UTC; a slot at local 12h is 12h UTC at offset 0, 22h at -10.
    rules = EligibilityRules(window=(10.0, 23.0))
    e = _eligibility(utc_offset_hours=np.array([0, -10, 2, 13]), rules=rules)
    assert e.slot_ok[0, 0].tolist() == [False, True, True, False]
    assert e.slot_ok[1, 0].tolist() == [True, True, False, False]  # 18h, 22h, 32h, 43h UTC
    assert e.slot_ok[2, 0].tolist() == [False, True, True, False]  # 6h, 10h, 20h, 31h UTC
    assert e.reasons[0, 0] & Reason.OUTSIDE_WINDOW


def test_fatigue_frequency_stage_and_norms() -> None:
    rules = EligibilityRules(
        fatigue_cap=3,
        frequency_caps=np.array([-1, 1]),
        stage_allowed=np.array([[True] * 5, [False, True, True, True, True]]),
        norm_allowed=np.array([True, True]),
    )
    e = _eligibility(
        sends_in_window=np.array([0, 3, 0, 0]),
        channel_sends=np.array([[0, 0], [0, 0], [9, 1], [0, 0]]),
        stage=np.array([1, 1, 1, 0]),
        rules=rules,
    )
    assert e.channel_ok.tolist() == [[True, True], [False, False], [True, False], [True, False]]
    assert e.reasons[1, 0] == Reason.FATIGUE_CAP
    assert e.reasons[2, 1] == Reason.FREQUENCY_CAP
    assert e.reasons[3, 1] == Reason.STAGE
    norms = channel_norms_allow(
        {"sms": {"emotion": {"calm"}}}, ["email", "sms"], {"emotion": "angry"}
    )
    e = _eligibility(rules=EligibilityRules(norm_allowed=norms))
    assert e.channel_ok[:, 1].sum() == 0
    assert (e.reasons[:, 1] == Reason.CHANNEL_NORM).all()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"consent": np.ones((3, 2), bool)}, r"consent must have shape \(4, 2\)"),
        ({"has_identity": np.ones((4, 3), bool)}, "has_identity"),
        (
            {"rules": EligibilityRules(fatigue_cap=1), "sends_in_window": None},
            "sends_in_window is required",
        ),
        (
            {"rules": EligibilityRules(window=(0, 5)), "utc_offset_hours": None},
            "utc_offset_hours is required",
        ),
        (
            {
                "rules": EligibilityRules(frequency_caps=np.array([1])),
            },
            "rules.frequency_caps",
        ),
        (
            {
                "rules": EligibilityRules(stage_allowed=np.ones((2, 5), bool)),
                "stage": np.full(4, 7),
            },
            "stage values",
        ),
    ],
)
def test_bad_eligibility_inputs(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        _eligibility(**overrides)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quiet_hours": (22, 25)}, "quiet_hours"),
        ({"fatigue_cap": -1}, "fatigue_cap"),
        ({"window": (5.0, 1.0)}, "window"),
    ],
)
def test_bad_rules(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        EligibilityRules(**kwargs)


def _data(n: int = 3) -> ContextData:
    history = np.zeros((n, 2, 2, len(HISTORY_SIGNALS)))
    history[0, 1, 0, :3] = [4, 1, 1]  # sms, 7 days: 4 delivered, 1 click, 1 reply
    activity = np.zeros((n, 24))
    activity[0, 18] = 5
    return ContextData(
        stage=np.array([0, 2, 4])[:n],
        categorical={"country": np.array(["fr", "de", ""], dtype=object)[:n]},
        numeric={"age": np.array([30.0, np.nan, 50.0])[:n]},
        history=history,
        recency_days=np.array([[np.inf, 0.0], [30.0, np.nan], [1.0, 2.0]])[:n],
        activity_hours=activity,
        mentions=np.array([0.0, 3.0, 0.0])[:n],
        sentiment=np.array([np.nan, -0.5, 0.0])[:n],
        degree=np.array([1.0, 0.0, 10.0])[:n],
    )


def test_featurizer_produces_named_finite_columns() -> None:
    featurizer = ContextFeaturizer(
        categorical=("country",),
        numeric=("age",),
        channels=("email", "sms"),
        windows=(7, 30),
        message_attributes=("emotional",),
        hash_buckets=4,
    ).fit(_data())
    x = featurizer.transform(_data(), {"emotional": 1.0})
    names = featurizer.feature_names()
    assert x.shape == (3, len(names))
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    col = {name: i for i, name in enumerate(names)}
    assert x[:, col["bias"]].tolist() == [1, 1, 1]
    assert x[:, col["age"]].tolist() == pytest.approx([-1.0, 0.0, 1.0])
    assert x[0, col["sms:engagement_7d"]] == pytest.approx(2 / 5)
    assert x[:, col["sms:recency"]].tolist() == pytest.approx([1.0, 0.0, np.exp(-2 / 30)], rel=1e-6)
    assert x[0, col["active_hour_sin"]] == pytest.approx(-1.0, abs=1e-6)  # 18h
    assert x[0, col["active_hour_focus"]] == pytest.approx(1.0)
    assert x[1, col["sentiment"]] == pytest.approx(-0.5)
    assert x[:, col[f"stage={Stage.LAPSED.value}"]].tolist() == [0, 0, 1]
    assert x[:, col["message:emotional"]].tolist() == [1, 1, 1]
    hashed = x[:, [col[f"country#{b}"] for b in range(4)]]
    assert hashed.sum(axis=1).tolist() == [1, 1, 0]  # missing country: no bucket


def test_hashing_is_stable_across_batches() -> None:
    featurizer = ContextFeaturizer(categorical=("country",)).fit(_data())
    one = featurizer.transform(_data(1))
    three = featurizer.transform(_data(3))
    np.testing.assert_array_equal(one[0], three[0])


@pytest.mark.parametrize(
    ("featurizer", "data", "message"),
    [
        (ContextFeaturizer(numeric=("age",)), _data(), "call fit"),
        (ContextFeaturizer(categorical=("city",)), _data(), "city"),
        (ContextFeaturizer(channels=("email",), windows=(7, 30)), _data(), "history"),
        (ContextFeaturizer(message_attributes=("urgency",)), _data(), "urgency"),
    ],
)
def test_bad_featurizer_inputs(
    featurizer: ContextFeaturizer, data: ContextData, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        featurizer.transform(data)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cap=st.integers(0, 4))
def test_rules_always_remove_what_they_must(seed: int, cap: int) -> None:
    rng = np.random.default_rng(seed)
    n = 30
    identity, consent = rng.random((n, 2)) < 0.7, rng.random((n, 2)) < 0.7
    sends = rng.integers(0, 6, n)
    e = _eligibility(
        has_identity=identity,
        consent=consent,
        stage=np.zeros(n, int),
        utc_offset_hours=rng.integers(-12, 13, n),
        sends_in_window=sends,
        channel_sends=np.zeros((n, 2), int),
        rules=EligibilityRules(quiet_hours=(21, 9), fatigue_cap=cap),
    )
    mask = e.mask(ACTIONS).reshape(n, 2, 4, 2)
    assert not mask[~identity].any()
    assert not mask[~consent].any()
    assert not mask[sends >= cap].any()
    assert not mask[:, :, [0, 2]].any()  # 08h and 22h are quiet
    removed = ~e.channel_ok
    assert (e.reasons[removed] != 0).all()
    assert ((e.reasons & Reason.NO_CONSENT) != 0).tolist() == (~consent).tolist()


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(0, 30), st.integers(1, 4), st.integers(1, 40)),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_counting_true_values_is_a_sum(
    shape: tuple[int, int, int], density: float, seed: int
) -> None:
    ok = np.random.default_rng(seed).random(shape) < density
    np.testing.assert_array_equal(_count_true(ok), ok.sum(axis=-1))


@settings(max_examples=40, deadline=None)
@given(
    slots=st.sampled_from(
        [[8, 30, 44, 200], list(range(0, 168, 7)), [9, 13, 21, 33, 60, 80, 100, 130]]
    ),
    quiet=st.sampled_from([None, (21, 8), (1, 5)]),
    window=st.sampled_from([None, (0.0, 40.0), (-12.0, 180.0), (10.5, 11.5)]),
    seed=st.integers(0, 1000),
)
def test_the_slot_mask_is_quiet_hours_times_the_window(
    slots: list[int], quiet: tuple[int, int] | None, window: tuple[float, float] | None, seed: int
) -> None:
    actions = build_action_set(["email", "sms", "mastodon"], slots, 1)
    rng = np.random.default_rng(seed)
    n = 25
    offset = rng.integers(-10, 11, n) + rng.choice([0.0, 0.5, 0.75], n)
    observes = np.array([False, True, True])
    e = compute_eligibility(
        actions,
        has_identity=np.ones((n, 3)),
        consent=np.ones((n, 3)),
        utc_offset_hours=offset,
        rules=EligibilityRules(quiet_hours=quiet, quiet_channels=observes, window=window),
    )
    hours = np.asarray(slots)
    expected = np.ones((n, 3, len(slots)), bool)
    if quiet is not None:
        hour = hours % 24
        start, end = quiet
        silent = (hour >= start) & (hour < end) if start <= end else (hour >= start) | (hour < end)
        expected &= ~(observes[:, None] & silent[None, :])[None]
    if window is not None:
        utc = hours[None, :] - offset[:, None]
        expected &= ((utc >= window[0]) & (utc < window[1]))[:, None, :]
    np.testing.assert_array_equal(e.slot_ok, expected)
    np.testing.assert_array_equal(e.n_eligible(actions), expected.sum(axis=(1, 2)))


# ---- the per-contact variant mask ----------------------------------------------------------------


def test_a_variant_mask_removes_those_variants_and_a_channel_left_without_one() -> None:
    ok = np.ones((4, 2, 2), bool)
    ok[1, 0, 0] = False  # contact 1 may get e-mail B only
    ok[2, 0] = False  # contact 2 no e-mail variant at all
    ok[3, 1, 1] = False  # SMS has no variant B: withholding it withholds nothing
    e = _eligibility(variant_ok=ok)
    mask = e.mask(ACTIONS).reshape(4, 2, 4, 2)
    assert not mask[1, 0, :, 0].any()
    assert mask[1, 0, :, 1].all()
    assert not mask[2, 0].any()
    assert mask[2, 1, :, 0].all()
    assert e.channel_ok.tolist() == [[True, True], [True, True], [False, True], [True, True]]
    assert e.reasons.tolist() == [[0, 0]] * 4  # no rule of the strategy's: the caller says why
    # per contact: e-mail's 4 slots × its variants, plus SMS's 4 slots × 1
    assert e.n_eligible(ACTIONS).tolist() == [12, 8, 4, 12]
    np.testing.assert_array_equal(e.n_eligible(ACTIONS), mask.sum(axis=(1, 2, 3)))
    assert e.rows(1, 3).variant_ok is not None
    np.testing.assert_array_equal(e.rows(1, 3).mask(ACTIONS), e.mask(ACTIONS)[1:3])
    np.testing.assert_array_equal(e.take(np.array([3, 1])).mask(ACTIONS), e.mask(ACTIONS)[[3, 1]])


def test_a_variant_mask_that_removes_nothing_is_dropped() -> None:
    ok = np.ones((4, 2, 2), bool)
    ok[:, 1, 1] = False  # only SMS's padding
    e = _eligibility(variant_ok=ok)
    assert e.variant_ok is None
    np.testing.assert_array_equal(e.mask(ACTIONS), _eligibility().mask(ACTIONS))
    assert e.resolve(ACTIONS) is e


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), off=st.floats(0.0, 1.0))
def test_the_count_of_eligible_actions_is_the_dense_mask_with_variants(
    seed: int, off: float
) -> None:
    rng = np.random.default_rng(seed)
    n = 30
    ok = rng.random((n, 2, 2)) >= off
    e = _eligibility(
        has_identity=rng.random((n, 2)) < 0.8,
        consent=rng.random((n, 2)) < 0.8,
        stage=np.zeros(n, int),
        utc_offset_hours=rng.integers(-12, 13, n),
        sends_in_window=np.zeros(n, int),
        channel_sends=np.zeros((n, 2), int),
        rules=EligibilityRules(quiet_hours=(21, 9), window=(0.0, 30.0)),
        variant_ok=ok,
    )
    mask = e.mask(ACTIONS)
    np.testing.assert_array_equal(e.n_eligible(ACTIONS), mask.sum(axis=1))
    allowed = ok[:, ACTIONS.channel, ACTIONS.variant] & ACTIONS.available[None, :]
    assert not mask[~allowed].any()
    channel = mask.reshape(n, 2, -1).any(axis=2)
    np.testing.assert_array_equal(channel, e.channel_ok & e.slot_ok.any(axis=2))


@pytest.mark.parametrize(
    ("variant_ok", "message"),
    [
        (np.ones((4, 2, 3), bool), r"variant_ok must have shape \(4, 2, 2\)"),
        (np.ones((4, 2), bool), r"variant_ok must have shape \(4, 2, 2\)"),
    ],
)
def test_bad_variant_masks(variant_ok: np.ndarray, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        _eligibility(variant_ok=variant_ok)


@pytest.mark.parametrize(
    ("variant_ok", "message"),
    [
        (
            np.ones((3, 2, 2), bool),
            r"variant_ok must be a boolean array of shape \(n=4, n_channels=2",
        ),
        (np.ones((4, 2, 2), np.int64), r"variant_ok must be a boolean array .* int64"),
        ([[[True]]], r"variant_ok must be a boolean array .* list"),
    ],
)
def test_an_eligibility_refuses_a_variant_mask_of_another_shape(
    variant_ok: Any, message: str
) -> None:
    e = _eligibility()
    with pytest.raises(PolicyError, match=message):
        Eligibility(e.channel_ok, e.slot_ok, e.reasons, variant_ok)
    wrong_variants = Eligibility(e.channel_ok, e.slot_ok, e.reasons, np.ones((4, 2, 5), bool))
    with pytest.raises(PolicyError, match=r"eligibility.variant_ok must have shape .* \(4, 2, 2\)"):
        wrong_variants.resolve(ACTIONS)
