"""The demo's brand: the simulator's population as a workspace — strategy, campaigns and store.

The demo speaks to the simulator's people through tummler's real services, so the strategy it writes
must describe exactly the levers the simulator knows: the same channels (by kind), the same local
send hours and the same variants, in the same order. :class:`DemoBrand` holds that correspondence
once; the strategy file, the round campaign files and the simulator's
:class:`~tummler.simulate.ActionSpace` are all made from it, so they cannot drift apart.

Seeding the store goes through :func:`tummler.app.ingest.import_file` with the files a brand would
bring (contacts, identities, consent, 90 days of events, the social graph, mentions): the demo takes
no shortcut around the importer.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from tummler.app.ingest import ImportReport, import_file
from tummler.core.clock import Clock
from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind
from tummler.simulate import (
    ATTRIBUTES,
    CHANNELS,
    IMPORT_COLUMNS,
    ActionSpace,
    History,
    Message,
    Population,
    ResponseModel,
    RewardWeights,
    Variant,
)

__all__ = [
    "DEMO_BRAND",
    "OBJECTIVE",
    "DemoBrand",
    "DemoVariant",
    "channel_index",
    "cohort_bounds",
    "import_brand",
    "round_key",
    "variant_index",
    "write_round_campaign",
    "write_strategy",
]

#: The objective every round's campaign serves (one objective: learning and evaluation read it).
OBJECTIVE = "engagement"


@dataclass(frozen=True)
class DemoVariant:
    """One wording: its key, the simulator's view of it (emotion, length) and its texts."""

    key: str
    emotion: str
    length: str
    subject: str
    body: str


@dataclass(frozen=True)
class DemoBrand:
    """The levers the demo's strategy offers, in the simulator's terms.

    Attributes
    ----------
    name
        The brand's name (mention texts and the strategy).
    channels
        Channel kinds the campaigns may use, in action-space order; each becomes a private channel
        of the strategy whose id is its kind.
    hours
        Local send hours: the strategy's send slots and the simulator's action hours.
    variants
        The message's wordings, the same on every channel.
    costs
        Cost of one send per channel kind, in reward units (the strategy's ``cost_per_send`` and
        the simulator's channel cost).
    unsubscribe_penalty, complaint_penalty
        What an unsubscribe and a complaint cost, in clicks (the objective's ``penalties`` and the
        simulator's reward weights).
    """

    name: str = "Northwind Outfitters"
    channels: tuple[ChannelKind, ...] = (
        ChannelKind.EMAIL,
        ChannelKind.SMS,
        ChannelKind.BLUESKY,
        ChannelKind.LINKEDIN,
    )
    hours: tuple[int, ...] = (8, 12, 19)
    variants: tuple[DemoVariant, ...] = (
        DemoVariant(
            "a",
            "neutral",
            "short",
            "New in: trail gear made to last",
            "New in this week: trail gear made to last, repaired for free. Have a look.",
        ),
        DemoVariant(
            "b",
            "joy",
            "long",
            "The trail season is here, and so is our new gear",
            "The trail season is here! Our new jackets and packs are made to last, and we "
            "repair them for free for as long as you own them. Come and see what is new this "
            "week, pick what suits your next trip, and enjoy the outdoors with gear that keeps "
            "up with you.",
        ),
    )
    costs: tuple[tuple[ChannelKind, float], ...] = ((ChannelKind.SMS, 0.01),)
    unsubscribe_penalty: float = 1.0
    complaint_penalty: float = 2.0
    #: Contact attributes the strategy declares (the policy's features): those that say most
    #: about who prefers which channel.
    attributes: tuple[str, ...] = ("age_band", "interest", "signup_channel")

    def __post_init__(self) -> None:
        checks = (
            ("channels", self.channels, "at least one channel kind"),
            ("hours", self.hours, "at least one local hour"),
            ("variants", self.variants, "at least one variant"),
        )
        for name, values, what in checks:
            if not values:
                raise InputError(f"the demo brand needs {what}", field=name)
        if len(set(self.channels)) != len(self.channels):
            raise InputError("each channel kind may appear once", field="channels")
        if len(set(self.hours)) != len(self.hours) or any(not 8 <= h < 21 for h in self.hours):
            raise InputError(
                f"hours must be distinct local hours from 8 to 20 (outside the quiet hours "
                f"21:00-08:00), got {self.hours}",
                field="hours",
            )
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise InputError(f"variant keys must be distinct, got {keys}", field="variants")
        unknown = sorted(set(self.attributes) - set(ATTRIBUTES))
        if unknown:
            raise InputError(
                f"unknown contact attribute(s) {', '.join(unknown)}; the simulator knows "
                f"{', '.join(ATTRIBUTES)}",
                field="attributes",
            )

    def cost(self, kind: ChannelKind) -> float:
        """The cost of one send on ``kind``."""
        return dict(self.costs).get(kind, 0.0)

    def message(self, key: str) -> Message:
        """The simulator's view of a round's message: a private product message, normal urgency."""
        return Message(
            key,
            topic="product",
            public=False,
            urgency="normal",
            variants=tuple(
                Variant(v.key, emotion=v.emotion, length=v.length) for v in self.variants
            ),
        )

    def action_space(self) -> ActionSpace:
        """The simulator's action space over the same channels, hours and variants."""
        return ActionSpace(
            channels=tuple(CHANNELS.index(kind) for kind in self.channels),
            hours=self.hours,
            n_variants=len(self.variants),
        )

    def model(self) -> ResponseModel:
        """The response model whose reward is the objective's: a click is worth 1, an unsubscribe
        and a complaint cost the strategy's penalties, each send its channel's cost. The truth the
        curve is measured on is then exactly what tummler is told to maximize."""
        costs = tuple(self.cost(kind) for kind in CHANNELS)
        return ResponseModel(
            reward=RewardWeights(
                clicked=1.0,
                replied=0.0,
                converted=0.0,
                value=0.0,
                unsubscribed=-self.unsubscribe_penalty,
                complained=-self.complaint_penalty,
                channel_cost=costs,
            )
        )


