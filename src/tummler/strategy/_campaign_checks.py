"""``tummler strategy check`` for one campaign: its trace to the strategy and its channels' norms.

Errors: a broken trace (unknown objective, audience, channel or pillar), a spend cap on a channel the
campaign does not use or below one send's cost, a variant that breaks its channel's norms (visibility,
lengths, template fields), a channel no one in the audience may receive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tummler.core.vocabulary import Stage
from tummler.strategy._channel_checks import spend_cap_findings
from tummler.strategy._expression import And, Compare, Expression, Membership
from tummler.strategy._findings import Finding, Severity, duplicates
from tummler.strategy._loading import CampaignDocument
from tummler.strategy._models import (
    Campaign,
    Channel,
    MessageCategory,
    Strategy,
    Urgency,
    Visibility,
)
from tummler.strategy._parser import parse_expression
from tummler.strategy._templates import _known_template_fields, _rendered_length, template_fields

__all__ = ["audience_stages", "check_campaign"]

_VARIANT_FIELDS = ("subject", "headline", "body")


def audience_stages(expression: Expression) -> set[str]:
    """The stages an audience can hold, read from its top-level ``stage`` conditions.

    Only conjuncts of the form ``stage == "x"`` and ``stage in [...]`` narrow it; anything else leaves
    every stage possible. Used to tell that no one in an audience could receive a channel.
    """
    possible = {s.value for s in Stage}
    conjuncts = expression.operands if isinstance(expression, And) else (expression,)
    for node in conjuncts:
        if isinstance(node, Compare) and node.field.name == "stage" and node.op == "==":
            possible &= {str(node.value)}
        elif isinstance(node, Membership) and node.field.name == "stage" and not node.negated:
            possible &= {str(v) for v in node.values}
    return possible


def _unknown(kind: str, key: str, known: Iterable[str], where: str) -> str:
    options = ", ".join(sorted(known)) or "none defined"
    return f"{kind} {key!r} is not in {where} (known: {options}); fix the name or add it there"


@dataclass(frozen=True)
class _Check:
    """One campaign checked against one strategy: what every step reads."""

    document: CampaignDocument
    strategy: Strategy
    #: the strategy file, as findings name it
    where: str

    @property
    def campaign(self) -> Campaign:
        return self.document.campaign

    def error(self, code: str, message: str, *path: str | int, key: bool = False) -> Finding:
        return self.document.source.finding(Severity.ERROR, code, message, *path, key=key)

    def unknown_channel(self, key: str) -> str:
        return _unknown("channel", key, (c.id for c in self.strategy.channels), self.where)


def check_campaign(
    document: CampaignDocument, strategy: Strategy, *, strategy_file: str | None = None
) -> list[Finding]:
    """The campaign's trace to the strategy and its variants against each channel's norms."""
    check = _Check(document, strategy, strategy_file or "strategy.yaml")
    return [
        *_trace(check),
        *_message_notes(check),
        *_channel_list(check),
        *_spend_caps(check),
        *_variants(check),
    ]


def _trace(check: _Check) -> list[Finding]:
    """The objective, pillar and audience the campaign names must be the strategy's."""
    campaign, strategy, where = check.campaign, check.strategy, check.where
    findings: list[Finding] = []
    if strategy.objective(campaign.objective) is None:
        findings.append(
            check.error(
                "unknown-objective",
                _unknown(
                    "objective", campaign.objective, (o.id for o in strategy.objectives), where
                ),
                "objective",
            )
        )
    if campaign.pillar is not None and strategy.pillar(campaign.pillar) is None:
        findings.append(
            check.error(
                "unknown-pillar",
                _unknown("pillar", campaign.pillar, (p.id for p in strategy.brand.pillars), where),
                "pillar",
            )
        )
    if campaign.audience is not None and strategy.audience(campaign.audience) is None:
        findings.append(
            check.error(
                "unknown-audience",
                _unknown("audience", campaign.audience, (a.id for a in strategy.audiences), where),
                "audience",
            )
        )
    return findings


def _message_notes(check: _Check) -> list[Finding]:
    """What a critical or transactional message is allowed, said once so that no one is surprised."""
    campaign, source = check.campaign, check.document.source
    findings: list[Finding] = []
    if campaign.message.urgency is Urgency.CRITICAL:
        overrides = [o.value for o in check.strategy.lever_policy.critical_overrides]
        findings.append(
            source.finding(
                Severity.INFO,
                "critical-overrides",
                "urgency critical: this campaign may override "
                f"{', '.join(overrides) or 'nothing'} (lever_policy.critical_overrides), never "
                "consent; keep critical for messages a person would be harmed to miss",
                "message",
                "urgency",
            )
        )
    if campaign.message.category is MessageCategory.TRANSACTIONAL:
        findings.append(
            source.finding(
                Severity.INFO,
                "transactional",
                "category transactional: its e-mails may go out without an unsubscribe link; "
                "keep it for what a person needs about their own account or order (a receipt, a "
                "password reset), never a promotion; consent is still checked",
                "message",
                "category",
            )
        )
    return findings


def _channel_list(check: _Check) -> list[Finding]:
    """Every channel the campaign allows is the strategy's and has a variant."""
    findings: list[Finding] = []
    for index, key in enumerate(check.campaign.channels):
        if check.strategy.channel(key) is None:
            findings.append(
                check.error("unknown-channel", check.unknown_channel(key), "channels", index)
            )
        elif key not in check.campaign.variants:
            findings.append(
                check.error(
                    "no-variant",
                    f"channel {key!r} is allowed but has no variant; add one under "
                    f"`variants: {key}:` or remove it from `channels`",
                    "channels",
                    index,
                )
            )
    return findings


