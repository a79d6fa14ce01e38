"""Schemathesis drives every operation of /api/v1/openapi.json with generated, often hostile, input.

No answer may be a 5xx, and every 4xx carries the API's JSON error body. Examples are
derandomised so CI runs the same cases every time; run with COUNTERSIGN_FUZZ_EXAMPLES=500 to dig deeper.
`schemathesis run --checks all` itself also runs, against gunicorn, in deterministic mode (about a
minute; COUNTERSIGN_FUZZ_CLI_EXAMPLES raises its examples per operation).

Each backend gets one of the two runs, to keep the suite short: the in-process probe runs on SQLite,
the embedded default, and the full command runs against gunicorn on PostgreSQL, the production
database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.factories import make_case, make_model, make_user, token_for
from tests.gunicornserver import gunicorn

EXAMPLES = int(os.environ.get("COUNTERSIGN_FUZZ_EXAMPLES", "25"))
CLI_EXAMPLES = int(os.environ.get("COUNTERSIGN_FUZZ_CLI_EXAMPLES", "8"))


@pytest.fixture
def api(app, session):
    """The app's own OpenAPI document, over a database with a model, cases and an admin token."""
    make_model(session)
    for n in range(1, 4):
        make_case(session, n)
    headers = token_for(app, session, make_user(session, "admin"))
    session.rollback()
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app), headers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
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


# The JSON bodies' own rules are in the body schemas (feedback/schemas.py), and rules on stored rows
# answer 404 or 409 (feedback/errors.py), so a schema-valid body the server refuses fails the run:
# `schemathesis run --checks all` must find nothing at all.
BODY_RULES_PENDING = False
FAILURE = re.compile(r"^\d+\. Test Case ID", re.MULTILINE)


def cli_failures(junit: str) -> list[tuple[str, set[str], bool]]:
    """(operation, checks that failed, whether the failing request had a JSON body) per failure."""
    found = []
    for case in ElementTree.fromstring(junit).iter("testcase"):
        for failure in case.iter("failure"):
            for block in FAILURE.split(failure.text or "")[1:]:
                found.append(
                    (case.get("name", ""), set(re.findall(r"^- (ST\d+) ", block, re.MULTILINE)), " -d '" in block)
                )
    return found


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_schemathesis_run_checks_all_finds_nothing(app, session, database_url, tmp_path):
    """The command the issue names, against gunicorn serving this backend: no failures of any check."""
    make_model(session)
    for n in range(1, 4):
        make_case(session, n)
    token = token_for(app, session, make_user(session, "admin"))["Authorization"]
    session.commit()
    junit = tmp_path / "junit.xml"
    log = tmp_path / "gunicorn.log"
    with gunicorn(database_url, workers=2, threads=4, log=log) as server:
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"http://127.0.0.1:{server.port}/api/v1/openapi.json",
                "--checks=all",
                f"--header=Authorization: {token}",
                "--generation-deterministic",
                f"--max-examples={CLI_EXAMPLES}",
                "--report=junit",
                f"--report-junit-path={junit}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # no schemathesis.toml of ours bends the checks
        )
    assert junit.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    failures = cli_failures(junit.read_text())
    pending = [f for f in failures if BODY_RULES_PENDING and f[1] == {"ST202"} and f[2]]
    errors = [line for line in log.read_text().splitlines() if '"level": "error"' in line]
    assert [f for f in failures if f not in pending] == [], run.stdout[-20000:] + "\n".join(errors[-5:])
    summary = re.search(r"Test cases:\s*\n\s*(\d+) generated", run.stdout)
    assert summary and int(summary.group(1)) > 500, run.stdout[-3000:]  # it really exercised the API
    if pending:
        print(f"{len(pending)} schema-valid JSON bodies refused by rules the body schemas do not state yet:", pending)
