"""What the simulation sends: messages and their variants, the action space, one round's sends."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError
from tummler.simulate._tables import CHANNELS, EMOTIONS, TOPICS, FloatArray, IntArray

__all__ = ["LENGTHS", "URGENCIES", "ActionSpace", "Message", "Sends", "Variant"]

URGENCIES = ("low", "normal", "high", "critical")
LENGTHS = ("short", "long")

_C = len(CHANNELS)


def _check_level(name: str, value: str, levels: tuple[str, ...]) -> None:
    if value not in levels:
        raise InputError(f"unknown {name} {value!r}; use one of {', '.join(levels)}", field=name)


@dataclass(frozen=True)
class Variant:
    """One wording of a message: its emotion and its length suit some channels more than others."""

    key: str
    emotion: str = "neutral"
    length: str = "short"

    def __post_init__(self) -> None:
        _check_level("emotion", self.emotion, EMOTIONS)
        _check_level("length", self.length, LENGTHS)

    def attributes(self) -> dict[str, str]:
        """The variant's attributes, as a variant's metadata would state them."""
        return {"emotion": self.emotion, "length": self.length}


@dataclass(frozen=True)
class Message:
    """What a campaign says: its topic, whether it is public, its urgency, and its variants.

    ``value_scale`` multiplies every person's mean conversion value (a premium product: > 1).
    """

    key: str
    topic: str = "product"
    public: bool = False
    urgency: str = "normal"
    variants: tuple[Variant, ...] = (Variant("a"),)
    value_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_level("topic", self.topic, TOPICS)
        _check_level("urgency", self.urgency, URGENCIES)
        if not self.variants:
            raise InputError("a message needs at least one variant", field="variants")
        if not self.value_scale >= 0.0:
            raise InputError(
                f"value_scale must be >= 0, got {self.value_scale}", field="value_scale"
            )

    def attributes(self) -> dict[str, str | bool]:
        """The message's attributes as a campaign file would state them."""
        return {"topic": self.topic, "public": self.public, "urgency": self.urgency}


@dataclass(frozen=True)
class ActionSpace:
    """Channel × local send hour × variant; action ``k`` (one past the last) is *no send*.

    Action ``a`` is ``(i * len(hours) + s) * n_variants + v`` for the ``i``-th channel of
    ``channels``, the ``s``-th hour and variant ``v``; ``channel``, ``hour`` and ``variant`` give
    each action's parts as arrays (channel as an index into ``CHANNELS``). The default hours
    include 21:00, inside the model's quiet hours, where complaints are more likely.
    """

    channels: tuple[int, ...] = tuple(range(_C))
    hours: tuple[int, ...] = (8, 12, 18, 21)
    n_variants: int = 1

    def __post_init__(self) -> None:
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise InputError("channels must be a non-empty tuple without repeats", field="channels")
        if any(not 0 <= c < _C for c in self.channels):
            raise InputError(
                f"channels are indices into CHANNELS (0 to {_C - 1}), got {self.channels}",
                field="channels",
            )
        if not self.hours or any(not 0 <= h < 24 for h in self.hours):
            raise InputError(f"hours must be local hours 0 to 23, got {self.hours}", field="hours")
        if self.n_variants < 1:
            raise InputError(f"n_variants must be >= 1, got {self.n_variants}", field="n_variants")

    @classmethod
    def for_message(
        cls,
        message: Message,
        *,
        channels: tuple[int, ...] = tuple(range(_C)),
        hours: tuple[int, ...] = (8, 12, 18, 21),
    ) -> ActionSpace:
        """The action space with one variant per variant of ``message``."""
        return cls(channels=channels, hours=hours, n_variants=len(message.variants))

    @property
    def k(self) -> int:
        """Number of send actions (no send is action ``k``)."""
        return len(self.channels) * len(self.hours) * self.n_variants

    @cached_property
    def channel(self) -> IntArray:
        grid = np.asarray(self.channels, dtype=np.int64)
        return np.repeat(grid, len(self.hours) * self.n_variants)

    @cached_property
    def hour(self) -> IntArray:
        grid = np.repeat(np.asarray(self.hours, dtype=np.int64), self.n_variants)
        return np.tile(grid, len(self.channels))

    @cached_property
    def variant(self) -> IntArray:
        return np.tile(
            np.arange(self.n_variants, dtype=np.int64), len(self.channels) * len(self.hours)
        )

    def names(self) -> tuple[str, ...]:
        """``"email@08:00/v0"``-style names, then ``"no send"``."""
        return (
            *(
                f"{CHANNELS[c].value}@{h:02d}:00/v{v}"
                for c, h, v in zip(self.channel, self.hour, self.variant, strict=True)
            ),
            "no send",
        )

    def sends(self, chosen: npt.ArrayLike) -> Sends:
        """Turn chosen actions into sends.

        Parameters
        ----------
        chosen
            ``(n,)`` one action per contact, or ``(n, L)`` up to ``L`` levers per contact; the
            value ``k`` (or any negative value) means no send.

        Raises
        ------
        InputError
            When an action is above ``k`` or the array has more than two dimensions.
        """
        array = np.asarray(chosen, dtype=np.int64)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise InputError(
                f"chosen must be (n,) or (n, L), got shape {array.shape}", field="chosen"
            )
        if (array > self.k).any():
            raise InputError(
                f"chosen holds action {int(array.max())} but there are only {self.k} send actions "
                f"(and {self.k} = no send)",
                field="chosen",
            )
        contact, lever = np.nonzero((array >= 0) & (array < self.k))
        action = array[contact, lever]
        return Sends(
            contact=contact.astype(np.int64),
            channel=self.channel[action],
            hour=self.hour[action].astype(np.float64),
            variant=self.variant[action],
        )


@dataclass(frozen=True, eq=False)
class Sends:
    """Sends of one round: to whom, on which channel, at which local hour, which variant."""

    contact: IntArray
    channel: IntArray
    hour: FloatArray
    variant: IntArray

    def __len__(self) -> int:
        return int(self.contact.shape[0])
