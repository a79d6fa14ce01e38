"""The ingest and decision API contract: status codes, shapes, idempotency, all-or-nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from feedback.models import AuditEvent, Decision, Recommendation
from tests.factories import make_model, make_owner, make_user, payload, token_for


@pytest.fixture
def api(app, session, client):
    """A client plus headers of a model service (model_owner) and of a reviewer."""
    make_model(session)
    owner = make_owner(session)
    reviewer = make_user(session, "frontline", name="Rita Reviewer")
    return {
        "client": client,
        "service": token_for(app, session, owner),
        "reviewer": token_for(app, session, reviewer),
        "session": session,
    }


def count(session, model) -> int:
    """Rows in a table."""
    return session.scalar(select(func.count()).select_from(model))


def test_single_ingest_returns_201_with_id(api):
    response = api["client"].post("/api/v1/recommendations", json=payload(1), headers=api["service"])
    assert response.status_code == 201
    assert response.json == {"id": response.json["id"], "external_id": "EXT-1", "created": True}
    assert count(api["session"], Recommendation) == 1


def test_replaying_same_payload_is_200_with_existing_id(api):
    item = payload(1)
    first = api["client"].post("/api/v1/recommendations", json=item, headers=api["service"])
    # Same content, different key order and spacing: still the same payload.
    body = json.dumps(dict(reversed(list(item.items()))), indent=2)
    again = api["client"].post(
        "/api/v1/recommendations", data=body, content_type="application/json", headers=api["service"]
    )
    assert again.status_code == 200
    assert again.json == {"id": first.json["id"], "external_id": "EXT-1", "created": False}
    assert count(api["session"], Recommendation) == 1


def test_different_payload_for_existing_external_id_is_409(api):
    api["client"].post("/api/v1/recommendations", json=payload(1), headers=api["service"])
    response = api["client"].post("/api/v1/recommendations", json=payload(1, confidence=0.3), headers=api["service"])
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert response.json["error"]["fields"] == {"external_id": "already stored with a different payload"}
    stored = api["session"].scalar(select(Recommendation))
    assert stored.confidence == 0.8


def test_batch_ingest_returns_ids_in_order(api):
    batch = [payload(n) for n in range(1, 6)]
    response = api["client"].post("/api/v1/recommendations", json=batch, headers=api["service"])
    assert response.status_code == 201
    items = response.json["items"]
    assert [i["external_id"] for i in items] == [f"EXT-{n}" for n in range(1, 6)]
    assert all(i["created"] for i in items)
    stored = dict(api["session"].execute(select(Recommendation.external_id, Recommendation.id)).all())
    assert {i["external_id"]: i["id"] for i in items} == stored
    assert count(api["session"], AuditEvent) >= 5


def test_batch_with_replayed_and_new_items_is_201_and_marks_each(api):
    item = payload(1)
    api["client"].post("/api/v1/recommendations", json=item, headers=api["service"])
    response = api["client"].post("/api/v1/recommendations", json=[item, payload(2)], headers=api["service"])
    assert response.status_code == 201
    assert [i["created"] for i in response.json["items"]] == [False, True]


def test_batch_with_bad_items_names_each_and_stores_nothing(api):
    batch = [
        payload(1),
        payload(2, model="nope"),
        payload(3, model_version="v9"),
        payload(4, recommended_action="launch"),
        payload(5, confidence=1.5),
        {k: v for k, v in payload(6).items() if k != "subject"},
        payload(7, explanation={"summary": "x", "factors": [{"name": "a", "value": 1}]}),
    ]
    response = api["client"].post("/api/v1/recommendations", json=batch, headers=api["service"])
    assert response.status_code == 422
    fields = response.json["error"]["fields"]
    assert "[4].confidence" in fields and "less than or equal to 1" in fields["[4].confidence"]
    assert "[5].subject" in fields
    assert "[6].explanation.factors[0].contribution" in fields
    assert not any(k.startswith("[0]") for k in fields)
    assert count(api["session"], Recommendation) == 0


def test_domain_errors_name_item_and_field(api):
    batch = [payload(1, model="nope"), payload(2, model_version="v9"), payload(3, recommended_action="launch")]
    response = api["client"].post("/api/v1/recommendations", json=batch, headers=api["service"])
    assert response.status_code == 404  # names a model that is not stored; every other fault is named too
    assert response.json["error"]["fields"] == {
        "[0].model": "unknown model 'nope'",
        "[1].model_version": "claims has no version 'v9'",
        "[2].recommended_action": "must be one of pay, review, deny",
    }
    assert count(api["session"], Recommendation) == 0


def test_batch_repeating_an_external_id_with_different_content_is_409(api):
    response = api["client"].post(
        "/api/v1/recommendations", json=[payload(1), payload(1, confidence=0.2)], headers=api["service"]
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "repeated_in_request"
    assert response.json["error"]["fields"] == {"[1].external_id": "repeats item [0] with a different payload"}


def test_batch_over_1000_is_refused(api):
    response = api["client"].post(
        "/api/v1/recommendations", json=[payload(n) for n in range(1001)], headers=api["service"]
    )
    assert response.status_code == 422
    assert "at most 1000" in response.json["error"]["fields"]["body"]
    assert count(api["session"], Recommendation) == 0


@pytest.mark.parametrize("bad", [-0.01, 1.01, "high", None])
def test_confidence_outside_0_1_is_422(api, bad):
    response = api["client"].post("/api/v1/recommendations", json=payload(1, confidence=bad), headers=api["service"])
    assert response.status_code == 422
    assert "confidence" in response.json["error"]["fields"]


def test_naive_due_at_and_unknown_fields_are_422(api):
    response = api["client"].post(
        "/api/v1/recommendations", json=payload(1, due_at="2026-01-01T10:00:00", colour="red"), headers=api["service"]
    )
    assert response.status_code == 422
    assert set(response.json["error"]["fields"]) == {"due_at", "colour"}


def test_get_recommendation_with_and_without_decision(api):
    rec_id = api["client"].post("/api/v1/recommendations", json=payload(1), headers=api["service"]).json["id"]
    got = api["client"].get(f"/api/v1/recommendations/{rec_id}", headers=api["reviewer"])
    assert got.status_code == 200
    body = got.json
    assert body["id"] == rec_id and body["model"] == "claims" and body["model_version"] == "v1"
    assert body["status"] == "open" and body["decision"] is None
    assert body["explanation"]["factors"][0] == {"name": "amount", "value": 12000, "contribution": -0.3}
    assert set(body) == {
        "id",
        "model",
        "model_version",
        "external_id",
        "subject",
        "site",
        "segment",
        "recommended_action",
        "confidence",
        "explanation",
        "features",
        "status",
        "created_at",
        "due_at",
        "claimed_by",
        "claim_expires_at",
        "decision",
    }
    api["client"].post(
        f"/api/v1/recommendations/{rec_id}/decision",
        json={"action": "override", "final_action": "deny", "reason_code": "missing_context", "note": "see file"},
        headers=api["reviewer"],
    )
    decided = api["client"].get(f"/api/v1/recommendations/{rec_id}", headers=api["reviewer"]).json
    assert decided["status"] == "decided"
    assert decided["decision"]["action"] == "override" and decided["decision"]["final_action"] == "deny"
    assert decided["decision"]["channel"] == "api" and decided["decision"]["ai_shown"] is True
    assert decided["decision"]["quick"] is False  # only decisions on the review screen are ever quick
    assert api["client"].get("/api/v1/recommendations/999999", headers=api["reviewer"]).status_code == 404


def test_decision_then_second_decision_is_409(api):
    rec_id = api["client"].post("/api/v1/recommendations", json=payload(1), headers=api["service"]).json["id"]
    first = api["client"].post(
        f"/api/v1/recommendations/{rec_id}/decision", json={"action": "accept"}, headers=api["reviewer"]
    )
    assert first.status_code == 201
    assert first.json["final_action"] == "pay" and first.json["reviewer"].startswith("frontline-")
    second = api["client"].post(
        f"/api/v1/recommendations/{rec_id}/decision",
        json={"action": "escalate", "note": "unsure"},
        headers=api["reviewer"],
    )
    assert second.status_code == 409
    assert second.json["error"]["code"] == "already_decided"
    assert count(api["session"], Decision) == 1


@pytest.mark.parametrize(
    "body,field,status",
    [
        # What the case and its model allow (a shown AI needs a reason to override; the model's codes): 409.
        ({"action": "override", "final_action": "deny"}, "reason_code", 409),
        ({"action": "override", "final_action": "pay", "reason_code": "missing_context"}, "final_action", 409),
        ({"action": "override", "final_action": "deny", "reason_code": "bogus"}, "reason_code", 409),
        ({"action": "accept", "final_action": "deny"}, "final_action", 409),
        # What the schema states: 422.
        ({"action": "escalate"}, "note", 422),
        ({"action": "approve"}, "action", 422),
        ({"action": "override", "reason_code": "missing_context"}, "final_action", 422),
    ],
)
def test_invalid_decisions_are_refused_and_store_nothing(api, body, field, status):
    rec_id = api["client"].post("/api/v1/recommendations", json=payload(1), headers=api["service"]).json["id"]
    response = api["client"].post(f"/api/v1/recommendations/{rec_id}/decision", json=body, headers=api["reviewer"])
    assert response.status_code == status
    assert field in response.json["error"]["fields"]
    assert count(api["session"], Decision) == 0


def test_authentication_and_roles(api, app, session):
    client = api["client"]
    assert client.post("/api/v1/recommendations", json=payload(1)).status_code == 401
    bad = client.post("/api/v1/recommendations", json=payload(1), headers={"Authorization": "Bearer cs_nope"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Bearer")
    # A reviewer may not ingest; a model owner may not decide.
    assert client.post("/api/v1/recommendations", json=payload(1), headers=api["reviewer"]).status_code == 403
    rec_id = client.post("/api/v1/recommendations", json=payload(1), headers=api["service"]).json["id"]
    denied = client.post(
        f"/api/v1/recommendations/{rec_id}/decision", json={"action": "accept"}, headers=api["service"]
    )
    assert denied.status_code == 403 and denied.json["error"]["code"] == "forbidden"


def test_revoked_token_stops_working(api, session, client):
    from feedback.accounts import tokens
    from feedback.models import ApiToken
    from tests.factories import TEST_ACTOR

    assert client.get("/api/v1/models", headers=api["service"]).status_code == 200
    token_id = session.scalar(select(ApiToken.id).order_by(ApiToken.id))
    tokens.revoke_token(session, TEST_ACTOR, token_id=token_id)
    assert client.get("/api/v1/models", headers=api["service"]).status_code == 401


def test_malformed_bodies(api, app):
    client = api["client"]
    broken = client.post(
        "/api/v1/recommendations", data="{not json", content_type="application/json", headers=api["service"]
    )
    assert broken.status_code == 400 and broken.json["error"]["code"] == "bad_request"
    form = client.post("/api/v1/recommendations", data={"a": "b"}, headers=api["service"])
    assert form.status_code == 415 and "application/json" in form.json["error"]["message"]
    scalar = client.post("/api/v1/recommendations", json=42, headers=api["service"])
    assert scalar.status_code == 422 and scalar.json["error"]["fields"] == {"body": "must be an object or array"}
    app.config["MAX_CONTENT_LENGTH"] = 1000
    huge = client.post("/api/v1/recommendations", json=[payload(n) for n in range(20)], headers=api["service"])
    assert huge.status_code == 413 and huge.json["error"]["code"] == "request_entity_too_large"
    assert count(api["session"], Recommendation) == 0


def test_a_case_the_model_failed_on_reads_back_with_no_action(api):
    """A case ingested with an error has no action or confidence, and reading it answers them as null (it was a 500)."""
    failed = payload(1, error="model timed out", recommended_action=None, confidence=None, explanation=None)
    rec_id = api["client"].post("/api/v1/recommendations", json=failed, headers=api["service"]).json["id"]
    response = api["client"].get(f"/api/v1/recommendations/{rec_id}", headers=api["service"])
    assert response.status_code == 200
    assert (response.json["recommended_action"], response.json["confidence"]) == (None, None)
