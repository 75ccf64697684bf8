"""The strategy file and campaign files: each mistake reported with its code, message and line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tummler.core.errors import MissingDependencyError, StrategyError
from tummler.strategy import (
    EXAMPLES_DIR,
    CampaignDocument,
    Finding,
    Severity,
    StrategyDocument,
    campaign_json_schema,
    check_consistency,
    check_workspace,
    consistency_scores,
    embedding_vectorizer,
    has_errors,
    load_campaign,
    load_strategy,
    read_campaign,
    read_strategy,
    strategy_json_schema,
    strategy_map,
    template_fields,
    tfidf_vectorizer,
    tokenize,
)

# Line numbers in the tables below refer to these texts: keep them in step.
STRATEGY = """\
version: 1
brand:
  name: Acme Tools
  pillars:
    - id: quality
      promise: Tools built to last a lifetime, with a lifetime warranty.
      phrases: [built to last, lifetime warranty]
attributes:
  first_name: {type: string}
  country: {type: string}
objectives:
  - id: repeat
    kpi: {event: converted}
    attribution_window: 14d
    target: {relative_lift: 0.1}
    horizon: 90d
audiences:
  - id: customers
    filter: stage == "customer" and attributes.country == "DE"
channels:
  - id: email
    kind: email
    public: false
    limits: {subject: 60, body: 2000}
  - id: mastodon
    kind: mastodon
    public: true
    limits: {body: 500}
    consent_required: false
  - id: sms
    kind: sms
    public: false
    limits: {subject: 0, body: 160}
    stages_allowed: [advocate]
"""

CAMPAIGN = """\
id: spring
objective: repeat
pillar: quality
audience: customers
message: {visibility: private, urgency: normal}
channels: [email]
variants:
  email:
    - subject: "{{ first_name }}, tools built to last"
      body: Our tools are built to last, with a lifetime warranty.
