"""The strategy file and campaign files as pydantic models.

``strategy.yaml`` holds what the brand wants (objectives and their KPIs), whom it talks to (audiences),
where (channels and their norms), what it promises (message pillars) and how much it may talk (the lever
policy). Every campaign file names the objective it serves; ``tummler strategy check`` proves the trace.

Contact attributes are declared in the strategy's ``attributes`` section (name → type and description).
Only declared attributes may be used in audience filters (``attributes.country``) and in templates
(``{{ first_name }}`` or ``{{ attributes.first_name }}``); besides them, templates may use the fields every
contact has: ``external_id``, ``locale``, ``time_zone`` and ``stage``.

Cross-references (a campaign's objective, audience, channels and pillar) are checked by
:func:`tummler.strategy.check_workspace`, not here, so that every problem in every file is reported at
once with its line.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tummler.core.vocabulary import ChannelKind, EventType, Override, Stage
from tummler.strategy._expression import ExpressionError, parse_duration
from tummler.strategy._parser import parse_expression

__all__ = [
    "ID_PATTERN",
    "KPI",
    "AttributeSpec",
    "Audience",
    "Brand",
    "Campaign",
    "CampaignWindow",
    "Channel",
    "ChannelLimits",
    "ChecksConfig",
    "ComplaintScope",
    "ConsentRules",
    "Duration",
    "Fatigue",
    "FrequencyCap",
    "Identifier",
    "LeverPolicy",
    "MessageAttributes",
    "MessageCategory",
    "Objective",
    "Override",
    "Pillar",
    "QuietHours",
    "SpendCap",
    "Strategy",
    "Target",
    "Urgency",
    "VariantText",
    "Visibility",
]

ID_PATTERN = r"^[a-z][a-z0-9_-]*$"
Identifier = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=64),
    WithJsonSchema(
        {"type": "string", "pattern": ID_PATTERN, "maxLength": 64},
    ),
]


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration", "a duration is text like 90m, 12h, 30d or 2w, not {value}", {"value": value}
        )
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


def _render_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("d", 24 * 60), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


#: A positive duration written ``90m``, ``12h``, ``30d`` or ``2w``.
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(_render_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+[mhdw]$", "examples": ["30d", "12h"]}),
]


def _clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 09:30 as sexagesimal 570
        return time(value // 60, value % 60)
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError(
        "clock_time",
        '{value} is not a time of day; write HH:MM, e.g. "09:30"',
        {"value": repr(value)},
    )


ClockTime = Annotated[
    time,
    BeforeValidator(_clock_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{2}:\d{2}$", "examples": ["09:30"]}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# ------------------------------------------------------------------------------------------- brand


class Pillar(_Model):
    """A message pillar: one thing the brand promises, with phrases that say it."""

    id: Identifier
    promise: str = Field(min_length=1, description="What the brand promises, in one sentence.")
    phrases: list[str] = Field(
        default_factory=list, description="A few example phrases that carry the promise."
    )


class Brand(_Model):
    name: str = Field(min_length=1)
    pillars: list[Pillar] = Field(min_length=1, description="The brand's message pillars.")


class AttributeSpec(_Model):
    """A contact attribute the strategy may use in audiences and templates."""

    type: Literal["string", "number", "boolean"] = "string"
    description: str | None = None


# -------------------------------------------------------------------------------------- objectives


class KPI(_Model):
    """What counts: an event type, counted per contact (``rate``) or summed by value (``value``)."""

    event: EventType
    measure: Literal["rate", "value"] = Field(
        default="rate",
        description="rate: share of contacts with at least one event; value: the events' values.",
    )

    @field_validator("event")
    @classmethod
    def _not_opened(cls, value: EventType) -> EventType:
        if value in (EventType.OPENED, EventType.SENT, EventType.DELIVERED):
            raise PydanticCustomError(
                "kpi_event",
                "{event} is not a response a person chose (privacy proxies open mail, providers "
                "report sends); use clicked, replied, converted or visited",
                {"event": value.value},
            )
        return value


class Target(_Model):
    """Either a relative lift over the holdout (0.1 = +10 %) or an absolute rate to reach."""

    relative_lift: float | None = Field(default=None, gt=0, le=100)
    absolute_rate: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        if (self.relative_lift is None) == (self.absolute_rate is None):
            raise PydanticCustomError(
                "target", "give exactly one of relative_lift (e.g. 0.1 for +10 %) or absolute_rate"
            )
        return self


class Penalties(_Model):
    """What an unsubscribe and a complaint after a send cost, in the KPI's units: each is
    subtracted once from the reward of the decision it follows. A complaint (a spam report) hurts
    deliverability for everyone, so it usually costs more."""

    unsubscribed: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    complained: float = Field(default=2.0, ge=0, allow_inf_nan=False)


class Objective(_Model):
    id: Identifier
    description: str | None = None
    kpi: KPI
    attribution_window: Duration = Field(
        description="How long after a send an event still counts for the campaign."
    )
    penalties: Penalties = Field(
        default_factory=Penalties,
        description="Subtracted from a decision's reward when an unsubscribe or complaint follows.",
    )
    target: Target
    horizon: Duration = Field(
        description="The period the target is to be reached in; also the history the baseline reads."
    )

    @model_validator(mode="after")
    def _rate_target_for_rate_kpi(self) -> Objective:
        if self.kpi.measure == "value" and self.target.absolute_rate is not None:
            raise PydanticCustomError(
                "target",
                "a value KPI has no rate to reach: give target.relative_lift instead of absolute_rate",
            )
        if self.horizon < self.attribution_window:
            raise PydanticCustomError(
                "horizon", "the horizon is shorter than the attribution window; lengthen it"
            )
        return self


# --------------------------------------------------------------------------------------- audiences


def _valid_filter(text: str) -> str:
    try:
        parse_expression(text)
    except ExpressionError as exc:
        raise PydanticCustomError(
            "expression",
            "audience filter: {reason}",
            {"reason": exc.reason, "column": exc.column or 0},
        ) from None
    return text


class Audience(_Model):
    id: Identifier
    description: str | None = None
    filter: Annotated[str, AfterValidator(_valid_filter)] = Field(
        description='An audience expression, e.g. stage in ["customer"] and consent("email").'
    )


# ---------------------------------------------------------------------------------------- channels


class ChannelLimits(_Model):
    """Length limits in characters, per field of a variant; ``None``: no limit, 0: field not allowed."""

    subject: int | None = Field(default=None, ge=0)
    headline: int | None = Field(default=None, ge=0)
    body: int | None = Field(default=None, ge=1)


class QuietHours(_Model):
    """No sends between ``start`` and ``end`` in the contact's time zone (may wrap midnight)."""

    start: ClockTime
    end: ClockTime