DEMO_BRAND = DemoBrand()


def cohort_bounds(population: Population, cohorts: int, index: int) -> tuple[str, str | None]:
    """The external ids ``[low, high)`` of cohort ``index`` of ``cohorts`` (``high`` ``None``:
    to the end). Cohorts are contiguous runs of the population's (sorted) external ids, which the
    simulator draws independently of everything else: each is a random share of the brand."""
    n = population.n
    start = index * n // cohorts
    stop = (index + 1) * n // cohorts
    low = str(population.external_id[start])
    high = str(population.external_id[stop]) if stop < n else None
    return low, high


def _yaml_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_strategy(
    workspace: Path, brand: DemoBrand, *, cohorts: int, population: Population
) -> Path:
    """Write the demo's ``strategy.yaml`` and remove the example campaigns ``init`` put there.

    One objective (clicks, penalized for unsubscribes and complaints), one audience per cohort of
    the population, and one private channel per kind of ``brand.channels`` with the brand's send
    slots, quiet hours from 21:00 to 08:00 and a shared fatigue cap.
    """
    campaigns = workspace / "campaigns"
    if campaigns.exists():
        shutil.rmtree(campaigns)
    campaigns.mkdir(parents=True)
    slots = ", ".join(f'"{h:02d}:00"' for h in brand.hours)
    lines = [
        "# The demo brand's strategy, written by `tummler demo` for the simulated population.",
        "version: 1",
        "brand:",
        f"  name: {_yaml_text(brand.name)}",
        "  pillars:",
        "    - id: made-to-last",
        "      promise: Outdoor gear that is made to last and repaired for free.",
        "      phrases: [made to last, repaired for free, gear that keeps up with you]",
        "attributes:",
        *(f"  {name}: {{type: string}}" for name in brand.attributes),
        "objectives:",
        f"  - id: {OBJECTIVE}",
        "    description: People click through to the new gear (a rate, as the holdout never clicks).",
        "    kpi: {event: clicked, measure: rate}",
        "    attribution_window: 3d",
        f"    penalties: {{unsubscribed: {brand.unsubscribe_penalty:g}, "
        f"complained: {brand.complaint_penalty:g}}}",
        "    target: {absolute_rate: 0.12}",
        "    horizon: 90d",
        "audiences:",
    ]
    for index in range(cohorts):
        low, high = cohort_bounds(population, cohorts, index)
        condition = f'external_id >= "{low}"' + (f' and external_id < "{high}"' if high else "")
        lines += [
            f"  - id: cohort-{index + 1}",
            f"    description: Cohort {index + 1} of {cohorts} of the contact base.",
            f"    filter: {_yaml_text(condition)}",
        ]
    lines.append("channels:")
    for kind in brand.channels:
        lines += [
            f"  - id: {kind.value}",
            f"    kind: {kind.value}",
            "    public: false",
            f"    cost_per_send: {brand.cost(kind)}",
            f"    send_slots: [{slots}]",
            '    quiet_hours: {start: "21:00", end: "08:00"}',
            "    consent_required: true",
        ]
    lines += [
        "lever_policy:",
        "  levers_per_contact: 1",
        "  fatigue: {window: 7d, cap: 3}",
        "  relevance_threshold: 0.0",
        "  holdout_share: 0.1",
        "",
    ]
    path = workspace / "strategy.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def round_key(index: int) -> str:
    """The campaign key of round ``index`` (0-based): ``new-gear-01``..."""
    return f"new-gear-{index + 1:02d}"


