"""What each objective counts and aims at, from the strategy, and its KPI in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tummler.core.vocabulary import EventType
from tummler.strategy import Strategy

__all__ = ["ObjectiveSpec", "kpi_words", "objective_specs"]


@dataclass(frozen=True)
class ObjectiveSpec:
    """What an objective counts and aims at, as the strategy file says.

    Attributes
    ----------
    id
        The objective's id.
    event, measure
        The KPI: an event type, counted per decision (``rate``) or summed by value (``value``).
    relative_lift, absolute_rate
        The target (one of them), or neither when the report has no strategy.
    """

    id: str
    event: str = EventType.CONVERTED.value
    measure: Literal["rate", "value"] = "rate"
    relative_lift: float | None = None
    absolute_rate: float | None = None


def kpi_words(spec: ObjectiveSpec) -> str:
    """The KPI as a report says it: ``the share who converted``, ``the value of converted events``."""
    if spec.measure == "rate":
        return f"the share who {spec.event}"
    return f"the value of {spec.event} events"


def objective_specs(strategy: Strategy) -> dict[str, ObjectiveSpec]:
    """Each objective's KPI and target, by objective id, from a parsed strategy."""
    return {
        objective.id: ObjectiveSpec(
            objective.id,
            objective.kpi.event.value,
            objective.kpi.measure,
            objective.target.relative_lift,
            objective.target.absolute_rate,
        )
        for objective in strategy.objectives
    }
