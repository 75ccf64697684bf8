"""`tummler evaluate --reward-model`: DM and DR's reward model chosen on the command line.

The log: two actions logged uniformly; ``b`` is worth 1 where ``x₀·x₁ > 0`` and 0 elsewhere, ``a``
0.5 everywhere, so uniform is worth 0.5 (the trees' finding of the interaction itself is tested in
tests/evaluate/test_reward_model_boosting.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from cli_app import rooted_cli_app
from tummler.cli import learn as learn_cli
from tummler.core.errors import InputError
from tummler.evaluate import RewardModelKind

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP thread (see tests/evaluate/test_reward_model_boosting.py)."""
    import sklearn.ensemble  # noqa: F401

    with threadpool_limits(limits=1):
        yield


def _write_log(path: Path, n: int = 3000) -> Path:
    """The log as a logged-bandit CSV file."""
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, size=(n, 2))
    pays = x[:, 0] * x[:, 1] > 0
    action = rng.integers(0, 2, n)
    reward = np.where(action == 1, pays.astype(float), 0.5) + rng.normal(0, 0.3, n)
    lines = ["action,reward,propensity,x0,x1"]
    lines += [
        f"{'ab'[a]},{float(r)!r},0.5,{float(u)!r},{float(v)!r}"
        for a, r, u, v in zip(action, reward, x[:, 0], x[:, 1], strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _dm_of_uniform(log: Path, model: str) -> float:
    app = rooted_cli_app(learn_cli.learn, learn_cli.evaluate)
    result = runner.invoke(
        app,
        [
            "evaluate", "--log", str(log), "--policy", "uniform", "--json",
            "--bootstrap", "0", "--reward-model", model,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (policy,) = json.loads(result.stdout)["policies"]
    return float(policy["estimates"]["dm"]["estimate"])


def test_the_reward_model_is_chosen_on_the_command_line(tmp_path: Path) -> None:
    log = _write_log(tmp_path / "log.csv")
    boosted = _dm_of_uniform(log, "boosting")
    ridge = _dm_of_uniform(log, "ridge")
    # uniform is worth (0.5 + 0.5) / 2 = 0.5 whatever the model; the models differ in detail
    assert boosted == pytest.approx(0.5, abs=0.03)
    assert ridge == pytest.approx(0.5, abs=0.03)
    assert boosted != ridge


def test_an_unknown_reward_model_is_an_input_error(tmp_path: Path) -> None:
    log = _write_log(tmp_path / "log.csv", n=50)
    app = rooted_cli_app(learn_cli.learn, learn_cli.evaluate)
    result = runner.invoke(
        app, ["evaluate", "--log", str(log), "--policy", "uniform", "--reward-model", "forest"]
    )
    assert isinstance(result.exception, InputError)
    assert "--reward-model 'forest': choose one of auto, ridge, logistic, boosting" in str(
        result.exception
    )


def test_the_cli_choices_match_the_reward_model_kinds() -> None:
    assert get_args(RewardModelKind) == learn_cli.REWARD_MODELS
