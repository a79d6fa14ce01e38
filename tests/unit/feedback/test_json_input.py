"""The one parser of JSON bodies: what it refuses, with which answer, and what it lets through untouched."""

from __future__ import annotations

import json
import math

import pytest

from feedback.backlog import conditions
from feedback.errors import ValidationFailed
from feedback.json_input import MAX_DEPTH, MalformedJson, dumps, finite_or_none, loads


def test_a_valid_body_comes_back_as_parsed():
    body = {"a": [1, 2.5, None, True, "x"], "b": {"c": -(2**63) + 1}}
    assert loads(json.dumps(body).encode()) == body


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"a": NaN}', "a"),
        (b'{"a": [1, {"b": -Infinity}]}', "a[1].b"),
        (b'{"a": 1e400}', "a"),
        (b"1e400", "body"),
        (b'{"a": 18446744073709551616}', "a"),
        (b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}", "a" + "[0]" * (MAX_DEPTH - 1)),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
    ],
)
def test_a_body_past_a_limit_is_refused_naming_where(raw, field):
    with pytest.raises(ValidationFailed) as refused:
        loads(raw)
    assert list(refused.value.fields) == [field]


@pytest.mark.parametrize("raw", [b"{not json", b'"\\ud800"', b"\xff\xfe", b"1" * 5000])
def test_what_is_not_json_at_all_is_a_400(raw):
    with pytest.raises(MalformedJson) as refused:
        loads(raw)
    assert refused.value.status == 400 and refused.value.fields == {"body": "is not valid JSON"}


def test_stored_json_refuses_nan_and_reads_it_back_as_null():
    with pytest.raises(ValueError):
        dumps({"a": math.nan})
    assert finite_or_none({"a": (1, math.inf), "b": [2**70, -0.5], "c": "NaN"}) == {
        "a": [1, None],
        "b": [None, -0.5],
        "c": "NaN",
    }


def test_json_answers_turn_nan_into_null():
    from webapp import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x"})
    assert json.loads(app.json.dumps({"a": math.nan, "b": (1, -math.inf)})) == {"a": None, "b": [1, None]}


def test_backlog_ranges_store_open_ends_as_null_and_read_them_as_infinite():
    dim = conditions.Dimension("feature.amount", "range", (-math.inf, 10.0, math.inf))
    low, high = dim.condition("< 10"), dim.condition("≥ 10")
    assert (low["low"], low["high"], high["low"], high["high"]) == (None, 10.0, 10.0, None)
    assert json.loads(dumps(low)) == low
    assert conditions.dimension_of(low).edges == (-math.inf, 10.0)
    assert conditions.dimension_of({**high, "high": math.inf}).edges == (10.0, math.inf)  # as older rows hold it
