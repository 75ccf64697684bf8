"""The ``tummler`` command line (Typer + Rich)."""
