"""Rules the request schemas state, checked against the JSON Schema they publish."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from pydantic import BaseModel

from feedback.errors import NotAllowedByConfiguration, Problems, RepeatedInRequest, UnknownReference, ValidationFailed
from feedback.schemas import AnalysisIn, BacklogPatchIn, DecisionIn, ExperimentIn, OutcomeIn
from feedback.validation import parse

OUTCOME = {"outcome": "pay", "observed_at": "2026-01-01T00:00:00Z", "source": "crm"}
EXPERIMENT = {"key": "e", "name": "E", "model": "claims"}
LIVE = "2026-03-01T00:00:00Z"


def published(schema: type[BaseModel], body: dict[str, Any]) -> bool:
    """Whether the body is valid under the published JSON Schema (by the validator schemathesis uses)."""
    return jsonschema_rs.Draft202012Validator(schema.model_json_schema()).is_valid(body)


def accepted(schema: type[BaseModel], body: dict[str, Any]) -> bool:
    """Whether the server's own validation accepts the body."""
    try:
        parse(schema, body)
    except ValidationFailed:
        return False
    return True


@pytest.mark.parametrize(
    ("schema", "field", "value", "ok"),
    [
        (AnalysisIn, "draws", 495.0, True),
        (AnalysisIn, "draws", 495, True),
        (AnalysisIn, "draws", 495.5, False),
        (AnalysisIn, "draws", "495", False),
        (AnalysisIn, "draws", True, False),
        (AnalysisIn, "draws", 98.0, False),
        (AnalysisIn, "draws", 1e300, False),
        (BacklogPatchIn, "row_version", 3.0, True),
        (BacklogPatchIn, "row_version", 0, False),
        (BacklogPatchIn, "row_version", False, False),
        (OutcomeIn, "recommendation_id", 7.0, True),
        (OutcomeIn, "recommendation_id", 7.25, False),
    ],
)
def test_an_integer_is_any_number_with_no_fraction(schema, field, value, ok):
    body = {**(OUTCOME if schema is OutcomeIn else {}), field: value}
    assert accepted(schema, body) is ok
    assert published(schema, body) is ok  # the document and the server agree
    if ok:
        assert type(getattr(parse(schema, body), field)) is int


@pytest.mark.parametrize(
    ("schema", "body", "ok"),
    [
        (ExperimentIn, {**EXPERIMENT, "kind": "ab"}, True),
        (ExperimentIn, {**EXPERIMENT, "kind": "staggered"}, False),
        (ExperimentIn, {**EXPERIMENT, "kind": "staggered", "sites": []}, False),
        (ExperimentIn, {**EXPERIMENT, "kind": "staggered", "sites": [{"site": "Leeds"}]}, False),
        (ExperimentIn, {**EXPERIMENT, "kind": "staggered", "sites": [{"site": "Leeds", "go_live": LIVE}]}, True),
        (DecisionIn, {"action": "accept"}, True),
        (DecisionIn, {"action": "override"}, False),
        (DecisionIn, {"action": "override", "final_action": "deny"}, True),
        (DecisionIn, {"action": "escalate"}, False),
        (DecisionIn, {"action": "escalate", "note": "  "}, False),
        (DecisionIn, {"action": "escalate", "note": "why"}, True),
        (DecisionIn, {"action": "escalate", "reason_code": "missing_context"}, True),
        (DecisionIn, {"action": "escalate", "final_action": "deny", "note": "why"}, False),
        (OutcomeIn, {**OUTCOME, "recommendation_id": 1}, True),
        (OutcomeIn, {**OUTCOME, "model": "claims", "external_id": "X"}, True),
        (OutcomeIn, {**OUTCOME, "recommendation_id": 1, "model": "claims", "external_id": "X"}, False),
        (OutcomeIn, {**OUTCOME, "recommendation_id": 1, "external_id": "X"}, False),
    ],
)
def test_rules_between_fields_are_in_the_published_schema(schema, body, ok):
    assert published(schema, body) is ok


def test_problems_raise_the_most_basic_kind_naming_every_field():
    problems = Problems()
    assert not problems
    problems.raise_any("nothing")  # no fault: no error
    problems.repeated["a"] = "twice"
    with pytest.raises(RepeatedInRequest):
        problems.raise_any("bad")
    problems.disallowed["b"] = "not allowed"
    with pytest.raises(NotAllowedByConfiguration):
        problems.raise_any("bad")
    problems.unknown["c"] = "no such thing"
    with pytest.raises(UnknownReference) as unknown:
        problems.raise_any("bad")
    assert unknown.value.status == 404 and set(unknown.value.fields) == {"a", "b", "c"}
    problems.invalid["d"] = "wrong type"
    with pytest.raises(ValidationFailed) as invalid:
        problems.raise_any("bad")
    assert invalid.value.status == 422 and set(invalid.value.fields) == {"a", "b", "c", "d"}


def test_the_schemas_length_bound_holds_on_the_text_as_sent_not_after_stripping():
    """maxLength in the published schema is the bound on what is sent: whitespace around it counts too."""
    from pydantic import ValidationError

    from feedback.schemas import ReasonCodeIn

    fits = ReasonCodeIn.model_validate({"code": "c", "label": "  " + "x" * 198})
    assert fits.label == "x" * 198  # stripped after the check
    with pytest.raises(ValidationError, match="at most 200 characters"):
        ReasonCodeIn.model_validate({"code": "c", "label": "\x85" + "x" * 200})  # 201 as sent, 200 once stripped