class FrequencyCap(_Model):
    count: int = Field(ge=1)
    window: Duration


class SpendCap(_Model):
    """The most the brand spends on one channel, across every campaign, in any ``window``.

    Spend is sends times the channel's ``cost_per_send``, in the same unit. Planning counts what other
    campaigns have already committed (their planned and made sends that did not fail) and gives the
    campaign it plans only what is left.
    """

    amount: float = Field(
        ge=0, description="The most spent in one window, in cost_per_send's unit."
    )
    window: Duration = Field(description="The period the amount is for, e.g. 30d.")


class Channel(_Model):
    id: Identifier
    kind: ChannelKind
    public: bool = Field(
        description="Public channels (a post) reach everyone; private ones one person."
    )
    limits: ChannelLimits = Field(default_factory=ChannelLimits)
    cost_per_send: float = Field(
        default=0.0,
        ge=0,
        description="What one send costs, in reward units; spend caps are in the same unit.",
    )
    spend_cap: SpendCap | None = Field(
        default=None,
        description="The most spent on this channel across all campaigns per window.",
    )
    send_slots: list[ClockTime] = Field(
        default_factory=list, description="Times of day a send may go out (contact's time zone)."
    )
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    consent_required: bool = True
    stages_allowed: list[Stage] = Field(default_factory=lambda: list(Stage))


# ------------------------------------------------------------------------------------ lever policy


class Fatigue(_Model):
    """One cap over one window, shared by every channel: posts and 1:1 messages alike."""

    window: Duration = Field(default=timedelta(days=7), json_schema_extra={"default": "7d"})
    cap: int = Field(default=3, ge=1)


class Exploration(_Model):
    """How much exploration a campaign's plans may spend: a share of the decisions, decaying.

    A plan explores for ``share × decay^v`` of its (non-held-out) decisions, never below
    ``floor``, where ``v`` is the number of learned versions before the one planning (0 for the
    prior): a Thompson policy draws from its posterior for that share of contacts and decides the
    rest on its posterior mean; an epsilon policy explores at most that share.
    """

    share: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of decisions that may explore (1: the policy as learned; 0: greedy).",
    )
    decay: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Multiplies the share for each learned version (1: no decay).",
    )
    floor: float = Field(default=0.0, ge=0, le=1, description="The share never decays below this.")

    @model_validator(mode="after")
    def _floor_below_share(self) -> Exploration:
        if self.floor > self.share:
            raise PydanticCustomError(
                "exploration",
                "exploration.floor ({floor}) must not exceed exploration.share ({share}): the "
                "share decays down to the floor",
                {"floor": self.floor, "share": self.share},
            )
        return self

    def share_at(self, version: int) -> float:
        """The share of decisions that may explore when the policy is learned version
        ``version`` (0: the prior).

        >>> Exploration(share=0.8, decay=0.5, floor=0.1).share_at(2)
        0.2
        >>> Exploration(share=0.8, decay=0.5, floor=0.1).share_at(5)
        0.1
        """
        return max(self.floor, self.share * self.decay ** max(version, 0))


class LeverPolicy(_Model):
    levers_per_contact: int = Field(default=1, ge=1, le=10)
    fatigue: Fatigue = Field(default_factory=Fatigue)
    critical_overrides: list[Override] = Field(
        default_factory=lambda: [Override.LEVER_BUDGET, Override.FATIGUE]
    )
    relevance_threshold: float = Field(
        default=0.0, description="Sends whose expected value is below this are dropped."
    )
    holdout_share: float = Field(default=0.1, gt=0, lt=1)
    exploration: Exploration = Field(default_factory=Exploration)


