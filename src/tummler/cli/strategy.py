"""`tummler strategy`: the brand's strategy file and its campaigns: check and show."""

from __future__ import annotations

import typer

strategy_app = typer.Typer(
    help="The brand's strategy file and its campaigns: check and show.", no_args_is_help=True
)
