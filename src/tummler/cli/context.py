"""What every command shares: the console, the settings, the store.

This module is imported by every command module, so it stays cheap: the settings (pydantic) and the
store (SQLAlchemy) are imported when a command first asks for them, not when the CLI starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tummler.core.settings import Settings

__all__ = ["CLIState", "console", "error_console", "state"]

console = Console()
error_console = Console(stderr=True)


@dataclass
class CLIState:
    """Options given before the command; settings and store are opened on first use."""

    workspace: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from tummler.core.settings import load_settings

            self._settings = load_settings(self.workspace)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from tummler.app.workspace import open_store

            self._engine = open_store(self.settings)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def state(ctx: typer.Context) -> CLIState:
    """The ``CLIState`` of the running command."""
    root = ctx.find_root()
    if not isinstance(root.obj, CLIState):
        root.obj = CLIState()
    return root.obj