"""


def _edit(text: str, changes: dict[int, str | None]) -> str:
    """Replace (or, with ``None``, delete) 1-based lines of ``text``."""
    lines = text.splitlines()
    for number in sorted(changes, reverse=True):
        replacement = changes[number]
        if replacement is None:
            del lines[number - 1]
        else:
            lines[number - 1 : number] = replacement.split("\n")
    return "\n".join(lines) + "\n"


def _strategy() -> StrategyDocument:
    document, findings = read_strategy(STRATEGY, "strategy.yaml")
    assert findings == []
    assert document is not None
    return document


def _check(strategy_text: str, *campaign_texts: str) -> list[Finding]:
    document, findings = read_strategy(strategy_text, "strategy.yaml")
    campaigns: list[CampaignDocument] = []
    for i, text in enumerate(campaign_texts):
        campaign, found = read_campaign(text, f"campaigns/c{i}.yaml")
        findings += found
        if campaign is not None:
            campaigns.append(campaign)
    if document is not None:
        findings += check_workspace(document, campaigns)
    return findings


def test_the_base_files_pass() -> None:
    assert _check(STRATEGY, CAMPAIGN) == []


@pytest.mark.parametrize(
    ("changes", "code", "line", "column", "fragment"),
    [
        ({13: "    kpi: {event: opened}"}, "schema", 13, 18, "privacy proxies open mail"),
        ({14: "    attribution_window: 14 days"}, "schema", 14, 25, "is not a duration"),
        (
            {15: "    target: {relative_lift: 0.1, absolute_rate: 0.2}"},
            "schema",
            15,
            13,
            "exactly one of relative_lift",
        ),
        (
            {16: "    horizon: 7d"},
            "schema",
            12,
            5,
            "horizon is shorter than the attribution window",
        ),
        (
            {14: "    attribution_window: 14d\n    penalties: {unsubscribed: -1}"},
            "schema",
            15,
            31,
            "penalties.unsubscribed: Input should be greater than or equal to 0",
        ),
        (
            {14: "    attribution_window: 14d\n    penalties: {complained: .inf}"},
            "schema",
            15,
            29,
            "penalties.complained: Input should be a finite number",
        ),
        (
            {14: "    attribution_window: 14d\n    penalties: {unsubscribe: 2}"},
            "schema",
            15,
            17,
            "unknown field 'objectives[0].penalties.unsubscribe'",
        ),
        ({19: '    filter: stage = "customer"'}, "expression", 19, 19, "unexpected character '='"),
        (
            {19: "    filter: \"stage in ['customer'\""},
            "expression",
            19,
            34,
            "expected ',' or ']'",
        ),
        (
            {19: '    filter: attributes.tier == "gold"'},
            "unknown-attribute",
            19,
            13,
            "reads attributes.tier, which the strategy does not declare",
        ),
        (
            {19: '    filter: consent("fax")'},
            "unknown-channel",
            19,
            13,
            "asks about channel 'fax'",
        ),
        ({22: "    kind: fax"}, "schema", 22, 11, "Input should be 'email'"),
        ({23: "    publik: false"}, "schema", 23, 5, "unknown field 'channels[0].publik'"),
        ({23: None}, "schema", 21, 5, "channels[0] has no 'public'"),
        ({25: "  - id: email"}, "duplicate-id", 25, 9, "id 'email' is used twice"),
        ({24: "    kind: email"}, "duplicate-key", 24, 5, "key 'kind' appears twice"),
        ({12: "  - id: Repeat!"}, "schema", 12, 9, "'Repeat!' is not an id"),
        ({3: None}, "schema", 3, 3, "brand has no 'name'"),
        ({1: "version: 2"}, "schema", 1, 10, "Input should be 1"),
        ({5: None, 6: None, 7: None, 4: "  pillars: []"}, "schema", 4, 12, "at least 1 item"),
        (
            {
                29: '    consent_required: false\n    send_slots: ["23:00"]\n'
                '    quiet_hours: {start: "22:00", end: "06:00"}'
            },
            "slot-in-quiet-hours",
            30,
            18,
            "send slot 23:00 falls in its quiet hours",
        ),
        ({29: "    cost_per_send: -1"}, "schema", 29, 20, "greater than or equal to 0"),
        (
            {23: "    public: false\n    consent_required: false"},
            "norm-consent",
            24,
            23,
            "channel 'email' is private but sends without consent",
        ),
        ({29: '    send_slots: ["25:00"]'}, "schema", 29, 18, "is not a time of day"),
    ],
)
def test_bad_strategy_files_are_reported_with_their_line(
    changes: dict[int, str | None], code: str, line: int, column: int, fragment: str
) -> None:
    findings = _check(_edit(STRATEGY, changes), CAMPAIGN)
    matching = [f for f in findings if f.code == code and fragment in f.message]
    assert matching, "\n".join(map(str, findings))
    assert (matching[0].line, matching[0].column) == (line, column), str(matching[0])
    assert matching[0].file == "strategy.yaml"
    assert has_errors(findings) is (matching[0].severity is Severity.ERROR)


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ('brand:\n  name: "Acme\nx: 1\n', 4, 1, "while scanning a quoted scalar"),
        ("brand:\n\tname: Acme\n", 2, 1, "found character '\\t'"),
        ("objectives: [1, 2\nchannels: 3\n", 2, 9, "expected ',' or ']'"),
        ("brand: name: Acme\n", 1, 12, "mapping values are not allowed here"),
        ("[" * 5000 + "]" * 5000, 1, 1, "nested too deeply"),
        ("brand: !!python/object:os.system {}\n", 1, 8, "could not determine a constructor"),
    ],
)
def test_yaml_syntax_errors_name_line_and_column(
    text: str, line: int, column: int, fragment: str
) -> None:
    document, findings = read_strategy(text, "strategy.yaml")
    assert document is None
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.code, finding.line, finding.column) == ("yaml-syntax", line, column)
    assert fragment in finding.message
    assert str(finding).startswith(f"strategy.yaml:{line}:{column}: error [yaml-syntax]")


@pytest.mark.parametrize(
    ("text", "fragment"), [("", "the file is empty"), ("- a\n- b\n", "the file is a list")]
)
def test_a_file_that_is_not_a_mapping_is_refused(text: str, fragment: str) -> None:
    document, findings = read_strategy(text, "strategy.yaml")
    assert document is None
    assert [f.code for f in findings] == ["not-a-mapping"]
    assert fragment in findings[0].message


@pytest.mark.parametrize(
    ("changes", "code", "line", "fragment"),
    [
        ({2: None}, "missing-objective", 1, "the campaign has no objective"),
        ({2: "objective: growth"}, "unknown-objective", 2, "objective 'growth' is not in"),
        ({2: "objective: growth"}, "unknown-objective", 2, "(known: repeat)"),
        ({3: "pillar: price"}, "unknown-pillar", 3, "pillar 'price' is not in"),
        ({4: "audience: everyone"}, "unknown-audience", 4, "audience 'everyone' is not in"),
        ({6: "channels: [email, fax]"}, "unknown-channel", 6, "channel 'fax' is not in"),
        (
            {
                9: '    - subject: "{{ first_name }}, our tools are built to last a whole lifetime and more, '
                'guaranteed"'
            },
            "norm-length",
            9,
            "subject of variant 'a' is 67 characters without its fields; channel 'email' allows 60",
        ),
        (
            {9: '    - subject: "{{ last_name }}, tools built to last"'},
            "norm-template-field",
            9,
            "uses {{ last_name }}, which contacts do not have",
        ),
        (
            {9: '    - subject: "{{ first_name, tools built to last"'},
            "template-syntax",
            9,
            "a '{{' without its '}}'",
        ),
        (
            {9: '    - subject: "{{ first_name() }}, tools"'},
            "template-syntax",
            9,
            "is not a field name",
        ),
        (
            {
                6: "channels: [mastodon]",
                8: "  mastodon:",
                9: "    - body: Built to last.",
                10: None,
            },
            "norm-visibility",
            8,
            "the message is private but channel 'mastodon' is public",
        ),
        (
            {6: "channels: [email, mastodon]", 5: "message: {visibility: public}"},
            "no-variant",
            6,
            "channel 'mastodon' is allowed but has no variant",
        ),
        (
            {10: "      body: Built to last.\n  mastodon:\n    - body: Built to last."},
            "channel-not-allowed",
            11,
            "variants for channel 'mastodon', which the campaign's `channels` do not allow",
        ),
        (
            {6: "channels: [sms]", 8: "  sms:", 9: "    - body: Built to last.", 10: None},
            "norm-stage",
            8,
            "channel 'sms' allows stages advocate but audience 'customers' holds only customer",
        ),
        (
            {6: "channels: [sms]", 8: "  sms:", 4: None},
            "norm-field",
            8,
            "channel 'sms' has no subject",
        ),
        ({5: "message: {urgency: panic}"}, "schema", 5, "message.urgency: Input should be"),
        ({5: "message: {category: promo}"}, "schema", 5, "message.category: Input should be"),
        (
            {
                5: "message: {visibility: public, category: transactional}",
                6: "channels: [mastodon]",
                8: "  mastodon:",
                9: "    - body: Built to last.",
                10: None,
            },
            "norm-transactional",
            8,
            "the message is transactional (about one person's account or order) but channel "
            "'mastodon' is public",
        ),
        ({7: "variants: {}", 8: None, 9: None, 10: None}, "schema", 7, "at least 1 item"),
        (
            {
                6: "channels: [email]\nwindow: {start: 2026-05-01T00:00:00Z, end: 2026-04-01T00:00:00Z}"
            },
            "schema",
            7,
            "the window ends before it starts",
        ),
    ],
)
def test_bad_campaigns_are_reported_with_their_line(
    changes: dict[int, str | None], code: str, line: int, fragment: str
) -> None:
    findings = _check(STRATEGY, _edit(CAMPAIGN, changes))
    matching = [f for f in findings if f.code == code and fragment in f.message]
    assert matching, "\n".join(map(str, findings))
    assert matching[0].line == line, str(matching[0])
    assert matching[0].file == "campaigns/c0.yaml"
    assert has_errors(findings)


def test_a_critical_campaign_is_told_what_it_may_override() -> None:
    findings = _check(STRATEGY, _edit(CAMPAIGN, {5: "message: {urgency: critical}"}))
    [finding] = findings
    assert (finding.code, finding.severity, finding.line) == (
        "critical-overrides",
        Severity.INFO,
        5,
    )
    assert "may override lever_budget, fatigue" in finding.message
    assert "never consent" in finding.message


def test_a_transactional_campaign_is_told_what_that_allows_and_what_it_does_not() -> None:
    findings = _check(STRATEGY, _edit(CAMPAIGN, {5: "message: {category: transactional}"}))
    [finding] = findings
    assert (finding.code, finding.severity, finding.line) == ("transactional", Severity.INFO, 5)
    assert "without an unsubscribe link" in finding.message
    assert "never a promotion" in finding.message
    assert "consent is still checked" in finding.message


def test_two_campaigns_with_one_id_are_both_reported() -> None:
    findings = _check(STRATEGY, CAMPAIGN, CAMPAIGN)
    duplicates = [f for f in findings if f.code == "duplicate-id"]
    assert [f.file for f in duplicates] == ["campaigns/c0.yaml", "campaigns/c1.yaml"]


def test_the_python_api_raises_with_file_and_line() -> None:
    assert load_strategy(STRATEGY).brand.name == "Acme Tools"
    assert load_campaign(CAMPAIGN).objective == "repeat"
    with pytest.raises(StrategyError, match=r"^strategy\.yaml:14: line 14: .*not a duration"):
        load_strategy(_edit(STRATEGY, {14: "    attribution_window: soon"}), "strategy.yaml")
    with pytest.raises(StrategyError, match="the campaign has no objective"):
        load_campaign(_edit(CAMPAIGN, {2: None}))


def test_durations_and_times_are_written_back_as_they_were_read() -> None:
    strategy = load_strategy(STRATEGY)
    dumped = strategy.model_dump(mode="json")
    assert dumped["objectives"][0]["attribution_window"] == "14d"
    assert dumped["objectives"][0]["horizon"] == "90d"
    assert load_strategy(json.dumps(dumped)) == strategy


def test_unquoted_yaml_times_are_read_as_clock_times() -> None:
    text = _edit(STRATEGY, {29: "    send_slots: [09:30, '18:00']"})
    strategy = load_strategy(text)
    assert [t.strftime("%H:%M") for t in strategy.channels[1].send_slots] == ["09:30", "18:00"]


def test_lever_policy_defaults_follow_the_issue() -> None:
    policy = load_strategy(STRATEGY).lever_policy
    assert policy.levers_per_contact == 1
    assert policy.holdout_share == pytest.approx(0.1)
    assert policy.fatigue.cap == 3
    assert [o.value for o in policy.critical_overrides] == ["lever_budget", "fatigue"]


def test_template_fields_are_read_with_their_filters() -> None:
    fields, problems = template_fields(
        'Hi {{ first_name | default("there") }} in {{attributes.country}}'
    )
    assert [f.name for f in fields] == ["first_name", "attributes.country"]
    assert problems == []


# --------------------------------------------------------------------------------- consistency


def test_tokenize_drops_template_fields_stop_words_and_numbers() -> None:
    assert tokenize("Hi {{ first_name }}, the 2 tools are built to last!") == [
        "hi",
        "tools",
        "built",
        "last",
    ]


def test_tfidf_cosine_is_one_for_the_same_text_and_zero_for_disjoint_words() -> None:
    vectorize = tfidf_vectorizer(["fresh coffee roasted", "winter boots sale", "fresh bread"])
    scores = consistency_scores(
        {
            "email": "fresh coffee roasted",
            "sms": "fresh coffee roasted",
            "post": "winter boots sale",
        },
        "fresh coffee",
        vectorize,
    )
    by_channel = {s.channel: s for s in scores}
    assert by_channel["post"].to_others == pytest.approx(0.0)
    assert by_channel["post"].to_pillar == pytest.approx(0.0)
    assert by_channel["email"].to_pillar is not None
    assert 0.0 < by_channel["email"].to_pillar < 1.0
    vectors = vectorize(["fresh coffee roasted", "fresh coffee roasted"])
    assert np.allclose(vectors[0], vectors[1])


def test_consistency_warns_and_names_the_outlier_channel() -> None:
    text = _edit(
        CAMPAIGN,
        {
            5: "message: {visibility: public}",
            6: "channels: [email, mastodon]",
            10: "      body: Our tools are built to last, with a lifetime warranty.\n"
            "  mastodon:\n"
            "    - body: Winter boots on sale this weekend only, hurry to the store.",
        },
    )
    findings = _check(STRATEGY, text)
    assert not has_errors(findings)
    codes = {(f.code, f.line) for f in findings}
    assert ("consistency-channels", 11) in codes
    assert ("consistency-pillar", 11) in codes
    outliers = [f for f in findings if f.code == "consistency-channels"]
    assert any(
        "the 'mastodon' variants say something else than 'email'" in f.message for f in outliers
    )
    assert all(f.severity is Severity.WARNING for f in findings)
    assert not any(f.code == "consistency-pillar" and "'email'" in f.message for f in findings)


def test_a_custom_vectorizer_can_replace_tfidf() -> None:
    document, _ = read_campaign(CAMPAIGN, "c.yaml")
    assert document is not None

    def orthogonal(texts: object) -> np.ndarray:
        return np.eye(2)[:2]

    findings = check_consistency([document], _strategy().strategy, vectorizer=orthogonal)
    assert [f.code for f in findings] == ["consistency-pillar"]


def test_embeddings_without_the_extra_name_the_extra() -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'tummler\[embeddings\]'"):
        embedding_vectorizer("sentence-transformers/all-MiniLM-L6-v2")
    text = STRATEGY + "checks: {consistency_method: embeddings}\n"
    document, _ = read_strategy(text)
    assert document is not None
    with pytest.raises(MissingDependencyError, match="sentence-transformers"):
        check_workspace(document, [])


# ------------------------------------------------------------------------------ examples, schema


def _example_findings() -> list[Finding]:
    strategy, findings = read_strategy(
        (EXAMPLES_DIR / "strategy.yaml").read_text(encoding="utf-8"), "strategy.yaml"
    )
    assert strategy is not None
    campaigns = []
    for path in sorted((EXAMPLES_DIR / "campaigns").glob("*.yaml")):
        campaign, found = read_campaign(path.read_text(encoding="utf-8"), path.name)
        assert campaign is not None
        findings += found
        campaigns.append(campaign)
    assert len(campaigns) == 2
    return findings + check_workspace(strategy, campaigns)


def test_the_examples_that_init_writes_pass_the_check_without_a_warning() -> None:
    assert _example_findings() == []


def test_the_strategy_map_traces_campaigns_to_objectives() -> None:
    strategy = load_strategy(STRATEGY)
    orphan = load_campaign(_edit(CAMPAIGN, {1: "id: orphan", 2: "objective: growth"}))
    mapping = strategy_map(strategy, [load_campaign(CAMPAIGN), orphan])
    assert mapping["brand"] == "Acme Tools"
    [objective] = mapping["objectives"]
    assert objective["id"] == "repeat"
    assert objective["target_text"] == "+10% lift"
    assert [c["id"] for c in objective["campaigns"]] == ["spring"]
    assert objective["campaigns"][0]["channels"] == [
        {
            "id": "email",
            "kind": "email",
            "public": False,
            "variants": ["a"],
            "cost_per_send": 0.0,
            "spend_cap": None,
            "shared_spend_cap": None,
        }
    ]
    assert [c["id"] for c in mapping["untraced"]] == ["orphan"]
    assert mapping["lever_policy"]["fatigue"] == {"window": "7d", "cap": 3}
    json.dumps(mapping)


def test_json_schemas_describe_both_files() -> None:
    strategy = strategy_json_schema()
    assert strategy["$schema"].startswith("https://json-schema.org/")
    assert {"brand", "objectives", "audiences", "channels", "lever_policy"} <= set(
        strategy["properties"]
    )
    assert strategy["additionalProperties"] is False
    objective = strategy["$defs"]["Objective"]["properties"]
    assert objective["attribution_window"]["pattern"] == r"^\d+[mhdw]$"
    campaign = campaign_json_schema()
    assert "objective" in campaign["required"]
    json.dumps(strategy)
    json.dumps(campaign)


def _defaults_with_patterns(node: object) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if "pattern" in node and "default" in node:
            found.append((node["pattern"], node["default"]))
        for value in node.values():
            found += _defaults_with_patterns(value)
    elif isinstance(node, list):
        for value in node:
            found += _defaults_with_patterns(value)
    return found


def test_schema_defaults_satisfy_their_own_patterns() -> None:
    import re

    pairs = _defaults_with_patterns(strategy_json_schema())
    assert pairs
    for pattern, default in pairs:
        assert re.match(pattern, default), (pattern, default)


def test_example_files_are_shipped_with_the_package() -> None:
    assert (EXAMPLES_DIR / "strategy.yaml").is_file()
    assert Path(EXAMPLES_DIR).parent.name == "strategy"


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ("attributes.country == 49", "declared a string but `attributes.country == 49`"),
        ('attributes.country in ["DE", true]', "compares it with True"),
        ("attributes.country", "declared a string but `attributes.country` compares it with true"),
    ],
)
def test_a_literal_of_the_wrong_type_is_a_warning(condition: str, fragment: str) -> None:
    findings = _check(_edit(STRATEGY, {19: f"    filter: '{condition}'"}), CAMPAIGN)
    [finding] = findings
    assert (finding.code, finding.severity, finding.line) == (
        "attribute-type",
        Severity.WARNING,
        19,
    )
    assert fragment in finding.message


def test_comparing_with_null_is_not_a_type_mistake() -> None:
    assert _check(_edit(STRATEGY, {19: "    filter: attributes.country != null"}), CAMPAIGN) == []


_json = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.one_of(
        st.text(max_size=200),
        _json.map(lambda v: yaml.safe_dump(v)),
        st.tuples(st.integers(1, 34), st.text(max_size=30)).map(
            lambda t: _edit(STRATEGY, {t[0]: t[1]})
        ),
    )
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_file_makes_the_reader_crash(text: str) -> None:
    """Whatever the file holds, reading it gives a document or findings with a location."""
    for read in (read_strategy, read_campaign):
        document, findings = read(text, "f.yaml")
        assert document is not None or has_errors(findings)
        for finding in findings:
            assert finding.file == "f.yaml"
            assert finding.line is None or finding.line >= 1


def test_a_control_character_is_reported_with_line_and_column() -> None:
    document, [finding] = read_strategy("brand:\n  name: Ac\x1fme\n", "strategy.yaml")
    assert document is None
    assert (finding.code, finding.line, finding.column) == ("yaml-syntax", 2, 11)
    assert "U+001F" in finding.message


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A billion-laughs file: each level is a list of ``width`` aliases to the level before it.

    A dozen lines that expand to ``width ** levels`` values (387 million here) once aliases are
    followed: walking them takes minutes, which is the point of the attack.
    """
    lines = ["version: 1", f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def _many_aliases(count: int) -> str:
    return "version: 1\nname: &n Acme\nnames:\n" + "".join("  - *n\n" for _ in range(count))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(_alias_bomb(), "aliases expand too much", id="9-levels-of-9"),
        pytest.param(_alias_bomb(30, 2), "aliases expand too much", id="30-levels-of-2"),
        pytest.param(
            "brand: &b\n  name: [*b]\n", "refers to the node that contains it", id="recursive"
        ),
        pytest.param(_many_aliases(1_001), "more than 1,000 aliases", id="too-many"),
    ],
)
@pytest.mark.parametrize("read", [read_strategy, read_campaign])
def test_an_alias_bomb_is_refused_before_it_expands(text: str, fragment: str, read: Any) -> None:
    """A few lines that expand to billions of values, or a value that contains itself, fail fast.

    Today's reader spends minutes (or forever) walking the expansion; 5 s is a generous bound.
    """
    started = time.perf_counter()
    document, findings = read(text, "f.yaml")
    assert time.perf_counter() - started < 5
    assert document is None
    [finding] = findings
    assert (finding.code, finding.file, finding.severity) == (
        "yaml-aliases",
        "f.yaml",
        Severity.ERROR,
    )
    assert fragment in finding.message
    # the line of the alias that went too far, inside the file
    assert finding.line is not None
    assert 2 <= finding.line <= text.count("\n")


