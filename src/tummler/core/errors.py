"""One exception tree for tummler.

Every error a user can cause is a ``TummlerError``; its message says what was wrong and what to do::

    TummlerError
    ├── ConfigError            settings, workspace, missing optional dependency
    │   └── MissingDependencyError
    ├── InputError             a file, a row, a field (import, CLI arguments, API payloads)
    ├── StrategyError          the strategy file or a campaign file (with file and line)
    ├── ConsentError           a send that consent does not allow
    ├── StoreError             the database (connection, migrations, constraints)
    │   └── NotFoundError      a contact, campaign or policy that is not there
    ├── PolicyError            a policy or estimator given arguments it cannot use
    └── DeliveryError          a connector failed to hand a message over
        ├── TransientDeliveryError   retry later
        └── PermanentDeliveryError   do not retry
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "ConsentError",
    "DeliveryError",
    "InputError",
    "MissingDependencyError",
    "NotFoundError",
    "PermanentDeliveryError",
    "PolicyError",
    "StoreError",
    "StrategyError",
    "TransientDeliveryError",
    "TummlerError",
]


class TummlerError(Exception):
    """Root of every error tummler raises on purpose."""


class ConfigError(TummlerError):
    """Settings or the workspace are wrong or incomplete."""


class MissingDependencyError(ConfigError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is not installed; install it with: pip install 'tummler[{extra}]'"
        )


class InputError(TummlerError):
    """Input that tummler cannot accept, located as precisely as possible.

    Parameters
    ----------
    reason
        What is wrong and, where it helps, what to do.
    file, line, field
        Where the problem is; each is optional.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class StrategyError(TummlerError):
    """The strategy or a campaign file is invalid."""

    def __init__(
        self, reason: str, *, file: str | Path | None = None, line: int | None = None
    ) -> None:
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.line = line
        location = ""
        if self.file is not None:
            location = self.file if line is None else f"{self.file}:{line}"
        super().__init__(f"{location}: {reason}" if location else reason)


class ConsentError(TummlerError):
    """A send was attempted that the person's consent does not allow."""


class StoreError(TummlerError):
    """The database could not do what was asked."""


class NotFoundError(StoreError):
    """A record that was asked for by id is not in the store."""


class PolicyError(TummlerError):
    """A policy or an estimator was given arguments it cannot use."""


class DeliveryError(TummlerError):
    """A connector could not hand a message over."""


class TransientDeliveryError(DeliveryError):
    """A failure worth retrying later (time-out, 5xx, rate limit)."""


class PermanentDeliveryError(DeliveryError):
    """A failure that will not go away by retrying (bad address, 4xx, rejected content)."""
