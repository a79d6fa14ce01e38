"""Hostile JSON bodies on every API route that takes one: each gets a 4xx naming the field, and nothing changes.

The classes: non-finite numbers at any depth, numbers past what is stored, nesting, key counts,
key lengths and bytes past the documented limits (docs/api.md), and lax types, each a 422. A body the
schema allows but the stored data rules out is a 404 (it names nothing stored) or a 409 (a value the
stored configuration or the rest of the request does not allow).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from feedback.catalog import services as catalog
from feedback.impact import panels as impact_panels
from feedback.json_input import FEATURES_MAX_BYTES, MAX_DEPTH, MAX_KEY_LENGTH, MAX_KEYS, SEGMENT_MAX_KEYS
from feedback.models import DecisionException
from feedback.schemas import (
    AnalysisIn,
    BacklogPatchIn,
    ChallengerIn,
    DecisionIn,
    ExceptionResolveIn,
    ExperimentIn,
    ModelIn,
    ModelVersionIn,
    OutcomeIn,
    RecommendationIn,
)
from tests.factories import TEST_ACTOR, backlog_item, login, make_case, make_model, make_user, payload, token_for
from tests.helpers import GOOD
from tests.web.hostile.conftest import named_fields

RAW = "__raw_json__"  # replaced by raw JSON text: the tokens json.dumps would not write (or writes too slowly)


@pytest.fixture(scope="module")
def app(module_app: Flask) -> Flask:
    """One app for the whole module (tests/web/hostile/conftest.py)."""
    return module_app


@pytest.fixture(scope="module")
def world(app: Flask) -> dict[str, Any]:
    """An admin's token, an open case, an exception, a panel and a backlog item to aim at."""
    from webapp.extensions import db

    with app.app_context():
        session = db.sessionmaker()
    make_model(session)
    for shadow in ("v2", "v3"):  # challengers of v1
        catalog.add_model_version(
            session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version=shadow, stage="shadow")
        )
    admin = make_user(session, "admin")
    case = make_case(session, 1)
    failed = make_case(session, 2, error="model timed out", recommended_action=None, confidence=None)
    exception_id = session.query(DecisionException.id).filter_by(recommendation_id=failed.id).scalar()
    panel = impact_panels.upload_panel(session, admin, name="p", raw=GOOD)
    item = backlog_item(case.model_id, case.model_version_id, "Leeds")
    session.add(item)
    session.commit()
    ids = {"case": case.id, "exception": exception_id, "panel": panel.id, "item": item.id}
    world = {"auth": token_for(app, session, admin), "ids": ids, "admin": admin, "admin_email": admin.email}
    session.close()
    # The token's first use may record itself; that write belongs to no case.
    assert app.test_client().get("/api/v1/models", headers=world["auth"]).status_code == 200
    return world


def challenger(ids: dict[str, int]) -> dict[str, Any]:
    """A valid challenger (shadow v2) for the open case."""
    return {"model_version": "v2", "recommended_action": "deny", "confidence": 0.6, "explanation": {"summary": "s"}}


def outcome(ids: dict[str, int]) -> dict[str, Any]:
    """A valid outcome for the open case."""
    return {"recommendation_id": ids["case"], "outcome": "pay", "observed_at": "2026-01-01T00:00:00Z", "source": "crm"}


