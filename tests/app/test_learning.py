"""`tummler learn` / `tummler evaluate` over logged-bandit files: services and CLI.

The logs are generated with a known answer: one context feature ``x``; ``email`` converts at 70 %
when ``x > 0`` and 10 % otherwise, ``sms`` the other way round, ``none`` at 5 %; the logging policy
is uniform (propensity 1/3). The best policy is worth 0.70, uniform 0.2833, and the best single
action 0.40.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli_app import rooted_cli_app
from tummler.app.ingest import read_logged_bandit
from tummler.app.learning import (
    POLICY_FILE_FORMAT,
    PROMOTE_ACTION,
    Evaluation,
    LearnedPolicy,
    evaluate_log,
    fit_policy,
    learn_from_log,
    load_policy_file,
    promote,
    resolve_candidate,
    save_policy_file,
    store_policy_version,
)
from tummler.app.workspace import init_workspace
from tummler.cli import learn as learn_cli
from tummler.core.clock import FrozenClock
from tummler.core.errors import InputError, NotFoundError, PolicyError
from tummler.evaluate import Comparison, PolicyEvaluation
from tummler.store.models import AuditEntry, PolicyVersion

ACTIONS = np.array(["email", "sms", "none"])
BEST_VALUE = 0.70
UNIFORM_VALUE = (0.4 + 0.4 + 0.05) / 3


def write_log(path: Path, *, n: int = 3000, seed: int = 1, spend: bool = False) -> Path:
    """A uniform-logging log with a known best action per context (see the module docstring)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    plan = rng.choice(["free", "pro"], size=n)
    action = rng.integers(0, 3, size=n)
    rate = np.where(
        action == 0, 0.1 + 0.6 * (x > 0), np.where(action == 1, 0.1 + 0.6 * (x < 0), 0.05)
    )
    reward = (rng.random(n) < rate).astype(float)
    if spend:
        reward = reward * 40.0
    lines = ["action,reward,propensity,x,plan"]
    lines += [
        f"{ACTIONS[a]},{r:g},{1 / 3!r},{float(xi)!r},{p}"
        for a, r, xi, p in zip(action, reward, x, plan, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("logs") / "log.csv")


@pytest.fixture(scope="module")
def policy_file(log_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("policies") / "policy.json"
    learn_from_log(log_file, out=out)
    return out


# --- learning and the policy file -----------------------------------------------------------


def test_learned_policy_beats_uniform_and_best_single_under_dr(
    log_file: Path, policy_file: Path
) -> None:
    evaluation = evaluate_log(
        log_file, [str(policy_file), "uniform", "best-single"], n_bootstrap=100, seed=3
    )
    learned, uniform, single = (
        _result(evaluation, label)["dr"] for label in (str(policy_file), "uniform", "best-single")
    )
    assert learned.ci_low is not None
    assert uniform.ci_high is not None
    assert learned.ci_low > uniform.ci_high
    assert learned.value > single.value + 0.15
    assert learned.value == pytest.approx(BEST_VALUE, abs=0.06)
    assert uniform.value == pytest.approx(UNIFORM_VALUE, abs=0.03)


def test_policy_on_fresh_logs_from_the_same_world(policy_file: Path, tmp_path: Path) -> None:
    held_out = write_log(tmp_path / "held_out.csv", n=2000, seed=99)
    evaluation = evaluate_log(held_out, [str(policy_file)], n_bootstrap=0)
    assert evaluation.results[0]["ips"].value == pytest.approx(BEST_VALUE, abs=0.07)


def test_policy_file_round_trips(log_file: Path, tmp_path: Path) -> None:
    logs = read_logged_bandit(log_file)
    learned = fit_policy(logs)
    path = save_policy_file(learned, tmp_path / "sub" / "p.json")
    again = load_policy_file(path)
    assert json.loads(path.read_text())["format"] == POLICY_FILE_FORMAT
    assert again.to_dict() == learned.to_dict()
    assert again.action_names == ("email", "none", "sms")
    first = learned.action_dist(logs, draws=16, rng=5)
    second = again.action_dist(logs, draws=16, rng=5)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first.sum(axis=1), 1.0)


def test_chunked_learning_sees_every_row(log_file: Path) -> None:
    logs = read_logged_bandit(log_file)
    whole = fit_policy(logs, kind="linear_thompson")
    chunked = fit_policy(logs, kind="linear_thompson", chunk_rows=700)
    # Bayesian ridge updates are exactly additive, so chunking changes nothing.
    np.testing.assert_allclose(
        whole.policy.to_dict()["state"]["moment"], chunked.policy.to_dict()["state"]["moment"]
    )


def test_spend_rewards_need_a_linear_policy(tmp_path: Path) -> None:
    log = write_log(tmp_path / "spend.csv", n=1500, spend=True)
    with pytest.raises(InputError, match=r"outside \[0, 1\].*linear_thompson"):
        learn_from_log(log, out=tmp_path / "p.json")
    learn_from_log(log, out=tmp_path / "p.json", kind="linear_thompson")
    evaluation = evaluate_log(log, [str(tmp_path / "p.json"), "uniform"], n_bootstrap=0)
    learned, uniform = (
        _result(evaluation, label) for label in (str(tmp_path / "p.json"), "uniform")
    )
    assert learned["dr"].value > uniform["dr"].value + 10.0


def test_action_features_join_the_action_set(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.csv", n=1200)
    features = tmp_path / "actions.csv"
    features.write_text("action,cost\nemail,0.001\nsms,0.05\nnone,0\nletter,1.2\n")
    learn_from_log(log, out=tmp_path / "p.json", action_features=features)
    learned = load_policy_file(tmp_path / "p.json")
    assert learned.action_names == ("email", "sms", "none", "letter")
    assert learned.action_feature_names[-1] == "cost"
    # "letter" was never logged: evaluated on a log without it, its probability is masked out.
    logs = read_logged_bandit(log)
    dist = learned.action_dist(logs, draws=8)
    assert dist.shape == (1200, 3)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)


# --- bad input ------------------------------------------------------------------------------


def test_bad_policy_files(tmp_path: Path, policy_file: Path, log_file: Path) -> None:
    cases: list[tuple[str, str]] = [
        ("not json {", "not a JSON policy file"),
        (json.dumps({"kind": "logistic_thompson"}), "not a tummler policy file"),
        (json.dumps({"format": POLICY_FILE_FORMAT}), "lacks 'feature_names'"),
    ]
    good = json.loads(policy_file.read_text())
    good["featurizer"]["scale"] = good["featurizer"]["scale"][:-1]
    cases.append((json.dumps(good), "parts disagree"))
    for index, (text, message) in enumerate(cases):
        path = tmp_path / f"bad{index}.json"
        path.write_text(text)
        with pytest.raises(InputError, match=message) as info:
            load_policy_file(path)
        assert str(path) in str(info.value)
    with pytest.raises(InputError, match="policy file not found"):
        load_policy_file(tmp_path / "missing.json")


def test_version_1_policy_files_are_still_read(tmp_path: Path, policy_file: Path) -> None:
    current = json.loads(policy_file.read_text())
    assert current["format"] == POLICY_FILE_FORMAT == "tummler.policy/2"
    assert current["featurizer"]["type"] == "logged-bandit"
    old = {**current, **current.pop("featurizer"), "format": "tummler.policy/1"}
    del old["type"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(old))
    again, now = load_policy_file(path), load_policy_file(policy_file)
    assert again.action_names == now.action_names
    assert again.feature_names == now.feature_names
    np.testing.assert_array_equal(again.center, now.center)
    assert again.policy.to_dict() == now.policy.to_dict()


def test_bad_arguments(tmp_path: Path, log_file: Path, policy_file: Path) -> None:
    with pytest.raises(InputError, match="cannot be learned from a log"):
        learn_from_log(log_file, out=tmp_path / "p.json", kind="uniform_random")
    with pytest.raises(InputError, match="does not take these parameters"):
        learn_from_log(log_file, out=tmp_path / "p.json", params={"nope": 1})
    with pytest.raises(InputError, match="neither a baseline"):
        resolve_candidate("no-such-thing")
    with pytest.raises(InputError, match="run inside a workspace"):
        resolve_candidate("mine@3")
    other = tmp_path / "other.csv"
    other.write_text("action,reward,propensity,plan\nemail,1,0.5,free\nsms,0,0.5,pro\n")
    with pytest.raises(InputError, match=r"field 'x'.*which this log lacks"):
        evaluate_log(other, [str(policy_file)])
    no_x = tmp_path / "no_x.csv"
    no_x.write_text("action,reward,propensity,x\nemail,1,0.5,0.3\nfax,0,0.5,0.1\n")
    with pytest.raises(InputError, match="'fax' that the policy does not know"):
        evaluate_log(no_x, [str(policy_file)])
    bad_log = tmp_path / "bad.csv"
    bad_log.write_text("action,reward,propensity,x\nemail,1,0,0.3\n")
    with pytest.raises(InputError, match=r"line 2.*outside \(0, 1\]"):
        learn_from_log(bad_log, out=tmp_path / "p.json")


# --- stored versions and promotion ----------------------------------------------------------


def _result(evaluation: Evaluation, label: str) -> PolicyEvaluation:
    found = evaluation.result(label)
    assert found is not None, label
    return found


def _learned(log: Path, kind: str = "logistic_thompson", **params: float) -> LearnedPolicy:
    return fit_policy(read_logged_bandit(log), kind=kind, params=params)


def test_store_evaluate_and_promote(engine: Engine, log_file: Path) -> None:
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    good = store_policy_version(engine, _learned(log_file), name="mail", clock=clock)
    # Epsilon-greedy that explores almost always: close to uniform, clearly worse.
    poor = store_policy_version(
        engine, _learned(log_file, "epsilon_greedy", epsilon=1.0), name="mail", clock=clock
    )
    assert (good.version, poor.version) == (1, 2)
    assert poor.parent_id == good.id

    first = promote(engine, "mail@1", log=log_file, n_bootstrap=50, clock=clock)
    assert first.previous is None
    assert not first.forced

    with pytest.raises(PolicyError, match=r"refusing to promote mail@2.*lower bound"):
        promote(engine, "mail@2", log=log_file, n_bootstrap=50, clock=clock)
    forced = promote(engine, str(poor.id), log=log_file, n_bootstrap=50, force=True, clock=clock)
    assert forced.forced
    assert forced.previous == "mail@1"
    assert forced.candidate_estimate < (forced.previous_estimate or 0.0)

    with Session(engine) as session:
        promoted = session.scalars(
            select(PolicyVersion.version).where(PolicyVersion.promoted.is_(True))
        ).all()
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == PROMOTE_ACTION).order_by(AuditEntry.id)
        ).all()
    assert promoted == [2]
    assert [(e.subject, e.details["forced"]) for e in entries] == [
        ("policy:mail@1", False),
        ("policy:mail@2", True),
    ]
    with pytest.raises(NotFoundError, match="no stored policy version 'mail@9'"):
        promote(engine, "mail@9", log=log_file)
    evaluation = evaluate_log(log_file, ["mail@1", "uniform"], engine=engine, n_bootstrap=0)
    assert _result(evaluation, "mail@1")["dr"].value > _result(evaluation, "uniform")["dr"].value


