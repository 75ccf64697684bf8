"""``tummler strategy check``: the strategy file's own checks, and every check over a workspace.

Every check returns findings instead of raising, so that one run reports every problem of every file.
:func:`check_workspace` runs them all — the strategy's (here and in :mod:`._channel_checks`), each
campaign's trace and norms (:mod:`._campaign_checks`), consistency (:mod:`._consistency`) and realism
(:mod:`._realism`) — errors first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tummler.core.vocabulary import ChannelKind
from tummler.strategy._campaign_checks import check_campaign
from tummler.strategy._channel_checks import check_channel
from tummler.strategy._consistency import Vectorizer, check_consistency
from tummler.strategy._expression import (
    Compare,
    Expression,
    Membership,
    Scalar,
    Truthy,
    attribute_names,
    leaves,
    predicate_arguments,
)
from tummler.strategy._findings import Finding, Severity, duplicates
from tummler.strategy._loading import CampaignDocument, StrategyDocument
from tummler.strategy._models import Strategy
from tummler.strategy._parser import parse_expression
from tummler.strategy._realism import AudienceBaseline, check_realism

__all__ = ["check_strategy", "check_workspace"]


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
        for key in duplicates(ids):
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
        findings += check_channel(channel, index, document)
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
    for key in duplicates(ids):
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