# name: (method, path, schema, valid body, the field the generic cases aim at, batch?)
ROUTES: dict[str, tuple[str, str, type, Callable[[dict[str, int]], Any], str, bool]] = {
    "ingest": ("POST", "/api/v1/recommendations", RecommendationIn, lambda ids: payload(900), "confidence", False),
    "ingest_batch": (
        "POST",
        "/api/v1/recommendations",
        RecommendationIn,
        lambda ids: [payload(901), payload(902)],
        "confidence",
        True,
    ),
    "decide": (
        "POST",
        "/api/v1/recommendations/{case}/decision",
        DecisionIn,
        lambda ids: {"action": "accept"},
        "note",
        False,
    ),
    "challengers": (
        "POST",
        "/api/v1/recommendations/{case}/challengers",
        ChallengerIn,
        challenger,
        "confidence",
        False,
    ),
    "challengers_batch": (
        "POST",
        "/api/v1/recommendations/{case}/challengers",
        ChallengerIn,
        lambda ids: [challenger(ids), {**challenger(ids), "model_version": "v3"}],
        "confidence",
        True,
    ),
    "ingest_with_challengers": (
        "POST",
        "/api/v1/recommendations",
        RecommendationIn,
        lambda ids: payload(903, challengers=[challenger(ids)]),
        "challengers",
        False,
    ),
    "outcomes": ("POST", "/api/v1/outcomes", OutcomeIn, outcome, "outcome", False),
    "outcomes_batch": (
        "POST",
        "/api/v1/outcomes",
        OutcomeIn,
        lambda ids: [outcome(ids), outcome(ids)],
        "outcome",
        True,
    ),
    "models": (
        "POST",
        "/api/v1/models",
        ModelIn,
        lambda ids: {"key": "m2", "name": "M2", "actions": ["a", "b"], "reason_codes": [{"code": "x", "label": "X"}]},
        "name",
        False,
    ),
    "versions": (
        "POST",
        "/api/v1/models/claims/versions",
        ModelVersionIn,
        lambda ids: {"version": "v9"},
        "notes",
        False,
    ),
    "experiments": (
        "POST",
        "/api/v1/experiments",
        ExperimentIn,
        lambda ids: {"key": "exp", "name": "E", "model": "claims", "kind": "ab"},
        "ai_weight",
        False,
    ),
    "panel_analyses": (
        "POST",
        "/api/v1/panels/{panel}/analyses",
        AnalysisIn,
        lambda ids: {"control": "never", "draws": 99},
        "draws",
        False,
    ),
    "backlog_patch": (
        "PATCH",
        "/api/v1/backlog/{item}",
        BacklogPatchIn,
        lambda ids: {"status": "triaged"},
        "row_version",
        False,
    ),
    "resolve": (
        "POST",
        "/api/v1/exceptions/{exception}/resolve",
        ExceptionResolveIn,
        lambda ids: {"final_action": "pay"},
        "note",
        False,
    ),
}