def test_promotion_on_a_log_without_any_reward_keeps_the_promoted_version(
    engine: Engine, tmp_path: Path
) -> None:
    """Nobody responded: every policy's value is 0, and the estimates only differ by noise.
    The second version is not better than the first: it is kept, and that is not an error."""
    log = write_log(tmp_path / "silent.csv", n=600, seed=4)
    text = log.read_text().splitlines()
    column = text[0].split(",").index("reward")
    rows = [line.split(",") for line in text[1:]]
    for row in rows:
        row[column] = "0"
    log.write_text("\n".join([text[0], *(",".join(row) for row in rows)]) + "\n")
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    store_policy_version(engine, _learned(log), name="mail", clock=clock)
    store_policy_version(engine, _learned(log, prior_precision=4.0), name="mail", clock=clock)
    assert promote(engine, "mail@1", log=log, n_bootstrap=50, clock=clock).promoted == "mail@1"
    kept = promote(engine, "mail@2", log=log, n_bootstrap=50, clock=clock)
    assert (kept.promoted, kept.previous, kept.comparison) == (None, "mail@1", Comparison.TIE)
    assert kept.message.startswith("kept mail@1: mail@2 is not better")
    with Session(engine) as session:
        promoted = session.scalars(
            select(PolicyVersion.version).where(PolicyVersion.promoted.is_(True))
        ).all()
        subjects = session.scalars(select(AuditEntry.subject)).all()
    assert (promoted, subjects) == ([1], ["policy:mail@1"])


