"""Numbers for reading: one place decides digits, signs, units and the dash for "no number".

Pure functions of plain values, registered as Jinja filters (webapp) and used by the sentence
builders (feedback.wording). CSV and the API keep full precision; only pages read these.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "—"
MINUS = "-"  # ASCII, so a number copied from a page pastes into a spreadsheet
# Units a metric can have: how its level and a difference of two levels read.
PROPORTION, SECONDS, HOURS, COUNT, PLAIN = "proportion", "seconds", "hours", "count", ""


def _value(v: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities and what is not a number."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _decimals(f: float, digits: int, max_decimals: int) -> int:
    """Decimal places that show `digits` significant digits of f (none past the units for large f)."""
    if f == 0:
        return 0
    magnitude = math.floor(math.log10(abs(f)))
    return max(0, min(max_decimals, digits - 1 - magnitude))


def _fixed(f: float, decimals: int, sign: bool) -> str:
    """f with a fixed number of decimals, thousands separators, no negative zero, an optional +."""
    text = f"{abs(f):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return "0" if decimals == 0 else text  # -0.0001 is 0.000, with no sign
    if f < 0:
        return MINUS + text
    return ("+" if sign else "") + text


def number(v: Any, digits: int = 3, sign: bool = False, max_decimals: int = 6) -> str:
    """A number with about `digits` significant digits, never in scientific notation.

    Whole numbers above 10**digits keep all their digits (with separators): 12,345 not 12,300.
    Values too small for `max_decimals` read as 0.
    """
    f = _value(v)
    if f is None:
        return DASH
    if isinstance(v, int):
        return _fixed(f, 0, sign)  # a whole number has no digits to round: 5, not 5.00
    text = _fixed(f, _decimals(f, digits, max_decimals), sign)
    return "0" if text.strip("0.,") == "" else text


def signed(v: Any, digits: int = 3) -> str:
    """A number with its sign: +2.1, -0.45, 0."""
    return number(v, digits, sign=True)


def count(v: Any) -> str:
    """A count with thousands separators: 12,345."""
    f = _value(v)
    return DASH if f is None else _fixed(round(f), 0, False)


def percent(v: Any, decimals: int = 1, sign: bool = False) -> str:
    """A proportion (0.118) as a percentage: 11.8%. Tiny non-zero shares say so rather than 0.0%."""
    f = _value(v)
    if f is None:
        return DASH
    scaled = f * 100
    smallest = 10.0**-decimals
    if 0 < abs(scaled) < smallest:
        return ("< " if scaled > 0 else "> -") + f"{smallest:.{decimals}f}%"
    return _fixed(scaled, decimals, sign) + "%"


def points(v: Any, decimals: int = 1, unit: bool = True) -> str:
    """A difference of two proportions in percentage points, signed: +2.2 points."""
    f = _value(v)
    if f is None:
        return DASH
    text = _fixed(f * 100, decimals, True)
    return f"{text} points" if unit else text


def p_value(v: Any) -> str:
    """A p-value as people read it: < 0.001, 0.004, 0.03, 0.049, > 0.99."""
    f = _value(v)
    if f is None:
        return DASH
    if f < 0.001:
        return "< 0.001"
    if f > 0.99:
        return "> 0.99"
    if f < 0.01 or 0.045 <= f < 0.055:
        return f"{f:.3f}"  # near 0.05 a rounded 0.05 would hide which side it is on
    return f"{f:.2f}"


def p_equals(v: Any) -> str:
    """A p-value with its relation: "p = 0.03", "p < 0.001", "p > 0.99"."""
    text = p_value(v)
    return f"p {text}" if text[:1] in "<>" else f"p = {text}"


def interval(low: Any, high: Any, fmt: Any = None) -> str:
    """An interval as "2.1 to 4.0", each end formatted alike (by `fmt`, default `number`)."""
    formatter = fmt or number
    if _value(low) is None and _value(high) is None:
        return DASH
    return f"{formatter(low)} to {formatter(high)}"


UNIT_SUFFIX = {SECONDS: " s", HOURS: " h"}


def level(v: Any, unit: str = PLAIN, digits: int = 3) -> str:
    """A metric's level in its unit: 11.8% for a proportion, 72.2 s for seconds, 1,234 for a count."""
    if unit == PROPORTION:
        return percent(v)
    text = number(v, digits)
    return text + UNIT_SUFFIX.get(unit, "") if text != DASH else DASH


def change(v: Any, unit: str = PLAIN, digits: int = 3) -> str:
    """A difference of two levels in the metric's unit, signed: +2.2 points, -14.3 s, +0.5."""
    if unit == PROPORTION:
        return points(v)
    text = signed(v, digits)
    return text + UNIT_SUFFIX.get(unit, "") if text != DASH else DASH


def change_interval(low: Any, high: Any, unit: str = PLAIN, digits: int = 3) -> str:
    """An interval of differences with the unit once at the end: -3.4 to +7.7 points, -31.1 to -0.93 s."""
    if _value(low) is None and _value(high) is None:
        return DASH
    if unit == PROPORTION:
        return f"{points(low, unit=False)} to {points(high, unit=False)} points"
    suffix = UNIT_SUFFIX.get(unit, "")
    return f"{signed(low, digits)} to {signed(high, digits)}{suffix}"


def unit_name(unit: str) -> str:
    """What a difference in this unit is called in a sentence."""
    return {PROPORTION: "points", SECONDS: "seconds", HOURS: "hours"}.get(unit, "")


FILTERS = {
    "number": number,
    "signed": signed,
    "count": count,
    "percent": percent,
    "points": points,
    "p_value": p_value,
    "p_equals": p_equals,
    "interval": interval,
    "level": level,
    "change": change,
    "change_interval": change_interval,
}
