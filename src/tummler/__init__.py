"""tummler: an engagement engine for brands.

For every person and every message, tummler decides which lever to pull — channel, time, variant — or
none; learns from every response; proves its effect against holdouts. What this module exports is the
public Python API; everything else may change between versions.

The services a script calls, in the order a brand uses them (each one's docstring has the details):

- :func:`init_workspace` makes a workspace (settings, example strategy and campaigns, a migrated
  SQLite store) and returns its :class:`Settings`; :func:`load_settings` reads an existing one's;
  :func:`open_store` opens the store the settings name, refusing one that is not migrated.
- :func:`import_file` validates a CSV, JSON Lines or Parquet file of contacts, identities, consent,
  events, edges or mentions and stores its rows in batches; rejected rows go to a rejects file.
- :func:`plan_campaign` decides, for every member of a campaign's audience, which channel, time and
  variant — or none — and stores the decisions (``dry_run=True`` stores nothing).
- The outbox sends what was planned: :func:`enqueue` turns a campaign's decisions into deliveries;
  :func:`run_outbox` hands the due ones to the connectors :func:`build_connectors` makes from the
  settings; :func:`dry_run_outbox` renders every planned message to a file instead and changes
  nothing. Both check consent and the :class:`SendRules` again at send time, and put in e-mails the
  unsubscribe links of an :class:`Unsubscribe` (signed with :func:`unsubscribe_key`).
- :func:`learn_from_store` updates each objective's policy from its attributed responses and stores
  the next version; :func:`evaluate_store` estimates candidate policies' values off-policy on the
  logged decisions.
- :func:`store_report` measures every campaign: lift against holdouts, variants, send times, ROI.

These are imported on first use, so that ``import tummler`` (and every ``tummler`` command) stays fast.
"""

import importlib
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
    from tummler.app.connectors import build_connectors
    from tummler.app.dry_run import dry_run_outbox
    from tummler.app.ingest import import_file
    from tummler.app.learning import evaluate_store, learn_from_store
    from tummler.app.outbox import SendRules, Unsubscribe, enqueue, run_outbox
    from tummler.app.planning import plan_campaign
    from tummler.app.reporting import store_report
    from tummler.app.unsubscribe import unsubscribe_key
    from tummler.app.workspace import init_workspace, open_store
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
    "SendRules",
    "Settings",
    "Stage",
    "StoreError",
    "StrategyError",
    "SystemClock",
    "TransientDeliveryError",
    "TummlerError",
    "Unsubscribe",
    "__version__",
    "build_connectors",
    "dry_run_outbox",
    "enqueue",
    "evaluate_store",
    "import_file",
    "init_workspace",
    "learn_from_store",
    "load_settings",
    "open_store",
    "plan_campaign",
    "run_outbox",
    "store_report",
    "unsubscribe_key",
]


#: Where each lazily imported name lives: its package, whose public name it is.
_LAZY = {
    "Settings": "tummler.core.settings",
    "load_settings": "tummler.core.settings",
    "init_workspace": "tummler.app.workspace",
    "open_store": "tummler.app.workspace",
    "import_file": "tummler.app.ingest",
    "plan_campaign": "tummler.app.planning",
    "enqueue": "tummler.app.outbox",
    "run_outbox": "tummler.app.outbox",
    "SendRules": "tummler.app.outbox",
    "Unsubscribe": "tummler.app.outbox",
    "dry_run_outbox": "tummler.app.dry_run",
    "build_connectors": "tummler.app.connectors",
    "unsubscribe_key": "tummler.app.unsubscribe",
    "learn_from_store": "tummler.app.learning",
    "evaluate_store": "tummler.app.learning",
    "store_report": "tummler.app.reporting",
}


def __getattr__(name: str) -> Any:
    """The services and settings, imported on first use.

    pydantic-settings alone takes about a tenth of a second to import, and the services pull in
    SQLAlchemy, NumPy and SciPy; every ``tummler`` command, ``--help`` included, imports this
    package, and most need none of them before they parse their arguments.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tummler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
