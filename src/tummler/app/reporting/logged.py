"""The report of a past experiment read from a logged-bandit file (docs/logged-bandit-format.md).

It needs no workspace: the file is read and checked by :func:`~tummler.app.ingest.read_logged_bandit`,
and the means and lifts are measured by :func:`tummler.measure.logged_experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tummler.app.ingest import read_logged_bandit
from tummler.app.reporting.plain import to_plain
from tummler.core.errors import InputError
from tummler.measure import ActionLift, ActionMean, logged_experiment

__all__ = ["LogReport", "log_report"]


@dataclass(frozen=True)
class LogReport:
    """A past experiment read from a logged-bandit file: each action's mean and lift."""

    source: str
    n_rounds: int
    control: str
    alpha: float
    actions: tuple[ActionMean, ...]
    lifts: tuple[ActionLift, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for ``--json``."""
        return {"kind": "log", **to_plain(self)}


def log_report(path: str | Path, *, control: str, alpha: float = 0.05) -> LogReport:
    """Each action's mean reward and its lift over ``control`` in a logged-bandit file.

    The means weight every round by ``1 / propensity`` and normalize within the action (Hájek), so
    that a past experiment with known but unequal assignment probabilities is measured without
    bias from who got what; for a uniform randomized experiment they are the arms' plain means.

    Parameters
    ----------
    path
        The logged-bandit file (CSV or Parquet; docs/logged-bandit-format.md).
    control
        The action the others are compared to (``"No E-Mail"``), as written in the file.
    alpha
        One minus the confidence level of every interval.

    Returns
    -------
    LogReport

    Raises
    ------
    InputError
        When the file cannot be read (see :func:`~tummler.app.ingest.read_logged_bandit`), when
        ``control`` is not one of its actions, or when ``alpha`` is outside (0, 1).
    """
    logged = read_logged_bandit(path)
    names = list(logged.action_names)
    if control not in names:
        raise InputError(
            f"--control {control!r} is not an action of the log; its actions are "
            f"{', '.join(map(repr, names))}",
            file=path,
            field="control",
        )
    found = logged_experiment(
        logged.reward, logged.propensity, logged.action, names, control=control, alpha=alpha
    )
    return LogReport(str(path), int(logged.reward.size), control, alpha, found.actions, found.lifts)