class ComplaintScope(StrEnum):
    """What a spam complaint revokes: consent for its channel, or for every channel."""

    CHANNEL = "channel"
    ALL = "all"


class ConsentRules(_Model):
    """How what people do changes their consent (an unsubscribe always revokes its channel)."""

    on_complaint: ComplaintScope = Field(
        default=ComplaintScope.CHANNEL,
        description="A spam complaint revokes consent for the channel it came through (channel) "
        "or for every channel (all).",
    )


class ChecksConfig(_Model):
    """Tuning of ``tummler strategy check``."""

    consistency_method: Literal["tfidf", "embeddings"] = "tfidf"
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    min_channel_similarity: float = Field(default=0.2, ge=0, le=1)
    min_pillar_similarity: float = Field(default=0.1, ge=0, le=1)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)


class Strategy(_Model):
    """The whole ``strategy.yaml``."""

    version: Literal[1] = 1
    brand: Brand
    attributes: dict[Identifier, AttributeSpec] = Field(
        default_factory=dict,
        description="Contact attributes audiences and templates may use.",
    )
    objectives: list[Objective] = Field(min_length=1)
    audiences: list[Audience] = Field(default_factory=list)
    channels: list[Channel] = Field(min_length=1)
    lever_policy: LeverPolicy = Field(default_factory=LeverPolicy)
    consent: ConsentRules = Field(default_factory=ConsentRules)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)

    def objective(self, key: str) -> Objective | None:
        return next((o for o in self.objectives if o.id == key), None)

    def audience(self, key: str) -> Audience | None:
        return next((a for a in self.audiences if a.id == key), None)

    def channel(self, key: str) -> Channel | None:
        return next((c for c in self.channels if c.id == key), None)

    def pillar(self, key: str) -> Pillar | None:
        return next((p for p in self.brand.pillars if p.id == key), None)


# --------------------------------------------------------------------------------------- campaigns


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class MessageCategory(StrEnum):
    """Why a person gets the message: what the brand wants to say, or what they asked for.

    A ``marketing`` message (the default) must let its recipient leave: an e-mail goes out only
    with an unsubscribe link and RFC 8058 one-click headers, and ``tummler send`` refuses to send
    one without them. A ``transactional`` message is one a person needs about their own account
    or order (a receipt, a password reset, a delivery notice): it may go out without the link.
    Consent is checked for both: tummler never sends on a channel the person has not agreed to.
    """

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


class MessageAttributes(_Model):
    """What the message is like; channel norms, the policy and the outbox read these."""

    emotion: str | None = None
    visibility: Visibility = Visibility.PRIVATE
    urgency: Urgency = Urgency.NORMAL
    category: MessageCategory = Field(
        default=MessageCategory.MARKETING,
        description="marketing (the default: e-mails need an unsubscribe link) or "
        "transactional (a receipt, a password reset: the link may be missing).",
    )
    topic: str | None = None


class VariantText(_Model):
    """One wording for one channel; each field is a template (``{{ first_name }}``)."""

    id: Identifier = "a"
    subject: str | None = None
    headline: str | None = None
    body: str = Field(min_length=1)


class CampaignWindow(_Model):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> CampaignWindow:
        if self.end <= self.start:
            raise PydanticCustomError("window", "the window ends before it starts")
        return self


class Campaign(_Model):
    """A tactic: it must trace to an objective of the strategy."""

    id: Identifier
    name: str | None = None
    objective: Identifier = Field(description="The strategy objective this campaign serves.")
    pillar: Identifier | None = None
    audience: Identifier | None = None
    message: MessageAttributes = Field(default_factory=MessageAttributes)
    channels: list[Identifier] = Field(
        default_factory=list, description="Channels allowed; default: those with variants."
    )
    variants: dict[Identifier, list[VariantText]] = Field(
        min_length=1, description="Channel id → its variants."
    )
    window: CampaignWindow | None = None
    holdout_share: float | None = Field(default=None, gt=0, lt=1)
    exploration: Exploration | None = Field(
        default=None,
        description="How much exploration this campaign may spend; default: lever_policy's.",
    )
    spend_caps: dict[Identifier, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description=(
            "Channel id → the most this campaign may spend on it (sends × cost_per_send). The plan "
            "prices a capped channel so that its sends go to the contacts it is worth most for."
        ),
    )

    @property
    def channel_ids(self) -> list[str]:
        """The channels allowed: ``channels`` when given, else those that have variants."""
        return list(self.channels) if self.channels else list(self.variants)

    def effective_holdout(self, policy: LeverPolicy) -> float:
        return self.holdout_share if self.holdout_share is not None else policy.holdout_share

    def effective_exploration(self, policy: LeverPolicy) -> Exploration:
        return self.exploration if self.exploration is not None else policy.exploration


def window_bounds(campaign: Campaign) -> tuple[datetime | None, datetime | None]:
    """The campaign's start and end, ``None`` where open."""
    if campaign.window is None:
        return None, None
    return campaign.window.start, campaign.window.end
