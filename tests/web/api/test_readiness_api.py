"""Readiness over the API: register and change plans (each bad field named), read the scorecard."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from analytics import sequential
from feedback.accounts import services as accounts
from feedback.catalog import services as catalog
from feedback.models import ModelVersion
from feedback.models.readiness import ReadinessPlan
from feedback.review import decisions
from feedback.schemas import ModelVersionIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_owner, make_user, token_for

URL = "/api/v1/models/claims/versions/v2/readiness"
PLAN = {
    "criteria": [
        {"metric": "override_rate", "direction": "at_most", "threshold": 0.3, "min_n": 20},
        {"metric": "decisions", "direction": "at_least", "threshold": 25},
    ]
}


@pytest.fixture
def world(app, session):
    """claims v1 in production, v2 in shadow; its owner's and an analyst's tokens."""
    make_model(session)
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="shadow")
    )
    owner = make_owner(session)
    return {
        "owner": token_for(app, session, owner),
        "analyst": token_for(app, session, make_user(session, "analyst")),
        "stranger": token_for(app, session, make_user(session, "model_owner")),
        "owner_user": owner,
    }


def test_register_change_and_read_a_plan(client, session, world):
    owner = world["owner"]
    assert client.get(URL, headers=owner).get_json()["plan_version"] is None
    created = client.post(URL + "/plan", json=PLAN, headers=owner)
    assert created.status_code == 201, created.text
    assert created.get_json()["plan_version"] == 1
    assert created.get_json()["criteria"][1] == {
        "metric": "decisions",
        "direction": "at_least",
        "threshold": 25,
        "min_n": 0,
    }
    again = client.post(URL + "/plan", json=PLAN, headers=owner)
    assert again.status_code == 409
    no_reason = client.put(URL + "/plan", json=PLAN, headers=owner)
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["error"]["fields"]
    changed = client.put(URL + "/plan", json={**PLAN, "reason": "a stricter floor"}, headers=owner)
    assert changed.status_code == 200 and changed.get_json()["plan_version"] == 2
    history = client.get(URL + "/plans", headers=world["analyst"]).get_json()["items"]
    assert [(p["plan_version"], p["reason"]) for p in history] == [(2, "a stricter floor"), (1, "")]

    version = session.scalar(select(ModelVersion).where(ModelVersion.version == "v2"))
    catalog.set_version_stage(session, accounts.actor_of(world["owner_user"]), version_id=version.id, stage="pilot")
    reviewer = make_user(session)
    for n in range(30):
        rec = make_case(session, n, model_version="v2")
        extra = {"final_action": "deny", "reason_code": "missing_context"} if n % 3 == 0 else {}
        decisions.record_decision(
            session, reviewer, recommendation_id=rec.id, action="override" if extra else "accept", **extra
        )
    body = client.get(URL, headers=world["analyst"]).get_json()
    assert set(body) == {"verdict", "plan_version", "evaluated_at", "criteria"}
    assert body["plan_version"] == 2 and body["verdict"] == "keep_collecting"
    low, high = sequential.rate_interval(10, 30)
    assert body["criteria"][0] == {
        "name": "override_rate",
        "threshold": 0.3,
        "direction": "at_most",
        "value": pytest.approx(1 / 3),
        "ci_low": pytest.approx(low),
        "ci_high": pytest.approx(high),
        "n": 30,
        "status": "keep_collecting",
    }
    assert body["criteria"][1] == {
        "name": "decisions",
        "threshold": 25.0,
        "direction": "at_least",
        "value": 30.0,
        "ci_low": 30.0,
        "ci_high": 30.0,
        "n": 30,
        "status": "go",
    }


DECIDED = {"metric": "decisions", "direction": "at_least", "threshold": 10}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"criteria": []}, 422, "criteria"),
        ({"criteria": [{"metric": "vibes", "direction": "at_most", "threshold": 0.1}]}, 422, "criteria[0].metric"),
        ({"criteria": [{"metric": "accuracy", "direction": "up", "threshold": 0.1}]}, 422, "criteria[0].direction"),
        (
            {"criteria": [{"metric": "accuracy", "direction": "at_least", "threshold": "0.1"}]},
            422,
            "criteria[0].threshold",
        ),
        ({"criteria": [{"metric": "accuracy", "direction": "at_least", "threshold": 2}]}, 422, "criteria[0].threshold"),
        (
            {"criteria": [{"metric": "accuracy", "direction": "at_least", "threshold": 0.5, "min_n": -3}]},
            422,
            "criteria[0].min_n",
        ),
        (
            {"criteria": [{"metric": "accuracy", "direction": "at_least", "threshold": 0.5, "colour": 1}]},
            422,
            "criteria[0].colour",
        ),
        ({"criteria": [{**DECIDED, "experiment_id": 3}]}, 422, "criteria[0].experiment_id"),
        ({"criteria": [{**DECIDED, "direction": "at_most"}]}, 422, "criteria[0].direction"),
        ({"criteria": [{**DECIDED, "threshold": 10.5}]}, 422, "criteria[0].threshold"),
        ({"criteria": [{"metric": "drift", "direction": "at_most", "threshold": -1}]}, 422, "criteria[0].threshold"),
        (
            {
                "criteria": [
                    {"metric": "experiment_effect", "direction": "at_least", "threshold": 0, "experiment_id": 9}
                ]
            },
            422,
            "criteria[0].experiment_metric",
        ),
        (
            {
                "criteria": [
                    {
                        "metric": "experiment_effect",
                        "direction": "at_least",
                        "threshold": 0,
                        "experiment_id": 99,
                        "experiment_metric": "override",
                    }
                ]
            },
            409,
            "criteria[0].experiment_id",
        ),
        ({"criteria": [DECIDED, {**DECIDED, "threshold": 20}]}, 409, "criteria[1].metric"),
        ({**PLAN, "reason": "x" * 2001}, 422, "reason"),
        ([PLAN], 422, "body"),
    ],
)
def test_bad_plans_are_refused_naming_the_field_and_nothing_is_stored(client, session, world, body, status, field):
    response = client.post(URL + "/plan", json=body, headers=world["owner"])
    assert response.status_code == status, response.text
    assert field in response.get_json()["error"]["fields"], response.get_json()
    assert session.scalar(select(ReadinessPlan.id)) is None


def test_put_records_the_first_plan_too(client, world):
    first = client.put(URL + "/plan", json={**PLAN, "reason": "written before the pilot"}, headers=world["owner"])
    assert first.status_code == 201 and first.get_json()["plan_version"] == 1
    assert first.get_json()["reason"] == "written before the pilot"
    whole = client.put(
        URL + "/plan", json={"criteria": [{**DECIDED, "threshold": 12.0}], "reason": "r"}, headers=world["owner"]
    )
    assert whole.status_code == 200 and whole.get_json()["criteria"][0]["threshold"] == 12


def test_who_may_read_and_write(client, world):
    assert client.post(URL + "/plan", json=PLAN, headers=world["analyst"]).status_code == 403
    assert client.post(URL + "/plan", json=PLAN, headers=world["stranger"]).status_code == 403
    assert client.get(URL, headers=world["analyst"]).status_code == 200
    assert client.get(URL).status_code == 401
    missing = client.get("/api/v1/models/claims/versions/v9/readiness", headers=world["analyst"])
    assert missing.status_code == 404 and "version" in missing.get_json()["error"]["fields"]
    assert client.get("/api/v1/models/nope/versions/v2/readiness", headers=world["analyst"]).status_code == 404


def test_the_openapi_document_describes_readiness(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    path = spec["paths"]["/api/v1/models/{key}/versions/{version}/readiness"]
    assert "get" in path
    plan = spec["paths"]["/api/v1/models/{key}/versions/{version}/readiness/plan"]
    assert {"post", "put"} <= set(plan)
    out = spec["components"]["schemas"]["ReadinessOut"]
    assert set(out["properties"]) == {"verdict", "plan_version", "evaluated_at", "criteria"}
