"""``tummler explain CONTACT CAMPAIGN``: why a contact got what it got, read back from the decision
rows the plan stored (:mod:`.decisions`), or why it has no decision at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from tummler.app.audience import CONTACT_VIEW_COLUMNS, audience_view
from tummler.app.strategy import readable_strategy
from tummler.core.clock import ensure_utc
from tummler.core.errors import NotFoundError
from tummler.store import models
from tummler.strategy import unmet_conditions


@dataclass(frozen=True)
class LeverExplanation:
    """One lever of a decision, as stored."""

    channel: str | None
    variant: str | None
    send_at: datetime | None
    local_time: str | None
    action: str
    propensity: float
    expected_value: float | None


@dataclass(frozen=True)
class DecisionExplanation:
    """Why one contact got what it got in one campaign, read back from its decision rows."""

    contact: str
    campaign: str
    levers: tuple[LeverExplanation, ...]
    holdout: bool
    explored: bool
    removed: dict[str, list[str]]
    unavailable: tuple[str, ...]
    runner_up: str | None
    contributions: tuple[tuple[str, float], ...]
    policy: str
    decided_at: datetime
    summary: str = field(default="")
    variants_unavailable: dict[str, str] = field(default_factory=dict)
    spend_cap: dict[str, float] = field(default_factory=dict)
    harm: dict[str, float] = field(default_factory=dict)
    #: the share of the plan's decisions that could explore (the strategy's ``exploration``)
    explore_share: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        data = asdict(self)
        data["decided_at"] = self.decided_at.isoformat()
        for lever in data["levers"]:
            if lever["send_at"] is not None:
                lever["send_at"] = lever["send_at"].isoformat()
        data["contributions"] = [list(c) for c in self.contributions]
        data["unavailable"] = list(self.unavailable)
        return data


def explain_decision(
    engine: Engine, *, contact: str, campaign_key: str, workspace: Path | None = None
) -> DecisionExplanation:
    """Explain a contact's decision in a campaign from what the plan stored with it.

    Parameters
    ----------
    engine
        The store.
    contact
        The contact's external id (or, failing that, its numeric id).
    campaign_key
        The campaign's id.
    workspace
        The workspace whose ``strategy.yaml`` defines the campaign's audience: with it, a contact
        without a decision is told which of the audience's conditions they fail.

    Raises
    ------
    NotFoundError
        When the contact, the campaign, or a decision for them is not in the store; for a contact
        outside the campaign's audience, the message says so, and why.
    """
    with engine.connect() as connection:
        campaign_id = _stored_campaign(connection, campaign_key)
        person = _stored_contact(connection, contact)
    with Session(engine) as session:
        rows = session.execute(
            select(models.Decision, models.Variant.key)
            .outerjoin(models.Variant, models.Variant.id == models.Decision.variant_id)
            .where(
                models.Decision.campaign_id == campaign_id,
                models.Decision.contact_id == person.id,
            )
            .order_by(models.Decision.lever)
        ).all()
    if not rows:
        raise NotFoundError(
            _why_no_decision(
                engine, contact=str(person.external_id), contact_id=int(person.id),
                campaign_key=campaign_key, campaign_id=campaign_id, workspace=workspace,
            )
        )  # fmt: skip
    return _explanation(rows, contact=str(person.external_id), campaign_key=campaign_key)


def _stored_campaign(connection: Connection, campaign_key: str) -> int:
    """The campaign's row id, refusing a campaign that was never planned."""
    campaign_id = connection.scalar(
        select(models.Campaign.id).where(models.Campaign.key == campaign_key)
    )
    if campaign_id is None:
        raise NotFoundError(
            f"no campaign {campaign_key!r} in the store: run `tummler plan {campaign_key}` first"
        )
    return int(campaign_id)


