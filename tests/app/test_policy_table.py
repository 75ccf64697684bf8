"""A policy given as a probability table (``tummler evaluate --log LOG --policy TABLE.csv``).

Known answers: a table equal to the logging distribution has importance weights 1, so its IPS
estimate is the logged mean reward; a one-hot table on the best action is ``best-single``; "80%
e-mail" is the mean of ``reward · π(a) / p`` computed by hand. Bad tables are refused with the
file, the line and the column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli_app import rooted_cli_app
from tummler.app.ingest import read_logged_bandit
from tummler.app.learning import evaluate_log, read_probability_table
from tummler.cli import learn as learn_cli
from tummler.core.errors import InputError

ACTIONS = ("email", "none", "sms")  # the log's actions, sorted
#: The logging design: per plan, each action's probability (not uniform, and not the same).
LOGGING = {"free": (0.6, 0.1, 0.3), "pro": (0.2, 0.5, 0.3)}
RATES = {"email": 0.30, "none": 0.02, "sms": 0.12}


def _write_log(path: Path, n: int = 2000, seed: int = 7) -> Path:
    """A log whose logging policy depends on the plan, with numeric and boolean columns too."""
    rng = np.random.default_rng(seed)
    lines = ["action,reward,propensity,plan,tier,vip"]
    for _ in range(n):
        plan = str(rng.choice(["free", "pro"]))
        a = int(rng.choice(3, p=LOGGING[plan]))
        reward = float(rng.random() < RATES[ACTIONS[a]])
        tier = int(rng.integers(1, 3))
        vip = "true" if rng.random() < 0.3 else "false"
        lines.append(f"{ACTIONS[a]},{reward:g},{LOGGING[plan][a]!r},{plan},{tier},{vip}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_log(tmp_path_factory.mktemp("table") / "log.csv")


def _table(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _values(log: Path, table: Path, *others: str) -> dict[str, dict[str, float]]:
    evaluation = evaluate_log(log, [str(table), *others], n_bootstrap=0)
    return {r.policy: {e.name: e.value for e in r.estimates} for r in evaluation.results}


def test_the_logging_distribution_is_worth_the_logged_mean(log: Path, tmp_path: Path) -> None:
    rows = [
        f"{plan},{action},{p!r}"
        for plan, shares in LOGGING.items()
        for action, p in zip(ACTIONS, shares, strict=True)
    ]
    table = _table(tmp_path, "plan,action,probability\n" + "\n".join(rows) + "\n")
    logs = read_logged_bandit(log)
    estimates = _values(log, table)[str(table)]
    assert estimates["ips"] == pytest.approx(logs.reward.mean(), abs=1e-12)
    assert estimates["snips"] == pytest.approx(logs.reward.mean(), abs=1e-12)


def test_a_one_hot_table_is_best_single(log: Path, tmp_path: Path) -> None:
    table = _table(tmp_path, "action,probability\nemail,1\n")
    values = _values(log, table, "best-single")
    assert values[str(table)] == pytest.approx(values["best-single"], abs=1e-12)


def test_what_if_we_had_sent_80_percent_email(log: Path, tmp_path: Path) -> None:
    table = _table(tmp_path, "action,probability\nemail,0.8\nsms,0.2\n")
    logs = read_logged_bandit(log)
    share = np.array([0.8, 0.0, 0.2])[logs.action]
    by_hand = float(np.mean(logs.reward * share / logs.propensity))
    estimates = _values(log, table)[str(table)]
    assert estimates["ips"] == pytest.approx(by_hand, abs=1e-12)
    truth = 0.8 * RATES["email"] + 0.2 * RATES["sms"]
    assert estimates["dr"] == pytest.approx(truth, abs=0.03)


def test_segments_on_numeric_and_boolean_columns(log: Path, tmp_path: Path) -> None:
    """``tier`` is a number and ``vip`` a boolean in the log; the table names their values."""
    rows = ["1,true,email,1", "1,false,sms,1", "2,true,email,0.5", "2,true,sms,0.5"]
    rows.append("2.0,false,none,1")
    table = _table(tmp_path, "tier,vip,action,probability\n" + "\n".join(rows) + "\n")
    logs = read_logged_bandit(log)
    dist = read_probability_table(table).action_dist(logs)
    tier = logs.context[:, logs.feature_names.index("tier")]
    vip = logs.context[:, logs.feature_names.index("vip")]
    splits = np.array([[1.0, 0, 0], [0, 0, 1.0], [0.5, 0, 0.5], [0, 1.0, 0]])
    which = np.where(tier == 1, np.where(vip == 1, 0, 1), np.where(vip == 1, 2, 3))
    expected = splits[which]
    np.testing.assert_array_equal(dist, expected)


def test_hand_rounded_shares_are_accepted_and_made_exact(log: Path, tmp_path: Path) -> None:
    table = _table(tmp_path, "action,probability\nemail,0.333\nsms,0.333\nnone,0.3335\n")
    dist = read_probability_table(table).action_dist(read_logged_bandit(log))
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-15)


@pytest.mark.parametrize(
    ("text", "message", "line", "field"),
    [
        ("action,share\nemail,1\n", "columns are action,probability", 1, None),
        ("action,probability\n", "has no rows", None, None),
        ("action,probability\nemail,0.8\nsms,0.1\n", r"sum to 0\.9, not 1", 3, "probability"),
        ("action,probability\nemail,high\n", "'high' is not a number in", 2, "probability"),
        ("action,probability\nemail,1.5\n", "not a number in \\[0, 1\\]", 2, "probability"),
        ("action,probability\nemail,nan\n", "not a number in", 2, "probability"),
        ("action,probability\nemail,0.5\nemail,0.5\n", "listed twice", 3, "action"),
        ("action,probability\nemail,0.5,x\n", "3 cells where the header has 2", 2, None),
        ("action,probability\n,1\n", "missing action", 2, "action"),
        ("plan,action,probability\nfree,email,1\npro,sms,0.5\n", "segment plan=pro sum", 3, None),
    ],
)
def test_bad_tables_name_the_file_line_and_column(
    tmp_path: Path, text: str, message: str, line: int | None, field: str | None
) -> None:
    table = _table(tmp_path, text)
    with pytest.raises(InputError, match=message) as caught:
        read_probability_table(table)
    assert caught.value.file == str(table)
    assert caught.value.line == line
    if field is not None:
        assert caught.value.field == field


@pytest.mark.parametrize(
    ("text", "message", "line", "field"),
    [
        (
            "action,probability\nemail,0.5\npush,0.5\n",
            "action 'push' is not an action",
            3,
            "action",
        ),
        (
            "plan,action,probability\nfree,email,1\n",
            r"segment plan=pro holds [\d,]+ round\(s\) of the log .* missing from the table",
            None,
            "plan",
        ),
        ("city,action,probability\nparis,email,1\n", "'city' is not a context column", 1, "city"),
        ("tier,action,probability\none,email,1\n", "'one' is not a number", 2, "tier"),
    ],
)
def test_tables_that_do_not_fit_the_log(
    log: Path, tmp_path: Path, text: str, message: str, line: int | None, field: str
) -> None:
    table = _table(tmp_path, text)
    with pytest.raises(InputError, match=message) as caught:
        evaluate_log(log, [str(table)], n_bootstrap=0)
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(table), line, field)


def test_a_hashed_segment_column_cannot_be_told_apart(tmp_path: Path) -> None:
    rows = [f"email,0,1,c{i}" for i in range(40)]  # 40 cities: more than one-hot takes (32)
    log = _table(tmp_path, "action,reward,propensity,city\n" + "\n".join(rows) + "\n", "log.csv")
    table = _table(tmp_path, "city,action,probability\nc1,email,1\n")
    with pytest.raises(InputError, match="values were hashed"):
        evaluate_log(log, [str(table)], n_bootstrap=0)


def test_cli_weighs_a_table_and_refuses_one_without_a_log(log: Path, tmp_path: Path) -> None:
    table = _table(tmp_path, "action,probability\nemail,0.8\nsms,0.2\n")
    app = rooted_cli_app(learn_cli.learn, learn_cli.evaluate)
    args = ["evaluate", "--log", str(log), "-p", str(table), "-p", "logged", "--bootstrap", "20"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [p["policy"] for p in document["policies"]] == [str(table), "logged"]
    assert document["exploration"] == []  # a table does not explore
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "price of exploration" not in result.stdout
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(app, ["-w", str(workspace), "evaluate", "-p", str(table)])
    assert isinstance(result.exception, InputError)
    assert "probability table" in str(result.exception)
