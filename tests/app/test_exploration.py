"""What is evaluated is what is deployed: a policy that explores is weighed as deployed (sampling)
and as its greedy twin, and the price of its exploration is their paired difference.

Known answers: epsilon-greedy's deployed distribution is an exact mixture of its greedy choice and
the uniform one, so its price is a known multiple of (uniform − greedy); a Thompson sampler fitted
on few rounds, weighed on a simulated log whose true reward rates are known, pays a true price the
paired interval holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli_app import rooted_cli_app
from tummler.app.ingest import LoggedBandit
from tummler.app.learning import Candidate, evaluate_log, fit_policy, save_policy_file
from tummler.app.learning.exploration import (
    explores,
    greedy_action_dist,
    greedy_campaign_dist,
    greedy_label,
)
from tummler.cli import learn as learn_cli

ACTIONS = ("email", "none", "sms")


def _rates(x: np.ndarray) -> np.ndarray:
    """``(n, 3)`` true reward rates: e-mail pays when x > 0, SMS when x < 0, nothing little."""
    email = 0.1 + 0.6 * (x > 0)
    sms = 0.1 + 0.6 * (x < 0)
    return np.column_stack([email, np.full(x.shape, 0.05), sms])


def _log(n: int, seed: int) -> tuple[LoggedBandit, np.ndarray]:
    """A uniformly logged world and its true ``(n, k)`` reward rates."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    action = rng.integers(0, 3, size=n)
    rates = _rates(x)
    reward = (rng.random(n) < rates[np.arange(n), action]).astype(float)
    logs = LoggedBandit(
        context=x[:, None],
        action=action,
        reward=reward,
        propensity=np.full(n, 1 / 3),
        feature_names=("x",),
        action_names=ACTIONS,
        source=f"simulated-{seed}",
    )
    return logs, rates


def test_which_policies_explore() -> None:
    logs, _ = _log(300, seed=1)
    assert explores(fit_policy(logs, kind="logistic_thompson").policy)
    assert explores(fit_policy(logs, kind="linear_thompson").policy)
    assert explores(fit_policy(logs, kind="epsilon_greedy", params={"epsilon": 0.1}).policy)
    assert not explores(fit_policy(logs, kind="epsilon_greedy", params={"epsilon": 0.0}).policy)


def test_the_greedy_twin_takes_the_best_point_estimate() -> None:
    logs, _ = _log(2000, seed=2)
    learned = fit_policy(logs, kind="logistic_thompson")
    greedy = greedy_action_dist(learned, logs)
    assert set(np.unique(greedy)) == {0.0, 1.0}
    np.testing.assert_array_equal(greedy.sum(axis=1), 1.0)
    x = logs.context[:, 0]
    best = np.where(x > 0, 0, 2)  # e-mail for x > 0, SMS below
    clear = np.abs(x) > 0.5  # away from the boundary the fitted model must agree
    assert (greedy.argmax(axis=1)[clear] == best[clear]).mean() > 0.97


def test_the_campaign_greedy_rule_is_the_deterministic_decision() -> None:
    """For a policy that does not explore, the greedy twin is the policy's own decision: same
    costs, eligibility and threshold (*no send* below it)."""
    logs, _ = _log(800, seed=10)
    learned = fit_policy(logs, kind="epsilon_greedy", params={"epsilon": 0.0})
    x, actions = learned.contexts(logs), learned.action_set()
    mask = np.random.default_rng(11).random((logs.n_rounds, actions.k)) < 0.7
    cost = np.array([0.05, 0.0, 0.1])
    twin = greedy_campaign_dist(learned.policy, x, actions, mask, cost=cost, threshold=0.2)
    own = learned.policy.action_distribution(x, actions, mask, cost=cost, threshold=0.2)
    np.testing.assert_array_equal(twin, own)
    assert 0 < twin[:, -1].mean() < 1  # some rounds fall below the threshold, some do not


