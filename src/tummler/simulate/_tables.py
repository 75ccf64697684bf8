"""The fixed, documented tables a synthetic population is drawn from.

The observable levels a CRM would hold (countries, age bands, interests...), the columns of each
import file, the shares each attribute is drawn with, and the hidden truth's tables: channel
affinities and their effects, identity and consent rates, peak hours, tastes for emotions and topics,
conversion and value, and the kinds of social edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.core.vocabulary import ChannelKind, EdgeKind, Stage

__all__ = [
    "AGE_BANDS",
    "ATTRIBUTES",
    "CHANNELS",
    "CONTACT_REF",
    "COUNTRIES",
    "EDGE_KINDS",
    "EMOTIONS",
    "IMPORT_COLUMNS",
    "INTERESTS",
    "LTV_BANDS",
    "SIGNUP_CHANNELS",
    "STAGES",
    "TOPICS",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Channel index ``c`` in every ``(..., C)`` array is ``CHANNELS[c]``.
CHANNELS: tuple[ChannelKind, ...] = tuple(ChannelKind)
#: Stage code ``s`` in every stage array is ``STAGES[s]``.
STAGES: tuple[Stage, ...] = tuple(Stage)
EDGE_KINDS: tuple[EdgeKind, ...] = tuple(EdgeKind)

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
INTERESTS = ("tech", "fashion", "outdoors", "food", "finance", "gaming")
SIGNUP_CHANNELS = ("web", "store", "social", "referral", "event")
LTV_BANDS = ("low", "mid", "high")
#: Message attributes: an emotion (of a variant), a topic (of a message).
EMOTIONS = ("neutral", "joy", "trust", "surprise", "fear")
TOPICS = ("product", "promotion", "community", "support", "news")

_C = len(CHANNELS)
_EMAIL, _SMS, _MASTODON, _BLUESKY, _LINKEDIN, _WEBHOOK = range(_C)


@dataclass(frozen=True)
class _Country:
    code: str
    weight: float
    zones: tuple[tuple[str, float], ...]
    locales: tuple[tuple[str, float], ...]
    phone_prefixes: tuple[str, ...]
    #: Digits after the prefix, filled from the contact index so that numbers are unique.
    phone_digits: int


COUNTRIES: tuple[_Country, ...] = (
    _Country(
        "US",
        0.34,
        (
            ("America/New_York", 0.45),
            ("America/Chicago", 0.29),
            ("America/Denver", 0.07),
            ("America/Phoenix", 0.02),
            ("America/Los_Angeles", 0.17),
        ),
        (("en-US", 0.88), ("es-US", 0.12)),
        ("+12012", "+12122", "+13122", "+14152", "+16172", "+16462", "+17202", "+18182"),
        6,
    ),
    _Country("GB", 0.10, (("Europe/London", 1.0),), (("en-GB", 1.0),), ("+4474",), 8),
    _Country("DE", 0.09, (("Europe/Berlin", 1.0),), (("de-DE", 1.0),), ("+49151",), 8),
    _Country("FR", 0.07, (("Europe/Paris", 1.0),), (("fr-FR", 1.0),), ("+336",), 8),
    _Country("ES", 0.05, (("Europe/Madrid", 1.0),), (("es-ES", 1.0),), ("+346",), 8),
    _Country(
        "NL",
        0.03,
        (("Europe/Amsterdam", 1.0),),
        (("nl-NL", 0.9), ("en-NL", 0.1)),
        ("+3161", "+3162"),
        7,
    ),
    _Country(
        "CA",
        0.06,
        (("America/Toronto", 0.55), ("America/Vancouver", 0.25), ("America/Edmonton", 0.2)),
        (("en-CA", 0.78), ("fr-CA", 0.22)),
        ("+14162", "+16042", "+15142", "+14032"),
        6,
    ),
    _Country("BR", 0.07, (("America/Sao_Paulo", 1.0),), (("pt-BR", 1.0),), ("+55119",), 8),
    _Country("MX", 0.05, (("America/Mexico_City", 1.0),), (("es-MX", 1.0),), ("+5255",), 8),
    _Country("IN", 0.06, (("Asia/Kolkata", 1.0),), (("en-IN", 0.7), ("hi-IN", 0.3)), ("+9198",), 8),
    _Country("JP", 0.04, (("Asia/Tokyo", 1.0),), (("ja-JP", 1.0),), ("+81902", "+81903"), 7),
    _Country(
        "AU",
        0.04,
        (("Australia/Sydney", 0.6), ("Australia/Brisbane", 0.25), ("Australia/Perth", 0.15)),
        (("en-AU", 1.0),),
        ("+614",),
        8,
    ),
)
_COUNTRY_CODES = tuple(country.code for country in COUNTRIES)

#: The observable attributes and their levels, as a CRM would hold them.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "country": _COUNTRY_CODES,
    "age_band": AGE_BANDS,
    "interest": INTERESTS,
    "signup_channel": SIGNUP_CHANNELS,
    "ltv_band": LTV_BANDS,
}

#: The column that names a contact (by external id) in the identity, consent and event files.
CONTACT_REF = "contact_external_id"
#: The columns of each import file (``tummler import KIND FILE``) that the ``rows`` methods fill.
IMPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": ("external_id", "time_zone", "locale", "stage", *ATTRIBUTES, "tenure_days"),
    "identities": (CONTACT_REF, "channel", "address"),
    "consent": (CONTACT_REF, "channel", "status", "source", "at"),
    "edges": ("source_external_id", "target_external_id", "kind", "weight", "at"),
    "events": (CONTACT_REF, "type", "channel", "value", "at", "source", "provider_event_id"),
    "mentions": ("channel", "external_id", "author_handle", "text", "at"),
}

_AGE_WEIGHTS = (0.13, 0.24, 0.22, 0.18, 0.14, 0.09)
_INTEREST_WEIGHTS = (0.2, 0.17, 0.17, 0.18, 0.14, 0.14)
_SIGNUP_WEIGHTS = (0.45, 0.2, 0.15, 0.12, 0.08)
_LTV_WEIGHTS = (0.5, 0.35, 0.15)
_STAGE_WEIGHTS = (0.28, 0.36, 0.25, 0.05, 0.06)  # prospect, subscriber, customer, advocate, lapsed

# The hidden truth's tables. Columns: email, sms, mastodon, bluesky, linkedin, webhook.
#: Base log-odds of a click per channel, before any person or message effect.
AFFINITY_BASE = (-3.3, -3.0, -3.2, -3.3, -3.6, -2.9)
#: Log-odds added to each channel's affinity by each level of each attribute (the learnable part).
AFFINITY_EFFECTS: dict[str, tuple[tuple[float, ...], ...]] = {
    "age_band": (
        (-0.7, 0.5, 0.4, 0.9, -0.6, 0.3),
        (-0.2, 0.3, 0.3, 0.5, 0.3, 0.2),
        (0.1, 0.1, 0.0, 0.0, 0.5, 0.0),
        (0.3, 0.0, -0.2, -0.3, 0.3, -0.1),
        (0.5, -0.2, -0.5, -0.7, -0.1, -0.3),
        (0.7, -0.4, -0.7, -1.0, -0.7, -0.5),
    ),
    "interest": (
        (0.0, -0.1, 1.0, 0.5, 0.2, 0.4),
        (0.2, 0.3, -0.4, 0.3, -0.3, 0.0),
        (0.1, 0.3, 0.0, 0.0, -0.2, -0.1),
        (0.2, 0.2, -0.2, 0.1, -0.4, 0.0),
        (0.2, -0.2, -0.1, -0.2, 0.9, 0.0),
        (-0.3, 0.0, 0.5, 0.4, -0.6, 0.5),
    ),
    "signup_channel": (
        (0.2, 0.0, 0.0, 0.0, 0.0, 0.1),
        (0.0, 0.5, -0.3, -0.3, -0.2, -0.2),
        (-0.3, 0.0, 0.5, 0.6, 0.2, 0.0),
        (0.1, 0.2, 0.1, 0.1, 0.1, 0.0),
        (0.0, 0.2, 0.0, 0.0, 0.4, 0.0),
    ),
    "ltv_band": (
        (-0.2, -0.1, 0.0, 0.0, -0.1, 0.0),
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0.3, 0.2, 0.0, 0.0, 0.3, 0.1),
    ),
    "country": (
        (0.0, 0.2, -0.1, 0.1, 0.0, 0.0),  # US
        (0.1, -0.1, 0.1, 0.1, 0.1, 0.0),  # GB
        (0.2, -0.4, 0.4, 0.0, -0.2, 0.0),  # DE
        (0.1, -0.1, 0.3, 0.0, -0.1, 0.0),  # FR
        (0.0, 0.1, 0.0, 0.0, -0.1, 0.0),  # ES
        (0.1, -0.2, 0.2, 0.1, 0.1, 0.0),  # NL
        (0.0, 0.1, 0.0, 0.1, 0.1, 0.0),  # CA
        (-0.2, 0.4, -0.2, 0.3, -0.2, 0.2),  # BR
        (-0.1, 0.3, -0.2, 0.0, -0.2, 0.1),  # MX
        (-0.1, 0.3, -0.3, -0.2, 0.4, 0.1),  # IN
        (0.2, -0.3, 0.3, 0.0, -0.6, 0.0),  # JP
        (0.1, 0.0, 0.1, 0.1, 0.0, 0.0),  # AU
    ),
}
#: Standard deviation of each person's own deviation from the attribute-explained affinity.
AFFINITY_NOISE = 0.25

#: Rate of having an identity on each channel, and of having consented on it given the identity.
IDENTITY_RATE = (0.93, 0.55, 0.05, 0.14, 0.35, 0.08)
CONSENT_RATE = (0.85, 0.6, 0.75, 0.75, 0.55, 0.95)

#: Peak local hour of activity by age group (young, middle, old): (hour, weight) mixtures.
_PEAKS = (
    ((8.0, 0.1), (12.5, 0.1), (20.5, 0.8)),
    ((7.5, 0.75), (12.5, 0.15), (20.0, 0.1)),
    ((9.0, 0.8), (15.0, 0.15), (19.0, 0.05)),
)
#: Taste for each emotion by age group (young, middle, old).
_EMOTION_TASTE = (
    (0.0, 0.3, -0.1, 0.3, -0.2),
    (0.0, 0.1, 0.2, 0.0, -0.3),
    (0.0, 0.0, 0.4, -0.2, -0.4),
)
#: Taste for each topic by lifetime value band.
_TOPIC_TASTE = (
    (0.0, 0.4, 0.0, -0.2, -0.2),
    (0.1, 0.1, 0.1, 0.0, 0.0),
    (0.3, -0.2, 0.2, 0.1, 0.2),
)
_CONVERSION_BASE = (-2.0, -1.6, -1.2)
_VALUE_MEAN = (25.0, 60.0, 150.0)

_EDGE_KIND_SHARE = (0.7, 0.15, 0.1, 0.05)  # follows, mentions, replied, referred
_EDGE_KIND_WEIGHT = (1.0, 0.6, 0.8, 1.5)