def _stored_contact(connection: Connection, contact: str) -> Any:
    """The contact's ``id`` and ``external_id``, by external id or, failing that, by numeric id."""
    person = connection.execute(
        select(models.Contact.id, models.Contact.external_id).where(
            models.Contact.external_id == contact
        )
    ).first()
    if person is None and contact.isdigit():
        person = connection.execute(
            select(models.Contact.id, models.Contact.external_id).where(
                models.Contact.id == int(contact)
            )
        ).first()
    if person is None:
        raise NotFoundError(f"no contact with external id {contact!r} in the store")
    return person


def _explanation(rows: Sequence[Any], *, contact: str, campaign_key: str) -> DecisionExplanation:
    """The explanation of a contact's decision rows (``(Decision, variant key)``, by lever)."""
    first: models.Decision = rows[0][0]
    reasons = dict(first.reasons or {})
    levers = tuple(
        LeverExplanation(
            channel=d.channel,
            variant=variant,
            send_at=d.send_at,
            local_time=(d.reasons or {}).get("local"),
            action=str((d.reasons or {}).get("action", "no-send")),
            propensity=float(d.propensity),
            expected_value=d.expected_value,
        )
        for d, variant in rows
        if d.channel is not None
    )
    removed = {str(k): list(v) for k, v in dict(reasons.get("removed", {})).items()}
    sent = {lever.channel for lever in levers}
    explanation = DecisionExplanation(
        contact=contact,
        campaign=campaign_key,
        levers=levers,
        holdout=bool(first.holdout),
        explored=bool(reasons.get("explored", False)),
        removed=removed,
        unavailable=tuple(
            c for c, rules in removed.items() if c not in sent and _blocks_channel(rules)
        ),
        runner_up=reasons.get("runner_up"),
        contributions=tuple((str(n), float(v)) for n, v in reasons.get("contributions", [])),
        policy=str(reasons.get("policy", "")),
        decided_at=first.decided_at,
        variants_unavailable=_text_map(reasons.get("variants_unavailable")),
        spend_cap=_number_map(reasons.get("spend_cap")),
        harm=_number_map(reasons.get("harm")),
        explore_share=float(reasons.get("explore_share", 1.0)),
    )
    return DecisionExplanation(
        **{**asdict(explanation), "levers": levers, "summary": _sentence(explanation)}
    )


def _text_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(value or {}).items()}


def _number_map(value: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(value or {}).items()}


def _why_no_decision(
    engine: Engine,
    *,
    contact: str,
    contact_id: int,
    campaign_key: str,
    campaign_id: int,
    workspace: Path | None,
) -> str:
    """Why a contact has no decision in a campaign: not planned yet; outside its audience as of the
    last plan (and the conditions they fail there), which a new plan cannot change; or come into
    the store or the audience since, which a new plan fixes."""
    head = f"contact {contact!r} has no decision in campaign {campaign_key!r}"
    with engine.connect() as connection:
        planned = connection.scalar(
            select(func.max(models.Decision.decided_at)).where(
                models.Decision.campaign_id == campaign_id
            )
        )
        if planned is None:
            return (
                f"{head}: the campaign has not been planned yet; run `tummler plan {campaign_key}`"
            )
        key = connection.scalar(
            select(models.Campaign.audience).where(models.Campaign.id == campaign_id)
        )
        audience = _audience_filter(workspace, key)
        if key is not None and audience is None:
            return (
                f"{head}: they were outside its audience {key!r}, or not yet in the store, when it "
                f"was last planned ({planned:%Y-%m-%d %H:%M} UTC)"
            )
        unmet: list[str] = []
        if audience is not None:
            row = connection.execute(
                select(*CONTACT_VIEW_COLUMNS).where(models.Contact.id == contact_id)
            ).one()
            view, _ = audience_view(connection, [row], now=ensure_utc(planned))
            unmet = unmet_conditions(audience, view)
    if unmet:
        return (
            f"contact {contact!r} is outside the audience {key!r} of campaign {campaign_key!r} "
            f"({audience}) as of its last plan ({planned:%Y-%m-%d %H:%M} UTC), so they have no "
            f"decision: they fail {'; '.join(unmet)}. Planning again includes them only once they "
            "meet the audience's conditions, or after its filter in strategy.yaml changes"
        )
    return (
        f"{head}: they are in its audience but came into the store or the audience after its last "
        f"plan ({planned:%Y-%m-%d %H:%M} UTC); run `tummler plan {campaign_key}` again to decide "
        "for them"
    )