def nested(depth: int) -> Any:
    """A list nested `depth` levels deep."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# name: (value put in the route's field, or RAW text for it; the field named, relative to that field)
GENERIC: dict[str, tuple[Any, str]] = {
    "nan": (float("nan"), ""),
    "infinity": (float("inf"), ""),
    "minus_infinity": (float("-inf"), ""),
    "overflowing_number": (RAW + "1e400", ""),
    "integer_past_64_bits": (2**64, ""),
    "nan_deep_in_an_object": ({"a": {"b": [1, 2, float("nan")]}}, ".a.b[2]"),
    "nested_past_the_limit": (nested(MAX_DEPTH + 5), "[0]"),
    "nested_past_the_parser": (RAW + "[" * 300 + "]" * 300, "[0]"),
    "too_many_keys": ({f"k{i}": i for i in range(MAX_KEYS + 1)}, ""),
    "key_too_long": ({"k" * 100_000: 1}, ""),
}


def cases() -> Iterator[Any]:
    """Every generic case on every route, then the cases particular to one field."""
    for route, (_, _, _, _, field, batch) in ROUTES.items():
        for name, (value, suffix) in GENERIC.items():
            yield pytest.param(route, {field: value}, field + suffix, id=f"{route}-{field}-{name}")
        yield pytest.param(route, RAW + "[" * 5000 + "]" * 5000, "body", id=f"{route}-body-nested-5000")
        # The object holding the key is named (the key itself is never echoed).
        yield pytest.param(route, {"x" * 100_000: 1}, "[1]" if batch else "body", id=f"{route}-key-100000-chars")
    features_keys = {f"f{i}": i for i in range(20_000)}
    segment_keys = {f"s{i}": "x" for i in range(100_000)}
    particular = [
        ("ingest", {"features": {"a": float("nan")}}, "features.a", "features-nan"),
        ("ingest", {"features": {"a": [{"b": float("-inf")}]}}, "features.a[0].b", "features-minus-infinity-deep"),
        ("ingest_batch", {"features": {"a": float("inf")}}, "[1].features.a", "features-infinity-in-item-1"),
        ("ingest", {"features": features_keys}, "features", "features-20000-keys"),
        ("ingest", {"features": {"blob": "x" * 15_000_000}}, "features", "features-15-mb"),
        ("ingest", {"features": {"blob": "x" * FEATURES_MAX_BYTES}}, "features", "features-past-64-kib"),
        ("ingest", {"features": {"k" * (MAX_KEY_LENGTH + 1): 1}}, "features", "features-key-too-long"),
        ("ingest", {"features": {"a": nested(MAX_DEPTH)}}, "features.a", "features-nested-too-deep"),
        ("ingest", {"segment": segment_keys}, "segment", "segment-100000-keys"),
        ("ingest", {"segment": {f"s{i}": "x" for i in range(SEGMENT_MAX_KEYS + 1)}}, "segment", "segment-33-keys"),
        ("ingest", {"segment": {"s" * 100_000: "x"}}, "segment", "segment-key-100000-chars"),
        ("ingest", {"segment": {"claim-band": "x"}}, "segment", "segment-key-not-a-breakdown-name"),
        ("ingest", {"segment": {"band": "x" * 201}}, "segment.band", "segment-value-too-long"),
        ("ingest", {"segment": {"band": {"nested": 1}}}, "segment.band", "segment-value-an-object"),
        ("ingest", {"segment": {"band": float("nan")}}, "segment.band", "segment-value-nan"),
        ("ingest", {"confidence": True}, "confidence", "confidence-true"),
        ("ingest", {"confidence": "0.5"}, "confidence", "confidence-text"),
        ("ingest_batch", {"confidence": False}, "[1].confidence", "confidence-false-in-item-1"),
        ("ingest", {"flags": [1]}, "flags", "flags-number"),
        ("ingest", {"subject": 42}, "subject", "subject-number"),
        (
            "ingest",
            {"explanation": {"summary": "s", "factors": [{"name": "a", "contribution": float("nan")}]}},
            "explanation.factors[0].contribution",
            "explanation-contribution-nan",
        ),
        (
            "ingest",
            {"explanation": {"summary": "s", "factors": [{"name": "a", "value": RAW + "-1e999", "contribution": 0}]}},
            "explanation.factors[0].value",
            "explanation-value-overflow",
        ),
        (
            "ingest",
            {"explanation": {"summary": "s", "factors": [{"name": "a", "value": "v" * 2001, "contribution": 0}]}},
            "explanation.factors[0].value",
            "explanation-value-too-long",
        ),
        ("ingest", {"explanation": {"summary": 1, "factors": []}}, "explanation.summary", "explanation-summary-number"),
        ("challengers", {"confidence": True}, "confidence", "confidence-true"),
        ("challengers", {"confidence": 1.01}, "confidence", "confidence-above-one"),
        ("challengers", {"recommended_action": 7}, "recommended_action", "action-number"),
        (
            "challengers",
            {"explanation": {"summary": "s", "factors": [{"name": "a", "contribution": float("nan")}]}},
            "explanation.factors[0].contribution",
            "explanation-contribution-nan",
        ),
        ("challengers_batch", {"explanation": {"summary": 1}}, "[1].explanation.summary", "summary-number-in-item-1"),
        (
            "ingest_with_challengers",
            {"challengers": [{**challenger({}), "confidence": float("inf")}]},
            "challengers[0].confidence",
            "challenger-confidence-infinity",
        ),
        (
            "ingest_with_challengers",
            {"challengers": [{**challenger({}), "explanation": {"summary": "s", "factors": [{"name": 1}]}}]},
            "challengers[0].explanation.factors[0].name",
            "challenger-factor-name-number",
        ),
        ("outcomes", {"outcome": True}, "outcome", "outcome-true"),
        ("outcomes", {"recommendation_id": "1"}, "recommendation_id", "recommendation-id-text"),
        ("outcomes", {"recommendation_id": 1.5}, "recommendation_id", "recommendation-id-fraction"),
        ("outcomes_batch", {"outcome": float("nan")}, "[1].outcome", "outcome-nan-in-item-1"),
        ("decide", {"action": 1}, "action", "action-number"),
        ("decide", {"note": True}, "note", "note-true"),
        ("models", {"actions": ["a", "a"]}, "actions", "actions-repeated"),
        ("models", {"actions": [True, False]}, "actions", "actions-booleans"),
        ("decide", {"action": "override"}, "final_action", "override-without-final-action"),
        ("decide", {"action": "escalate"}, "note", "escalation-without-a-reason"),
        ("decide", {"action": "escalate", "final_action": "deny", "note": "why"}, "final_action", "escalation-final"),
        ("experiments", {"kind": "staggered"}, "sites", "staggered-without-sites"),
        ("experiments", {"kind": "staggered", "sites": [{"site": "Leeds"}]}, "sites", "staggered-without-go-live"),
        ("versions", {"stage": 1}, "stage", "stage-number"),
        ("experiments", {"ai_weight": "0.5"}, "ai_weight", "ai-weight-text"),
        ("experiments", {"ai_weight": True}, "ai_weight", "ai-weight-true"),
        (
            "experiments",
            {"kind": "staggered", "sites": [{"site": "Leeds", "go_live": float("nan")}]},
            "sites[0].go_live",
            "site-go-live-nan",
        ),
        ("panel_analyses", {"draws": "999"}, "draws", "draws-text"),
        ("panel_analyses", {"draws": 999.5}, "draws", "draws-fraction"),
        ("panel_analyses", {"draws": True}, "draws", "draws-true"),
        ("panel_analyses", {"draws": 10**30}, "draws", "draws-past-64-bits"),
        ("backlog_patch", {"row_version": "1"}, "row_version", "row-version-text"),
        ("backlog_patch", {"row_version": True}, "row_version", "row-version-true"),
        ("backlog_patch", {"notes": 5}, "notes", "notes-number"),
        ("resolve", {"final_action": 1}, "final_action", "final-action-number"),
        ("resolve", {"note": float("inf")}, "note", "note-infinity"),
    ]
    for route, change, field, name in particular:
        yield pytest.param(route, change, field, id=f"{route}-{name}")


def encode(value: Any) -> str:
    """JSON text, with RAW-marked strings written as the raw JSON after the marker."""
    text = json.dumps(value)  # writes NaN and Infinity, as a careless client would
    while RAW in text:
        start = text.index('"' + RAW)
        end = text.index('"', start + 1)
        text = text[:start] + text[start + 1 + len(RAW) : end] + text[end + 1 :]
    return text


def body_for(route: str, change: Any, ids: dict[str, int]) -> str:
    """The route's valid body with the hostile change applied (to item [1] of a batch)."""
    _, _, _, valid, _, batch = ROUTES[route]
    if isinstance(change, str):
        return change.removeprefix(RAW)
    body = valid(ids)
    (body[1] if batch else body).update(change)
    return encode(body)


