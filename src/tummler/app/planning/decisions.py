"""Writing decisions: one ``decisions`` row per lever — *no send* and holdout rows too — with its
propensity, the policy version and its reasons (the rules that removed levers, the runner-up and
the largest feature contributions), so that ``explain`` needs nothing but the row.

**Re-planning** replaces the campaign's previous decisions, except those of contacts with a decision
that already has a delivery: those contacts keep their decisions and are not planned again. So
re-planning never duplicates a decision and never rewrites what was (or is being) sent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select
from sqlalchemy.orm import Session

from tummler.app.planning.contexts import ProgressCallback
from tummler.app.planning.policy_choice import _record_prior
from tummler.app.planning.selection import _Decided, _explanations, _Planned
from tummler.app.planning.setup import _Setup
from tummler.app.planning.templates import _needs, _VariantAccess
from tummler.app.strategy import store_campaign
from tummler.decide import reason_names
from tummler.store import models
from tummler.store.database import session_scope
from tummler.store.types import sqlite_timestamp

_DECISIONS: Table = models.Decision.__table__  # type: ignore[assignment]
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _write_plan(
    engine: Engine,
    planned: _Planned,
    access: _VariantAccess,
    *,
    policy_version_id: int | None,
    now: datetime,
    write_batch: int,
    progress: ProgressCallback | None,
) -> tuple[int | None, int]:
    """Store the campaign's rows, the fresh prior (when it decided) and the plan's decisions in
    place of the previous plan's, in one transaction.

    Returns the deciding policy version's row id and how many previous decisions were replaced.
    """
    setup, decided = planned.setup, planned.decided
    weights = planned.policy.weight_matrix(setup.actions)
    names = np.asarray(planned.featurizer.feature_names(), dtype=object)
    with session_scope(engine) as session:
        stored = store_campaign(session, setup.campaign, holdout_share=setup.holdout_share, now=now)
        if policy_version_id is None and decided.rows:
            # not for an empty audience: the prior's featurizer would be fitted on nothing
            policy_version_id = _record_prior(
                session, setup, planned.policy, planned.featurizer, now
            )
        replaced = _delete_previous(session, stored.row.id)
        connection = session.connection()
        written = 0
        # records are made batch by batch, so that memory stays bounded for any audience
        for start in range(0, decided.result.n, write_batch):
            stop = min(decided.result.n, start + write_batch)
            runner, contributions = _explanations(
                planned.audience.x,
                decided.result,
                setup,
                planned.policy,
                planned.audience.eligibility,
                names,
                weights,
                start=start,
                stop=stop,
                variant_ok=decided.variant_ok[start:stop],
            )
            batch = _decision_records(
                decided,
                setup,
                planned.audience.ids,
                planned.audience.slots.table[planned.audience.zone[start:stop]],
                runner,
                contributions,
                start=start,
                stop=stop,
                now=now,
                needs=_needs(setup, decided, planned.audience.shape, access, start, stop),
            )
            _stamp(batch, stored.row.id, policy_version_id, stored.variant_ids)
            _write_decisions(connection, batch)
            written += len(batch)
            if progress is not None:
                progress("write", written, decided.rows)
    return policy_version_id, replaced


def _stamp(
    batch: Sequence[dict[str, Any]],
    campaign_id: int,
    policy_version_id: int | None,
    variant_ids: dict[tuple[str, str], int],
) -> None:
    """Fill in the ids known once the campaign is stored: campaign, policy version, variant."""
    for record in batch:
        record["campaign_id"] = campaign_id
        record["policy_version_id"] = policy_version_id
        variant = record.pop("_variant")
        record["variant_id"] = variant_ids.get(variant) if variant else None


#: The columns :func:`_write_decisions` fills, in order (``id`` comes from the database).
_DECISION_COLUMNS = (
    "campaign_id",
    "contact_id",
    "lever",
    "channel",
    "send_at",
    "variant_id",
    "action",
    "propensity",
    "expected_value",
    "policy_version_id",
    "holdout",
    "reasons",
    "decided_at",
)


def _write_decisions(connection: Connection, batch: Sequence[dict[str, Any]]) -> None:
    """Insert decision records in the connection's transaction, the fastest way each store has.

    PostgreSQL: ``COPY ... FROM STDIN`` through psycopg. SQLite: the driver's ``executemany``
    with the values already in the form SQLAlchemy's types would store (naive UTC text for times,
    JSON text for reasons). Anything else: Core ``executemany``. Profiling ``tummler plan`` found
    SQLAlchemy's per-row parameter processing the largest single cost of writing decisions.
    """
    if not batch:
        return
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    columns = ", ".join(_DECISION_COLUMNS)
    if dialect == "postgresql" and hasattr(driver, "cursor"):
        sql = f"COPY {_DECISIONS.name} ({columns}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for record in batch:
                copy.write_row(
                    [
                        json.dumps(record[c]) if c == "reasons" else record[c]
                        for c in _DECISION_COLUMNS
                    ]
                )
        return
    if dialect == "sqlite":
        times: dict[datetime, str] = {}  # decided_at is one moment; send_at a few slots

        def text(value: datetime | None) -> str | None:
            if value is None:
                return None
            found = times.get(value)
            if found is None:
                found = times[value] = sqlite_timestamp(value)
            return found

        marks = ", ".join("?" for _ in _DECISION_COLUMNS)
        rows = [
            (
                r["campaign_id"],
                r["contact_id"],
                r["lever"],
                r["channel"],
                text(r["send_at"]),
                r["variant_id"],
                r["action"],
                r["propensity"],
                r["expected_value"],
                r["policy_version_id"],
                int(r["holdout"]),
                json.dumps(r["reasons"]),
                text(r["decided_at"]),
            )
            for r in batch
        ]
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(f"INSERT INTO {_DECISIONS.name} ({columns}) VALUES ({marks})", rows)
        finally:
            cursor.close()
        return
    connection.execute(insert(_DECISIONS), list(batch))  # pragma: no cover - other stores


def _count_replaceable(engine: Engine, campaign_id: int) -> int:
    delivered = (
        select(models.Decision.contact_id)
        .join(models.Delivery, models.Delivery.decision_id == models.Decision.id)
        .where(models.Decision.campaign_id == campaign_id)
    )
    with engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count())
                .select_from(models.Decision)
                .where(
                    models.Decision.campaign_id == campaign_id,
                    models.Decision.contact_id.not_in(delivered),
                )
            )
            or 0
        )


def _delete_previous(session: Session, campaign_id: int) -> int:
    """Delete the campaign's decisions of contacts none of whose decisions has a delivery."""
    delivered = (
        select(models.Decision.contact_id)
        .join(models.Delivery, models.Delivery.decision_id == models.Decision.id)
        .where(models.Decision.campaign_id == campaign_id)
    )
    result = session.execute(
        delete(models.Decision)
        .where(
            models.Decision.campaign_id == campaign_id,
            models.Decision.contact_id.not_in(delivered),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@functools.cache
def _rule_names(bits: int) -> list[str]:
    """:func:`~tummler.decide.reason_names`, once per bit pattern (there are 256)."""
    return reason_names(bits)


def _local_label(minutes: int) -> str:
    day = _DAYS[(minutes // 1440) % 7]
    return f"{day} {(minutes % 1440) // 60:02d}:{minutes % 60:02d}"


def _decision_records(
    decided: _Decided,
    setup: _Setup,
    ids: npt.NDArray[np.int64],
    utc: npt.NDArray[np.float64],
    runner: npt.NDArray[np.int64],
    contributions: list[list[list[Any]]],
    *,
    start: int,
    stop: int,
    now: datetime,
    needs: Sequence[dict[str, str] | None] | None = None,
) -> list[dict[str, Any]]:
    """One record per lever (one per *no send*), ready for ``insert(Decision)`` once the campaign,
    variant and policy ids are known. ``utc`` is ``(stop - start, n_slots)``: each contact's slots
    in UTC minutes after the reference (:class:`~tummler.app.planning.slots._ZoneSlots`)."""
    result = decided.result
    label = f"{result.policy_kind}@{result.policy_version}"
    action_name = functools.cache(setup.actions.name)
    either = decided.blocked[start:stop].any(axis=1) | decided.lost[start:stop].any(axis=1)
    special = set(np.flatnonzero(either).tolist())
    records: list[dict[str, Any]] = []
    for j, i in enumerate(range(start, stop)):
        reasons = _reasons(
            decided,
            setup,
            i,
            runner=int(runner[j]),
            contributions=contributions[j],
            gaps=needs[j] if needs is not None else None,
            special=j in special,
            policy=label,
            action_name=action_name,
        )
        levers = [int(a) for a in result.action[i] if a >= 0]
        if not levers:
            records.append(_no_send_record(decided, setup, i, int(ids[i]), reasons, now))
            continue
        for lever, a in enumerate(levers):
            s = int(setup.actions.slot[a])
            send_at = setup.reference.replace(tzinfo=UTC) + timedelta(minutes=float(utc[j, s]))
            local = _local_label(int(setup.slot_minutes[s]))
            records.append(
                {
                    "contact_id": int(ids[i]),
                    "lever": lever,
                    "channel": setup.names[int(setup.actions.channel[a])],
                    "send_at": send_at,
                    "_variant": _variant_key(setup, a),
                    "action": a,
                    "propensity": float(result.propensity[i, lever]),
                    "expected_value": float(result.expected_value[i, lever]),
                    "holdout": False,
                    "reasons": {**reasons, "action": action_name(a), "local": local},
                    "decided_at": now,
                }
            )
    return records


def _reasons(
    decided: _Decided,
    setup: _Setup,
    i: int,
    *,
    runner: int,
    contributions: list[list[Any]],
    gaps: dict[str, str] | None,
    special: bool,
    policy: str,
    action_name: Callable[[int], str],
) -> dict[str, Any]:
    """What contact ``i``'s decision rows say about why: the rules that removed levers, the
    runner-up, the largest contributions, and the variants, harm and spend caps that weighed."""
    result = decided.result
    names = setup.names
    bits = result.reasons[i]
    removed = {names[c]: _rule_names(int(bits[c])) for c in range(len(names)) if bits[c]}
    reasons: dict[str, Any] = {
        "removed": removed,
        "runner_up": action_name(runner) if runner >= 0 else "no-send",
        "contributions": contributions,
        "explored": bool(result.explored[i]),
        "policy": policy,
    }
    if decided.explore_share < 1.0:
        reasons["explore_share"] = round(decided.explore_share, 6)
    if gaps:
        reasons["variants_unavailable"] = gaps
    if setup.harm is not None:
        # the harm of the channels the choice weighed: the levers' and the runner-up's
        weighed = {int(setup.actions.channel[a]) for a in (*result.action[i], runner) if a >= 0}
        reasons["harm"] = {names[c]: round(float(setup.harm[c]), 6) for c in sorted(weighed)}
    if special:
        for c in np.flatnonzero(decided.blocked[i]).tolist():
            removed[names[c]] = [*removed.get(names[c], []), "template_field"]
        capped = np.flatnonzero(decided.lost[i]).tolist()
        if capped:
            reasons["spend_cap"] = {names[c]: float(result.channel_price[c]) for c in capped}
    return reasons


def _no_send_record(
    decided: _Decided,
    setup: _Setup,
    i: int,
    contact_id: int,
    reasons: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The one row of a contact without a lever (held out, or nothing worth sending)."""
    result = decided.result
    return {
        "contact_id": contact_id,
        "lever": 0,
        "channel": None,
        "send_at": None,
        "_variant": None,
        "action": setup.actions.k,
        "propensity": float(result.propensity[i, 0]),
        "expected_value": float(result.expected_value[i, 0]),
        "holdout": bool(result.holdout[i]),
        "reasons": {**reasons, "action": "no-send"},
        "decided_at": now,
    }


def _variant_key(setup: _Setup, a: int) -> tuple[str, str]:
    """``(channel id, variant id)`` of action ``a``: the key of the stored variant rows."""
    c, v = int(setup.actions.channel[a]), int(setup.actions.variant[a])
    return setup.names[c], setup.actions.variant_names[c][v]