def write_round_campaign(workspace: Path, brand: DemoBrand, *, index: int, cohort: int) -> Path:
    """Write round ``index``'s campaign file: the brand's message to cohort ``cohort`` (0-based).

    Each round is a new send, so a new campaign key: decisions are unique per campaign, contact and
    lever.
    """
    key = round_key(index)
    lines = [
        f"id: {key}",
        f"name: New gear, week {index + 1}",
        f"objective: {OBJECTIVE}",
        "pillar: made-to-last",
        f"audience: cohort-{cohort + 1}",
        "message: {visibility: private, urgency: normal, topic: product}",
        "variants:",
    ]
    for kind in brand.channels:
        lines.append(f"  {kind.value}:")
        for variant in brand.variants:
            lines.append(f"    - id: {variant.key}")
            if kind is ChannelKind.EMAIL:
                lines.append(f"      subject: {_yaml_text(variant.subject)}")
            lines.append(f"      body: {_yaml_text(variant.body)}")
    path = workspace / "campaigns" / f"{key}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ the store


def _csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def import_brand(
    engine: Engine,
    directory: Path,
    population: Population,
    past: History,
    *,
    clock: Clock,
    step: Callable[[str], None],
) -> tuple[ImportReport, ...]:
    """Write the brand's import files into ``directory`` and import them, contacts first.

    Contacts carry their stage after the simulated past; consent is the grants given before it and
    the revocations its unsubscribes made; events are the past's provider reports (Parquet).

    Raises
    ------
    InputError
        When the importer rejects a row: the simulator's rows must import unchanged.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, Path]] = [
        (
            "contacts",
            _csv(
                directory / "contacts.csv",
                population.contact_rows(past.state.stage),
                IMPORT_COLUMNS["contacts"],
            ),
        ),
        (
            "identities",
            _csv(
                directory / "identities.csv",
                population.identity_rows(),
                IMPORT_COLUMNS["identities"],
            ),
        ),
        (
            "consent",
            _csv(
                directory / "consent.csv",
                population.consent_rows() + past.consent_rows(population),
                IMPORT_COLUMNS["consent"],
            ),
        ),
    ]
    events = directory / "events.parquet"
    pq.write_table(pa.table(past.events.columns(population)), events)
    files.append(("events", events))
    files.append(
        ("edges", _csv(directory / "edges.csv", population.edge_rows(), IMPORT_COLUMNS["edges"]))
    )
    files.append(
        (
            "mentions",
            _csv(directory / "mentions.csv", past.mentions.rows(), IMPORT_COLUMNS["mentions"]),
        )
    )
    reports = []
    for kind, path in files:
        step(f"importing {kind}")
        report = import_file(engine, kind, path, clock=clock)
        if report.rejected:
            raise InputError(
                f"{report.rejected} {kind} row(s) of the simulated brand were rejected "
                f"({report.top_reasons}); this is a bug in the demo, please report it",
                file=path,
            )
        reports.append(report)
    return tuple(reports)


def channel_index(brand: DemoBrand) -> dict[str, int]:
    """Strategy channel id → index into the simulator's ``CHANNELS``."""
    return {kind.value: CHANNELS.index(kind) for kind in brand.channels}


def variant_index(brand: DemoBrand) -> dict[str, int]:
    """Variant key → the simulator's variant index."""
    return {variant.key: i for i, variant in enumerate(brand.variants)}
