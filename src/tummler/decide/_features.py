"""Context features: what is known about each contact, as one float32 row per contact.

The featurizer is a pure function of plain arrays (the app layer reads them from the store): a
constant, hashed categorical attributes, scaled numeric attributes, the relationship stage,
per-channel engagement over several windows, the hours of day the person tends to act, social
signals and the message's attributes. Because the policies are bilinear (``xᵀ B φ(a)``), every context
feature interacts with every action feature: "acts in the evening" meets the slot's hour, "replied
on Mastodon last month" meets the channel, "emotional message" meets the channel again.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from tummler.core.errors import InputError
from tummler.core.vocabulary import Stage

__all__ = ["HISTORY_SIGNALS", "ContextData", "ContextFeaturizer"]

#: The order of the last axis of :attr:`ContextData.history`.
HISTORY_SIGNALS = ("delivered", "clicked", "replied", "converted", "unsubscribed", "complained")

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class ContextData:
    """Plain arrays about ``n`` contacts, as the app layer derives them from the store.

    Attributes
    ----------
    stage
        ``(n,)`` index of each contact's stage in :class:`~tummler.core.vocabulary.Stage` order.
    categorical
        Attribute name → ``(n,)`` strings (``""`` or ``None`` when missing).
    numeric
        Attribute name → ``(n,)`` floats (``nan`` when missing).
    history
        ``(n, n_channels, n_windows, 6)`` event counts per channel and window, last axis in
        :data:`HISTORY_SIGNALS` order.
    recency_days
        ``(n, n_channels)`` days since the last engagement on the channel (``inf``: never).
    activity_hours
        ``(n, 24)`` counts of the person's actions by local hour of day.
    mentions, sentiment, degree
        ``(n,)`` mentions of the brand, their mean sentiment in [-1, 1] (``nan``: none), degree in
        the social graph.
    """

    stage: npt.NDArray[np.int64]
    categorical: Mapping[str, npt.NDArray[np.object_]] = field(default_factory=dict)
    numeric: Mapping[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    history: npt.NDArray[np.float64] | None = None
    recency_days: npt.NDArray[np.float64] | None = None
    activity_hours: npt.NDArray[np.float64] | None = None
    mentions: npt.NDArray[np.float64] | None = None
    sentiment: npt.NDArray[np.float64] | None = None
    degree: npt.NDArray[np.float64] | None = None

    @property
    def n(self) -> int:
        return int(np.asarray(self.stage).shape[0])


@dataclass(frozen=True)
class ContextFeaturizer:
    """Turns :class:`ContextData` into a ``(n, d_x)`` float32 matrix; fit once, transform many times.

    Parameters
    ----------
    categorical
        Categorical attributes to hash, each into ``hash_buckets`` one-hot columns (stable across
        runs and machines: CRC-32 of ``name=value``), so that unseen values need no refit.
    numeric
        Numeric attributes, standardized with the mean and scale seen by :meth:`fit`.
    channels
        The channel names of the history arrays (for feature names).
    windows
        The history windows in days (for feature names), e.g. ``(7, 30, 90)``.
    message_attributes
        Names of numeric message attributes appended to every row.
    hash_buckets
        Columns per hashed categorical.
    recency_scale_days
        Recency enters as ``exp(−days / scale)``: 1 for today, 0 for never.

    Examples
    --------
    >>> data = ContextData(stage=np.array([0, 2]), numeric={"age": np.array([30.0, 50.0])})
    >>> featurizer = ContextFeaturizer(numeric=("age",)).fit(data)
    >>> featurizer.transform(data).shape[1] == len(featurizer.feature_names())
    True
    """

    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    windows: tuple[int, ...] = ()
    message_attributes: tuple[str, ...] = ()
    hash_buckets: int = 8
    recency_scale_days: float = 30.0
    numeric_mean: tuple[float, ...] = ()
    numeric_scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.hash_buckets < 1:
            raise InputError(f"hash_buckets must be at least 1, got {self.hash_buckets}")
        if self.recency_scale_days <= 0:
            raise InputError(f"recency_scale_days must be positive, got {self.recency_scale_days}")

    @property
    def fitted(self) -> bool:
        return len(self.numeric_mean) == len(self.numeric)

    def fit(self, data: ContextData) -> ContextFeaturizer:
        """Learn the numeric attributes' mean and scale (missing values ignored)."""
        means, scales = [], []
        for name in self.numeric:
            values = self._numeric(data, name)
            finite = values[np.isfinite(values)]
            mean = float(finite.mean()) if finite.size else 0.0
            scale = float(finite.std()) if finite.size > 1 else 1.0
            means.append(mean)
            scales.append(scale if scale > 0 else 1.0)
        return replace(self, numeric_mean=tuple(means), numeric_scale=tuple(scales))

    def feature_names(self) -> list[str]:
        """The name of every column :meth:`transform` produces."""
        names = ["bias"]
        names += [f"{c}#{b}" for c in self.categorical for b in range(self.hash_buckets)]
        names += list(self.numeric)
        names += [f"stage={s.value}" for s in Stage]
        for ch in self.channels:
            names += [f"{ch}:engagement_{w}d" for w in self.windows]
            names += [f"{ch}:negative", f"{ch}:recency"]
        names += ["active_hour_sin", "active_hour_cos", "active_hour_focus"]
        names += ["mentions", "sentiment", "degree"]
        names += [f"message:{a}" for a in self.message_attributes]
        return names

    def transform(
        self, data: ContextData, message: Mapping[str, float] | None = None
    ) -> FloatArray:
        """The ``(n, d_x)`` context matrix (see :meth:`feature_names`).

        Raises
        ------
        InputError
            When an array has the wrong shape, a named attribute is missing, or the featurizer was
            not fitted but has numeric attributes.
        """
        if not self.fitted:
            raise InputError("the featurizer has numeric attributes; call fit(data) first")
        n = data.n
        stage = np.asarray(data.stage)
        if stage.size and (stage.min() < 0 or stage.max() >= len(Stage)):
            raise InputError(f"stage must index Stage (0..{len(Stage) - 1})", field="stage")
        blocks: list[npt.NDArray[np.float64]] = [np.ones((n, 1))]
        for name in self.categorical:
            if name not in data.categorical:
                raise InputError("categorical attribute missing from the data", field=name)
            blocks.append(self._hashed(np.asarray(data.categorical[name], dtype=object), name))
        for j, name in enumerate(self.numeric):
            values = (self._numeric(data, name) - self.numeric_mean[j]) / self.numeric_scale[j]
            blocks.append(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)[:, None])
        blocks.append(np.eye(len(Stage))[stage])
        blocks.append(self._history(data, n))
        blocks.append(self._activity(data, n))
        blocks.append(self._social(data, n))
        attrs = dict(message or {})
        missing = [a for a in self.message_attributes if a not in attrs]
        if missing:
            raise InputError(f"message attributes {missing} are missing", field="message")
        blocks.append(np.tile([float(attrs[a]) for a in self.message_attributes], (n, 1)))
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)

    # ---- blocks ----------------------------------------------------------------------------------

    def _numeric(self, data: ContextData, name: str) -> npt.NDArray[np.float64]:
        if name not in data.numeric:
            raise InputError("numeric attribute missing from the data", field=name)
        values = np.asarray(data.numeric[name], dtype=np.float64)
        if values.shape != (data.n,):
            raise InputError(f"must have shape ({data.n},), got {values.shape}", field=name)
        return values

    def _hashed(self, values: npt.NDArray[np.object_], name: str) -> npt.NDArray[np.float64]:
        if values.shape != (values.shape[0],):
            raise InputError("must be a 1-D array of strings", field=name)
        unique, inverse = np.unique(values.astype(str), return_inverse=True)
        buckets = np.array(
            [zlib.crc32(f"{name}={u}".encode()) % self.hash_buckets for u in unique], np.int64
        )
        out = np.zeros((values.shape[0], self.hash_buckets))
        present = np.array([u not in ("", "None") for u in unique])[inverse]
        out[np.flatnonzero(present), buckets[inverse][present]] = 1.0
        return out

    def _history(self, data: ContextData, n: int) -> npt.NDArray[np.float64]:
        n_ch, n_w = len(self.channels), len(self.windows)
        if n_ch == 0:
            return np.zeros((n, 0))
        if data.history is None or data.recency_days is None:
            raise InputError(
                "history and recency_days are required when channels are set", field="history"
            )
        history = np.asarray(data.history, dtype=np.float64)
        if history.shape != (n, n_ch, n_w, len(HISTORY_SIGNALS)):
            raise InputError(
                f"must have shape ({n}, {n_ch}, {n_w}, {len(HISTORY_SIGNALS)}), got {history.shape}",
                field="history",
            )
        recency = np.asarray(data.recency_days, dtype=np.float64)
        if recency.shape != (n, n_ch):
            raise InputError(
                f"must have shape ({n}, {n_ch}), got {recency.shape}", field="recency_days"
            )
        delivered = history[..., 0]
        engaged = history[..., 1:4].sum(axis=-1)
        engagement = engaged / (delivered + 1.0)  # (n, n_ch, n_w), smoothed
        negative = np.log1p(history[..., 4:6].sum(axis=(-1, -2)))  # (n, n_ch)
        fresh = np.exp(-np.where(np.isnan(recency), np.inf, recency) / self.recency_scale_days)
        per_channel = np.concatenate([engagement, negative[..., None], fresh[..., None]], axis=2)
        return per_channel.reshape(n, -1)

    def _activity(self, data: ContextData, n: int) -> npt.NDArray[np.float64]:
        if data.activity_hours is None:
            return np.zeros((n, 3))
        counts = np.asarray(data.activity_hours, dtype=np.float64)
        if counts.shape != (n, 24):
            raise InputError(
                f"must have shape ({n}, 24), got {counts.shape}", field="activity_hours"
            )
        angle = 2 * np.pi * np.arange(24) / 24
        total = counts.sum(axis=1)
        safe = np.where(total > 0, total, 1.0)
        sin, cos = counts @ np.sin(angle) / safe, counts @ np.cos(angle) / safe
        focus = np.hypot(sin, cos)  # 1: always the same hour; 0: no habit (or no data)
        unit = np.where(focus > 0, focus, 1.0)
        return np.stack([sin / unit * focus, cos / unit * focus, focus], axis=1)

    def _social(self, data: ContextData, n: int) -> npt.NDArray[np.float64]:
        def column(value: npt.NDArray[np.float64] | None, name: str) -> npt.NDArray[np.float64]:
            if value is None:
                return np.zeros(n)
            array = np.asarray(value, dtype=np.float64)
            if array.shape != (n,):
                raise InputError(f"must have shape ({n},), got {array.shape}", field=name)
            return array

        mentions = np.log1p(np.maximum(column(data.mentions, "mentions"), 0.0))
        sentiment = np.nan_to_num(np.clip(column(data.sentiment, "sentiment"), -1, 1), nan=0.0)
        degree = np.log1p(np.maximum(column(data.degree, "degree"), 0.0))
        return np.stack([mentions, sentiment, degree], axis=1)
