"""A synthetic contact base: what a CRM would know about people, and the hidden truth about them.

Everything here is drawn from a ``numpy.random.Generator`` from fixed, documented tables, so that the
response model is *known*: the decision engine sees the observable attributes, identities, consent and
the social graph; tests and regret computations also see :class:`HiddenTruth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind, ConsentStatus
from tummler.simulate._tables import (
    _AGE_WEIGHTS,
    _BLUESKY,
    _C,
    _CONVERSION_BASE,
    _EDGE_KIND_SHARE,
    _EDGE_KIND_WEIGHT,
    _EMOTION_TASTE,
    _INTEREST_WEIGHTS,
    _LINKEDIN,
    _LTV_WEIGHTS,
    _MASTODON,
    _PEAKS,
    _SIGNUP_WEIGHTS,
    _SMS,
    _STAGE_WEIGHTS,
    _TOPIC_TASTE,
    _VALUE_MEAN,
    _WEBHOOK,
    AFFINITY_BASE,
    AFFINITY_EFFECTS,
    AFFINITY_NOISE,
    ATTRIBUTES,
    CHANNELS,
    CONSENT_RATE,
    CONTACT_REF,
    COUNTRIES,
    EDGE_KINDS,
    EMOTIONS,
    IDENTITY_RATE,
    INTERESTS,
    SIGNUP_CHANNELS,
    STAGES,
    TOPICS,
    BoolArray,
    FloatArray,
    IntArray,
)

__all__ = [
    "HiddenTruth",
    "Population",
    "SocialGraph",
    "make_population",
    "observable_features",
]


@dataclass(frozen=True, eq=False)
class HiddenTruth:
    """What the simulator knows about each person and the decision engine must not read.

    Attributes
    ----------
    affinity
        ``(n, C)`` base log-odds of a click on each channel (attribute effects + personal noise).
    peak_hour, rhythm
        ``(n,)`` local hour of peak activity and the amplitude (log-odds) of the daily rhythm:
        a send at local hour ``h`` adds ``rhythm * cos(2π (h − peak_hour) / 24)``.
    fatigue
        ``(n,)`` fatigue sensitivity (≈ 1 on average): multiplies the model's fatigue slopes.
    emotion_taste, topic_taste
        ``(n, len(EMOTIONS))`` and ``(n, len(TOPICS))`` log-odds added by a message's emotion and topic.
    conversion
        ``(n,)`` base log-odds of converting after a click.
    value_mean
        ``(n,)`` mean value of a conversion (currency units).
    """

    affinity: FloatArray
    peak_hour: FloatArray
    rhythm: FloatArray
    fatigue: FloatArray
    emotion_taste: FloatArray
    topic_taste: FloatArray
    conversion: FloatArray
    value_mean: FloatArray


@dataclass(frozen=True, eq=False)
class SocialGraph:
    """Directed social edges between contacts (indices), with the kind and a weight.

    Contagion treats the graph as undirected: ``adjacency`` is the ``(n, n)`` sparse matrix with
    ``A[i, j] = A[j, i] =`` the summed weights of the edges between ``i`` and ``j``.
    """

    source: IntArray
    target: IntArray
    kind: IntArray
    weight: FloatArray
    at: IntArray
    adjacency: Any

    def __len__(self) -> int:
        return int(self.source.shape[0])

    def degree(self) -> IntArray:
        """Number of edges touching each contact (in or out)."""
        n = int(self.adjacency.shape[0])
        return np.bincount(self.source, minlength=n) + np.bincount(self.target, minlength=n)


@dataclass(frozen=True, eq=False)
class Population:
    """``n`` synthetic contacts: observable attributes, channels, consent, the graph, the truth.

    Codes index the module's level tuples (``country`` into ``COUNTRIES``, ``stage`` into
    ``STAGES``...); ``time_zones`` and ``locales`` list the strings that ``time_zone`` and
    ``locale`` index. The ``rows`` methods return dicts whose keys are the import file columns, so
    a demo can seed a store from them; they never include the hidden truth.
    """

    origin: datetime
    external_id: npt.NDArray[np.str_]
    country: IntArray
    age_band: IntArray
    interest: IntArray
    signup_channel: IntArray
    ltv_band: IntArray
    tenure_days: IntArray
    time_zone: IntArray
    time_zones: tuple[str, ...]
    locale: IntArray
    locales: tuple[str, ...]
    stage: IntArray
    identity: BoolArray
    consent: BoolArray
    consent_at: IntArray
    graph: SocialGraph
    hidden: HiddenTruth

    @property
    def n(self) -> int:
        """Number of contacts."""
        return int(self.external_id.shape[0])

    def attribute_codes(self) -> dict[str, IntArray]:
        """The observable categorical attributes as code arrays, keyed like :data:`ATTRIBUTES`."""
        return {
            "country": self.country,
            "age_band": self.age_band,
            "interest": self.interest,
            "signup_channel": self.signup_channel,
            "ltv_band": self.ltv_band,
        }

    def address(self, contact: int, channel: int) -> str:
        """The contact's address on a channel (whether or not it has an identity there)."""
        external_id = str(self.external_id[contact])
        kind = CHANNELS[channel]
        if kind is ChannelKind.EMAIL:
            return f"{external_id}@example.com"
        if kind is ChannelKind.SMS:
            country = COUNTRIES[int(self.country[contact])]
            prefix = country.phone_prefixes[
                contact // 10**country.phone_digits % len(country.phone_prefixes)
            ]
            return f"{prefix}{contact % 10**country.phone_digits:0{country.phone_digits}d}"
        if kind is ChannelKind.MASTODON:
            return f"@{external_id}@mastodon.example"
        if kind is ChannelKind.BLUESKY:
            return f"{external_id}.bsky.example"
        if kind is ChannelKind.LINKEDIN:
            return f"https://www.linkedin.com/in/{external_id}"
        return f"https://hooks.example.com/{external_id}"

    def contact_rows(self, stage: IntArray | None = None) -> list[dict[str, Any]]:
        """Rows for ``tummler import contacts``: ``external_id,time_zone,locale,stage,<attributes>``.

        ``stage`` overrides the initial stages, e.g. with ``history(...).state.stage`` to seed a
        store as it stands after the simulated past.
        """
        stage = self.stage if stage is None else stage
        attributes = self.attribute_codes()
        levels = {name: ATTRIBUTES[name] for name in attributes}
        return [
            {
                "external_id": str(self.external_id[i]),
                "time_zone": self.time_zones[self.time_zone[i]],
                "locale": self.locales[self.locale[i]],
                "stage": STAGES[stage[i]].value,
                **{name: levels[name][codes[i]] for name, codes in attributes.items()},
                "tenure_days": int(self.tenure_days[i]),
            }
            for i in range(self.n)
        ]

    def identity_rows(self) -> list[dict[str, Any]]:
        """Rows for ``tummler import identities`` (columns: ``IMPORT_COLUMNS["identities"]``)."""
        contacts, channels = np.nonzero(self.identity)
        return [
            {
                CONTACT_REF: str(self.external_id[i]),
                "channel": CHANNELS[c].value,
                "address": self.address(int(i), int(c)),
            }
            for i, c in zip(contacts.tolist(), channels.tolist(), strict=True)
        ]

    def consent_rows(self, source: str = "signup form") -> list[dict[str, Any]]:
        """Rows for ``tummler import consent``: the grants people gave before ``origin``."""
        contacts, channels = np.nonzero(self.consent)
        return [
            {
                CONTACT_REF: str(self.external_id[i]),
                "channel": CHANNELS[c].value,
                "status": ConsentStatus.GRANTED.value,
                "source": source,
                "at": _datetime(int(self.consent_at[i, c])),
            }
            for i, c in zip(contacts.tolist(), channels.tolist(), strict=True)
        ]

    def edge_rows(self) -> list[dict[str, Any]]:
        """Rows for ``tummler import edges`` (columns: ``IMPORT_COLUMNS["edges"]``)."""
        graph = self.graph
        return [
            {
                "source_external_id": str(self.external_id[s]),
                "target_external_id": str(self.external_id[t]),
                "kind": EDGE_KINDS[k].value,
                "weight": float(w),
                "at": _datetime(int(a)),
            }
            for s, t, k, w, a in zip(
                graph.source.tolist(),
                graph.target.tolist(),
                graph.kind.tolist(),
                graph.weight.tolist(),
                graph.at.tolist(),
                strict=True,
            )
        ]


