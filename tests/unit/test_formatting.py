"""Numbers for reading: digits, signs, units, p-values and the dash for no number."""

from __future__ import annotations

import math

import pytest

from feedback import formatting as fmt


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (-0.0, "0"),
        (-0.0000001, "0"),  # rounds to nothing: no "-0"
        (1e-9, "0"),  # tiny: never "1e-09"
        (17.1634, "17.2"),
        (-6.18649, "-6.19"),
        (0.0309, "0.0309"),
        (0.007374, "0.00737"),
        (5.6, "5.60"),
        (999.4, "999"),
        (1234.5, "1,234"),  # above three digits: whole, with separators, not 1,230
        (12_345_678.9, "12,345,679"),
        (1e21, "1,000,000,000,000,000,000,000"),  # huge: still no "e+21"
        (None, "—"),
        (float("nan"), "—"),
        (float("inf"), "—"),
        ("abc", "—"),
        (True, "—"),
    ],
)
def test_number_has_three_significant_digits_and_no_scientific_notation(value, expected):
    assert fmt.number(value) == expected


def test_signed_numbers_carry_their_sign_except_zero():
    assert fmt.signed(2.1) == "+2.10" and fmt.signed(-0.45) == "-0.450" and fmt.signed(0) == "0"
    assert fmt.signed(-0.0) == "0" and fmt.signed(None) == "—"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.118, "11.8%"),
        (0, "0.0%"),
        (1, "100.0%"),
        (0.0004, "< 0.1%"),  # not 0.0% for something that happened
        (-0.0004, "> -0.1%"),
        (-0.0, "0.0%"),
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_percent(value, expected):
    assert fmt.percent(value) == expected


def test_percent_with_sign_and_fewer_decimals():
    assert fmt.percent(-0.278, sign=True) == "-27.8%" and fmt.percent(0.011, sign=True) == "+1.1%"
    assert fmt.percent(0.8, 0) == "80%"


def test_points_are_signed_percentage_points():
    assert fmt.points(0.0219) == "+2.2 points" and fmt.points(-0.004) == "-0.4 points"
    assert fmt.points(0.0) == "0.0 points" and fmt.points(-0.0001) == "0.0 points"
    assert fmt.points(0.031, unit=False) == "+3.1" and fmt.points(None) == "—"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.79e-193, "< 0.001"),
        (0.0, "< 0.001"),
        (0.001, "0.001"),
        (0.0042, "0.004"),
        (0.0309, "0.03"),
        (0.0496, "0.050"),  # near 0.05: three decimals keep the side readable
        (0.0504, "0.050"),
        (0.0449, "0.04"),
        (0.41, "0.41"),
        (0.995, "> 0.99"),
        (1.0, "> 0.99"),
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_p_value(value, expected):
    assert fmt.p_value(value) == expected


def test_p_equals_uses_the_right_relation():
    assert fmt.p_equals(1e-67) == "p < 0.001" and fmt.p_equals(0.03) == "p = 0.03" and fmt.p_equals(1) == "p > 0.99"


def test_counts_have_thousands_separators():
    assert fmt.count(2578) == "2,578" and fmt.count(0) == "0" and fmt.count(12.0) == "12" and fmt.count(None) == "—"


def test_intervals_read_low_to_high_in_one_format():
    assert fmt.interval(2.1, 4.0) == "2.10 to 4.00"
    assert fmt.interval(0.106, 0.132, fmt.percent) == "10.6% to 13.2%"
    assert fmt.interval(None, None) == "—" and fmt.interval(None, 1.0) == "— to 1.00"


def test_levels_and_changes_carry_the_metric_unit():
    assert fmt.level(72.2222, fmt.SECONDS) == "72.2 s" and fmt.level(0.1008, fmt.PROPORTION) == "10.1%"
    assert fmt.level(5, fmt.HOURS) == "5 h" and fmt.level(None, fmt.SECONDS) == "—"
    assert fmt.change(-14.26, fmt.SECONDS) == "-14.3 s" and fmt.change(0.02196, fmt.PROPORTION) == "+2.2 points"
    assert fmt.change(-7.083) == "-7.08"  # a plain metric: no unit to add
    assert fmt.change_interval(-31.1, -0.9336, fmt.SECONDS) == "-31.1 to -0.934 s"
    assert fmt.change_interval(-0.03429, 0.07654, fmt.PROPORTION) == "-3.4 to +7.7 points"
    assert fmt.change_interval(None, None, fmt.SECONDS) == "—"


def test_no_formatter_writes_scientific_notation_or_five_significant_digits():
    import re

    for value in (2.79e-193, 1e-9, 3.6e-23, 123456.789, -0.0002277, 1.14e-67, 0.007374, 17.16349):
        for text in (fmt.number(value), fmt.signed(value), fmt.p_value(abs(value)), fmt.change(value, fmt.SECONDS)):
            assert "e-" not in text and "e+" not in text, text
            digits = re.sub(r"[^\d]", "", text.split(".")[-1]) if "." in text else ""
            assert len(digits.lstrip("0")) <= 3 or "," in text, text