# --- the CLI --------------------------------------------------------------------------------


def _app() -> typer.Typer:
    """The two commands under the root that takes ``--workspace``, as ``tummler`` registers them."""
    return rooted_cli_app(learn_cli.learn, learn_cli.evaluate)


runner = CliRunner()


def test_cli_learn_then_evaluate_json(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.json"
    result = runner.invoke(_app(), ["learn", "--log", str(log_file), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_rounds"] == 3000
    result = runner.invoke(
        _app(),
        [
            "evaluate", "--log", str(log_file), "--policy", str(out), "--policy", "uniform",
            "--json", "--bootstrap", "50", "--seed", "4",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    policies = {p["policy"]: p["estimates"] for p in document["policies"]}
    # a Thompson sampler is weighed as deployed and greedy, with the price of its exploration
    assert set(policies) == {str(out), f"{out} (greedy)", "uniform"}
    (price,) = document["exploration"]
    assert (price["policy"], price["greedy"]) == (str(out), f"{out} (greedy)")
    assert set(policies["uniform"]) == {"ips", "snips", "dm", "dr", "switch_dr"}
    assert policies[str(out)]["dr"]["ci_low"] > policies["uniform"]["dr"]["ci_high"]


def test_cli_evaluate_table(log_file: Path, policy_file: Path) -> None:
    result = runner.invoke(
        _app(),
        [
            "evaluate",
            "--log",
            str(log_file),
            "-p",
            str(policy_file),
            "-p",
            "logged",
            "--bootstrap",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    for word in ("switch_dr", "logged", "interval", "ESS", "3,000"):
        assert word in result.stdout


def test_cli_bad_input_is_an_input_error(tmp_path: Path) -> None:
    result = runner.invoke(
        _app(), ["learn", "--log", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "p.json")]
    )
    assert isinstance(result.exception, InputError)
    assert "file not found" in str(result.exception)
    result = runner.invoke(
        _app(),
        ["learn", "--log", str(tmp_path / "x.csv"), "--out", "p.json", "--params", "[1]"],
    )
    assert isinstance(result.exception, InputError)
    assert "--params must be a JSON object" in str(result.exception)


def test_cli_store_and_promote_in_a_workspace(log_file: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    ws = ["-w", str(workspace)]
    for out, extra in (
        ("good.json", []),
        ("poor.json", ["--policy-kind", "epsilon_greedy", "--params", '{"epsilon": 1.0}']),
    ):
        result = runner.invoke(
            _app(),
            [
                *ws,
                "learn",
                "--log",
                str(log_file),
                "--out",
                str(tmp_path / out),
                "--name",
                "mail",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
    assert "stored as policy version mail@2" in result.stdout
    evaluate = [*ws, "evaluate", "--log", str(log_file), "--bootstrap", "30", "--promote"]
    result = runner.invoke(_app(), [*evaluate, "-p", "mail@1"])
    assert result.exit_code == 0, result.output
    assert "promoted mail@1" in result.stdout
    result = runner.invoke(_app(), [*evaluate, "-p", "mail@2"])
    assert isinstance(result.exception, PolicyError)
    assert "ESS" in result.stdout  # the figures come before the refusal
    result = runner.invoke(_app(), [*evaluate, "-p", "mail@2", "--force", "--json"])
    assert result.exit_code == 0, result.output
    promotion = json.loads(result.stdout)["promotion"]
    assert promotion["promoted"] == "mail@2"
    assert promotion["forced"] is True
    assert promotion["previous"]["policy"] == "mail@1"


def test_cli_evaluate_promote_evaluates_the_log_once(
    log_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--promote decides on the evaluation it printed, the promoted version weighed alongside."""
    workspace = tmp_path / "ws"
    init_workspace(workspace)
    ws = ["-w", str(workspace)]
    for out in ("one.json", "two.json"):
        learn = ["learn", "--log", str(log_file), "--out", str(tmp_path / out), "--name", "mail"]
        assert runner.invoke(_app(), [*ws, *learn]).exit_code == 0
    evaluate = [*ws, "evaluate", "--log", str(log_file), "--bootstrap", "30", "--promote"]
    assert runner.invoke(_app(), [*evaluate, "-p", "mail@1"]).exit_code == 0
    service = sys.modules[evaluate_log.__module__]
    fits: list[int] = []
    fit = service.fit_reward_model

    def counting(*args: Any, **kwargs: Any) -> Any:
        fits.append(1)
        return fit(*args, **kwargs)

    monkeypatch.setattr(service, "fit_reward_model", counting)
    result = runner.invoke(_app(), [*evaluate, "-p", "mail@2", "--force", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(fits) == 1  # one evaluation: the promotion reads the figures it was given
    # the rival weighed for the promotion is not shown, nor its greedy twin and price
    assert [p["policy"] for p in document["policies"]] == ["mail@2", "mail@2 (greedy)"]
    assert [p["policy"] for p in document["exploration"]] == ["mail@2"]
    assert document["promotion"]["previous"]["policy"] == "mail@1"
    assert document["promotion"]["promoted"] == "mail@2"
