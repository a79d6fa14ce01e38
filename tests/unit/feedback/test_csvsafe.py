"""The one CSV cell function: text that would run as a formula is neutralised, numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from feedback import csvsafe


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        '=HYPERLINK("http://evil.test","x")',
        "+1+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "-x",
        "@SUM(1+9)",
        "\t=1+1",
        "\r=1+1",
        "\uff1d1+1",
        "\uff0b1",
        "\uff0dcmd",
        "\uff20SUM(A1)",
        "=",
        "-",
        "+1 2",
        "-1e5+1",
    ],
)
def test_text_a_spreadsheet_would_run_gets_a_leading_quote(text):
    assert csvsafe.cell(text) == "'" + text
    assert csvsafe.neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["", "plain", "a=b", " =1+1", "'=already", "1+1", "v1", "\n=1", "€5"])
def test_other_text_is_unchanged(text):
    assert csvsafe.cell(text) == text


@pytest.mark.parametrize("text", ["-3", "+3", "-0.5", "-.5", "+1.5e3", "-2E-7", "-12000", "5."])
def test_text_that_is_a_plain_number_is_kept(text):
    assert csvsafe.cell(text) == text


@pytest.mark.parametrize("value", [-3, -0.25, 0, 12000, 1e-9, -1.5e300])
def test_numbers_stay_numbers(value):
    assert csvsafe.cell(value) == value and type(csvsafe.cell(value)) is type(value)


def test_other_values():
    assert csvsafe.cell(None) == ""
    assert csvsafe.cell(True) == "true" and csvsafe.cell(False) == "false"
    assert csvsafe.cell(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05+00:00"
    assert csvsafe.cell(date(2026, 1, 2)) == "2026-01-02"
    assert csvsafe.cell(Decimal("-1.5")) == "-1.5"
    assert csvsafe.cell(["=1+1"]) == "['=1+1']"  # anything else is written as its text, neutralised
    assert csvsafe.cell(FormulaText()) == "'=2+2"


class FormulaText:
    """An object whose text is a formula."""

    def __str__(self) -> str:
        """Its text."""
        return "=2+2"


def test_the_writer_neutralises_headers_and_cells_and_keeps_each_cell_whole():
    buffer = io.StringIO()
    writer = csvsafe.Writer(buffer)
    writer.writerow(["name", "=header"])
    writer.write_records([{"name": 'x,"=1+1"\n=2+2', "=header": -4}, {"name": "@a"}], ["name", "=header"])
    rows = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert rows == [["name", "'=header"], ['x,"=1+1"\n=2+2', "-4"], ["'@a", ""]]
