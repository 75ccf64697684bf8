"""Benchmark: validated import of events against the raw driver, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--contacts 10000] [--runs 3]

Generates ``--rows`` events for ``--contacts`` contacts as CSV in a temporary directory, then for each
backend, each in a freshly migrated store with the contacts already imported:

* **validated**: ``tummler.app.ingest.import_file`` (read, validate every field, resolve contacts per
  chunk, batched idempotent writes);
* **raw**: the driver alone on the same rows — the ``csv`` module, one dict from external id to
  contact id, and ``sqlite3.executemany`` in one transaction (SQLite) or ``COPY events (...) FROM
  STDIN`` with ``write_row`` (PostgreSQL); no validation, no de-duplication. Like ``import_file``,
  it runs with the cyclic garbage collector switched off.

Each measurement runs in its own subprocess; the figures are the import's wall time (rows/s) and the
subprocess's peak resident memory (``ru_maxrss``, which includes the interpreter and its imports).
The last line printed is one JSON object with every figure (medians over ``--runs``).
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_EVENT_COLUMNS = (
    "contact_external_id",
    "type",
    "at",
    "channel",
    "value",
    "source",
    "provider_event_id",
)
#: validated: import_file; raw: the plain driver; tuned (SQLite only): the driver given the same
#: page cache that import_file gives its connection.
MODES = ("validated", "raw", "tuned")
_TYPES = ("delivered", "opened", "clicked", "converted", "sent")


def generate(directory: Path, rows: int, contacts: int, seed: int = 7) -> tuple[Path, Path]:
    """Write contacts.csv and events.csv (seeded); events are in time order, as exports are."""
    rng = np.random.default_rng(seed)
    contacts_path = directory / "contacts.csv"
    with contacts_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("external_id", "time_zone", "stage", "city"))
        for i in range(contacts):
            writer.writerow((f"c{i:07d}", "Europe/Berlin", "customer", "Berlin"))
    events_path = directory / "events.csv"
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    with events_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_EVENT_COLUMNS)
        done = 0
        while done < rows:
            n = min(100_000, rows - done)
            who = rng.integers(0, contacts, n)
            kind = rng.integers(0, len(_TYPES), n)
            seconds = start + np.sort(rng.integers(0, 90 * 86_400, n))
            stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
            values = rng.gamma(2.0, 20.0, n)
            writer.writerows(
                (
                    f"c{who[i]:07d}",
                    _TYPES[kind[i]],
                    f"{stamps[i]}Z",
                    "email",
                    f"{values[i]:.2f}" if kind[i] == 3 else "",
                    "esp",
                    f"ev-{done + i:09d}",
                )
                for i in range(n)
            )
            done += n
    return contacts_path, events_path


# --- what runs inside each subprocess ----------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_validated(url: str, events: Path, batch_size: int) -> dict[str, Any]:
    from tummler.app.ingest import import_file
    from tummler.store.database import connect

    engine = connect(url)
    started = time.perf_counter()
    report = import_file(engine, "events", events, batch_size=batch_size)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": seconds,
        "rows": report.inserted,
        "rejected": report.rejected,
        "peak_mb": _peak_mb(),
    }


def child_raw(url: str, events: Path, tuned: bool) -> dict[str, Any]:
    from sqlalchemy import text

    from tummler.store.database import connect

    engine = connect(url)
    with engine.connect() as connection:
        ids = dict(connection.execute(text("SELECT external_id, id FROM contacts")).tuples().all())
    raw = engine.raw_connection()
    driver: Any = raw.driver_connection
    if tuned and engine.dialect.name == "sqlite":
        from tummler.app.ingest.loader import SQLITE_IMPORT_CACHE_KIB

        driver.execute(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    gc.disable()  # as import_file does: the baseline gets the same help
    started = time.perf_counter()
    with events.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = ((ids[r[0]], r[3], r[1], r[4] or None, r[2], r[5], r[6]) for r in reader)
        columns = "contact_id, channel, type, value, at, source, provider_event_id"
        if engine.dialect.name == "sqlite":
            cursor = driver.cursor()
            cursor.executemany(f"INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            count = cursor.rowcount
            driver.commit()
        else:
            count = 0
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
                    count += 1
            driver.commit()
    seconds = time.perf_counter() - started
    raw.close()
    engine.dispose()
    return {"seconds": seconds, "rows": count, "rejected": 0, "peak_mb": _peak_mb()}


def _modes(backend: str) -> tuple[str, ...]:
    return MODES if backend == "sqlite" else MODES[:2]


def _in_subprocess(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {result.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


# --- stores ------------------------------------------------------------------------------------------


def _fresh_store(url: str, contacts: Path) -> None:
    from tummler.app.ingest import import_file
    from tummler.store.database import connect, upgrade

    engine = connect(url)
    upgrade(engine)
    import_file(engine, "contacts", contacts)
    engine.dispose()


def run(
    rows: int, contacts: int, runs: int, batch_size: int, backends: list[str]
) -> dict[str, Any]:
    from sqlalchemy import text

    from tummler.store.database import connect
    from tummler.store.throwaway import ThrowawayPostgres

    figures: dict[str, Any] = {
        "rows": rows,
        "contacts": contacts,
        "runs": runs,
        "batch_size": batch_size,
        "memory": "ru_maxrss of the subprocess that ran the import (MB)",
    }
    with tempfile.TemporaryDirectory(prefix="tummler-bench-") as directory:
        folder = Path(directory)
        started = time.perf_counter()
        contacts_csv, events_csv = generate(folder, rows, contacts)
        figures["generate_seconds"] = round(time.perf_counter() - started, 2)
        figures["csv_mb"] = round(events_csv.stat().st_size / 2**20, 1)
        server: ThrowawayPostgres | None = None
        number = 0
        try:
            for backend in backends:
                if backend == "postgres":
                    server = ThrowawayPostgres().start()
                modes = _modes(backend)
                samples: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
                for _ in range(runs):  # interleaved, so that a busy machine slows every mode alike
                    for mode in modes:
                        number += 1
                        if backend == "sqlite":
                            url = f"sqlite:///{folder / f'bench{number}.db'}"
                        else:
                            assert server is not None
                            admin = connect(server.url(), isolation_level="AUTOCOMMIT")
                            with admin.connect() as connection:
                                connection.execute(text(f"CREATE DATABASE bench{number}"))
                            admin.dispose()
                            url = server.url(f"bench{number}")
                        _fresh_store(url, contacts_csv)
                        args = [mode, url, str(events_csv), str(batch_size)]
                        samples[mode].append(_in_subprocess(*args))
                for mode in modes:
                    seconds = statistics.median(s["seconds"] for s in samples[mode])
                    figures[f"{backend}_{mode}"] = {
                        "rows_per_s": round(rows / seconds),
                        "seconds": round(seconds, 2),
                        "peak_mb": round(max(s["peak_mb"] for s in samples[mode]), 1),
                        "rows_written": samples[mode][0]["rows"],
                        "all_runs_s": [round(s["seconds"], 2) for s in samples[mode]],
                    }
                validated = figures[f"{backend}_validated"]["rows_per_s"]
                for mode in modes[1:]:
                    baseline = figures[f"{backend}_{mode}"]["rows_per_s"]
                    figures[f"{backend}_ratio_{mode}"] = round(validated / baseline, 3)
                if server is not None:
                    server.stop()
                    server = None
        finally:
            if server is not None:
                server.stop()
    return figures


def render(figures: dict[str, Any], backends: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"import of {figures['rows']:,} events ({figures['csv_mb']} MB CSV)")
    for column in ("backend", "mode", "rows/s", "seconds", "peak MB", "validated / this"):
        table.add_column(column, justify="right" if column != "backend" else "left")
    for backend in backends:
        for mode in _modes(backend):
            f = figures[f"{backend}_{mode}"]
            ratio = figures.get(f"{backend}_ratio_{mode}")
            table.add_row(
                backend,
                mode,
                f"{f['rows_per_s']:,}",
                f"{f['seconds']:.2f}",
                f"{f['peak_mb']:.0f}",
                "" if ratio is None else f"{ratio:.2f}",
            )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        mode, url, events, batch_size = options.child
        if mode == "validated":
            result = child_validated(url, Path(events), int(batch_size))
        else:
            result = child_raw(url, Path(events), tuned=mode == "tuned")
        print(json.dumps(result))
        return
    backends = ["sqlite", "postgres"] if options.backend == "both" else [options.backend]
    figures = run(options.rows, options.contacts, options.runs, options.batch_size, backends)
    render(figures, backends)
    print(json.dumps(figures))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
