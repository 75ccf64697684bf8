"""A small, seeded example brand for the import tests: contacts, identities, consent, events, edges
and mentions files.

The files use every import format (CSV, JSON Lines, Parquet) and the column names ``tummler import``
expects, so that ``tummler import <kind> <file>`` loads each one as it is. The same seed and start time
give byte-identical files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from tummler.core.errors import InputError
from tummler.core.randomness import make_rng
from tummler.core.vocabulary import ChannelKind, ConsentStatus, EdgeKind, EventType, Stage

__all__ = ["ExampleFiles", "write_example_data"]

_TIME_ZONES = ("Europe/Berlin", "Europe/London", "America/New_York", "Asia/Tokyo", "UTC")
_CITIES = ("Berlin", "London", "New York", "Tokyo", "Lisbon")
_FIRST_NAMES = ("Ada", "Kofi", "Mei", "Lars", "Priya", "Mateo", "Aiko", "Noor")
_TOPICS = ("delivery", "pricing", "product", "support")
_PHRASES = {
    "delivery": ("my parcel is late again", "delivery was quicker than promised"),
    "pricing": ("the new prices are steep", "great value for the money"),
    "product": ("love the new jacket", "the zip broke after a week"),
    "support": ("support never answered", "support fixed it in minutes"),
}


@dataclass(frozen=True, slots=True)
class ExampleFiles:
    """Where each kind's file was written, in the order they should be imported."""

    contacts: Path
    identities: Path
    consent: Path
    events: Path
    edges: Path
    mentions: Path

    def in_import_order(self) -> list[tuple[str, Path]]:
        """(kind, file) pairs: contacts first, since the other kinds refer to them."""
        return [
            ("contacts", self.contacts),
            ("identities", self.identities),
            ("consent", self.consent),
            ("events", self.events),
            ("edges", self.edges),
            ("mentions", self.mentions),
        ]


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_example_data(
    directory: Path,
    *,
    seed: int | np.random.Generator = 7,
    contacts: int = 200,
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC),
) -> ExampleFiles:
    """Write an example brand's files into ``directory`` (made if needed).

    Parameters
    ----------
    directory
        Where the six files go (``contacts.csv``, ``identities.csv``, ``consent.csv``,
        ``events.jsonl``, ``edges.parquet``, ``mentions.csv``).
    seed
        Seed or generator: the same seed gives the same files.
    contacts
        How many people; events, edges and mentions scale with it.
    start
        The first day of the four weeks the events and mentions fall in.

    Raises
    ------
    InputError
        When ``contacts`` is smaller than 2.
    """
    if contacts < 2:
        raise InputError(f"contacts must be at least 2, got {contacts}", field="contacts")
    rng = make_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    ids = [f"cust-{i:05d}" for i in range(1, contacts + 1)]
    files = ExampleFiles(
        contacts=directory / "contacts.csv",
        identities=directory / "identities.csv",
        consent=directory / "consent.csv",
        events=directory / "events.jsonl",
        edges=directory / "edges.parquet",
        mentions=directory / "mentions.csv",
    )

    _write_contacts(files.contacts, ids, rng)
    has_phone = rng.random(contacts) < 0.6
    has_social = rng.random(contacts) < 0.3
    _write_identities(files.identities, ids, has_phone, has_social)
    _write_consent(files.consent, ids, has_phone, rng, start)
    _write_events(files.events, ids, rng, start)
    _write_edges(files.edges, ids, rng)
    _write_mentions(files.mentions, ids, rng, start)
    return files


def _write_contacts(path: Path, ids: list[str], rng: np.random.Generator) -> None:
    """Contacts with a name, time zone, stage, city, lifetime value and VIP flag."""
    stages = [s.value for s in Stage]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ("external_id", "first_name", "time_zone", "stage", "city", "lifetime_value", "vip")
        )
        for index, external_id in enumerate(ids):
            writer.writerow(
                (
                    external_id,
                    _FIRST_NAMES[index % len(_FIRST_NAMES)],  # no draw: the rest stays as it was
                    _TIME_ZONES[int(rng.integers(len(_TIME_ZONES)))],
                    stages[int(rng.integers(len(stages)))],
                    _CITIES[int(rng.integers(len(_CITIES)))],
                    f"{rng.gamma(2.0, 60.0):.2f}",
                    "true" if rng.random() < 0.1 else "false",
                )
            )


