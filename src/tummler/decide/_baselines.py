"""Baseline policies: what a learned policy must beat, with exact propensities."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.decide._actions import ActionSet
from tummler.decide._policies import FactorScores, FloatArray, Policy, _load, _zeros

__all__ = ["BestChannelPerSegment", "SendEveryEligibleChannel", "UniformRandom"]


class UniformRandom(Policy):
    """Every eligible action and *no send* equally likely: the exploration baseline (exact propensity)."""

    kind = "uniform_random"
    learns = False

    @property
    def epsilon(self) -> float:
        return 1.0

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
    ) -> FactorScores:
        return FactorScores(*_zeros(x, actions), link="identity")


class SendEveryEligibleChannel(Policy):
    """The fixed rule "send on every eligible channel": every channel scores 1, slot and variant
    the first eligible ones. The planner still applies the lever budget, so the rule sends on every
    eligible channel when the budget allows (or the message is critical)."""

    kind = "send_every_eligible_channel"
    learns = False

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
    ) -> FactorScores:
        channel, slot, variant = _zeros(x, actions)
        channel += 1.0
        return FactorScores(channel, slot, variant, link="identity")


class BestChannelPerSegment(Policy):
    """The fixed rule "use the channel that worked best for this segment", from reward counts.

    Parameters
    ----------
    segment_columns
        Columns of ``x`` that one-hot encode the segment (e.g. the stage block); the segment is the
        argmax. Empty: one segment for everybody.

    A channel's score is its smoothed success rate ``(successes + 1) / (trials + 2)`` in the segment.
    """

    kind = "best_channel_per_segment"

    def __init__(
        self,
        n_context_features: int,
        n_action_features: int,
        n_channels: int,
        *,
        segment_columns: tuple[int, ...] | list[int] = (),
    ) -> None:
        super().__init__(n_context_features, n_action_features, n_channels)
        cols = tuple(int(c) for c in segment_columns)
        if any(not 0 <= c < self.n_context_features for c in cols):
            raise PolicyError(
                f"segment_columns must be columns of x in [0, {self.n_context_features}), got {cols}"
            )
        self.segment_columns = cols
        n_seg = max(len(cols), 1)
        self.successes = np.zeros((n_seg, self.n_channels))
        self.trials = np.zeros((n_seg, self.n_channels))

    def _segments(self, x: FloatArray) -> npt.NDArray[np.intp]:
        if not self.segment_columns:
            return np.zeros(x.shape[0], np.intp)
        return np.asarray(x[:, list(self.segment_columns)].argmax(axis=1), dtype=np.intp)

    def _factor_scores(
        self, x: FloatArray, actions: ActionSet, noise: FloatArray | None
    ) -> FactorScores:
        _, slot, variant = _zeros(x, actions)
        rate = (self.successes + 1.0) / (self.trials + 2.0)
        channel = rate[self._segments(x)].astype(np.float32)
        return FactorScores(channel, slot, variant, link="identity")

    def _update(
        self,
        x: FloatArray,
        actions: ActionSet,
        action_idx: npt.NDArray[np.integer[Any]],
        rewards: npt.NDArray[np.float64],
    ) -> None:
        seg, ch = self._segments(x), actions.channel[action_idx]
        np.add.at(self.trials, (seg, ch), 1.0)
        np.add.at(self.successes, (seg, ch), np.clip(rewards, 0.0, 1.0))

    def _params(self) -> dict[str, Any]:
        return {"segment_columns": list(self.segment_columns)}

    def _state(self) -> dict[str, Any]:
        return {"successes": self.successes.tolist(), "trials": self.trials.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.successes = _load(state, "successes", self.successes.shape)
        self.trials = _load(state, "trials", self.trials.shape)
