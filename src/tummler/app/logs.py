"""Where :mod:`tummler.app.learning` still imports the logged-bandit reader from.

The reader lives in :mod:`tummler.app.ingest.logged_bandit`, with the other file readers; this
module only re-exports it until the last import names the new home.
"""

from tummler.app.ingest.logged_bandit import (
    ROLES,
    LoggedBandit,
    experiment_to_log,
    read_logged_bandit,
)

__all__ = ["ROLES", "LoggedBandit", "experiment_to_log", "read_logged_bandit"]
