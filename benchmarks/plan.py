"""Benchmark: pure planning against a bare NumPy lower bound measured in the same run.

    .venv/bin/python benchmarks/plan.py [--contacts 1000000] [--draws 16]

The floor is what any planner must at least do: a float32 chunked matmul of the contexts with the
weights of every action, and an argmax over the actions (1,000,000 contacts × 288 actions × 32
features by default). Planning is the whole pure pipeline: the eligibility mask from plain arrays,
scores, the Thompson draws (an independent posterior draw per contact), selection (lever budget,
relevance threshold, costs), propensities and expected values. It is timed for logistic Thompson
sampling (Monte Carlo propensities over ``--draws`` replicates, each a fresh draw per contact) and
for epsilon-greedy (exact propensities).

Prints a table, then, as the last line, one JSON object with the figures. The end-to-end half
(``tummler plan`` reading contacts from and writing decisions to SQLite and PostgreSQL) belongs to the
app layer and is not measured here yet.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from tummler.decide import (
    ActionSet,
    EligibilityRules,
    EpsilonGreedy,
    LogisticThompson,
    Policy,
    SelectionRules,
    build_action_set,
    compute_eligibility,
    plan,
)

CHANNELS = ["email", "sms", "mastodon", "linkedin"]


def floor(x: np.ndarray, weights: np.ndarray, chunk: int) -> np.ndarray:
    """The bare lower bound: chunked float32 matmul + argmax over the same shapes."""
    n = x.shape[0]
    out = np.empty((min(chunk, n), weights.shape[1]), np.float32)
    best = np.empty(n, np.int64)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        scores = out[: stop - start]
        np.matmul(x[start:stop], weights, out=scores)
        best[start:stop] = scores.argmax(axis=1)
    return best


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_bytes(call: Callable[[], Any]) -> int:
    """Peak memory NumPy allocated during ``call`` (tracemalloc sees NumPy's buffers)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def trained(policy: Policy, actions: ActionSet, x: np.ndarray, rng: np.random.Generator) -> Policy:
    """A policy that has seen 20,000 logged decisions, so that its posterior is not the prior."""
    idx = rng.choice(np.flatnonzero(actions.available), size=20_000)
    rewards = (rng.random(20_000) < 0.05 + 0.1 * (actions.channel[idx] == 2)).astype(float)
    return policy.update(x[:20_000], actions, idx, rewards)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--slots", type=int, default=24)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--draws", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=32_768)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    n, d = args.contacts, args.features
    rng = np.random.default_rng(args.seed)
    # Slots every 7 hours across a week: every hour of day and every weekday is represented.
    actions = build_action_set(
        CHANNELS,
        np.arange(args.slots) * 7 % 168,
        args.variants,
        message_attributes={"emotional": 1.0, "public": 0.0, "urgency": 0.5},
    )
    x = rng.standard_normal((n, d), dtype=np.float32)
    x[:, 0] = 1.0
    inputs = {
        "has_identity": rng.random((n, 4)) < 0.9,
        "consent": rng.random((n, 4)) < 0.8,
        "utc_offset_hours": rng.integers(-8, 9, n),
        "sends_in_window": rng.integers(0, 5, n),
        "channel_sends": rng.integers(0, 3, (n, 4)),
    }
    rules = EligibilityRules(
        quiet_hours=(21, 8),
        quiet_channels=np.array([False, True, True, True]),
        window=(-12.0, 180.0),
        fatigue_cap=4,
        frequency_caps=np.array([3, 2, -1, -1]),
    )
    selection = SelectionRules(cost=np.array([0.0, 0.02, 0.0, 0.0]), threshold=0.01)
    weights = rng.standard_normal((d, actions.k), dtype=np.float32)
    policies = {
        "logistic_thompson": trained(
            LogisticThompson(d, actions.n_features, len(CHANNELS)), actions, x, rng
        ),
        "epsilon_greedy": trained(
            EpsilonGreedy(d, actions.n_features, len(CHANNELS), epsilon=0.05), actions, x, rng
        ),
    }

    def planning(policy: Policy) -> Callable[[], Any]:
        def run() -> Any:
            eligibility = compute_eligibility(actions, rules=rules, **inputs)
            return plan(
                x,
                actions,
                policy,
                eligibility,
                selection,
                rng=args.seed,
                holdout_share=0.1,
                draws=args.draws,
                chunk_size=args.chunk_size,
            )

        return run

    floor_s, _ = timed(lambda: floor(x, weights, args.chunk_size), args.repeat + 1)
    rows: list[tuple[str, float, float, int]] = [("numpy floor", floor_s, 1.0, 0)]
    figures: dict[str, Any] = {}
    for name, policy in policies.items():
        seconds, result = timed(planning(policy), args.repeat)
        peak = peak_bytes(planning(policy))
        rows.append((name, seconds, seconds / floor_s, peak))
        figures[name] = {
            "seconds": round(seconds, 4),
            "contacts_per_s": round(n / seconds),
            "ratio_to_floor": round(seconds / floor_s, 3),
            "peak_bytes": peak,
            "sends_per_channel": result.sends_per_channel(actions).tolist(),
            "no_send_share": round(float((result.action[:, 0] < 0).mean()), 4),
        }

    print(f"planning {n:,} contacts × {actions.k} actions (+ no send) × {d} features")
    print(f"{'what':<22}{'seconds':>10}{'× floor':>10}{'contacts/s':>14}{'peak MiB':>10}")
    for name, seconds, ratio, peak in rows:
        print(f"{name:<22}{seconds:>10.3f}{ratio:>10.2f}{n / seconds:>14,.0f}{peak / 2**20:>10.0f}")
    print(
        "note: the end-to-end `tummler plan` half (SQLite and PostgreSQL, 100k and 1M contacts) "
        "comes with the app layer's planning service"
    )
    summary = {
        "benchmark": "plan",
        "contacts": n,
        "actions": actions.k,
        "features": d,
        "draws": args.draws,
        "floor_seconds": round(floor_s, 4),
        "ratio_to_floor": figures["logistic_thompson"]["ratio_to_floor"],
        "ratio_to_floor_exact_propensities": figures["epsilon_greedy"]["ratio_to_floor"],
        "peak_bytes": max(f["peak_bytes"] for f in figures.values()),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "policies": figures,
        "end_to_end": None,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
