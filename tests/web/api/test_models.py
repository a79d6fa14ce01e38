"""Model registry API and the generated OpenAPI document."""

from __future__ import annotations

from feedback.schemas import RecommendationIn
from tests.factories import make_user, token_for

MODEL = {
    "key": "loans",
    "name": "Loan review",
    "actions": ["approve", "decline"],
    "reason_codes": [{"code": "income", "label": "Income not verified"}, {"code": "other", "label": "Other"}],
}


def test_register_model_and_version(app, session, client):
    headers = token_for(app, session, make_user(session, "model_owner"))
    created = client.post("/api/v1/models", json=MODEL, headers=headers)
    assert created.status_code == 201
    assert created.json["key"] == "loans" and created.json["actions"] == ["approve", "decline"]
    assert created.json["versions"] == []
    version = client.post(
        "/api/v1/models/loans/versions", json={"version": "2026.1", "stage": "shadow"}, headers=headers
    )
    assert version.status_code == 201
    assert [(v["version"], v["stage"]) for v in version.json["versions"]] == [("2026.1", "shadow")]
    listed = client.get("/api/v1/models", headers=headers).json["items"]
    assert [m["key"] for m in listed] == ["loans"]


def test_labels_are_registered_and_answered_while_codes_stay_codes(app, session, client):
    headers = token_for(app, session, make_user(session, "admin"))
    labelled = {
        **MODEL,
        "actions": ["approve", "refer_to_underwriter"],
        "action_labels": {"approve": "Approve the loan"},
        "segment_labels": {"amount_band": {"label": "Amount", "values": {"10k_50k": "£10k to £50k"}}},
    }
    created = client.post("/api/v1/models", json=labelled, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["actions"] == ["approve", "refer_to_underwriter"]  # codes unchanged
    # Every action has a label: the one given, or the code in words.
    assert created.json["action_labels"] == {
        "approve": "Approve the loan",
        "refer_to_underwriter": "Refer to underwriter",
    }
    assert created.json["segment_labels"] == {"amount_band": {"label": "Amount", "values": {"10k_50k": "£10k to £50k"}}}
    stray = client.post(
        "/api/v1/models", json={**labelled, "key": "k3", "action_labels": {"deny": "Deny"}}, headers=headers
    )
    assert stray.status_code == 409 and stray.json["error"]["fields"] == {
        "action_labels.deny": "labels an action the model does not have"
    }
    blank = client.post(
        "/api/v1/models", json={**labelled, "key": "k4", "segment_labels": {"band": {"label": " "}}}, headers=headers
    )
    assert blank.status_code == 422 and any(f.startswith("segment_labels") for f in blank.json["error"]["fields"])


def test_model_errors(app, session, client):
    headers = token_for(app, session, make_user(session, "admin"))
    client.post("/api/v1/models", json=MODEL, headers=headers)
    again = client.post("/api/v1/models", json=MODEL, headers=headers)
    assert again.status_code == 409 and again.json["error"]["fields"] == {"key": "already registered"}
    bad = client.post("/api/v1/models", json={**MODEL, "key": "x y", "actions": ["only"]}, headers=headers)
    assert bad.status_code == 422 and {"key", "actions"} <= set(bad.json["error"]["fields"])
    dup = client.post("/api/v1/models", json={**MODEL, "key": "k2", "actions": ["a", "a"]}, headers=headers)
    assert dup.status_code == 422 and dup.json["error"]["fields"] == {"actions": "must not repeat an action"}
    missing = client.post("/api/v1/models/none/versions", json={"version": "1"}, headers=headers)
    assert missing.status_code == 404
    stage = client.post("/api/v1/models/loans/versions", json={"version": "1", "stage": "live"}, headers=headers)
    assert stage.status_code == 422 and "stage" in stage.json["error"]["fields"]
    client.post("/api/v1/models/loans/versions", json={"version": "1"}, headers=headers)
    twice = client.post("/api/v1/models/loans/versions", json={"version": "1"}, headers=headers)
    assert twice.status_code == 409


def test_frontline_may_not_register_models(app, session, client):
    headers = token_for(app, session, make_user(session, "frontline"))
    assert client.post("/api/v1/models", json=MODEL, headers=headers).status_code == 403


def test_openapi_is_generated_from_the_validating_schemas(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    expected = RecommendationIn.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["RecommendationIn"]["properties"] == expected["properties"]
    assert set(schemas["RecommendationIn"]["required"]) == set(expected["required"])
    ingest = doc["paths"]["/api/v1/recommendations"]["post"]
    body = ingest["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert body[1]["maxItems"] == 1000
    assert {"200", "201", "401", "409", "422", "413", "415"} <= set(ingest["responses"])
    # Every $ref resolves to a component.
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs <= set(schemas)
