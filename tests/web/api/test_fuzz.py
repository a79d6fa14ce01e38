"""Schemathesis drives every operation of /api/v1/openapi.json with generated, often hostile, input.

No answer may be a 5xx, and every 4xx carries the API's JSON error body. Examples are
derandomised so CI runs the same cases every time; run with COUNTERSIGN_FUZZ_EXAMPLES=500 to dig deeper.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.factories import make_case, make_model, make_user, token_for

EXAMPLES = int(os.environ.get("COUNTERSIGN_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def api(app, session):
    """The app's own OpenAPI document, over a database with a model, cases and an admin token."""
    make_model(session)
    for n in range(1, 4):
        make_case(session, n)
    headers = token_for(app, session, make_user(session, "admin"))
    session.rollback()
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app), headers


def test_no_input_makes_the_api_fail(api):
    schema, headers = api
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
            def probe(case) -> None:
                response = case.call(headers=headers)
                label = f"{case.method} {case.formatted_path}"
                if response.status_code >= 500:
                    failures.append(f"{label}: {response.status_code} {response.text[:300]}")
                elif response.status_code >= 400:
                    error = response.json().get("error", {})
                    if not {"code", "message"} <= set(error):
                        failures.append(f"{label}: {response.status_code} without the JSON error body")

            probe()
    assert failures == [], "\n".join(sorted(set(failures))[:40])


def test_hostile_requests_get_clear_json_errors(app, client, session):
    make_model(session)
    headers = token_for(app, session, make_user(session, "admin"))
    ingest, json_type = "/api/v1/recommendations", "application/json"
    cases = [
        (client.post(ingest, data=b"x" * (21 * 1024 * 1024), content_type=json_type, headers=headers), 413),
        (client.post(ingest, data="model=claims", content_type="text/plain", headers=headers), 415),
        (client.post(ingest, data=b'{"model": "claims",', content_type=json_type, headers=headers), 400),
        (client.post(ingest, data=b"\xff\xfe{}", content_type=json_type, headers=headers), 400),
        (
            client.post(ingest, data=b'{"model": "cl\\u0000aims"}', content_type=json_type, headers=headers),
            400,
        ),
        (client.get("/api/v1/analytics/overrides?model=claims%00", headers=headers), 400),
        (client.get(f"/api/v1/recommendations/{2**31}", headers=headers), 404),
        (client.post("/api/v1/outcomes", json={"recommendation_id": 2**31, "outcome": "pay"}, headers=headers), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.mimetype == "application/json"
        assert response.json["error"]["code"] and response.json["error"]["message"]
    nul = cases[4][0].json["error"]
    assert nul["fields"] == {"body": "must not contain NUL characters"}
    too_big = cases[7][0].json["error"]["fields"]["recommendation_id"]
    assert too_big == "Input should be less than or equal to 2147483647"
