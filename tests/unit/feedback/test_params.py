"""The strict parser of query strings and forms, and its agreement with the schemas it documents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import jsonschema_rs
import pytest
from werkzeug.datastructures import MultiDict

from feedback.errors import ValidationFailed
from feedback.params import (
    FIRST_DAY,
    LAST_DAY,
    MAX_ID,
    Choice,
    Day,
    Flag,
    Id,
    Int,
    ModelKey,
    Number,
    Text,
    When,
    parse_params,
)


def test_the_date_pattern_is_exactly_the_real_days_in_range():
    day, accepted = date(1960, 1, 1), []
    while day <= date(2210, 12, 31):
        try:
            Day("d").convert(day.isoformat())
            accepted.append(day)
        except ValueError:
            pass
        day += timedelta(days=1)
    assert accepted[0] == FIRST_DAY and accepted[-1] == LAST_DAY
    assert len(accepted) == (LAST_DAY - FIRST_DAY).days + 1
    for impossible in ("2023-02-29", "2100-02-29", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-32"):
        with pytest.raises(ValueError):
            Day("d").convert(impossible)
    assert Day("d").convert("2024-02-29") == date(2024, 2, 29)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:15", datetime(2026, 3, 1, 10, 15, tzinfo=UTC)),
        ("2026-03-01T10:15:30.5Z", datetime(2026, 3, 1, 10, 15, 30, 500000, tzinfo=UTC)),
        ("2026-03-01T10:15:30+02:00", datetime(2026, 3, 1, 8, 15, 30, tzinfo=UTC)),
    ],
)
def test_timestamps_are_aware(raw, expected):
    assert When("w").convert(raw) == expected


@pytest.mark.parametrize(
    "raw", ["²", "١٢", "99999999999999999999", "2147483648", "0", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "1_0"]
)
def test_ids_are_ascii_digits_within_an_integer_column(raw):
    with pytest.raises(ValueError):
        Id("model").convert(raw)


def test_ids_and_integers_in_range():
    assert Id("model").convert(str(MAX_ID)) == MAX_ID
    assert Int("limit", 1, 1000).convert("1000") == 1000
    with pytest.raises(ValueError):
        Int("limit", 1, 1000).convert("1001")
    assert Int("delta", -5, 5).convert("-5") == -5


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "1e999", "1_000", "0x1p3", " 2", "²", "1e13"])
def test_numbers_are_finite_decimals_in_range(raw):
    with pytest.raises(ValueError):
        Number("share", -1e12, 1e12).convert(raw)
    assert Number("share", -1e12, 1e12).convert("-2.5e3") == -2500.0


def test_parse_names_every_bad_field_at_once():
    source = MultiDict([("model", "²"), ("page", "0"), ("page", "1"), ("status", "closed"), ("mine", "maybe")])
    params = (Id("model"), Int("page", 1, 10), Choice("status", ("open",)), Flag("mine"), ModelKey("key"))
    with pytest.raises(ValidationFailed) as caught:
        parse_params(source, params)
    fields = caught.value.fields
    assert set(fields) == {"model", "page", "status", "mine", "key"}
    assert fields["page"] == "must be given once" and fields["key"].startswith("is required")


def test_blank_means_absent_and_defaults_apply():
    values = parse_params(
        MultiDict([("model", ""), ("mine", "")]),
        (Id("model"), Flag("mine"), Choice("by", ("kind", "site"), default="kind"), Text("site", many=True)),
    )
    assert values == {"model": None, "mine": False, "by": "kind", "site": []}


PROBES = [
    "",
    "1",
    "0",
    "true",
    "yes",
    "True",
    "kind",
    "claims",
    "claims v1",
    "v1.2:beta-3",
    "k" * 65,
    "2026-01-31",
    "2026-02-30",
    "0001-01-01",
    "2026-01-31T10:00",
    "2026-01-31T10:00:00Z",
    "2026-01-31T24:00",
    "2026-01-31 10:00",
    "2026-01-31\n",
    "²",
    "clé",
]


@pytest.mark.parametrize(
    "param",
    [
        Day("from"),
        When("to"),
        Choice("by", ("kind", "site")),
        Choice("status", ("open",), required=True),
        Flag("mine"),
        ModelKey(),
        ModelKey(required=False),
        Text("site", 5),
    ],
    ids=lambda p: f"{p.kind}-{p.name}-{'required' if p.required else 'optional'}",
)
def test_the_documented_schema_accepts_exactly_what_the_parser_accepts(param):
    validator = jsonschema_rs.validator_for(param.schema())
    for raw in PROBES:
        try:
            parse_params(MultiDict([(param.name, raw)]), (param,))
            parsed = True
        except ValidationFailed:
            parsed = False
        assert validator.is_valid(raw) == parsed, (param.name, raw)