def _audience_filter(workspace: Path | None, key: str | None) -> str | None:
    """The filter of audience ``key`` in the workspace's strategy, if both can be read."""
    if workspace is None or key is None:
        return None
    loaded = readable_strategy(workspace)
    audience = loaded.strategy.audience(key) if loaded is not None else None
    return audience.filter if audience is not None else None


#: Rules that remove a whole channel (the others remove some of its slots).
_CHANNEL_RULES = {
    "no_identity",
    "no_consent",
    "stage",
    "fatigue_cap",
    "frequency_cap",
    "channel_norm",
    "outside_window",
    "template_field",
}


def _blocks_channel(rules: Sequence[str]) -> bool:
    return any(r in _CHANNEL_RULES for r in rules)


_RULE_WORDS = {
    "no_identity": "no identity",
    "no_consent": "no consent",
    "stage": "stage not allowed",
    "quiet_hours": "quiet hours",
    "outside_window": "outside the campaign window",
    "fatigue_cap": "fatigue cap reached",
    "frequency_cap": "frequency cap reached",
    "channel_norm": "channel norms (a public channel for a private message)",
    "template_field": "no variant renders for this contact (a field it lacks)",
}


def _sentence(e: DecisionExplanation) -> str:
    """The decision in plain words."""
    parts: list[str] = []
    if e.holdout:
        head = (
            "held out (control group): nothing is sent, so that the campaign's effect can be "
            "measured"
        )
    elif not e.levers and e.runner_up in (None, "no-send"):
        head = "no send: every lever was removed by a rule"
    elif not e.levers:
        head = (
            f"no send: not even the best eligible lever ({e.runner_up}) cleared the relevance "
            "threshold"
        )
    else:
        head = " and ".join(
            f"{lever.channel} at {lever.local_time or '?'} local, variant {lever.variant}"
            for lever in e.levers
        )
    parts.append(head)
    for channel, price in e.spend_cap.items():
        instead = (
            f"{', '.join(lever.channel or '' for lever in e.levers)} instead"
            if e.levers
            else "no send instead"
        )
        parts.append(
            f"{channel} would have been chosen, but its spend cap gave its sends to contacts for "
            f"whom it is worth more (shadow price {price:.3g} per send): {instead}"
        )
    for variant, needed in e.variants_unavailable.items():
        parts.append(f"variant {variant} needs {needed}, which this contact lacks")
    if e.harm:
        listing = ", ".join(f"{c} {h:.3g}" for c, h in e.harm.items())
        parts.append(
            f"each send's expected value counts the harm per send that unsubscribes and "
            f"complaints showed on its channel: {listing}"
        )
    for channel, rules in e.removed.items():
        words = ", ".join(_RULE_WORDS.get(r, r) for r in rules)
        if channel in e.unavailable:
            parts.append(f"{channel} removed — {words}")
        else:
            parts.append(f"some {channel} slots removed — {words}")
    if e.levers and e.runner_up:
        chosen = e.levers[0].channel
        why = (
            ", ".join(f"{n} ({v:+.3g})" for n, v in e.contributions)
            if e.contributions
            else "of the policy's draw (nothing learned yet separates them)"
        )
        if e.explored:
            why = "it was drawn at random for exploration"
        parts.append(f"{chosen} chosen over {e.runner_up} because {why}")
    if e.explore_share < 1.0:
        parts.append(
            f"the strategy's exploration let {e.explore_share:.0%} of this plan's decisions "
            "explore (draw from the policy's uncertainty); the others follow its best estimate"
        )
    return "; ".join(parts)
