"""CSV cells that a spreadsheet would run as a formula are written as text, in every CSV tummler writes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine

from test_import_validation import read_rejects
from tummler.app.csv_cells import neutralize_formula
from tummler.app.ingest import import_file

# (cell, as written): OWASP's triggers get a leading quote; plain numbers and other text do not.
CELLS = [
    ("=1+2", "'=1+2"),
    ('=HYPERLINK("https://evil.example","x")', '\'=HYPERLINK("https://evil.example","x")'),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+2", "'\t=1+2"),
    ("\r=1+2", "'\r=1+2"),
    ("-", "'-"),
    ("+33 6 12 34 56 78", "'+33 6 12 34 56 78"),
    ("-3.5", "-3.5"),
    ("+33612345678", "+33612345678"),
    ("-1e-3", "-1e-3"),
    ("-.5", "-.5"),
    ("a=b", "a=b"),
    (" =1+2", " =1+2"),
    ("", ""),
    ("Lyon", "Lyon"),
]


@pytest.mark.parametrize(("cell", "written"), CELLS)
def test_a_formula_is_neutralised_and_a_number_is_not(cell: str, written: str) -> None:
    assert neutralize_formula(cell) == written


HOSTILE = [cell for cell, written in CELLS if cell != written]


def test_the_rejects_file_neutralises_the_values_it_quotes(engine: Engine, tmp_path: Path) -> None:
    """A rejected row's raw value goes back to a person, often in a spreadsheet: as text."""
    path = tmp_path / "contacts.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "email"])
        writer.writerows([f"x{i}", cell] for i, cell in enumerate(HOSTILE))
    report = import_file(engine, "contacts", path)
    assert report.rejected == len(HOSTILE)
    values = [row["value"] for row in read_rejects(tmp_path / "contacts.rejects.csv")]
    assert values == [neutralize_formula(cell) for cell in HOSTILE]
    assert all(value.startswith("'") for value in values)
