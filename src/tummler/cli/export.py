"""`tummler export`: export contacts, decisions and events as CSV or Parquet."""

from __future__ import annotations

import typer

export_app = typer.Typer(
    help="Export contacts, decisions and events as CSV or Parquet.", no_args_is_help=True
)