def test_epsilon_greedy_pays_a_known_share_of_uniform_minus_greedy() -> None:
    """Deployed = (greedy·(1−ε) + ε/(k+1)) renormalized over the log's k actions, so deployed −
    greedy = c·(uniform − greedy) with c = εk / (k + 1 − ε), and IPS, being linear, follows."""
    logs, _ = _log(1500, seed=3)
    epsilon, k = 0.3, 3
    learned = fit_policy(logs, kind="epsilon_greedy", params={"epsilon": epsilon})
    evaluation = evaluate_log(logs, [Candidate("eps", learned=learned), "uniform"], n_bootstrap=0)
    assert [r.policy for r in evaluation.results] == ["eps", greedy_label("eps"), "uniform"]
    (price,) = evaluation.exploration
    values = {r.policy: r["ips"].value for r in evaluation.results}
    c = epsilon * k / (k + 1 - epsilon)
    expected = c * (values["uniform"] - values[greedy_label("eps")])
    assert price["ips"].value == pytest.approx(expected, abs=1e-12)
    assert price["ips"].value == pytest.approx(values["eps"] - values[greedy_label("eps")])
    assert price.kind == "epsilon_greedy"


def test_a_thompson_sampler_pays_a_true_price_its_interval_holds() -> None:
    """Fitted on 90 rounds, the sampler's posterior is wide: on fresh rounds it often takes an
    action its posterior mean would not. The truth is the simulation's own reward rates."""
    train, _ = _log(90, seed=4)
    learned = fit_policy(train, kind="logistic_thompson")
    logs, rates = _log(6000, seed=5)
    evaluation = evaluate_log(
        logs, [Candidate("ts", learned=learned)], n_bootstrap=300, seed=6, draws=64
    )
    deployed = learned.action_dist(logs, draws=64, rng=6)
    greedy = greedy_action_dist(learned, logs)
    truth = float(((deployed - greedy) * rates).sum(axis=1).mean())
    assert truth < -0.01  # exploring costs on these rounds
    (price,) = evaluation.exploration
    for name in ("ips", "dr"):
        low, high = price[name].ci_low, price[name].ci_high
        assert low is not None
        assert high is not None
        assert low <= truth <= high, (name, low, truth, high)
    dr_high = price["dr"].ci_high
    assert dr_high is not None
    assert dr_high < 0  # and the paired interval tells it apart from nothing


def test_without_drops_a_candidate_its_twin_and_its_price() -> None:
    logs, _ = _log(600, seed=7)
    learned = fit_policy(logs, kind="logistic_thompson")
    candidates: list[str | Candidate] = [
        Candidate("a", learned=learned),
        Candidate("b", learned=learned),
        "uniform",
    ]
    evaluation = evaluate_log(logs, candidates, n_bootstrap=0)
    assert [p.policy for p in evaluation.exploration] == ["a", "b"]
    shown = evaluation.without("b")
    assert [r.policy for r in shown.results] == ["a", "a (greedy)", "uniform"]
    assert [p.policy for p in shown.exploration] == ["a"]


def test_cli_reports_the_price_in_the_terminal_and_the_json(tmp_path: Path) -> None:
    logs, _ = _log(400, seed=8)
    lines = ["action,reward,propensity,x"] + [
        f"{ACTIONS[a]},{r:g},{float(p)!r},{float(x)!r}"
        for a, r, p, x in zip(
            logs.action, logs.reward, logs.propensity, logs.context[:, 0], strict=True
        )
    ]
    log = tmp_path / "log.csv"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    policy = save_policy_file(fit_policy(_log(90, seed=9)[0]), tmp_path / "ts.json")
    app = rooted_cli_app(learn_cli.learn, learn_cli.evaluate)
    args = ["evaluate", "--log", str(log), "-p", str(policy), "--bootstrap", "50"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "price of exploration" in result.stdout
    assert "(logistic_thompson) as deployed minus greedy: DR" in " ".join(result.stdout.split())
    result = CliRunner().invoke(app, [*args, "--json"])
    document = json.loads(result.stdout)
    (price,) = document["exploration"]
    assert price["policy"] == str(policy)
    assert price["greedy"] == f"{policy} (greedy)"
    assert set(price["estimates"]) == {"ips", "snips", "dm", "dr", "switch_dr"}
    values = {p["policy"]: p["estimates"]["dr"]["estimate"] for p in document["policies"]}
    assert price["estimates"]["dr"]["estimate"] == pytest.approx(
        values[str(policy)] - values[f"{policy} (greedy)"]
    )