def _spend_caps(check: _Check) -> list[Finding]:
    """Every spend cap is on a channel the campaign uses, and lets at least one send out."""
    campaign = check.campaign
    findings: list[Finding] = []
    for key, amount in campaign.spend_caps.items():
        channel = check.strategy.channel(key)
        if channel is None:
            findings.append(
                check.error(
                    "unknown-channel",
                    "spend_caps: " + check.unknown_channel(key),
                    "spend_caps",
                    key,
                    key=True,
                )
            )
        elif key not in campaign.channel_ids:
            findings.append(
                check.error(
                    "spend-cap-unused-channel",
                    f"spend_caps caps channel {key!r}, which this campaign does not use "
                    f"(channels: {', '.join(campaign.channel_ids)}); remove the cap or add the "
                    "channel",
                    "spend_caps",
                    key,
                    key=True,
                )
            )
        else:
            findings += spend_cap_findings(
                channel, amount, f"spend_caps.{key}", check.document.source, ("spend_caps", key)
            )
    return findings


def _variants(check: _Check) -> list[Finding]:
    """Each channel's variants: a known, allowed channel, its norms, a stage the audience holds."""
    campaign, strategy = check.campaign, check.strategy
    audience = strategy.audience(campaign.audience) if campaign.audience else None
    stages = audience_stages(parse_expression(audience.filter)) if audience else None
    findings: list[Finding] = []
    for key in campaign.variants:
        channel = strategy.channel(key)
        if channel is None:
            if key not in campaign.channels:
                findings.append(
                    check.error(
                        "unknown-channel", check.unknown_channel(key), "variants", key, key=True
                    )
                )
            continue
        if campaign.channels and key not in campaign.channels:
            findings.append(
                check.error(
                    "channel-not-allowed",
                    f"variants for channel {key!r}, which the campaign's `channels` do not allow; "
                    "add it to `channels` or remove these variants",
                    "variants",
                    key,
                    key=True,
                )
            )
        findings += _check_norms(check, channel, ("variants", key))
        if stages is not None and not stages & {s.value for s in channel.stages_allowed}:
            findings.append(
                check.error(
                    "norm-stage",
                    f"channel {key!r} allows stages {', '.join(s.value for s in channel.stages_allowed)}"
                    f" but audience {campaign.audience!r} holds only {', '.join(sorted(stages))}: "
                    "no one in it can receive this channel",
                    "variants",
                    key,
                    key=True,
                )
            )
    return findings


def _check_norms(check: _Check, channel: Channel, variants_path: tuple[str, str]) -> list[Finding]:
    """One channel's variants against its norms: visibility, distinct ids, each text field."""
    findings = _visibility(check, channel, variants_path)
    variants = check.campaign.variants[variants_path[1]]
    for key in duplicates(v.id for v in variants):
        findings.append(
            check.error(
                "duplicate-id",
                f"channel {channel.id!r} has two variants with id {key!r}; give each its own id",
                *variants_path,
            )
        )
    known = _known_template_fields(check.strategy)
    for index, variant in enumerate(variants):
        for name in _VARIANT_FIELDS:
            template: str | None = getattr(variant, name)
            if template is not None:
                findings += _text_field(
                    check, channel, variant.id, name, template, (*variants_path, index, name), known
                )
    return findings


def _visibility(check: _Check, channel: Channel, variants_path: tuple[str, str]) -> list[Finding]:
    """A private or transactional message on a public channel: everyone would read it."""
    message = check.campaign.message
    findings: list[Finding] = []
    if channel.public and message.visibility is Visibility.PRIVATE:
        findings.append(
            check.error(
                "norm-visibility",
                f"the message is private but channel {channel.id!r} is public: everyone would read "
                "it; set `message: visibility: public` or drop this channel",
                *variants_path,
                key=True,
            )
        )
    if channel.public and message.category is MessageCategory.TRANSACTIONAL:
        findings.append(
            check.error(
                "norm-transactional",
                f"the message is transactional (about one person's account or order) but channel "
                f"{channel.id!r} is public: everyone would read it; drop this channel or make "
                "the message `category: marketing`",
                *variants_path,
                key=True,
            )
        )
    return findings


def _text_field(
    check: _Check,
    channel: Channel,
    variant: str,
    name: str,
    template: str,
    path: tuple[str | int, ...],
    known: set[str],
) -> list[Finding]:
    """One text field of a variant: allowed on the channel, within its length, a sound template
    that reads only fields contacts have."""
    findings: list[Finding] = []
    limit: int | None = getattr(channel.limits, name)
    if limit == 0:
        findings.append(
            check.error(
                "norm-field",
                f"channel {channel.id!r} has no {name} (its limit is 0); remove it",
                *path,
            )
        )
    elif limit is not None and (length := _rendered_length(template)) > limit:
        findings.append(
            check.error(
                "norm-length",
                f"{name} of variant {variant!r} is {length} characters without its "
                f"fields; channel {channel.id!r} allows {limit}: shorten it",
                *path,
            )
        )
    fields, problems = template_fields(template)
    for problem in problems:
        findings.append(check.error("template-syntax", f"{name}: {problem}", *path))
    for template_field in fields:
        if template_field.name not in known:
            findings.append(
                check.error(
                    "norm-template-field",
                    f"{name} of variant {variant!r} uses {{{{ {template_field.name} }}}}, "
                    "which contacts do not have; use external_id, locale, time_zone, stage "
                    "or an attribute declared under `attributes:` in the strategy "
                    f"(declared: {', '.join(sorted(check.strategy.attributes)) or 'none'})",
                    *path,
                )
            )
    return findings
