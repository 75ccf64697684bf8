"""The simulator's rows go through the real import unchanged: a demo store can be seeded from them."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, select

from tummler.app.ingest import import_file
from tummler.simulate import IMPORT_COLUMNS, ResponseModel, history, make_population
from tummler.store.models import ChannelIdentity, ConsentEvent, Contact, Event, Mention, SocialEdge


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_every_kind_imports_without_a_reject(engine: Engine, tmp_path: Path) -> None:
    population = make_population(
        300, np.random.default_rng(1), origin=datetime(2026, 2, 1, tzinfo=UTC)
    )
    past = history(population, ResponseModel(), np.random.default_rng(2), days=21)
    files = {
        "contacts": _csv(tmp_path / "contacts.csv", population.contact_rows(past.state.stage)),
        "identities": _csv(tmp_path / "identities.csv", population.identity_rows()),
        "consent": _csv(
            tmp_path / "consent.csv", population.consent_rows() + past.consent_rows(population)
        ),
        "edges": _csv(tmp_path / "edges.csv", population.edge_rows()),
        "mentions": _csv(tmp_path / "mentions.csv", past.mentions.rows()),
    }
    events = tmp_path / "events.parquet"
    pq.write_table(pa.table(past.events.columns(population)), events)
    files["events"] = events
    reports = {kind: import_file(engine, kind, path) for kind, path in files.items()}
    for kind, report in reports.items():
        assert report.rejected == 0, (kind, report.top_reasons)
        assert report.accepted == report.rows_read > 0, kind
    # every simulated unsubscribe and complaint also revokes its channel, as it arrives
    withdrawals = {
        (e["contact_external_id"], e["channel"], e["type"], e["at"])
        for e in pq.read_table(events).to_pylist()
        if e["type"] in ("unsubscribed", "complained")
    }
    assert reports["events"].revoked == len(withdrawals) > 0
    assert set(files) == set(IMPORT_COLUMNS)
    expected = {
        Contact: population.n,
        ChannelIdentity: int(population.identity.sum()),
        ConsentEvent: int(population.consent.sum())
        + len(past.consent_rows(population))
        + len(withdrawals),
        SocialEdge: len(population.graph),
        Event: len(past.events),
        Mention: len(past.mentions),
    }
    with engine.connect() as connection:
        for model, count in expected.items():
            assert connection.scalar(select(func.count()).select_from(model)) == count, model
