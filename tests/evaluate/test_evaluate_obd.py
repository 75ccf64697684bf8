"""Off-policy evaluation on the real Open Bandit Dataset (ZOZOTOWN), read in place from shared data.

The ``bts`` policy (Bernoulli Thompson sampling) is context-free, so its action distribution at each
position can be read off the ``propensity_score`` column of its own logs. Propensities changed as
the policy learned, and a row shows the propensity only when the item was shown, which favours the
times it was likely; the average probability over all rounds is therefore the *harmonic* mean of
the logged propensities of that item at that position (``1 / E[1/p | shown]``). Those averages sum
to about 1 per position, which checks the reading. Its estimate from the ``random`` logs must land
near the on-policy click rate of the ``bts`` logs; with about 40 clicks in each file the tolerance
is generous.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tummler.app.ingest import read_logged_bandit
from tummler.evaluate import context_free_policy, evaluate_policy

COLUMNS = {"action": "item_id", "reward": "click", "propensity": "propensity_score"}


@pytest.fixture
def obd(data_dir: Path) -> Path:
    root = data_dir / "obd"
    if not (root / "random" / "all" / "all.csv").is_file():
        pytest.skip(f"Open Bandit Dataset sample not found under {root}")
    return root


def test_reads_the_open_bandit_logs(obd: Path) -> None:
    logs = read_logged_bandit(
        obd / "random" / "all" / "all.csv",
        action_features=obd / "random" / "all" / "item_context.csv",
        columns=COLUMNS,
    )
    assert logs.n_rounds == 10_000
    assert logs.n_actions == 80
    assert logs.n_positions == 3
    assert np.allclose(logs.propensity, 1 / 80)  # uniform over the 80 items at each position
    assert logs.timestamp is not None
    assert logs.action_context is not None
    assert logs.action_context.shape[0] == 80
    assert logs.context.shape[0] == 10_000
    assert np.isfinite(logs.context).all()


def test_bts_value_from_random_logs_matches_its_on_policy_click_rate(obd: Path) -> None:
    pd = pytest.importorskip("pandas")
    bts = pd.read_csv(obd / "bts" / "all" / "all.csv", index_col=0)
    on_policy = float(bts["click"].mean())

    logs = read_logged_bandit(obd / "random" / "all" / "all.csv", columns=COLUMNS)
    # The bts logs, encoded with the random logs' item order (both list all 80 items).
    item_ids = np.array(logs.action_names).astype(int)
    bts_action = np.searchsorted(item_ids, bts["item_id"].to_numpy())
    assert (item_ids[bts_action] == bts["item_id"].to_numpy()).all()
    table = context_free_policy(
        bts_action,
        bts["propensity_score"].to_numpy(),
        n_actions=logs.n_actions,
        position=bts["position"].to_numpy() - 1,
        n_positions=logs.n_positions,
    )
    # Two readings of the same average policy agree: the propensities' harmonic mean and how
    # often each item was shown at each position.
    shown = np.zeros_like(table)
    np.add.at(shown, (bts_action, bts["position"].to_numpy() - 1), 1.0)
    shown /= shown.sum(axis=0)
    assert np.corrcoef(table.ravel(), shown.ravel())[0, 1] > 0.95
    action_dist = np.broadcast_to(table, (logs.n_rounds, *table.shape))

    # The reward model sees the user features; the 80 user-item affinity columns would multiply
    # its size (and time) by twenty for no measurable gain on 40 clicks.
    user = [i for i, name in enumerate(logs.feature_names) if name.startswith("user_feature")]
    result = evaluate_policy(
        logs.reward,
        logs.action,
        logs.propensity,
        action_dist,
        context=logs.context[:, user],
        position=logs.position,
        policy="bts",
        n_bootstrap=300,
        rng=0,
    )
    for estimate in result.estimates:
        assert abs(estimate.value - on_policy) / on_policy < 0.5, estimate
        if estimate.name != "dm":  # DM's interval ignores the model's own error
            assert estimate.ci_low is not None
            assert estimate.ci_high is not None
            assert estimate.ci_low <= on_policy <= estimate.ci_high, estimate
            assert 1000 < estimate.effective_sample_size < logs.n_rounds