@pytest.mark.parametrize("route", ROUTES)
def test_each_valid_body_passes_its_schema(route, world):
    _, _, schema, valid, _, batch = ROUTES[route]
    body = valid(world["ids"])
    for item in body if batch else [body]:
        schema.model_validate(json.loads(json.dumps(item)))


@pytest.mark.parametrize(("route", "change", "field"), list(cases()))
def test_hostile_body_is_refused_naming_the_field(route, change, field, client, world, fingerprint):
    method, path, _, _, _, batch = ROUTES[route]
    if batch and field != "body" and not field.startswith("[1]"):  # the change went into item [1]
        field = "[1]." + field
    before = fingerprint()
    response = client.open(
        path.format(**world["ids"]),
        method=method,
        data=body_for(route, change, world["ids"]),
        content_type="application/json",
        headers=world["auth"],
    )
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert field in named_fields(response)
    assert len(response.get_data()) < 20_000  # the answer never echoes the hostile input
    assert fingerprint() == before


LATER = "2026-02-01T00:00:00Z"

# (route, change, field named, status, error code): schema-valid bodies that stored data rules out.
STORED_RULES = [
    ("ingest", {"model": "nope"}, "model", 404, "unknown_reference"),
    ("ingest", {"model_version": "v9"}, "model_version", 404, "unknown_reference"),
    ("ingest", {"recommended_action": "refund"}, "recommended_action", 409, "not_allowed"),
    ("ingest_batch", {"external_id": "EXT-901"}, "[1].external_id", 409, "repeated_in_request"),
    ("challengers", {"model_version": "v9"}, "model_version", 404, "unknown_reference"),
    ("challengers", {"model_version": "v1"}, "model_version", 409, "not_allowed"),
    ("challengers", {"recommended_action": "refund"}, "recommended_action", 409, "not_allowed"),
    ("challengers_batch", {"confidence": 0.1, "model_version": "v2"}, "[1].model_version", 409, "repeated_in_request"),
    (
        "ingest_with_challengers",
        {"challengers": [challenger({}), {**challenger({}), "model_version": "v1"}]},
        "challengers[1].model_version",
        409,
        "not_allowed",
    ),
    ("outcomes", {"recommendation_id": 999_999}, "recommendation_id", 404, "unknown_reference"),
    ("outcomes", {"recommendation_id": None, "model": "claims", "external_id": "NOPE"}, "external_id", 404, None),
    ("outcomes", {"outcome": "refund"}, "outcome", 409, "not_allowed"),
    ("outcomes_batch", {"observed_at": LATER}, "[1].source", 409, "repeated_in_request"),
    ("decide", {"action": "override", "final_action": "deny", "reason_code": "nope"}, "reason_code", 409, None),
    (
        "decide",
        {"action": "override", "final_action": "refund", "reason_code": "missing_context"},
        "final_action",
        409,
        None,
    ),
    (
        "decide",
        {"action": "override", "final_action": "pay", "reason_code": "missing_context"},
        "final_action",
        409,
        None,
    ),
    ("decide", {"action": "override", "final_action": "deny"}, "reason_code", 409, "not_allowed"),
    ("decide", {"action": "accept", "final_action": "deny"}, "final_action", 409, "not_allowed"),
    (
        "models",
        {"reason_codes": [{"code": "x", "label": "X"}, {"code": "x", "label": "Y"}]},
        "reason_codes",
        409,
        "repeated_in_request",
    ),
    ("experiments", {"model": "nope"}, "model", 404, "unknown_reference"),
    (
        "experiments",
        {"kind": "staggered", "sites": [{"site": "Leeds", "go_live": LATER}, {"site": "Leeds"}]},
        "sites[1].site",
        409,
        "repeated_in_request",
    ),
    ("panel_analyses", {"covariates": ["nope"]}, "covariates", 409, "not_allowed"),
    ("backlog_patch", {"owner": "nobody@example.test"}, "owner", 409, "not_allowed"),
    ("resolve", {"final_action": "refund"}, "final_action", 409, "not_allowed"),
]


