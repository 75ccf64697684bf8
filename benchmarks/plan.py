"""Benchmark: pure planning against a bare NumPy lower bound measured in the same run.

    .venv/bin/python benchmarks/plan.py [--contacts 1000000] [--draws 16] [--repeat 3]
        [--end-to-end-sizes 100000,1000000] [--backends sqlite,postgres] [--no-end-to-end]

The floor is what any planner must at least do: a float32 chunked matmul of the contexts with the
weights of every action, and an argmax over the actions (1,000,000 contacts × 288 actions × 32
features by default). Planning is the whole pure pipeline: the eligibility mask from plain arrays,
scores, the Thompson draws (an independent posterior draw per contact), selection (lever budget,
relevance threshold, costs), propensities and expected values. It is timed for logistic Thompson
sampling (Monte Carlo propensities over ``--draws`` replicates, each a fresh draw per contact) and
for epsilon-greedy (exact propensities). Times are medians of ``--repeat`` runs after a warm-up.

The end-to-end half runs the whole ``tummler plan`` path (:func:`tummler.app.planning.plan_campaign`:
reading contacts, identities, consent and history, checking templates, deciding, writing one
decision row per contact) for the example workspace's ``fresh-roast-reorder`` campaign on SQLite and
on a throwaway PostgreSQL, for each size of ``--end-to-end-sizes``. Each store is seeded with Core
``executemany`` (contacts, e-mail for all and SMS for half, consent, one recent click), then planned
in a fresh child process, so that the peak resident memory reported (``ru_maxrss``) is the plan's
own.

Prints tables, then, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

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
#: The end-to-end plan's "now": a Monday morning (the example campaign has no window).
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
CAMPAIGN = "fresh-roast-reorder"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")


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


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """The median wall and CPU (all threads) times of ``repeat`` runs after a warm-up run, and
    the last result.

    The median, not the minimum: on a shared machine the minimum rewards a lucky run. CPU time
    says how much work a run did, whatever else the machine was doing.
    """
    result = call()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu)), result


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


# --------------------------------------------------------------------------------- end to end


def _batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def seed_store(url: str, n: int, batch: int = 20_000) -> float:
    """Fill an empty, migrated store with ``n`` contacts the example campaign plans; seconds."""
    from sqlalchemy import Table, insert

    from tummler.store import models
    from tummler.store.database import connect

    started = time.perf_counter()
    engine = connect(url)
    then = NOW - timedelta(days=100)
    tables = [
        cast(Table, model.__table__)
        for model in (models.Contact, models.ChannelIdentity, models.ConsentEvent, models.Event)
    ]
    with engine.begin() as connection:
        for rows in _batches(n, batch):
            contacts: list[dict[str, Any]] = [
                {
                    "id": i + 1,
                    "external_id": f"c{i}",
                    "stage": ("customer", "advocate")[i % 4 == 0],
                    "time_zone": ZONES[i % 4],
                    "attributes": {"first_name": f"C{i}", "city": "Berlin", "lifetime_value": 10.0},
                    "created_at": then,
                    "updated_at": then,
                }
                for i in rows
            ]
            identities: list[dict[str, Any]] = []
            consents: list[dict[str, Any]] = []
            for i in rows:
                channels = {"email": f"c{i}@example.org"}
                if i % 2:
                    channels["sms"] = f"+4915{i:09d}"
                for channel, address in channels.items():
                    identities.append(
                        {
                            "contact_id": i + 1,
                            "channel": channel,
                            "address": address,
                            "created_at": then,
                        }
                    )
                    consents.append(
                        {
                            "contact_id": i + 1,
                            "channel": channel,
                            "status": "granted",
                            "source": "signup",
                            "at": then,
                            "recorded_at": then,
                        }
                    )
            events: list[dict[str, Any]] = [
                {
                    "contact_id": i + 1,
                    "channel": "email",
                    "type": "clicked",
                    "value": None,
                    "at": NOW - timedelta(days=1 + i % 20),
                    "source": "benchmark",
                    "provider_event_id": f"click-{i}",
                }
                for i in rows
            ]
            for table, values in zip(tables, (contacts, identities, consents, events), strict=True):
                connection.execute(insert(table), values)
    engine.dispose()
    return time.perf_counter() - started


def _peak_rss(*, reset: bool = False) -> int:
    """This process's peak resident memory (``VmHWM``), optionally reset to the current RSS first.

    ``ru_maxrss`` would not do: Linux carries it over from the parent across ``exec``.
    """
    status = Path("/proc/self/status")
    if not status.exists():  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if reset:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def plan_once(url: str, workspace: str, n: int) -> dict[str, Any]:
    """Plan the campaign once over the seeded store (run in a child process: its own peak RSS)."""
    from tummler.app.planning import plan_campaign
    from tummler.core.clock import FrozenClock
    from tummler.store.database import connect

    engine = connect(url)
    rss_before = _peak_rss(reset=True)
    started = time.perf_counter()
    report = plan_campaign(
        engine, workspace=Path(workspace), campaign_key=CAMPAIGN, clock=FrozenClock(NOW), seed=0
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "contacts": n,
        "audience": report.audience,
        "decisions": report.decisions,
        "seconds": round(seconds, 3),
        "contacts_per_s": round(n / seconds),
        "max_rss_bytes": _peak_rss(),
        "rss_before_plan_bytes": rss_before,
        "sends_per_channel": report.sends_per_channel,
    }


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def end_to_end(sizes: list[int], backends: list[str]) -> list[dict[str, Any]]:
    """Seed and plan every (backend, size); each in fresh child processes."""
    from tummler.app.workspace import init_workspace
    from tummler.store.database import connect, upgrade
    from tummler.store.throwaway import ThrowawayPostgres, find_postgres_bindir

    results: list[dict[str, Any]] = []
    scratch = Path(tempfile.mkdtemp(prefix="tummler-bench-"))
    postgres: ThrowawayPostgres | None = None
    try:
        workspace = scratch / "ws"
        init_workspace(workspace)
        if "postgres" in backends:
            if find_postgres_bindir() is None:
                print("note: no PostgreSQL binaries found; the PostgreSQL half is skipped")
            else:
                postgres = ThrowawayPostgres().start()
        for backend in backends:
            for n in sizes:
                if backend == "sqlite":
                    url = f"sqlite:///{scratch / f'plan-{n}.db'}"
                elif postgres is not None:
                    from sqlalchemy import text

                    admin = connect(postgres.url(), isolation_level="AUTOCOMMIT")
                    with admin.connect() as connection:
                        connection.execute(text(f"CREATE DATABASE plan_{n}"))
                    admin.dispose()
                    url = postgres.url(f"plan_{n}")
                else:
                    continue
                engine = connect(url)
                upgrade(engine)
                engine.dispose()
                seeded = _child("--seed-store", url, str(n))
                planned = _child("--plan-once", url, str(workspace), str(n))
                results.append({"backend": backend, **planned, "seed_seconds": seeded["seconds"]})
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--slots", type=int, default=24)
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--draws", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=32_768)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the median is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--end-to-end-sizes",
        default="100000,1000000",
        help="contacts per end-to-end run, comma-separated",
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-end-to-end", action="store_true", help="pure planning only")
    parser.add_argument("--seed-store", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--plan-once", nargs=3, metavar=("URL", "WORKSPACE", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.seed_store:  # child: seed one store
        seconds = seed_store(args.seed_store[0], int(args.seed_store[1]))
        print(json.dumps({"seconds": round(seconds, 3)}))
        return {}
    if args.plan_once:  # child: plan once
        once = plan_once(args.plan_once[0], args.plan_once[1], int(args.plan_once[2]))
        print(json.dumps(once))
        return once

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

    floor_s, floor_cpu, _ = timed(lambda: floor(x, weights, args.chunk_size), args.repeat)
    rows: list[tuple[str, float, float, float, int]] = [("numpy floor", floor_s, 1.0, 1.0, 0)]
    figures: dict[str, Any] = {}
    for name, policy in policies.items():
        seconds, cpu, result = timed(planning(policy), args.repeat)
        peak = peak_bytes(planning(policy))
        rows.append((name, seconds, seconds / floor_s, cpu / floor_cpu, peak))
        figures[name] = {
            "seconds": round(seconds, 4),
            "cpu_seconds": round(cpu, 4),
            "contacts_per_s": round(n / seconds),
            "ratio_to_floor": round(seconds / floor_s, 3),
            "cpu_ratio_to_floor": round(cpu / floor_cpu, 3),
            "peak_bytes": peak,
            "sends_per_channel": result.sends_per_channel(actions).tolist(),
            "no_send_share": round(float((result.action[:, 0] < 0).mean()), 4),
        }

    print(f"planning {n:,} contacts × {actions.k} actions (+ no send) × {d} features")
    print(
        f"{'what':<22}{'seconds':>10}{'× floor':>10}{'CPU × floor':>13}{'contacts/s':>14}"
        f"{'peak MiB':>10}"
    )
    for name, seconds, ratio, cpu_ratio, peak in rows:
        print(
            f"{name:<22}{seconds:>10.3f}{ratio:>10.2f}{cpu_ratio:>13.2f}{n / seconds:>14,.0f}"
            f"{peak / 2**20:>10.0f}"
        )
    e2e: list[dict[str, Any]] | None = None
    if not args.no_end_to_end:
        sizes = [int(v) for v in args.end_to_end_sizes.split(",") if v.strip()]
        e2e = end_to_end(sizes, [b.strip() for b in args.backends.split(",") if b.strip()])
        print()
        print("end to end: `tummler plan fresh-roast-reorder` (read, check, decide, write)")
        print(
            f"{'store':<10}{'contacts':>11}{'seconds':>10}{'contacts/s':>12}"
            f"{'decisions':>11}{'peak RSS MiB':>14}{'seed s':>9}"
        )
        for r in e2e:
            print(
                f"{r['backend']:<10}{r['contacts']:>11,}{r['seconds']:>10.1f}"
                f"{r['contacts_per_s']:>12,}{r['decisions']:>11,}"
                f"{r['max_rss_bytes'] / 2**20:>14.0f}{r['seed_seconds']:>9.1f}"
            )
    summary = {
        "benchmark": "plan",
        "contacts": n,
        "actions": actions.k,
        "features": d,
        "draws": args.draws,
        "repeat": args.repeat,
        "floor_seconds": round(floor_s, 4),
        "floor_cpu_seconds": round(floor_cpu, 4),
        "ratio_to_floor": figures["logistic_thompson"]["ratio_to_floor"],
        "ratio_to_floor_exact_propensities": figures["epsilon_greedy"]["ratio_to_floor"],
        "peak_bytes": max(f["peak_bytes"] for f in figures.values()),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "policies": figures,
        "end_to_end": e2e,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
