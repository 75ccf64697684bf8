"""tummler: an engagement engine for brands.

For every person and every message, tummler decides which lever to pull — channel, time, variant — or
none; learns from every response; proves its effect against holdouts. What this module exports is the
public Python API; everything else may change between versions.
"""

from typing import TYPE_CHECKING, Any

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
from tummler.core.vocabulary import (
    ChannelKind,
    ConsentStatus,
    DeliveryStatus,
    EdgeKind,
    EventType,
    Stage,
)

if TYPE_CHECKING:
    from tummler.core.settings import Settings, load_settings

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


def __getattr__(name: str) -> Any:
    """``Settings`` and ``load_settings``, imported on first use.

    pydantic-settings takes about a tenth of a second to import; every ``tummler`` command, ``--help``
    included, imports this package, and most need no settings before they parse their arguments.
    """
    if name in {"Settings", "load_settings"}:
        from tummler.core import settings

        value = getattr(settings, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tummler' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
