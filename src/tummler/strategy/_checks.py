"""``tummler strategy check``: does every campaign trace to the strategy and respect its norms?

Every check returns findings instead of raising, so that one run reports every problem of every file.
Errors: a broken trace (unknown objective, audience, channel or pillar), a variant that breaks its
channel's norms, an audience filter over undeclared attributes. Warnings: variants that say different
things on different channels or drift from their pillar (consistency), and targets the audience cannot
show (realism).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tummler.core.vocabulary import ChannelKind, Stage
from tummler.strategy._consistency import (
    Vectorizer,
    consistency_scores,
    embedding_vectorizer,
    tfidf_vectorizer,
)
from tummler.strategy._expression import (
    CONTACT_FIELDS,
    And,
    Compare,
    Expression,
    Membership,
    Scalar,
    Truthy,
    attribute_names,
    leaves,
    predicate_arguments,
)
from tummler.strategy._findings import Finding, Severity
from tummler.strategy._loading import CampaignDocument, SourceMap, StrategyDocument
from tummler.strategy._models import (
    Campaign,
    Channel,
    MessageCategory,
    Strategy,
    Urgency,
    Visibility,
)
from tummler.strategy._parser import parse_expression
from tummler.strategy._realism import AudienceBaseline, assess_target

__all__ = [
    "audience_stages",
    "campaign_texts",
    "check_campaign",
    "check_consistency",
    "check_realism",
    "check_strategy",
    "check_workspace",
    "pillar_text",
    "template_fields",
]

_FIELD = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$")
_VARIANT_FIELDS = ("subject", "headline", "body")


@dataclass(frozen=True, slots=True)
class _TemplateField:
    name: str
    offset: int


def template_fields(template: str) -> tuple[list[_TemplateField], list[str]]:
    """The fields a Jinja-style template reads (``{{ first_name | default("there") }}`` reads
    ``first_name``), and problems with its syntax."""
    problems: list[str] = []
    fields: list[_TemplateField] = []
    for match in _FIELD.finditer(template):
        expression = match.group(1).split("|", 1)[0].strip()
        if not _FIELD_NAME.match(expression):
            problems.append(
                f"{{{{{match.group(1)}}}}} is not a field name like {{{{ first_name }}}}"
            )
            continue
        fields.append(_TemplateField(expression, match.start()))
    remainder = _FIELD.sub("", template)
    if "{{" in remainder or "}}" in remainder:
        problems.append("a '{{' without its '}}' (or the other way round)")
    return fields, problems


def _rendered_length(template: str) -> int:
    """The length without its fields: a lower bound of every rendering (a field may be empty)."""
    return len(_FIELD.sub("", template))


def _known_template_fields(strategy: Strategy) -> set[str]:
    known = set(CONTACT_FIELDS)
    for name in strategy.attributes:
        known |= {name, f"attributes.{name}"}
    return known


def _duplicates(ids: Iterable[str]) -> list[str]:
    return [key for key, count in Counter(ids).items() if count > 1]


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


def check_strategy(document: StrategyDocument) -> list[Finding]:
    """Problems inside ``strategy.yaml`` itself: duplicate ids, undeclared attributes, bad channels."""
    strategy, source = document.strategy, document.source
    findings: list[Finding] = []
    sections: list[tuple[tuple[str, ...], Sequence[Any]]] = [
        (("brand", "pillars"), strategy.brand.pillars),
        (("objectives",), strategy.objectives),
        (("audiences",), strategy.audiences),
        (("channels",), strategy.channels),
    ]
    for path, items in sections:
        ids = [item.id for item in items]
        for key in _duplicates(ids):
            last = len(ids) - 1 - ids[::-1].index(key)
            findings.append(
                source.finding(
                    Severity.ERROR,
                    "duplicate-id",
                    f"{'.'.join(path)}: id {key!r} is used twice; ids must be unique",
                    *path,
                    last,
                    "id",
                )
            )
    declared = set(strategy.attributes)
    channel_names = {c.id for c in strategy.channels} | {k.value for k in ChannelKind}
    for index, audience in enumerate(strategy.audiences):
        expression = parse_expression(audience.filter)
        for name in sorted(attribute_names(expression) - declared):
            findings.append(
                source.finding(
                    Severity.ERROR,
                    "unknown-attribute",
                    f"audience {audience.id!r} reads attributes.{name}, which the strategy does not "
                    f"declare; add `{name}:` under `attributes:` (declared: "
                    f"{', '.join(sorted(declared)) or 'none'})",
                    "audiences",
                    index,
                    "filter",
                )
            )
        findings += _attribute_types(strategy, expression, audience.id, index, document)
        used = predicate_arguments(expression, "consent") | predicate_arguments(
            expression, "has_identity"
        )
        for unknown in sorted(used - channel_names):
            findings.append(
                source.finding(
                    Severity.ERROR,
                    "unknown-channel",
                    f"audience {audience.id!r} asks about channel {unknown!r}, which is neither a "
                    f"channel id of the strategy nor a channel kind "
                    f"({', '.join(k.value for k in ChannelKind)})",
                    "audiences",
                    index,
                    "filter",
                )
            )
    for index, channel in enumerate(strategy.channels):
        findings += _check_channel(channel, index, document)
    return findings


def _literal_type(value: Scalar) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "string"


def _attribute_types(
    strategy: Strategy,
    expression: Expression,
    audience: str,
    index: int,
    document: StrategyDocument,
) -> list[Finding]:
    """Conditions that can never hold because the literal's type is not the attribute's."""
    findings = []
    for leaf in leaves(expression):
        if not isinstance(leaf, Compare | Membership | Truthy) or leaf.field.attribute is None:
            continue
        spec = strategy.attributes.get(leaf.field.attribute)
        if spec is None:
            continue
        if isinstance(leaf, Truthy):
            wrong = [] if spec.type == "boolean" else ["true"]
        else:
            values = (leaf.value,) if isinstance(leaf, Compare) else leaf.values
            wrong = [repr(v) for v in values if _literal_type(v) not in (None, spec.type)]
        if wrong:
            findings.append(
                document.source.finding(
                    Severity.WARNING,
                    "attribute-type",
                    f"audience {audience!r}: attributes.{leaf.field.attribute} is declared a "
                    f"{spec.type} but `{leaf}` compares it with {', '.join(wrong)}, which never "
                    "matches: fix the literal or the declared type",
                    "audiences",
                    index,
                    "filter",
                )
            )
    return findings


def _in_quiet_hours(channel: Channel, slot_minutes: int) -> bool:
    if channel.quiet_hours is None:
        return False
    start = channel.quiet_hours.start.hour * 60 + channel.quiet_hours.start.minute
    end = channel.quiet_hours.end.hour * 60 + channel.quiet_hours.end.minute
    if start <= end:
        return start <= slot_minutes < end
    return slot_minutes >= start or slot_minutes < end


def _check_channel(channel: Channel, index: int, document: StrategyDocument) -> list[Finding]:
    findings = []
    for slot_index, slot in enumerate(channel.send_slots):
        if _in_quiet_hours(channel, slot.hour * 60 + slot.minute):
            findings.append(
                document.source.finding(
                    Severity.WARNING,
                    "slot-in-quiet-hours",
                    f"channel {channel.id!r}: send slot {slot.strftime('%H:%M')} falls in its quiet "
                    "hours, so it will never be used; move the slot or the quiet hours",
                    "channels",
                    index,
                    "send_slots",
                    slot_index,
                )
            )
    if not channel.public and not channel.consent_required:
        findings.append(
            document.source.finding(
                Severity.WARNING,
                "norm-consent",
                f"channel {channel.id!r} is private but sends without consent: 1:1 messages need "
                "the person's consent in most places (GDPR, ePrivacy, TCPA); set "
                "`consent_required: true` unless you are sure",
                "channels",
                index,
                "consent_required",
            )
        )
    cap = channel.spend_cap
    if cap is not None:
        findings += _spend_cap_findings(
            channel,
            cap.amount,
            f"channel {channel.id!r}: spend_cap.amount",
            document.source,
            ("channels", index, "spend_cap", "amount"),
        )
    if not channel.stages_allowed:
        findings.append(
            document.source.finding(
                Severity.WARNING,
                "no-stage-allowed",
                f"channel {channel.id!r} allows no stage: no one can be reached on it",
                "channels",
                index,
                "stages_allowed",
            )
        )
    return findings


def _spend_cap_findings(
    channel: Channel,
    amount: float,
    what: str,
    source: SourceMap,
    path: tuple[str | int, ...],
) -> list[Finding]:
    """A cap that allows no send at all is a mistake (drop the channel instead); a cap on a free
    channel caps nothing."""
    cost = channel.cost_per_send
    if cost == 0:
        return [
            source.finding(
                Severity.WARNING,
                "spend-cap-no-cost",
                f"{what} caps spend on a channel whose cost_per_send is 0: it caps nothing; give "
                f"channel {channel.id!r} its cost_per_send in the strategy, or remove the cap",
                *path,
            )
        ]
    if amount < cost:
        return [
            source.finding(
                Severity.ERROR,
                "spend-cap-below-cost",
                f"{what} is {amount:g}, less than one send on {channel.id!r} costs "
                f"({cost:g}): no send could go out; raise it to at least {cost:g}, or drop the "
                "channel if it is not to be used",
                *path,
            )
        ]
    return []


def _unknown(kind: str, key: str, known: Iterable[str], where: str) -> str:
    options = ", ".join(sorted(known)) or "none defined"
    return f"{kind} {key!r} is not in {where} (known: {options}); fix the name or add it there"


def check_campaign(
    document: CampaignDocument, strategy: Strategy, *, strategy_file: str | None = None
) -> list[Finding]:
    """The campaign's trace to the strategy and its variants against each channel's norms."""
    campaign, source = document.campaign, document.source
    where = strategy_file or "strategy.yaml"
    findings: list[Finding] = []
    if strategy.objective(campaign.objective) is None:
        findings.append(
            source.finding(
                Severity.ERROR,
                "unknown-objective",
                _unknown(
                    "objective", campaign.objective, (o.id for o in strategy.objectives), where
                ),
                "objective",
            )
        )
    if campaign.pillar is not None and strategy.pillar(campaign.pillar) is None:
        findings.append(
            source.finding(
                Severity.ERROR,
                "unknown-pillar",
                _unknown("pillar", campaign.pillar, (p.id for p in strategy.brand.pillars), where),
                "pillar",
            )
        )
    audience = strategy.audience(campaign.audience) if campaign.audience else None
    if campaign.audience is not None and audience is None:
        findings.append(
            source.finding(
                Severity.ERROR,
                "unknown-audience",
                _unknown("audience", campaign.audience, (a.id for a in strategy.audiences), where),
                "audience",
            )
        )
    if campaign.message.urgency is Urgency.CRITICAL:
        overrides = [o.value for o in strategy.lever_policy.critical_overrides]
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
    known_channels = [c.id for c in strategy.channels]
    for index, key in enumerate(campaign.channels):
        if strategy.channel(key) is None:
            findings.append(
                source.finding(
                    Severity.ERROR,
                    "unknown-channel",
                    _unknown("channel", key, known_channels, where),
                    "channels",
                    index,
                )
            )
        elif key not in campaign.variants:
            findings.append(
                source.finding(
                    Severity.ERROR,
                    "no-variant",
                    f"channel {key!r} is allowed but has no variant; add one under "
                    f"`variants: {key}:` or remove it from `channels`",
                    "channels",
                    index,
                )
            )
    for key, amount in campaign.spend_caps.items():
        channel = strategy.channel(key)
        if channel is None:
            findings.append(
                source.finding(
                    Severity.ERROR,
                    "unknown-channel",
                    "spend_caps: " + _unknown("channel", key, known_channels, where),
                    "spend_caps",
                    key,
                    key=True,
                )
            )
        elif key not in campaign.channel_ids:
            findings.append(
                source.finding(
                    Severity.ERROR,
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
            findings += _spend_cap_findings(
                channel, amount, f"spend_caps.{key}", source, ("spend_caps", key)
            )
    stages = audience_stages(parse_expression(audience.filter)) if audience else None
    for key in campaign.variants:
        channel = strategy.channel(key)
        if channel is None:
            if key not in campaign.channels:
                findings.append(
                    source.finding(
                        Severity.ERROR,
                        "unknown-channel",
                        _unknown("channel", key, known_channels, where),
                        "variants",
                        key,
                        key=True,
                    )
                )
            continue
        if campaign.channels and key not in campaign.channels:
            findings.append(
                source.finding(
                    Severity.ERROR,
                    "channel-not-allowed",
                    f"variants for channel {key!r}, which the campaign's `channels` do not allow; "
                    "add it to `channels` or remove these variants",
                    "variants",
                    key,
                    key=True,
                )
            )
        findings += _check_norms(
            campaign, channel, variants_path=("variants", key), document=document, strategy=strategy
        )
        if stages is not None and not stages & {s.value for s in channel.stages_allowed}:
            findings.append(
                source.finding(
                    Severity.ERROR,
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


def _check_norms(
    campaign: Campaign,
    channel: Channel,
    *,
    variants_path: tuple[str, str],
    document: CampaignDocument,
    strategy: Strategy,
) -> list[Finding]:
    source = document.source
    findings: list[Finding] = []
    if channel.public and campaign.message.visibility is Visibility.PRIVATE:
        findings.append(
            source.finding(
                Severity.ERROR,
                "norm-visibility",
                f"the message is private but channel {channel.id!r} is public: everyone would read "
                "it; set `message: visibility: public` or drop this channel",
                *variants_path,
                key=True,
            )
        )
    if channel.public and campaign.message.category is MessageCategory.TRANSACTIONAL:
        findings.append(
            source.finding(
                Severity.ERROR,
                "norm-transactional",
                f"the message is transactional (about one person's account or order) but channel "
                f"{channel.id!r} is public: everyone would read it; drop this channel or make "
                "the message `category: marketing`",
                *variants_path,
                key=True,
            )
        )
    known = _known_template_fields(strategy)
    variant_ids = [v.id for v in campaign.variants[variants_path[1]]]
    for key in _duplicates(variant_ids):
        findings.append(
            source.finding(
                Severity.ERROR,
                "duplicate-id",
                f"channel {channel.id!r} has two variants with id {key!r}; give each its own id",
                *variants_path,
            )
        )
    for index, variant in enumerate(campaign.variants[variants_path[1]]):
        for name in _VARIANT_FIELDS:
            template: str | None = getattr(variant, name)
            if template is None:
                continue
            path = (*variants_path, index, name)
            limit: int | None = getattr(channel.limits, name)
            if limit == 0:
                findings.append(
                    source.finding(
                        Severity.ERROR,
                        "norm-field",
                        f"channel {channel.id!r} has no {name} (its limit is 0); remove it",
                        *path,
                    )
                )
            elif limit is not None and (length := _rendered_length(template)) > limit:
                findings.append(
                    source.finding(
                        Severity.ERROR,
                        "norm-length",
                        f"{name} of variant {variant.id!r} is {length} characters without its "
                        f"fields; channel {channel.id!r} allows {limit}: shorten it",
                        *path,
                    )
                )
            fields, problems = template_fields(template)
            for problem in problems:
                findings.append(
                    source.finding(Severity.ERROR, "template-syntax", f"{name}: {problem}", *path)
                )
            for template_field in fields:
                if template_field.name not in known:
                    findings.append(
                        source.finding(
                            Severity.ERROR,
                            "norm-template-field",
                            f"{name} of variant {variant.id!r} uses {{{{ {template_field.name} }}}}, "
                            "which contacts do not have; use external_id, locale, time_zone, stage "
                            "or an attribute declared under `attributes:` in the strategy "
                            f"(declared: {', '.join(sorted(strategy.attributes)) or 'none'})",
                            *path,
                        )
                    )
    return findings


def pillar_text(strategy: Strategy, pillar_id: str | None) -> str | None:
    """The pillar's promise and phrases as one text, ``None`` without a (known) pillar."""
    pillar = strategy.pillar(pillar_id) if pillar_id else None
    if pillar is None:
        return None
    return " ".join([pillar.promise, *pillar.phrases])


