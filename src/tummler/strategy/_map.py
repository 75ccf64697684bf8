"""The strategy as a map (objective → campaigns → channels) and its JSON Schemas for editors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tummler.strategy._models import Campaign, Objective, Strategy

__all__ = ["campaign_json_schema", "strategy_json_schema", "strategy_map"]

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _target_text(objective: Objective) -> str:
    target = objective.target
    if target.relative_lift is not None:
        return f"{target.relative_lift:+.0%} lift"
    return f"{target.absolute_rate:.1%} rate"


def _campaign_entry(campaign: Campaign, strategy: Strategy) -> dict[str, Any]:
    channels = []
    for key in campaign.channel_ids:
        channel = strategy.channel(key)
        shared = channel.spend_cap if channel else None
        channels.append(
            {
                "id": key,
                "kind": channel.kind.value if channel else None,
                "public": channel.public if channel else None,
                "variants": [v.id for v in campaign.variants.get(key, [])],
                "cost_per_send": channel.cost_per_send if channel else None,
                # this campaign's cap, and the strategy's cap shared by every campaign
                "spend_cap": campaign.spend_caps.get(key),
                "shared_spend_cap": shared.model_dump(mode="json") if shared else None,
            }
        )
    return {
        "id": campaign.id,
        "name": campaign.name,
        "pillar": campaign.pillar,
        "audience": campaign.audience,
        "urgency": campaign.message.urgency.value,
        "visibility": campaign.message.visibility.value,
        "category": campaign.message.category.value,
        "holdout_share": campaign.effective_holdout(strategy.lever_policy),
        "channels": channels,
    }


def strategy_map(strategy: Strategy, campaigns: Sequence[Campaign]) -> dict[str, Any]:
    """What ``tummler strategy show`` prints: each objective with the campaigns that serve it.

    Campaigns naming an objective the strategy does not have are listed under ``untraced``.
    """
    objectives = []
    known = {o.id for o in strategy.objectives}
    for objective in strategy.objectives:
        objectives.append(
            {
                "id": objective.id,
                "description": objective.description,
                "kpi": {"event": objective.kpi.event.value, "measure": objective.kpi.measure},
                "target": objective.target.model_dump(exclude_none=True),
                "target_text": _target_text(objective),
                "attribution_window": objective.model_dump(mode="json")["attribution_window"],
                "horizon": objective.model_dump(mode="json")["horizon"],
                "penalties": objective.penalties.model_dump(),
                "campaigns": [
                    _campaign_entry(c, strategy) for c in campaigns if c.objective == objective.id
                ],
            }
        )
    return {
        "brand": strategy.brand.name,
        "objectives": objectives,
        "untraced": [_campaign_entry(c, strategy) for c in campaigns if c.objective not in known],
        "lever_policy": strategy.lever_policy.model_dump(mode="json"),
    }


def _schema(model: type[Strategy] | type[Campaign], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {"$schema": _SCHEMA_DIALECT, **schema, "title": title}


def strategy_json_schema() -> dict[str, Any]:
    """JSON Schema of ``strategy.yaml``, for editors to complete and check it."""
    return _schema(Strategy, "tummler strategy")


def campaign_json_schema() -> dict[str, Any]:
    """JSON Schema of a campaign file (``campaigns/*.yaml``)."""
    return _schema(Campaign, "tummler campaign")
