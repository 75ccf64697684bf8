"""Rewards per decision: the objective's KPI, minus penalties for unsubscribes and complaints.

A decision's reward is what the learner maximizes and what off-policy evaluation estimates, so it must
say what the brand wants — not what is easy to count. For one decision and the events attributed to it::

    reward = kpi(events of the KPI's type)
             + open_weight         · [at least one ``opened``]
             − unsubscribe_penalty · [at least one ``unsubscribed``]
             − complaint_penalty   · [at least one ``complained``]

where ``kpi`` is, by the spec's ``measure``:

=========  ======================================================================================
measure    KPI term
=========  ======================================================================================
``rate``   1 when the decision has at least one KPI event, else 0 (a bounded, binary reward)
``count``  the number of KPI events (e.g. replies)
``value``  the sum of the KPI events' values (e.g. revenue of ``converted``); an event without a
           value counts as 0
=========  ======================================================================================

Penalties count once per decision, whatever the number of events: two providers reporting the same
unsubscribe, or a complaint followed by an unsubscribe of the same person, must not punish twice. Opens
are stored but weigh nothing by default, because privacy proxies open mail on their own.

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from tummler.core.errors import PolicyError
from tummler.core.vocabulary import EventType

__all__ = ["KPI_MEASURES", "RewardSpec", "decision_rewards"]

Measure = Literal["rate", "count", "value"]
KPI_MEASURES: tuple[str, ...] = ("rate", "count", "value")

#: Event types a KPI may not be: nobody chose them (providers report them, proxies open mail).
_NOT_A_KPI = frozenset({EventType.SENT, EventType.DELIVERED, EventType.BOUNCED, EventType.OPENED})


@dataclass(frozen=True, slots=True)
class RewardSpec:
    """How one objective turns attributed events into a reward.

    Attributes
    ----------
    kpi_event
        The event type the objective counts (``converted``, ``replied``, ``clicked``, ``visited``).
    measure
        ``rate`` (did it happen), ``count`` (how often) or ``value`` (sum of values); see the module.
    unsubscribe_penalty
        Subtracted once when the decision was followed by an unsubscribe. Non-negative.
    complaint_penalty
        Subtracted once when the decision was followed by a complaint (spam report). Non-negative.
    open_weight
        Added once when the decision was followed by an open; 0 by default (opens are not a reward).
    """

    kpi_event: EventType
    measure: Measure = "rate"
    unsubscribe_penalty: float = 1.0
    complaint_penalty: float = 2.0
    open_weight: float = 0.0

    def __post_init__(self) -> None:
        try:
            kpi = EventType(self.kpi_event)
        except ValueError:
            raise PolicyError(
                f"kpi_event {self.kpi_event!r} is not an event type; use one of "
                + ", ".join(sorted(t.value for t in EventType if t not in _NOT_A_KPI))
            ) from None
        if kpi in _NOT_A_KPI or kpi in (EventType.UNSUBSCRIBED, EventType.COMPLAINED):
            raise PolicyError(
                f"kpi_event {kpi.value!r} is not a response a person chose to give the brand; "
                "use clicked, replied, converted or visited"
            )
        object.__setattr__(self, "kpi_event", kpi)
        if self.measure not in KPI_MEASURES:
            raise PolicyError(f"measure {self.measure!r} is not one of {', '.join(KPI_MEASURES)}")
        for name in ("unsubscribe_penalty", "complaint_penalty"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise PolicyError(
                    f"{name} must be a finite number >= 0 (it is subtracted), got {value!r}"
                )
        if not (isinstance(self.open_weight, int | float) and math.isfinite(self.open_weight)):
            raise PolicyError(f"open_weight must be a finite number, got {self.open_weight!r}")

    @classmethod
    def for_kpi(
        cls,
        event: EventType | str,
        measure: str,
        *,
        unsubscribe_penalty: float = 1.0,
        complaint_penalty: float = 2.0,
        open_weight: float = 0.0,
    ) -> RewardSpec:
        """The spec for a strategy KPI (``measure`` ``rate`` or ``value``, as in ``strategy.yaml``)."""
        if measure not in KPI_MEASURES:
            raise PolicyError(f"measure {measure!r} is not one of {', '.join(KPI_MEASURES)}")
        return cls(
            EventType(event),
            cast(Measure, measure),  # checked against KPI_MEASURES above
            unsubscribe_penalty=unsubscribe_penalty,
            complaint_penalty=complaint_penalty,
            open_weight=open_weight,
        )


def decision_rewards(
    n_decisions: int,
    event_decision: npt.ArrayLike,
    event_type: Sequence[str] | npt.ArrayLike,
    event_value: npt.ArrayLike | None,
    spec: RewardSpec,
) -> NDArray[np.float64]:
    """The reward of each of ``n_decisions`` decisions from the events attributed to them.

    Parameters
    ----------
    n_decisions
        How many decisions there are; decisions without events get the reward 0.
    event_decision
        ``(m,)`` for each event, the index (``0 .. n_decisions - 1``) of the decision it is attributed
        to; ``-1`` for an event attributed to none (it is ignored).
    event_type
        ``(m,)`` each event's type (:class:`~tummler.core.vocabulary.EventType` values).
    event_value
        ``(m,)`` each event's value, NaN where it has none; ``None``: no event has a value.
    spec
        The objective's KPI and penalties.

    Returns
    -------
    numpy.ndarray
        ``(n_decisions,)`` float rewards.

    Raises
    ------
    PolicyError
        When the arrays disagree in length, an index is out of range or a value is infinite.

    Examples
    --------
    >>> spec = RewardSpec(EventType.CONVERTED, "value", unsubscribe_penalty=5.0)
    >>> decision_rewards(
    ...     3, [0, 0, 1, 2], ["converted", "opened", "unsubscribed", "converted"],
    ...     [40.0, float("nan"), float("nan"), 10.0], spec,
    ... ).tolist()
    [40.0, -5.0, 10.0]
    """
    decision, types, values = _checked_events(n_decisions, event_decision, event_type, event_value)
    attributed = decision >= 0
    decision, types, values = decision[attributed], types[attributed], values[attributed]

    def flagged(kind: EventType) -> NDArray[np.float64]:
        hit = np.zeros(n_decisions, dtype=np.float64)
        hit[decision[types == kind.value]] = 1.0
        return hit

    kpi_rows = types == spec.kpi_event.value
    reward: NDArray[np.float64]
    if spec.measure == "rate":
        reward = flagged(spec.kpi_event)
    elif spec.measure == "count":
        reward = np.bincount(decision[kpi_rows], minlength=n_decisions).astype(np.float64)
    else:
        amounts = np.nan_to_num(values[kpi_rows], nan=0.0)
        reward = np.bincount(decision[kpi_rows], weights=amounts, minlength=n_decisions).astype(
            np.float64
        )
    if spec.open_weight:
        reward += spec.open_weight * flagged(EventType.OPENED)
    if spec.unsubscribe_penalty:
        reward -= spec.unsubscribe_penalty * flagged(EventType.UNSUBSCRIBED)
    if spec.complaint_penalty:
        reward -= spec.complaint_penalty * flagged(EventType.COMPLAINED)
    return reward


def _checked_events(
    n_decisions: int,
    event_decision: npt.ArrayLike,
    event_type: Sequence[str] | npt.ArrayLike,
    event_value: npt.ArrayLike | None,
) -> tuple[NDArray[np.int64], NDArray[np.object_], NDArray[np.float64]]:
    """The events' decision indices, types and values, checked to agree (values NaN if none)."""
    if not isinstance(n_decisions, int | np.integer) or n_decisions < 0:
        raise PolicyError(f"n_decisions must be an integer >= 0, got {n_decisions!r}")
    decision = np.asarray(event_decision)
    if decision.ndim != 1:
        raise PolicyError(f"event_decision must be one-dimensional, got shape {decision.shape}")
    if decision.size and not np.issubdtype(decision.dtype, np.integer):
        raise PolicyError(f"event_decision must hold integer indices, got dtype {decision.dtype}")
    decision = decision.astype(np.int64, copy=False)
    types = np.asarray(event_type, dtype=object)
    if types.shape != decision.shape:
        raise PolicyError(
            f"event_type has {types.size} entries but event_decision has {decision.size}"
        )
    values = _checked_values(event_value, decision.shape)
    if decision.size and (decision.min() < -1 or decision.max() >= n_decisions):
        raise PolicyError(
            f"event_decision holds an index outside -1 .. {n_decisions - 1} "
            f"(min {decision.min()}, max {decision.max()})"
        )
    return decision, types, values


def _checked_values(
    event_value: npt.ArrayLike | None, shape: tuple[int, ...]
) -> NDArray[np.float64]:
    if event_value is None:
        return np.full(shape, np.nan)
    values = np.asarray(event_value, dtype=np.float64)
    if values.shape != shape:
        raise PolicyError(
            f"event_value has {values.size} entries but event_decision has {shape[0]}"
        )
    if np.isinf(values).any():
        raise PolicyError("event_value holds an infinite value; values must be finite or NaN")
    return values