def campaign_texts(campaign: Campaign) -> dict[str, str]:
    """Per channel, everything its variants say (subjects, headlines and bodies joined)."""
    return {
        channel: " ".join(
            part for v in variants for part in (v.subject, v.headline, v.body) if part is not None
        )
        for channel, variants in campaign.variants.items()
    }


def check_consistency(
    documents: Sequence[CampaignDocument],
    strategy: Strategy,
    *,
    vectorizer: Vectorizer | None = None,
) -> list[Finding]:
    """Warn where a channel's variants say something else than the campaign's other channels, or
    than its pillar; the outlier channel is named with its score.

    ``vectorizer`` defaults to the strategy's ``checks.consistency_method``: TF-IDF fit on every
    variant and pillar of the workspace, or sentence embeddings (the ``embeddings`` extra).
    """
    config = strategy.checks
    if vectorizer is None:
        if config.consistency_method == "embeddings":
            vectorizer = embedding_vectorizer(config.embedding_model)
        else:
            corpus = [t for d in documents for t in campaign_texts(d.campaign).values()]
            corpus += [" ".join([p.promise, *p.phrases]) for p in strategy.brand.pillars]
            vectorizer = tfidf_vectorizer(corpus)
    findings: list[Finding] = []
    for document in documents:
        campaign = document.campaign
        scores = consistency_scores(
            campaign_texts(campaign), pillar_text(strategy, campaign.pillar), vectorizer
        )
        for score in scores:
            others = [c for c in campaign.variants if c != score.channel]
            if score.to_others is not None and score.to_others < config.min_channel_similarity:
                findings.append(
                    document.source.finding(
                        Severity.WARNING,
                        "consistency-channels",
                        f"campaign {campaign.id!r}: the {score.channel!r} variants say something "
                        f"else than {', '.join(repr(o) for o in others)} (similarity "
                        f"{score.to_others:.2f} < {config.min_channel_similarity:.2f}); one "
                        "campaign should carry one message on every channel",
                        "variants",
                        score.channel,
                        key=True,
                    )
                )
            if score.to_pillar is not None and score.to_pillar < config.min_pillar_similarity:
                findings.append(
                    document.source.finding(
                        Severity.WARNING,
                        "consistency-pillar",
                        f"campaign {campaign.id!r}: the {score.channel!r} variants are far from "
                        f"pillar {campaign.pillar!r} (similarity {score.to_pillar:.2f} < "
                        f"{config.min_pillar_similarity:.2f}); say what the pillar promises",
                        "variants",
                        score.channel,
                        key=True,
                    )
                )
    return findings


