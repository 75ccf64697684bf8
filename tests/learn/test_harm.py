"""Harm per send per channel (tummler.learn.harm): known answers, accumulation, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tummler.core.errors import InputError, PolicyError
from tummler.learn.harm import PRIOR_SENDS, ChannelHarm, clip_rewards, clipped_harm


def test_clipped_harm_is_what_clipping_to_0_1_drops_below_0() -> None:
    reward = np.array([1.0, 0.0, -1.0, -2.0, 19.0, 0.4])
    assert clipped_harm(reward).tolist() == [0.0, 0.0, 1.0, 2.0, 0.0, 0.0]
    # below 0 it is exactly what np.clip to [0, 1] adds back; above 0 nothing
    below = reward < 0
    assert clipped_harm(reward)[below].tolist() == (np.clip(reward, 0, 1) - reward)[below].tolist()
    with pytest.raises(PolicyError, match="NaN"):
        clipped_harm([0.0, np.nan])


def test_per_send_shrinks_each_channel_toward_the_pooled_rate() -> None:
    harm = ChannelHarm().add(["sms"] * 100 + ["email"] * 300, [1.0] * 40 + [0.0] * 360)
    assert dict(harm.sends) == {"sms": 100.0, "email": 300.0}
    assert dict(harm.lost) == {"sms": 40.0, "email": 0.0}
    assert harm.pooled == pytest.approx(0.1)
    sms, email, never = harm.per_send(["sms", "email", "whatsapp"])
    assert sms == pytest.approx((40 + 0.1 * 200) / (100 + 200))  # 0.2
    assert email == pytest.approx(0.1 * 200 / (300 + 200))  # 0.04
    assert never == pytest.approx(0.1)  # never sent: the pooled rate
    # with many sends a channel's own rate wins
    many = ChannelHarm().add(["sms"] * 100_000 + ["email"], [0.5] * 100_000 + [0.0])
    assert many.per_send(["sms"])[0] == pytest.approx(0.5, abs=1e-3)


def test_nothing_seen_prices_nothing_and_is_falsy() -> None:
    empty = ChannelHarm()
    assert not empty
    assert empty.per_send(["email", "sms"]).tolist() == [0.0, 0.0]
    assert ChannelHarm().add(["email"], [0.0])  # a send without harm is something seen


def test_adding_in_parts_equals_adding_at_once() -> None:
    rng = np.random.default_rng(0)
    channel = rng.choice(["email", "sms", "mastodon"], size=500)
    lost = rng.exponential(size=500) * (rng.random(500) < 0.1)
    whole = ChannelHarm().add(channel, lost)
    parts = ChannelHarm().add(channel[:123], lost[:123]).add(channel[123:], lost[123:])
    assert dict(parts.sends) == dict(whole.sends)
    assert parts.lost == pytest.approx(dict(whole.lost))


def test_round_trip_and_policies_stored_before_harm() -> None:
    harm = ChannelHarm(prior_sends=50.0).add(["sms", "email"], [2.0, 0.0])
    again = ChannelHarm.from_dict(harm.to_dict())
    assert again == harm
    assert again.per_send(["sms"]).tolist() == harm.per_send(["sms"]).tolist()
    assert ChannelHarm.from_dict(None) == ChannelHarm()
    assert ChannelHarm().prior_sends == PRIOR_SENDS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "channel_harm cannot be read"),
        ({}, "channel_harm cannot be read.*'channels'"),
        ({"channels": {"sms": {"sends": 3}}}, "'lost'"),
        ({"channels": {"sms": {"sends": -1, "lost": 0}}}, "sends of channel 'sms' must be"),
        ({"channels": {"sms": {"sends": 1, "lost": "x"}}}, "lost of channel 'sms' must be"),
        ({"channels": {}, "prior_sends": 0}, "prior_sends must be a positive"),
    ],
)
def test_malformed_stored_harm_names_the_policy_and_the_field(data: Any, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        ChannelHarm.from_dict(data, origin="policy version p@3")
    assert caught.value.file == "policy version p@3"
    assert caught.value.field == "channel_harm"


@pytest.mark.parametrize(
    ("channel", "harm", "message"),
    [
        (["sms"], [1.0, 2.0], "one length"),
        ([["sms"]], [[1.0]], "one-dimensional"),
        (["sms"], [-1.0], "finite numbers >= 0"),
        (["sms"], [np.inf], "finite numbers >= 0"),
    ],
)
def test_bad_additions_are_refused(channel: Any, harm: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        ChannelHarm().add(channel, harm)


def test_counts_must_name_the_same_channels() -> None:
    with pytest.raises(PolicyError, match="same channels"):
        ChannelHarm({"sms": 1.0}, {})


def test_clip_rewards_only_for_a_logistic_policy() -> None:
    reward, lost = clip_rewards("logistic_thompson", [1.0, -1.0, 2.5, 0.5])
    assert reward.tolist() == [1.0, 0.0, 1.0, 0.5]
    assert lost is not None
    assert lost.tolist() == [0.0, 1.0, 0.0, 0.0]
    reward, lost = clip_rewards("linear_thompson", [1.0, -1.0, 2.5])
    assert (reward.tolist(), lost) == ([1.0, -1.0, 2.5], None)
