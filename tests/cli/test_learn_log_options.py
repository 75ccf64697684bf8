"""``tummler learn --log`` and ``evaluate --log`` read a log as the Python API can: the roles under
the log's own names (``--columns``), columns left out (``--ignore``), numbers read as categories
(``--categorical``); bad options are refused with the option named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli_app import rooted_cli_app
from tummler.app.learning import load_policy_file
from tummler.cli import learn as learn_cli
from tummler.core.errors import InputError

runner = CliRunner()
ROLES = "action=arm,reward=conversion,propensity=p"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A log that names its roles its own way, with a later outcome (``visit``) and a zip code."""
    lines = ["arm,conversion,p,age,zip,visit"]
    for i in range(60):
        arm = ("email", "sms")[i % 2]
        lines.append(f"{arm},{i % 3 == 0:d},0.5,{20 + i},{75001 + i % 3},{i % 5}")
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _invoke(*args: str) -> Result:
    return runner.invoke(rooted_cli_app(learn_cli.learn, learn_cli.evaluate), list(args))


def test_learn_maps_roles_ignores_outcomes_and_reads_zip_codes_as_categories(
    log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.json"
    result = _invoke(
        "learn", "--log", str(log), "--out", str(out), "--columns", ROLES,
        "--ignore", "visit", "--categorical", "zip", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["n_rounds"], report["n_actions"]) == (60, 2)
    names = load_policy_file(out).feature_names
    assert names == ("age", "zip=75001", "zip=75002", "zip=75003")  # no visit; zip one-hot
    result = _invoke(
        "evaluate", "--log", str(log), "-p", str(out), "-p", "uniform", "--columns", ROLES,
        "--ignore", "visit,", "--categorical", "zip", "--bootstrap", "0", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n_rounds"] == 60


def test_repeated_and_comma_separated_names_are_one_list(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = _invoke(
        "learn", "--log", str(log), "--out", str(out), "--columns", ROLES,
        "--ignore", "visit, age", "--ignore", "zip",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_policy_file(out).feature_names == ()


@pytest.mark.parametrize(
    ("options", "message", "field"),
    [
        (["--columns", "action:arm"], "role=column pairs", "columns"),
        (["--columns", "action=arm,action=x"], "maps the role 'action' twice", "columns"),
        (["--columns", "arm=action"], "columns maps 'arm', which is not a role", "arm"),
        (["--columns", "action=nope,reward=conversion,propensity=p"], "no 'nope' column", "nope"),
        (["--columns", ROLES, "--ignore", "spend"], "ignore names 'spend'", "spend"),
    ],
)
def test_bad_reading_options(
    log: Path, tmp_path: Path, options: list[str], message: str, field: str
) -> None:
    result = _invoke("learn", "--log", str(log), "--out", str(tmp_path / "p.json"), *options)
    error = result.exception
    assert isinstance(error, InputError)
    assert message in str(error)
    assert error.field == field


@pytest.mark.parametrize("command", ["learn", "evaluate"])
def test_reading_options_need_a_log(tmp_path: Path, command: str) -> None:
    result = _invoke("-w", str(tmp_path), command, "--ignore", "visit")
    error = result.exception
    assert isinstance(error, InputError)
    assert "--ignore tells how to read a log file: give it with --log FILE" in str(error)