def check_realism(
    document: CampaignDocument, strategy: Strategy, baseline: AudienceBaseline
) -> list[Finding]:
    """Warn when the campaign's audience cannot show its objective's target, and say what can be shown.

    The baseline is the KPI's rate in the audience (from the store's events); the sample size is the
    two-proportion z-test's at the strategy's ``checks.alpha`` and ``checks.power`` with the campaign's
    holdout share. For a ``value`` KPI the check reads the rate of contacts with at least one KPI event,
    a proxy: a lift in value that comes with no lift in that rate is not seen here.
    """
    campaign, source = document.campaign, document.source
    objective = strategy.objective(campaign.objective)
    if objective is None:
        return []
    audience_name = campaign.audience or "all contacts"
    holdout = campaign.effective_holdout(strategy.lever_policy)
    if baseline.audience_size == 0:
        return [
            source.finding(
                Severity.WARNING,
                "realism-empty-audience",
                f"audience {audience_name!r} has no contact in the store that a channel of this "
                "campaign may reach: import contacts and consent, or widen the audience",
                "audience" if campaign.audience else "objective",
            )
        ]
    target = objective.target
    assessment = assess_target(
        baseline,
        relative_lift=target.relative_lift,
        absolute_rate=target.absolute_rate,
        holdout_share=holdout,
        alpha=strategy.checks.alpha,
        power=strategy.checks.power,
    )
    if assessment is None:
        event = objective.kpi.event.value
        horizon = _days(objective.horizon.total_seconds())
        seen = (
            f"no contact of audience {audience_name!r} had a {event} event"
            if not baseline.rate
            else f"every contact of audience {audience_name!r} had a {event} event"
        )
        return [
            source.finding(
                Severity.INFO,
                "realism-no-baseline",
                f"{seen} in the last {horizon}, so there is no baseline rate to test a lift "
                "against: import events to enable the realism check",
                "objective",
            )
        ]
    findings: list[Finding] = []
    realistic = _realistic_text(assessment.realistic_rate, assessment.baseline_rate)
    power = f"{strategy.checks.power:.0%}"
    if assessment.too_small:
        findings.append(
            source.finding(
                Severity.WARNING,
                "realism-audience-too-small",
                f"objective {objective.id!r}: moving {objective.kpi.event.value} from "
                f"{assessment.baseline_rate:.2%} to {assessment.target_rate:.2%} needs "
                f"{assessment.needed_treated:,} treated and {assessment.needed_holdout:,} holdout "
                f"contacts ({power} power, holdout {holdout:.0%}); audience {audience_name!r} has "
                f"{assessment.audience_size:,}. {realistic}",
                "objective",
            )
        )
    if assessment.beyond_seen:
        highest = baseline.highest_rate or 0.0
        findings.append(
            source.finding(
                Severity.WARNING,
                "realism-target-unseen",
                f"objective {objective.id!r}: the target rate {assessment.target_rate:.2%} is beyond "
                f"anything seen in audience {audience_name!r} (highest rate in any window: "
                f"{highest:.2%}, baseline {assessment.baseline_rate:.2%})."
                + ("" if assessment.too_small else f" {realistic}"),
                "objective",
            )
        )
    return findings


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} days"


