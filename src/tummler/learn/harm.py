"""Harm per send, per channel: the unsubscribes and complaints a send risks. Pure.

A logistic policy learns the probability of the objective's KPI event, so its rewards are clipped
to [0, 1]. An unsubscribe after a send that was not clicked then counts as a plain failure, and the
penalty the strategy puts on it is lost: on its own the policy would not tell a channel that
annoys people from one that merely goes unread. The planner puts that penalty back as a cost per
send. Per channel, it is the part of the rewards that clipping took below 0, per send, shrunk
toward the rate pooled over all channels by ``prior_sends`` pseudo-sends::

    harm[c] = (lost[c] + pooled · prior_sends) / (sends[c] + prior_sends)
    pooled  = Σ lost / Σ sends

So a channel with few sends starts from what the others showed, and a channel the brand never used
gets the pooled rate. ``sends`` and ``lost`` are sufficient statistics: a version learned from a
parent adds its decisions' sums to the parent's, as its posterior adds their evidence.

It is kept per channel, the granularity of a channel's cost in
:class:`tummler.decide.SelectionRules`; the simulator benchmark (``benchmarks/learn.py``) prices
its learner's sends with it too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError, PolicyError

__all__ = ["PRIOR_SENDS", "ChannelHarm", "clip_rewards", "clipped_harm"]

#: Pseudo-sends of the pooled rate in each channel's estimate: at 200 sends a channel's own rate
#: and the pooled one weigh the same.
PRIOR_SENDS = 200.0


def clipped_harm(reward: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per decision, the part of its reward below 0 that clipping to [0, 1] drops (``≥ 0``).

    >>> clipped_harm([1.0, 0.0, -1.0, -2.0, 0.5]).tolist()
    [0.0, 0.0, 1.0, 2.0, 0.0]
    """
    r = np.asarray(reward, dtype=np.float64)
    if np.isnan(r).any():
        raise PolicyError("reward holds NaN; rewards must be numbers")
    return np.maximum(-r, 0.0)


def clip_rewards(
    kind: str, reward: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """The rewards a policy of ``kind`` learns from, and per decision the harm clipping dropped.

    A ``logistic_thompson`` policy learns a probability, so its rewards are clipped to [0, 1] and
    what fell below 0 comes back as harm (to add to a :class:`ChannelHarm`); every other kind
    learns the rewards as they are, and the harm is ``None``.

    >>> reward, harm = clip_rewards("logistic_thompson", [1.0, -1.0, 3.0])
    >>> reward.tolist(), harm.tolist()
    ([1.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    >>> clip_rewards("linear_thompson", [-1.0])[1] is None
    True
    """
    r = np.asarray(reward, dtype=np.float64)
    if kind != "logistic_thompson":
        return r, None
    return np.clip(r, 0.0, 1.0), clipped_harm(r)


@dataclass(frozen=True)
class ChannelHarm:
    """Per channel, the sends seen and the harm that followed them (in reward units).

    Attributes
    ----------
    sends, lost
        Channel id → sends, and → the summed :func:`clipped_harm` of those sends.
    prior_sends
        Pseudo-sends of the pooled rate in each channel's estimate.
    """

    sends: Mapping[str, float] = field(default_factory=dict)
    lost: Mapping[str, float] = field(default_factory=dict)
    prior_sends: float = PRIOR_SENDS

    def __post_init__(self) -> None:
        if set(self.sends) != set(self.lost):
            raise PolicyError(
                f"sends and lost must name the same channels, got {sorted(self.sends)} and "
                f"{sorted(self.lost)}"
            )
        for name, values in (("sends", self.sends), ("lost", self.lost)):
            for channel, value in values.items():
                if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                    raise PolicyError(
                        f"{name} of channel {channel!r} must be a finite number >= 0, got {value!r}"
                    )
        if not (math.isfinite(self.prior_sends) and self.prior_sends > 0):
            raise PolicyError(f"prior_sends must be a positive number, got {self.prior_sends!r}")

    def __bool__(self) -> bool:
        return sum(self.sends.values()) > 0

    def add(self, channel: Sequence[str] | npt.ArrayLike, harm: npt.ArrayLike) -> ChannelHarm:
        """These counts plus one send per entry of ``channel`` with its ``harm`` (``≥ 0``)."""
        names = np.asarray(channel, dtype=object)
        lost = np.asarray(harm, dtype=np.float64)
        if names.shape != lost.shape or names.ndim != 1:
            raise PolicyError(
                f"channel and harm must be one-dimensional and of one length, got shapes "
                f"{names.shape} and {lost.shape}"
            )
        if not np.isfinite(lost).all() or (lost < 0).any():
            raise PolicyError("harm must hold finite numbers >= 0 (see clipped_harm)")
        sends, total = dict(self.sends), dict(self.lost)
        found, index = np.unique(names.astype(str), return_inverse=True)
        counts = np.bincount(index, minlength=found.size)
        sums = np.bincount(index, weights=lost, minlength=found.size)
        for c, name in enumerate(found.tolist()):
            sends[name] = sends.get(name, 0.0) + float(counts[c])
            total[name] = total.get(name, 0.0) + float(sums[c])
        return ChannelHarm(sends, total, self.prior_sends)

    @property
    def pooled(self) -> float:
        """The harm per send over all channels (0 before any send)."""
        n = sum(self.sends.values())
        return sum(self.lost.values()) / n if n else 0.0

    def per_send(self, channels: Sequence[str]) -> npt.NDArray[np.float64]:
        """``(len(channels),)`` each channel's shrunk harm per send; 0 for all before any send."""
        pooled, k = self.pooled, self.prior_sends
        return np.array(
            [(self.lost.get(c, 0.0) + pooled * k) / (self.sends.get(c, 0.0) + k) for c in channels],
            np.float64,
        )

    def listing(self, channels: Sequence[str]) -> str:
        """``"email 0.004, sms 0.02"``: each channel's harm per send, for notes."""
        return ", ".join(
            f"{c} {h:.4g}" for c, h in zip(channels, self.per_send(channels), strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"prior_sends", "channels": {id: {"sends", "lost"}}}``, JSON-ready."""
        return {
            "prior_sends": self.prior_sends,
            "channels": {
                c: {"sends": self.sends[c], "lost": self.lost[c]} for c in sorted(self.sends)
            },
        }

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "policy") -> ChannelHarm:
        """Read :meth:`to_dict`'s object; ``None`` (a policy stored before harm was) is empty.

        Raises
        ------
        InputError
            Naming ``origin`` and the field, when the object is malformed.
        """
        if data is None:
            return cls()
        try:
            channels = data["channels"]
            return cls(
                {str(c): v["sends"] for c, v in channels.items()},
                {str(c): v["lost"] for c, v in channels.items()},
                float(data.get("prior_sends", PRIOR_SENDS)),
            )
        except (AttributeError, KeyError, TypeError, ValueError, PolicyError) as exc:
            raise InputError(
                f"channel_harm cannot be read ({exc!s}); it needs channels: {{id: {{sends, "
                f"lost}}}}; store the policy again with tummler learn",
                file=origin,
                field="channel_harm",
            ) from exc