def _datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _seconds(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp())


def _draw(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> IntArray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(p.shape[0], size=n, p=p / p.sum()).astype(np.int64)


def _age_group(age_band: IntArray) -> IntArray:
    """0: under 35, 1: 35 to 54, 2: 55 and over."""
    return np.asarray(np.select([age_band <= 1, age_band <= 3], [0, 1], 2), dtype=np.int64)


def make_population(
    n: int,
    rng: np.random.Generator,
    *,
    origin: datetime,
    mean_degree: float = 8.0,
    homophily: float = 0.7,
) -> Population:
    """Draw ``n`` contacts, their channels and consent, a social graph and the hidden truth.

    The draws follow the module's tables, so the same generator state gives the same population.
    Channel affinity is mostly explained by the observable attributes (``AFFINITY_EFFECTS``) with a
    small personal deviation (``AFFINITY_NOISE``): a learner that sees the attributes can discover
    who prefers which channel, but not perfectly.

    Parameters
    ----------
    n
        Number of contacts (at least 2).
    rng
        The only source of randomness.
    origin
        When the snapshot is taken; consent and edges are dated before it.
    mean_degree
        Average number of edges touching a contact.
    homophily
        Share of edges drawn inside the source's own (country, interest) group; the rest are drawn
        across the whole population. Either way targets are picked in proportion to a heavy-tailed
        (Pareto) popularity, which gives a heavy-tailed degree distribution.

    Raises
    ------
    InputError
        When ``n``, ``mean_degree`` or ``homophily`` is out of range.
    """
    if n < 2:
        raise InputError(f"n must be at least 2, got {n}", field="n")
    if not 0.0 <= mean_degree <= n - 1:
        raise InputError(
            f"mean_degree must lie in [0, n - 1] = [0, {n - 1}], got {mean_degree}",
            field="mean_degree",
        )
    if not 0.0 <= homophily <= 1.0:
        raise InputError(f"homophily must lie in [0, 1], got {homophily}", field="homophily")
    origin_s = _seconds(origin)

    country = _draw(rng, tuple(c.weight for c in COUNTRIES), n)
    age_band = _draw(rng, _AGE_WEIGHTS, n)
    interest = _draw(rng, _INTEREST_WEIGHTS, n)
    signup = _draw(rng, _SIGNUP_WEIGHTS, n)
    ltv = _draw(rng, _LTV_WEIGHTS, n)
    tenure = np.round(rng.gamma(1.5, 400.0, size=n)).astype(np.int64) + 1
    stage = _draw(rng, _STAGE_WEIGHTS, n)
    # New contacts are rarely customers yet, long-standing ones rarely prospects.
    young_customer = (tenure < 60) & (stage >= 2) & (rng.random(n) < 0.7)
    stage[young_customer] = 1

    time_zones: list[str] = []
    locales: list[str] = []
    time_zone = np.empty(n, dtype=np.int64)
    locale = np.empty(n, dtype=np.int64)
    for code, spec in enumerate(COUNTRIES):
        members = np.flatnonzero(country == code)
        zone_names = [zone for zone, _ in spec.zones]
        locale_names = [name for name, _ in spec.locales]
        zone_pick = _draw(rng, tuple(w for _, w in spec.zones), members.shape[0])
        locale_pick = _draw(rng, tuple(w for _, w in spec.locales), members.shape[0])
        zone_codes = np.asarray([_intern(time_zones, zone) for zone in zone_names])
        locale_codes = np.asarray([_intern(locales, name) for name in locale_names])
        time_zone[members] = zone_codes[zone_pick]
        locale[members] = locale_codes[locale_pick]

    identity, consent = _channels(rng, age_band, interest, signup)
    consent_age = rng.uniform(0.0, 1.0, size=(n, _C)) * tenure[:, None]
    consent_at = origin_s - np.round(consent_age * 86_400.0).astype(np.int64) - 3_600

    hidden = _hidden_truth(rng, country, age_band, interest, signup, ltv)
    graph = _social_graph(
        rng, n, country, interest, identity, tenure, origin_s, mean_degree, homophily
    )
    width = max(6, len(str(n - 1)))
    external_id = np.asarray([f"c{i:0{width}d}" for i in range(n)])
    return Population(
        origin=origin if origin.tzinfo is not None else origin.replace(tzinfo=UTC),
        external_id=external_id,
        country=country,
        age_band=age_band,
        interest=interest,
        signup_channel=signup,
        ltv_band=ltv,
        tenure_days=tenure,
        time_zone=time_zone,
        time_zones=tuple(time_zones),
        locale=locale,
        locales=tuple(locales),
        stage=stage,
        identity=identity,
        consent=consent,
        consent_at=consent_at,
        graph=graph,
        hidden=hidden,
    )


def _intern(table: list[str], value: str) -> int:
    if value not in table:
        table.append(value)
    return table.index(value)


def _channels(
    rng: np.random.Generator, age_band: IntArray, interest: IntArray, signup: IntArray
) -> tuple[BoolArray, BoolArray]:
    n = age_band.shape[0]
    rate = np.tile(np.asarray(IDENTITY_RATE), (n, 1))
    young = age_band <= 1
    rate[young, _BLUESKY] *= 1.6
    rate[young, _MASTODON] *= 1.3
    rate[age_band >= 4, _SMS] *= 0.8
    rate[(age_band >= 1) & (age_band <= 3), _LINKEDIN] *= 1.3
    rate[interest == INTERESTS.index("finance"), _LINKEDIN] *= 1.5
    rate[interest == INTERESTS.index("tech"), _MASTODON] *= 3.0
    rate[interest == INTERESTS.index("gaming"), _WEBHOOK] *= 2.0
    rate[signup == SIGNUP_CHANNELS.index("store"), _SMS] *= 1.25
    rate[signup == SIGNUP_CHANNELS.index("social"), _BLUESKY] *= 1.8
    rate[signup == SIGNUP_CHANNELS.index("social"), _MASTODON] *= 1.8
    identity = rng.random((n, _C)) < np.minimum(rate, 0.98)
    consent = identity & (rng.random((n, _C)) < np.asarray(CONSENT_RATE))
    return identity, consent


def _hidden_truth(
    rng: np.random.Generator,
    country: IntArray,
    age_band: IntArray,
    interest: IntArray,
    signup: IntArray,
    ltv: IntArray,
) -> HiddenTruth:
    n = country.shape[0]
    codes = {
        "country": country,
        "age_band": age_band,
        "interest": interest,
        "signup_channel": signup,
        "ltv_band": ltv,
    }
    affinity = np.tile(np.asarray(AFFINITY_BASE), (n, 1))
    for name, effects in AFFINITY_EFFECTS.items():
        affinity += np.asarray(effects)[codes[name]]
    affinity += rng.normal(0.0, AFFINITY_NOISE, size=(n, _C))

    group = _age_group(age_band)
    peak = np.empty(n)
    for g, mixture in enumerate(_PEAKS):
        members = np.flatnonzero(group == g)
        pick = _draw(rng, tuple(w for _, w in mixture), members.shape[0])
        centres = np.asarray([hour for hour, _ in mixture])
        peak[members] = (centres[pick] + rng.normal(0.0, 1.0, members.shape[0])) % 24.0
    rhythm = np.asarray(rng.uniform(0.2, 0.6, size=n), dtype=np.float64)
    fatigue = rng.lognormal(0.0, 0.4, size=n) * np.asarray([0.85, 1.0, 1.2])[group]
    emotion = np.asarray(_EMOTION_TASTE)[group] + rng.normal(0.0, 0.15, (n, len(EMOTIONS)))
    emotion[:, 0] = 0.0  # neutral is the reference
    topic = np.asarray(_TOPIC_TASTE)[ltv] + rng.normal(0.0, 0.15, (n, len(TOPICS)))
    topic[signup == SIGNUP_CHANNELS.index("social"), TOPICS.index("community")] += 0.4
    conversion = np.asarray(_CONVERSION_BASE)[ltv] + rng.normal(0.0, 0.3, size=n)
    value_mean = np.asarray(_VALUE_MEAN)[ltv] * rng.lognormal(0.0, 0.3, size=n)
    return HiddenTruth(
        affinity=affinity,
        peak_hour=peak,
        rhythm=rhythm,
        fatigue=fatigue,
        emotion_taste=emotion,
        topic_taste=topic,
        conversion=conversion,
        value_mean=value_mean,
    )


def _social_graph(
    rng: np.random.Generator,
    n: int,
    country: IntArray,
    interest: IntArray,
    identity: BoolArray,
    tenure: IntArray,
    origin_s: int,
    mean_degree: float,
    homophily: float,
) -> SocialGraph:
    edges = round(mean_degree * n / 2.0)
    # Popularity: heavy-tailed, higher for people present on social channels.
    social = identity[:, _MASTODON : _LINKEDIN + 1].any(axis=1)
    popularity = (rng.pareto(1.6, size=n) + 1.0) * np.where(social, 2.0, 1.0)
    # Draw 15% extra pairs to make up for self-loops and duplicates removed below.
    draws = int(edges * 1.15) + 8
    cumulative_all = np.cumsum(popularity)
    total = cumulative_all[-1]
    source = np.searchsorted(cumulative_all, rng.random(draws) * total, side="right")
    source = np.minimum(source, n - 1)

    group = country * len(INTERESTS) + interest
    order = np.argsort(group, kind="stable")
    cumulative = np.cumsum(popularity[order])
    sorted_group = group[order]
    group_of_source = group[source]
    first = np.searchsorted(sorted_group, group_of_source, side="left")
    last = np.searchsorted(sorted_group, group_of_source, side="right")
    low = np.where(first > 0, cumulative[np.maximum(first - 1, 0)], 0.0)
    high = cumulative[last - 1]
    inside = rng.random(draws) < homophily
    low = np.where(inside, low, 0.0)
    high = np.where(inside, high, total)
    position = np.searchsorted(cumulative, low + rng.random(draws) * (high - low), side="right")
    target = order[np.minimum(position, n - 1)]

    kind = _draw(rng, _EDGE_KIND_SHARE, draws)
    keep = source != target
    source, target, kind = source[keep], target[keep], kind[keep]
    key = (source * n + target) * len(EDGE_KINDS) + kind
    _, unique = np.unique(key, return_index=True)
    unique = np.sort(unique)[:edges]
    source, target, kind = source[unique], target[unique], kind[unique]
    weight = np.asarray(_EDGE_KIND_WEIGHT)[kind] * rng.uniform(0.5, 1.5, size=kind.shape[0])
    age_days = rng.uniform(0.0, 1.0, size=kind.shape[0]) * np.minimum(
        tenure[source], tenure[target]
    )
    at = origin_s - np.round(age_days * 86_400.0).astype(np.int64) - 60
    matrix = sparse.csr_matrix((weight, (source, target)), shape=(n, n))
    adjacency = (matrix + matrix.T).tocsr()
    return SocialGraph(
        source=source.astype(np.int64),
        target=target.astype(np.int64),
        kind=kind,
        weight=weight,
        at=at,
        adjacency=adjacency,
    )


def observable_features(
    population: Population, stage: IntArray | None = None, consent: BoolArray | None = None
) -> tuple[npt.NDArray[np.float32], tuple[str, ...]]:
    """One-hot observable attributes, stage and consented channels, with a constant column.

    A plain design matrix for learners and tests that do not bring their own featurizer; it holds
    only what a CRM would know (never :class:`HiddenTruth`).

    Parameters
    ----------
    population
        The contacts.
    stage, consent
        Current stage codes and ``(n, C)`` consent (from ``SimulationState``); default: the
        population's initial ones.

    Returns
    -------
    features, names
        ``(n, d)`` float32 matrix and the name of each column (``"age_band=18-24"``...).
    """
    stage = population.stage if stage is None else stage
    consent = population.consent if consent is None else consent
    blocks: list[npt.NDArray[np.float32]] = [np.ones((population.n, 1), dtype=np.float32)]
    names: list[str] = ["bias"]
    for name, codes in population.attribute_codes().items():
        levels = ATTRIBUTES[name]
        blocks.append(np.eye(len(levels), dtype=np.float32)[codes])
        names += [f"{name}={level}" for level in levels]
    blocks.append(np.eye(len(STAGES), dtype=np.float32)[stage])
    names += [f"stage={s.value}" for s in STAGES]
    blocks.append(consent.astype(np.float32))
    names += [f"consent={c.value}" for c in CHANNELS]
    return np.hstack(blocks), tuple(names)