def _write_identities(
    path: Path, ids: list[str], has_phone: np.ndarray, has_social: np.ndarray
) -> None:
    """An e-mail address for everyone, a phone and a Mastodon handle for some."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("contact_external_id", "channel", "address"))
        for index, external_id in enumerate(ids):
            writer.writerow((external_id, ChannelKind.EMAIL.value, f"{external_id}@example.org"))
            if has_phone[index]:
                writer.writerow(
                    (external_id, ChannelKind.SMS.value, f"+4915{index + 1:09d}"),
                )
            if has_social[index]:
                writer.writerow(
                    (external_id, ChannelKind.MASTODON.value, f"@{external_id}@social.example")
                )


def _write_consent(
    path: Path, ids: list[str], has_phone: np.ndarray, rng: np.random.Generator, start: datetime
) -> None:
    """E-mail (and most SMS) granted at sign-up; a few e-mail revocations in the four weeks."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("contact_external_id", "channel", "status", "at", "source"))
        for index, external_id in enumerate(ids):
            granted_at = start - timedelta(days=int(rng.integers(30, 400)))
            writer.writerow(
                (external_id, "email", ConsentStatus.GRANTED.value, _stamp(granted_at), "signup")
            )
            if has_phone[index] and rng.random() < 0.7:
                writer.writerow(
                    (external_id, "sms", ConsentStatus.GRANTED.value, _stamp(granted_at), "signup")
                )
            if rng.random() < 0.05:
                revoked_at = start + timedelta(days=int(rng.integers(0, 28)))
                writer.writerow(
                    (
                        external_id,
                        "email",
                        ConsentStatus.REVOKED.value,
                        _stamp(revoked_at),
                        "unsubscribe-link",
                    )
                )


def _write_events(path: Path, ids: list[str], rng: np.random.Generator, start: datetime) -> None:
    """A few funnels per person: delivered, then perhaps opened, clicked and converted."""
    funnel = (EventType.DELIVERED, EventType.OPENED, EventType.CLICKED, EventType.CONVERTED)
    with path.open("w", encoding="utf-8") as handle:
        number = 0
        for external_id in ids:
            for _ in range(int(rng.poisson(3))):
                at = start + timedelta(minutes=int(rng.integers(0, 28 * 24 * 60)))
                channel = "sms" if rng.random() < 0.2 else "email"
                depth = int(rng.integers(1, len(funnel) + 1))
                for step, event_type in enumerate(funnel[:depth]):
                    number += 1
                    record: dict[str, object] = {
                        "contact_external_id": external_id,
                        "type": event_type.value,
                        "at": _stamp(at + timedelta(minutes=7 * step)),
                        "channel": channel,
                        "source": "example-esp",
                        "provider_event_id": f"evt-{number:07d}",
                    }
                    if event_type is EventType.CONVERTED:
                        record["value"] = round(float(rng.gamma(2.0, 25.0)), 2)
                    handle.write(json.dumps(record) + "\n")


def _write_edges(path: Path, ids: list[str], rng: np.random.Generator) -> None:
    """Random follows and mentions between people, without repeats."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sources: list[str] = []
    targets: list[str] = []
    kinds: list[str] = []
    weights: list[float] = []
    seen: set[tuple[int, int, str]] = set()
    edge_kinds = [k.value for k in EdgeKind]
    for _ in range(len(ids) * 3):
        source, target = (int(x) for x in rng.choice(len(ids), size=2, replace=False))
        kind = edge_kinds[int(rng.integers(len(edge_kinds)))]
        if (source, target, kind) in seen:
            continue
        seen.add((source, target, kind))
        sources.append(ids[source])
        targets.append(ids[target])
        kinds.append(kind)
        weights.append(round(float(rng.uniform(0.1, 1.0)), 3))
    pq.write_table(
        pa.table(
            {
                "source_external_id": sources,
                "target_external_id": targets,
                "kind": kinds,
                "weight": weights,
            }
        ),
        path,
    )


def _write_mentions(path: Path, ids: list[str], rng: np.random.Generator, start: datetime) -> None:
    """Posts about the brand on Mastodon, half by known contacts."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ("channel", "external_id", "at", "author_handle", "text", "contact_external_id")
        )
        for number in range(1, max(len(ids) // 4, 1) + 1):
            topic = _TOPICS[int(rng.integers(len(_TOPICS)))]
            text = _PHRASES[topic][int(rng.integers(2))]
            known = rng.random() < 0.5
            author = ids[int(rng.integers(len(ids)))] if known else ""
            writer.writerow(
                (
                    "mastodon",
                    f"post-{number:06d}",
                    _stamp(start + timedelta(minutes=int(rng.integers(0, 28 * 24 * 60)))),
                    f"@{author or f'someone{number}'}@social.example",
                    text,
                    author,
                )
            )
