"""`tummler person`: a person's rights: see everything held about them, or forget them."""

from __future__ import annotations

import typer

person_app = typer.Typer(
    help="A person's rights: see everything held about them, or forget them.", no_args_is_help=True
)