@pytest.mark.parametrize(
    ("route", "change", "field", "status", "code"),
    [pytest.param(*case, id=f"{case[0]}-{case[2]}-{case[3]}") for case in STORED_RULES],
)
def test_a_body_that_stored_data_rules_out_is_a_404_or_409_naming_the_field(
    route, change, field, status, code, client, world, fingerprint
):
    method, path, schema, valid, _, batch = ROUTES[route]
    body = json.loads(body_for(route, change, world["ids"]))
    for item in body if batch else [body]:
        schema.model_validate(item)  # the schema allows it: only the stored data can refuse it
    before = fingerprint()
    response = client.open(path.format(**world["ids"]), method=method, json=body, headers=world["auth"])
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert field in response.json["error"]["fields"]
    assert code is None or response.json["error"]["code"] == code
    assert fingerprint() == before


@pytest.mark.parametrize(
    ("owners", "status", "code"),
    [(["nobody@example.test"], 409, "not_allowed"), (["ADMIN"], 409, "not_allowed")],
)
def test_owners_who_are_no_user_or_no_model_owner_are_refused(owners, status, code, client, world, fingerprint):
    owners = [world["admin_email"] if o == "ADMIN" else o for o in owners]
    before = fingerprint()
    response = client.put("/api/v1/models/claims/owners", json={"owners": owners}, headers=world["auth"])
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.json["error"]["code"] == code and "owners" in response.json["error"]["fields"]
    assert fingerprint() == before


PANEL = "unit,period,value,treated{extra}\na,1,10,0{cells}\na,2,11,1{cells}\nb,1,9,0{cells}\nb,2,9.5,0{cells}\n"


def panel_csv(names: list[str]) -> bytes:
    """A good panel with these covariate columns (each 1)."""
    extra = "".join(f",{name}" for name in names)
    return PANEL.format(extra=extra, cells=",1" * len(names)).encode()


@pytest.mark.parametrize(
    ("csv", "field"),
    [
        pytest.param(panel_csv([f"c{i}" for i in range(51)]), "columns", id="51-covariates"),
        pytest.param(panel_csv(["c" * 100_000]), "columns", id="covariate-name-100000-chars"),
        pytest.param(panel_csv(["two words"]), "columns", id="covariate-name-not-a-key"),
        pytest.param(PANEL.format(extra=",size", cells=",nan").encode(), "size", id="covariate-nan"),
        pytest.param(PANEL.format(extra=",size", cells=",inf").encode(), "size", id="covariate-infinity"),
        pytest.param(PANEL.format(extra=",size", cells=",1e400").encode(), "size", id="covariate-overflow"),
    ],
)
def test_a_panel_upload_that_would_store_bad_json_is_refused(csv, field, client, world, fingerprint):
    login(client, world["admin"])  # signing in writes an audit event, so it comes first
    before = fingerprint()
    response = client.post(
        "/impact/panels/upload",
        data={"name": "hostile", "file": (io.BytesIO(csv), "panel.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert field in named_fields(response)
    assert len(response.get_data()) < 200_000  # the page never echoes the whole hostile header
    assert fingerprint() == before