def _realistic_text(rate: float | None, baseline: float) -> str:
    if rate is None:
        return "This audience is too small to detect any effect; widen it or lengthen the campaign."
    return (
        f"A realistic target for this audience: a rate of {rate:.2%} "
        f"(relative lift {rate / baseline - 1.0:+.1%})."
    )


def check_workspace(
    strategy: StrategyDocument,
    campaigns: Sequence[CampaignDocument],
    *,
    baselines: Mapping[str, AudienceBaseline] | None = None,
    vectorizer: Vectorizer | None = None,
) -> list[Finding]:
    """Every check over a strategy and its campaigns, errors first.

    Parameters
    ----------
    strategy, campaigns
        The parsed files (see :func:`read_strategy`, :func:`read_campaign`).
    baselines
        Campaign id → its audience's size and KPI history, read from the store by the ``app`` layer;
        campaigns without one skip the realism check.
    vectorizer
        Overrides the consistency scorer (e.g. a preloaded embedding model).
    """
    findings = check_strategy(strategy)
    ids = [d.campaign.id for d in campaigns]
    for key in _duplicates(ids):
        for document in campaigns:
            if document.campaign.id == key:
                findings.append(
                    document.source.finding(
                        Severity.ERROR,
                        "duplicate-id",
                        f"campaign id {key!r} is used by more than one campaign file; ids must be "
                        "unique (they key the campaign in the store)",
                        "id",
                    )
                )
    strategy_file = strategy.source.file
    for document in campaigns:
        findings += check_campaign(document, strategy.strategy, strategy_file=strategy_file)
    findings += check_consistency(campaigns, strategy.strategy, vectorizer=vectorizer)
    for document in campaigns:
        baseline = (baselines or {}).get(document.campaign.id)
        if baseline is not None:
            findings += check_realism(document, strategy.strategy, baseline)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: (order[f.severity], f.file or "", f.line or 0))
