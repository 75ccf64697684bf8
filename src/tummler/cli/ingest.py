"""`tummler import`: import contacts, identities, consent, events, edges and mentions from CSV, JSONL or Parquet."""

from __future__ import annotations

import typer

import_app = typer.Typer(
    help="Import contacts, identities, consent, events, edges and mentions from CSV, JSONL or Parquet.",
    no_args_is_help=True,
)
