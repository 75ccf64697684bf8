"""The synthetic population: seeded, realistic, homophilous and heavy-tailed, rows ready to import."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import phonenumbers
import pytest
from email_validator import validate_email

from tummler.core.errors import InputError
from tummler.core.vocabulary import ChannelKind, ConsentStatus, EdgeKind, Stage
from tummler.simulate import (
    ATTRIBUTES,
    CHANNELS,
    CONTACT_REF,
    IMPORT_COLUMNS,
    Population,
    make_population,
    observable_features,
)
from tummler.simulate._tables import COUNTRIES

ORIGIN = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def population() -> Population:
    return make_population(20_000, np.random.default_rng(11), origin=ORIGIN)


def _arrays(population: Population) -> dict[str, np.ndarray]:
    hidden = population.hidden
    graph = population.graph
    return {
        "external_id": population.external_id,
        "country": population.country,
        "age_band": population.age_band,
        "time_zone": population.time_zone,
        "stage": population.stage,
        "identity": population.identity,
        "consent": population.consent,
        "consent_at": population.consent_at,
        "affinity": hidden.affinity,
        "peak_hour": hidden.peak_hour,
        "fatigue": hidden.fatigue,
        "source": graph.source,
        "target": graph.target,
        "weight": graph.weight,
    }


def test_same_seed_same_population_other_seed_another() -> None:
    first = make_population(2_000, np.random.default_rng(5), origin=ORIGIN)
    again = make_population(2_000, np.random.default_rng(5), origin=ORIGIN)
    other = make_population(2_000, np.random.default_rng(6), origin=ORIGIN)
    for name, array in _arrays(first).items():
        np.testing.assert_array_equal(array, _arrays(again)[name], err_msg=name)
    assert first.time_zones == again.time_zones
    assert not np.array_equal(first.hidden.affinity, other.hidden.affinity)


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ({"n": 1}, "n", "at least 2"),
        ({"n": 100, "mean_degree": -1.0}, "mean_degree", "[0, n - 1]"),
        ({"n": 10, "mean_degree": 10.0}, "mean_degree", "[0, n - 1]"),
        ({"n": 100, "homophily": 1.5}, "homophily", "[0, 1]"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    arguments: dict[str, float], field: str, message: str
) -> None:
    n = int(arguments.pop("n"))
    with pytest.raises(InputError, match=field) as caught:
        make_population(n, np.random.default_rng(0), origin=ORIGIN, **arguments)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_channels_and_consent_have_realistic_rates(population: Population) -> None:
    identity = population.identity.mean(axis=0)
    email, sms, mastodon, bluesky, linkedin, webhook = identity
    assert 0.88 < email < 0.97
    assert 0.4 < sms < 0.7
    assert mastodon < bluesky < linkedin < sms < email
    assert webhook < 0.2
    # Consent needs an identity, and not everyone with one has consented.
    assert not (population.consent & ~population.identity).any()
    assert (population.consent.sum(axis=0) < population.identity.sum(axis=0)).all()
    assert (population.consent_at < ORIGIN.timestamp()).all()


def test_time_zones_and_locales_fit_the_country(population: Population) -> None:
    for zone in population.time_zones:
        ZoneInfo(zone)  # a real IANA zone
    codes = ATTRIBUTES["country"]
    for country_code, spec in enumerate(COUNTRIES):
        members = population.country == country_code
        zones = {population.time_zones[z] for z in np.unique(population.time_zone[members])}
        assert zones <= {zone for zone, _ in spec.zones}, codes[country_code]
        locales = {population.locales[z] for z in np.unique(population.locale[members])}
        assert locales <= {name for name, _ in spec.locales}
    us = np.flatnonzero(population.country == codes.index("US"))
    assert len({population.time_zone[i] for i in us}) >= 4  # a realistic mix, not one zone


def test_stages_are_all_present(population: Population) -> None:
    shares = np.bincount(population.stage, minlength=len(Stage)) / population.n
    assert (shares > 0.02).all()


def test_graph_is_simple_heavy_tailed_and_homophilous(population: Population) -> None:
    graph = population.graph
    assert (graph.source != graph.target).all()
    keys = (graph.source * population.n + graph.target) * len(EdgeKind) + graph.kind
    assert np.unique(keys).shape[0] == len(graph)
    degree = graph.degree()
    assert 7.5 < degree.mean() < 8.5
    # Heavy tail: hubs far above the mean, the top 1% hold a large share of the endpoints.
    assert degree.max() > 25 * degree.mean()
    top = np.sort(degree)[::-1][: population.n // 100]
    assert top.sum() / degree.sum() > 0.1
    same_country = (population.country[graph.source] == population.country[graph.target]).mean()
    by_chance = ((np.bincount(population.country) / population.n) ** 2).sum()
    assert same_country > 0.6 > 3 * by_chance
    assert (graph.at < ORIGIN.timestamp()).all()
    assert (graph.weight > 0).all()
    # The adjacency is symmetric and carries every edge's weight twice.
    adjacency = graph.adjacency
    assert abs(adjacency - adjacency.T).max() == 0
    assert adjacency.sum() == pytest.approx(2 * graph.weight.sum())


def test_channel_affinity_is_mostly_explained_by_observable_attributes(
    population: Population,
) -> None:
    features, names = observable_features(population)
    assert len(names) == features.shape[1]
    assert not any("affinity" in name for name in names)
    affinity = population.hidden.affinity
    coefficients, *_ = np.linalg.lstsq(features.astype(np.float64), affinity, rcond=None)
    residual = affinity - features @ coefficients
    r_squared = 1 - residual.var(axis=0) / affinity.var(axis=0)
    assert (r_squared > 0.5).all(), r_squared
    assert (r_squared < 0.99).all(), "a personal part should remain to be learned"


def test_young_prefer_social_channels_and_old_prefer_email(population: Population) -> None:
    young = population.age_band == 0
    old = population.age_band == 5
    affinity = population.hidden.affinity
    email, bluesky = CHANNELS.index(ChannelKind.EMAIL), CHANNELS.index(ChannelKind.BLUESKY)
    assert affinity[young, bluesky].mean() > affinity[old, bluesky].mean() + 1.0
    assert affinity[old, email].mean() > affinity[young, email].mean() + 1.0


def test_rows_have_the_import_columns_and_valid_addresses(population: Population) -> None:
    contacts = population.contact_rows()
    assert len(contacts) == population.n
    assert tuple(contacts[0]) == IMPORT_COLUMNS["contacts"]
    assert tuple(contacts[0])[:4] == ("external_id", "time_zone", "locale", "stage")
    assert set(ATTRIBUTES) <= set(contacts[0])
    assert len({row["external_id"] for row in contacts}) == population.n
    assert {row["stage"] for row in contacts} <= {stage.value for stage in Stage}

    identities = population.identity_rows()
    assert len(identities) == population.identity.sum()
    assert tuple(identities[0]) == IMPORT_COLUMNS["identities"]
    seen = {(row["channel"], row["address"]) for row in identities}
    assert len(seen) == len(identities), "addresses are unique per channel"
    country_of = {
        row["external_id"]: ATTRIBUTES["country"][code]
        for row, code in zip(contacts, population.country, strict=True)
    }
    phones = [row for row in identities if row["channel"] == ChannelKind.SMS.value]
    for row in phones[:3000]:
        number = phonenumbers.parse(row["address"])
        assert phonenumbers.is_valid_number(number), row["address"]
        assert phonenumbers.region_code_for_number(number) == country_of[row[CONTACT_REF]]
    emails = [row for row in identities if row["channel"] == ChannelKind.EMAIL.value]
    for row in emails[:200]:
        assert (
            validate_email(row["address"], check_deliverability=False).normalized == row["address"]
        )

    consent = population.consent_rows()
    assert len(consent) == population.consent.sum()
    assert tuple(consent[0]) == IMPORT_COLUMNS["consent"]
    assert {row["status"] for row in consent} == {ConsentStatus.GRANTED.value}
    assert all(row["at"] < ORIGIN for row in consent[:1000])

    edges = population.edge_rows()
    assert len(edges) == len(population.graph)
    assert tuple(edges[0]) == IMPORT_COLUMNS["edges"]
    assert {row["kind"] for row in edges} <= {kind.value for kind in EdgeKind}
