"""tummler: an engagement engine for brands.

For every person and every message, tummler decides which lever to pull — channel, time, variant — or
none; learns from every response; proves its effect against holdouts. What this module exports is the
public Python API; everything else may change between versions.
"""

from tummler.core.clock import Clock, FrozenClock, SystemClock
from tummler.core.errors import (
    ConfigError,
    ConsentError,
    DeliveryError,
    InputError,
    MissingDependencyError,
    NotFoundError,
    PermanentDeliveryError,
    PolicyError,
    StoreError,
    StrategyError,
    TransientDeliveryError,
    TummlerError,
)
from tummler.core.settings import Settings, load_settings
from tummler.core.vocabulary import (
    ChannelKind,
    ConsentStatus,
    DeliveryStatus,
    EdgeKind,
    EventType,
    Stage,
)

__version__ = "0.1.0"

__all__ = [
    "ChannelKind",
    "Clock",
    "ConfigError",
    "ConsentError",
    "ConsentStatus",
    "DeliveryError",
    "DeliveryStatus",
    "EdgeKind",
    "EventType",
    "FrozenClock",
    "InputError",
    "MissingDependencyError",
    "NotFoundError",
    "PermanentDeliveryError",
    "PolicyError",
    "Settings",
    "Stage",
    "StoreError",
    "StrategyError",
    "SystemClock",
    "TransientDeliveryError",
    "TummlerError",
    "__version__",
    "load_settings",
]
