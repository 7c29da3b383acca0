"""The curbside report's CSV cells (server/curbside/report_csv.py): a cell a spreadsheet would
run as a formula is written as text; anything else is left exactly as it is."""

from __future__ import annotations

import pytest

from server.curbside.report_csv import safe_cell


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Dr. Chen", "Dr. Chen"),
        ("Dr. =Chen", "Dr. =Chen"),  # only the first character starts a formula
        ("540", "540"),
        ("8.0", "8.0"),
        ("2026-01-05T09:00:00Z", "2026-01-05T09:00:00Z"),
        ("", ""),
    ],
)
def test_only_cells_that_start_a_formula_are_quoted(cell: str, written: str) -> None:
    assert safe_cell(cell) == written