def test_the_python_api_names_the_file_and_line_of_an_alias_bomb() -> None:
    with pytest.raises(StrategyError, match=r"^strategy\.yaml:\d+: .*aliases expand too much"):
        load_strategy(_alias_bomb(), "strategy.yaml")


def test_a_few_anchors_and_aliases_still_work() -> None:
    shared = STRATEGY.replace(
        "    limits: {subject: 60, body: 2000}", "    limits: &limits {subject: 60, body: 2000}"
    ).replace("    limits: {body: 500}", "    limits: *limits")
    assert shared != STRATEGY
    document, findings = read_strategy(shared, "strategy.yaml")
    assert findings == []
    assert document is not None
    channels = {channel.id: channel for channel in document.strategy.channels}
    assert channels["mastodon"].limits == channels["email"].limits
    # the most a file may use: each alias adds one value
    document, findings = read_strategy(_many_aliases(1_000), "strategy.yaml")
    assert [f.code for f in findings if f.code.startswith("yaml")] == []


def test_a_duplicate_key_under_an_anchor_is_reported_once() -> None:
    text = "version: 1\nbase: &b {x: 1, x: 2}\ncopies: [*b, *b, *b]\n"
    _, findings = read_strategy(text, "strategy.yaml")
    assert [(f.code, f.line) for f in findings if f.code == "duplicate-key"] == [
        ("duplicate-key", 2)
    ]
