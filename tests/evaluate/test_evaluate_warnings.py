"""Known-answer tests for the warnings about bad logs, the switch-DR guard and DM's interval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cli_app import rooted_cli_app
from tummler.cli import learn as learn_cli
from tummler.evaluate import (
    WARNING_CODES,
    evaluate_policy,
    refit_dm_replicates,
    refit_interval,
)


def uniform_log(n: int = 10_000, k: int = 5, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    action = rng.integers(0, k, n)
    reward = (rng.uniform(size=n) < 0.3).astype(float)
    return {
        "reward": reward,
        "action": action,
        "propensity": np.full(n, 1.0 / k),
        "context": rng.normal(size=(n, 2)),
    }


def codes(result: object) -> list[str]:
    return [w.code for w in result.warnings]  # type: ignore[attr-defined]


def test_a_clean_uniform_log_raises_no_warning() -> None:
    log = uniform_log()
    result = evaluate_policy(**log, action_dist=np.full((10_000, 5), 0.2), n_bootstrap=100)
    assert codes(result) == []
    assert result.guard is not None
    assert (result.guard.tau, result.guard.switched_rounds) == (50.0, 0)


def test_a_propensity_of_1e_9_is_caught_and_switched_to_the_model() -> None:
    # the case: one round logged with propensity 1e-9 and a reward of 1
    log = uniform_log()
    log["propensity"][0], log["reward"][0] = 1e-9, 1.0
    dist = np.full((10_000, 5), 0.2)
    result = evaluate_policy(**log, action_dist=dist, n_bootstrap=100)
    assert codes(result) == ["extreme_weights", "low_effective_sample_size"]
    extreme = result.warnings[0]
    assert extreme.details["rounds"] == 1
    assert extreme.details["largest_weight"] == pytest.approx(2e8)
    assert extreme.details["min_propensity"] == 1e-9
    # ESS from the importance weights: one round carries all the weight
    assert result.warnings[1].details["effective_sample_size"] == pytest.approx(1.0, abs=1e-3)
    assert result["ips"].effective_sample_size == pytest.approx(1.0, abs=1e-3)
    assert result["ips"].value > 1e4  # IPS is ruined...
    assert result["switch_dr"].value == pytest.approx(0.3, abs=0.02)  # ...the guard is not
    assert result.guard is not None
    assert result.guard.switched_rounds == 1
    payload = result.to_dict()
    assert payload["guard"]["switched_rounds"] == 1
    assert payload["warnings"][0]["code"] == "extreme_weights"
    assert payload["warnings"][0]["message"].startswith("1 round(s) have importance weights")


def test_a_one_row_log_gets_no_interval_and_says_why() -> None:
    result = evaluate_policy([1.0], [0], [0.5], [[0.5, 0.5]], n_bootstrap=200)
    assert all(e.ci_low is None and e.ci_high is None for e in result.estimates)
    # (action 1 was never logged, which is said too)
    assert codes(result) == ["too_few_rounds", "unsupported_actions"]
    assert "too few for an interval" in result.warnings[0].message
    # without a bootstrap asked for, there is nothing to warn of
    assert codes(evaluate_policy([1.0], [0], [1.0], [[1.0]], n_bootstrap=0)) == []


def test_a_policy_on_actions_the_log_never_took_is_caught() -> None:
    # a log of one action (logged with certainty) and a uniform 5-action policy: IPS counts the
    # four unlogged actions as reward 0, SNIPS as if they earned what the logged one did
    rng = np.random.default_rng(0)
    n = 2000
    reward = (rng.uniform(size=n) < 0.3).astype(float)
    result = evaluate_policy(
        reward, np.zeros(n, int), np.ones(n), np.full((n, 5), 0.2), n_bootstrap=100
    )
    assert codes(result) == ["unsupported_actions"]
    warning = result.warnings[0]
    assert warning.details["share"] == pytest.approx(0.8)
    assert warning.details["actions"] == [1, 2, 3, 4]
    assert result["ips"].value == pytest.approx(0.2 * reward.mean())
    assert result["snips"].value == pytest.approx(reward.mean())


def test_propensities_that_do_not_match_the_action_set_are_caught() -> None:
    # one action logged with propensity 0.2 (as if out of five): weights average 5, not 1
    rng = np.random.default_rng(0)
    n = 2000
    reward = (rng.uniform(size=n) < 0.3).astype(float)
    result = evaluate_policy(reward, np.zeros(n, int), np.full(n, 0.2), np.ones((n, 1)))
    assert codes(result) == ["weights_off_one"]
    assert result.warnings[0].details["mean_weight"] == pytest.approx(5.0)


def test_dm_and_dr_disagreeing_beyond_their_intervals_is_caught() -> None:
    # a reward model that is off by +0.2 for every action: DM is biased, DR corrects it
    log = uniform_log(n=5000, k=2)
    biased = np.full((5000, 2), 0.5)
    dist = np.tile([1.0, 0.0], (5000, 1))
    spread = np.random.default_rng(3).normal(0.5, 0.005, size=40)  # a model known to ±0.005
    result = evaluate_policy(
        log["reward"],
        log["action"],
        log["propensity"],
        dist,
        estimated_rewards=biased,
        dm_replicates=spread,
        n_bootstrap=200,
    )
    assert codes(result) == ["model_disagrees"]
    assert result.warnings[0].details["dm"] == pytest.approx(0.5)
    assert result.warnings[0].details["dr"] == pytest.approx(0.3, abs=0.03)


def test_dm_without_refits_has_no_interval_and_says_why() -> None:
    log = uniform_log(n=500, k=2)
    result = evaluate_policy(
        log["reward"],
        log["action"],
        log["propensity"],
        np.full((500, 2), 0.5),
        estimated_rewards=np.full((500, 2), 0.3),
        n_bootstrap=100,
    )
    assert result["dm"].ci_low is None
    assert result["dr"].ci_low is not None
    assert codes(result) == ["dm_interval_withheld"]


def test_every_code_is_listed() -> None:
    assert set(WARNING_CODES) == {
        "too_few_rounds",
        "extreme_weights",
        "low_effective_sample_size",
        "unsupported_actions",
        "weights_off_one",
        "model_disagrees",
        "dm_interval_withheld",
    }


def test_dm_interval_from_refits_is_as_wide_as_dms_spread_over_logs() -> None:
    # DM's sampling spread over fresh logs, against the width the refits give on one log
    k, n = 3, 2000
    mean = np.array([0.1, 0.3, 0.2])

    def draw(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 1))
        a = rng.integers(0, k, n)
        return x, a, mean[a] + x[:, 0] * 0.1 + rng.normal(size=n)

    dist = np.tile([0.0, 1.0, 0.0], (n, 1))
    values = []
    for seed in range(30):
        x, a, r = draw(seed)
        reps = refit_dm_replicates(x, a, r, [dist], n_actions=k, kind="ridge", rng=seed)
        values.append(reps[:, 0].std(ddof=1))
    spread_over_logs = np.std(
        [
            refit_dm_replicates(*draw(s), [dist], n_actions=k, kind="ridge", n_refits=2, rng=s)[
                :, 0
            ].mean()
            for s in range(30)
        ]
    )
    # the refits' standard deviation estimates the spread of DM over logs: sqrt(1 / (n / 3))
    assert np.mean(values) == pytest.approx(np.sqrt(3 / n), rel=0.2)
    assert spread_over_logs == pytest.approx(np.sqrt(3 / n), rel=0.35)


def test_refits_on_a_subsample_are_rescaled_to_the_whole_log() -> None:
    rng = np.random.default_rng(4)
    n, k = 8000, 2
    x = rng.normal(size=(n, 1))
    a = rng.integers(0, k, n)
    r = rng.normal(size=n)
    dist = np.tile([1.0, 0.0], (n, 1))
    whole = refit_dm_replicates(x, a, r, [dist], n_actions=k, kind="ridge", n_refits=60, rng=1)
    part = refit_dm_replicates(
        x, a, r, [dist], n_actions=k, kind="ridge", n_refits=60, max_rounds=2000, rng=1
    )
    assert part[:, 0].std() == pytest.approx(whole[:, 0].std(), rel=0.3)
    assert whole[:, 0].std() == pytest.approx(np.sqrt(2 / n), rel=0.3)


def test_refit_interval_uses_students_t() -> None:
    low, high = refit_interval(1.0, [0.9, 1.1], 0.05)
    assert low is not None
    assert high is not None
    # sd = 0.1414, t(1) = 12.706
    assert high - 1.0 == pytest.approx(12.706 * 0.14142, rel=1e-3)
    assert refit_interval(1.0, [0.9], 0.05) == (None, None)


# --- in the terminal and the JSON of `tummler evaluate --log` -----------------------------------


def _write_log(path: Path, *, tiny: bool) -> Path:
    log = uniform_log(n=400, k=3, seed=2)
    propensity = log["propensity"].copy()
    reward = log["reward"].copy()
    if tiny:
        propensity[0], reward[0] = 1e-9, 1.0
    lines = ["action,reward,propensity,x"]
    lines += [
        f"a{a},{r:g},{float(p)!r},{x:.6f}"
        for a, r, p, x in zip(log["action"], reward, propensity, log["context"][:, 0], strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli() -> typer.Typer:
    return rooted_cli_app(learn_cli.learn, learn_cli.evaluate)


def test_the_cli_shows_the_guard_and_warnings_in_the_table_and_the_json(tmp_path: Path) -> None:
    log = _write_log(tmp_path / "tiny.csv", tiny=True)
    arguments = ["evaluate", "--log", str(log), "--policy", "uniform", "--bootstrap", "50"]
    shown = CliRunner().invoke(_cli(), arguments, env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "guard: switch-DR valued 1 round(s) of uniform by the reward model" in shown.output
    assert "warning extreme_weights" in shown.output
    assert "warning low_effective_sample_size" in shown.output  # 400 rounds: ESS 1 < 40
    document = json.loads(CliRunner().invoke(_cli(), [*arguments, "--json"]).stdout)
    assert [w["code"] for w in document["warnings"]] == [
        "extreme_weights",
        "low_effective_sample_size",
    ]
    assert document["warnings"][0]["policy"] == "uniform"
    assert document["policies"][0]["guard"]["switched_rounds"] == 1
    assert document["policies"][0]["estimates"]["dm"]["interval"] == "refit"


def test_the_cli_gives_a_one_row_log_no_interval_and_says_why(tmp_path: Path) -> None:
    log = tmp_path / "one.csv"
    log.write_text("action,reward,propensity,x\na,1,0.5,0.3\n")
    arguments = ["evaluate", "--log", str(log), "--policy", "logged"]
    shown = CliRunner().invoke(_cli(), arguments, env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "[1, 1]" not in shown.output
    assert "warning too_few_rounds" in shown.output
    document = json.loads(CliRunner().invoke(_cli(), [*arguments, "--json"]).stdout)
    assert document["warnings"][0]["code"] == "too_few_rounds"
    assert all(e["ci_low"] is None for e in document["policies"][0]["estimates"].values())
