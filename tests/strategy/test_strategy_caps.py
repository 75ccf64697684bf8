"""Spend caps in the strategy and campaign files: validated, located, shown and in the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_app import cli_app
from tummler.app.workspace import init_workspace
from tummler.cli.strategy import strategy_app
from tummler.strategy import (
    EXAMPLES_DIR,
    Finding,
    Severity,
    campaign_json_schema,
    check_workspace,
    read_campaign,
    read_strategy,
    strategy_json_schema,
    strategy_map,
)

STRATEGY = (EXAMPLES_DIR / "strategy.yaml").read_text(encoding="utf-8")
REORDER = (EXAMPLES_DIR / "campaigns" / "fresh-roast-reorder.yaml").read_text(encoding="utf-8")
#: The commented example lines of the shipped files, switched on by the tests.
SHARED_CAP = "    # spend_cap: {amount: 500.0, window: 30d}"
CAMPAIGN_CAP = "# spend_caps:"


def _findings(strategy: str = STRATEGY, campaign: str = REORDER) -> list[Finding]:
    document, found = read_strategy(strategy, "strategy.yaml")
    campaign_document, found_too = read_campaign(campaign, "reorder.yaml")
    if document is None or campaign_document is None:  # a schema error: nothing to cross-check
        return [*found, *found_too]
    return [*found, *found_too, *check_workspace(document, [campaign_document])]


def _with_caps(caps: str) -> str:
    return REORDER + f"spend_caps: {caps}\n"


def _shared(cap: str, channel: str = "sms") -> str:
    if channel == "sms":
        return STRATEGY.replace(SHARED_CAP, f"    spend_cap: {cap}")
    anchor = "    cost_per_send: 0.0\n"
    assert anchor in STRATEGY
    return STRATEGY.replace(anchor, anchor + f"    spend_cap: {cap}\n")


def _line(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_caps_that_allow_sends_pass_the_check() -> None:
    findings = _findings(
        _shared("{amount: 500.0, window: 30d}"), _with_caps("{sms: 10.0, email: 0.5}")
    )
    assert not [f for f in findings if f.code.startswith("spend-cap") or f.code == "schema"]


@pytest.mark.parametrize(
    ("strategy", "campaign", "code", "severity", "fragment", "where"),
    [
        (
            STRATEGY,
            _with_caps("{sms: 0.01}"),
            "spend-cap-below-cost",
            Severity.ERROR,
            "spend_caps.sms is 0.01, less than one send on 'sms' costs (0.05): no send could go",
            ("reorder.yaml", "spend_caps: {"),
        ),
        (
            _shared("{amount: 0.02, window: 7d}"),
            REORDER,
            "spend-cap-below-cost",
            Severity.ERROR,
            "channel 'sms': spend_cap.amount is 0.02, less than one send on 'sms' costs (0.05)",
            ("strategy.yaml", "spend_cap: {amount: 0.02"),
        ),
        (
            _shared("{amount: 5.0, window: 7d}", channel="mastodon"),
            REORDER,
            "spend-cap-no-cost",
            Severity.WARNING,
            "caps spend on a channel whose cost_per_send is 0: it caps nothing",
            ("strategy.yaml", "spend_cap: {amount: 5.0"),
        ),
        (
            STRATEGY,
            _with_caps("{mastodon: 5.0}"),
            "spend-cap-unused-channel",
            Severity.ERROR,
            "spend_caps caps channel 'mastodon', which this campaign does not use",
            ("reorder.yaml", "spend_caps: {"),
        ),
        (
            STRATEGY,
            _with_caps("{fax: 5.0}"),
            "unknown-channel",
            Severity.ERROR,
            "spend_caps: channel 'fax' is not in strategy.yaml",
            ("reorder.yaml", "spend_caps: {"),
        ),
        (
            STRATEGY,
            _with_caps("{sms: -1}"),
            "schema",
            Severity.ERROR,
            "spend_caps.sms: Input should be greater than or equal to 0",
            ("reorder.yaml", "spend_caps: {"),
        ),
        (
            _shared("{amount: 5.0}"),
            REORDER,
            "schema",
            Severity.ERROR,
            "channels[1].spend_cap has no 'window'; add it",
            ("strategy.yaml", "spend_cap: {amount: 5.0"),
        ),
    ],
)
def test_a_cap_that_cannot_work_is_reported_with_its_line(
    strategy: str,
    campaign: str,
    code: str,
    severity: Severity,
    fragment: str,
    where: tuple[str, str],
) -> None:
    findings = [f for f in _findings(strategy, campaign) if f.code == code]
    assert findings, [str(f) for f in _findings(strategy, campaign)]
    (finding,) = findings
    assert finding.severity is severity
    assert fragment in finding.message
    file, text = where
    assert finding.file == file
    assert finding.line == _line(strategy if file == "strategy.yaml" else campaign, text)


def test_the_json_schemas_describe_the_caps() -> None:
    campaign = campaign_json_schema()
    caps = campaign["properties"]["spend_caps"]
    assert caps["type"] == "object"
    (amount,) = caps["patternProperties"].values()  # keys are channel ids
    assert amount == {"type": "number", "minimum": 0}
    assert "sends × cost_per_send" in caps["description"]
    strategy = strategy_json_schema()
    channel = strategy["$defs"]["Channel"]["properties"]
    assert "spend_cap" in channel
    shared = strategy["$defs"]["SpendCap"]
    assert set(shared["required"]) == {"amount", "window"}


def test_the_strategy_map_shows_both_caps() -> None:
    document, _ = read_strategy(_shared("{amount: 500.0, window: 30d}"))
    campaign, _ = read_campaign(_with_caps("{sms: 10.0}"))
    assert document is not None
    assert campaign is not None
    mapping = strategy_map(document.strategy, [campaign.campaign])
    (entry,) = mapping["objectives"][0]["campaigns"]
    channels = {c["id"]: c for c in entry["channels"]}
    assert channels["sms"]["spend_cap"] == 10.0
    assert channels["sms"]["shared_spend_cap"] == {"amount": 500.0, "window": "30d"}
    assert channels["sms"]["cost_per_send"] == 0.05
    assert channels["email"]["spend_cap"] is None
    assert channels["email"]["shared_spend_cap"] is None
    json.dumps(mapping)


def test_strategy_show_prints_the_caps(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    (workspace / "strategy.yaml").write_text(
        _shared("{amount: 500.0, window: 30d}"), encoding="utf-8"
    )
    (workspace / "campaigns" / "fresh-roast-reorder.yaml").write_text(
        _with_caps("{sms: 10.0}"), encoding="utf-8"
    )
    app = cli_app(workspace, strategy=strategy_app)
    shown = CliRunner().invoke(app, ["strategy", "show"])
    assert shown.exit_code == 0, shown.output
    words = " ".join("".join(c for c in shown.output if c not in "│├└─").split())  # tree wraps
    assert "spend cap 10 for this campaign" in words
    assert "500 per 30d across campaigns" in words


def test_the_shipped_examples_show_a_cap_in_a_comment() -> None:
    assert SHARED_CAP in STRATEGY
    assert CAMPAIGN_CAP in REORDER
