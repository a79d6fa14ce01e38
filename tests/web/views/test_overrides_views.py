"""Model owner pages: overview, breakdowns with drill-down, who was right, guardrails, CSV, roles."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import select

from feedback import permissions
from feedback.models import Guardrail, ModelVersion, User
from feedback.overrides import guardrails
from feedback.review import decisions
from tests.factories import TEST_ACTOR, login, make_case, make_model, make_owner, make_user


@pytest.fixture
def owner(session, client, htmx_client):
    """A signed-in model owner and twenty decided cases (six overrides, at Leeds)."""
    make_model(session)
    reviewer = make_user(session, name="Rita")
    for n in range(20):
        rec = make_case(session, n, site="Leeds" if n < 8 else "Bristol", segment={"band": "big" if n < 8 else "small"})
        if n < 6:
            decisions.record_decision(
                session,
                reviewer,
                recommendation_id=rec.id,
                action="override",
                final_action="deny",
                reason_code="missing_context",
                note="no invoice",
            )
        else:
            decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="accept")
    user = make_owner(session)
    login(client, user)
    login(htmx_client, user)
    return user


def test_overview_page_fragment_and_csv(owner, client, htmx_client):
    page = client.get("/models/claims")
    assert page.status_code == 200 and 'id="kpi-override"' in page.text and ">30.0%<" in page.text
    chart = json.loads(re.search(r'id="pchart-data">(.*?)</script>', page.text, re.S).group(1))
    assert [s["label"] for s in chart["series"]][:4] == [
        "override rate",
        "centre (baseline)",
        "control limits (3 sigma)",
        "control limits (3 sigma)",
    ]
    assert [s.get("legend", True) for s in chart["series"]][2:4] == [True, False]  # one legend entry for the band
    assert chart["series"][0]["values"] == [0.3]
    fragment = htmx_client.get("/models/claims?from=2020-01-01")
    assert fragment.text.lstrip().startswith('<div id="overview-body">')
    rows = list(csv.DictReader(io.StringIO(client.get("/models/claims?format=csv").text)))
    assert (
        rows[0]["key"] == "v1" and rows[0]["overrides"] == "6" and float(rows[0]["override_rate"]) == pytest.approx(0.3)
    )


def test_breakdown_drill_down_and_segment(owner, client):
    page = client.get("/models/claims/breakdown?by=segment.band")
    assert page.status_code == 200 and ">Band</option>" in page.text  # the attribute in words
    table = page.text[page.text.index('id="breakdown-table"') :]
    assert "75.0%" in table  # big: 6 of 8
    link = re.search(r'href="(/models/claims/cases\?[^"]*cell=big[^"]*)"', page.text).group(1).replace("&amp;", "&")
    cases = client.get(link)
    assert cases.status_code == 200 and cases.text.count("no invoice") == 0 and cases.text.count("Deny") >= 6
    assert cases.text.count("<tr>") == 7  # header + six overrides
    matrix = page.text[page.text.index('id="action-matrix"') :]
    assert ">14<" in matrix and ">6<" in matrix  # pay -> pay fourteen times, pay -> deny six
    cell = re.search(r'href="(/models/claims/cases\?[^"]*by=action_pair[^"]*)"', matrix).group(1).replace("&amp;", "&")
    assert client.get(cell).status_code == 200
    assert "recommended,final,decisions" in client.get("/models/claims/breakdown?table=matrix&format=csv").text
    bad = client.get("/models/claims/breakdown?by=colour")
    assert bad.status_code == 422 and "must be one of" in bad.text


def test_who_was_right_page(owner, client, session):
    page = client.get("/models/claims/right?by=reviewer")
    rita = permissions.pseudonym(session.scalar(select(User.id).where(User.name == "Rita")))
    # A model owner sees reviewers by pseudonym, in the page and in its CSV.
    assert page.status_code == 200 and rita in page.text and 'id="reviewer-table"' in page.text
    assert "Rita" not in page.text
    csv = client.get("/models/claims/right?format=csv&table=reviewers")
    assert csv.mimetype == "text/csv" and rita in csv.text and "Rita" not in csv.text


def test_guardrail_form_and_resume_over_htmx(owner, session, htmx_client):
    version = session.scalar(select(ModelVersion))
    added = htmx_client.post(
        "/models/claims/guardrails",
        data={
            "version_id": str(version.id),
            "kind": "override_rate_above",
            "window_size": "20",
            "threshold_pct": "10",
            "auto_pause": "1",
        },
    )
    assert added.status_code == 200 and "Guardrail added" in added.text
    session.rollback()
    guardrail = session.scalar(select(Guardrail))
    assert (guardrail.threshold, guardrail.auto_pause) == (0.1, True)
    guardrails.evaluate(session, [version.id], force=True)
    page = htmx_client.get("/models/claims")
    assert "is above 10.0%" in page.text and "Resume v1" in page.text
    resumed = htmx_client.post(f"/models/claims/versions/{version.id}/resume")
    assert resumed.status_code == 200 and "v1 resumed (production)" in resumed.text
    bad = htmx_client.post(
        "/models/claims/guardrails",
        data={"version_id": str(version.id), "kind": "override_rate_above", "window_size": "3", "threshold_pct": "x"},
    )
    assert bad.status_code == 422 and "window_size" in bad.text


def test_roles(session, client):
    make_model(session)
    login(client, make_user(session, "frontline"))
    assert client.get("/models/claims").status_code == 403
    analyst = client.application.test_client()
    login(analyst, make_user(session, "analyst"))
    assert analyst.get("/models/claims").status_code == 200
    assert analyst.post("/models/claims/guardrails", data={}).status_code == 403
    version = session.scalar(select(ModelVersion))
    guardrails.add_guardrail(
        session,
        TEST_ACTOR,
        version_id=version.id,
        kind="control_chart",
        window_size=14,
        threshold=None,
        auto_pause=False,
    )
    assert "remove" not in analyst.get("/models/claims").text


def test_refused_htmx_request_leaves_the_page_and_explains(owner, client, htmx_client):
    response = htmx_client.get("/models/claims/breakdown?by=site&from=yesterday")
    assert response.status_code == 422 and "must be a date like 2026-01-31" in response.text  # not swapped in:
    assert response.headers["HX-Reswap"] == "none"
    assert json.loads(response.headers["HX-Trigger"]) == {
        "countersign:problem": "invalid from (from: must be a date like 2026-01-31, from 1970-01-01 to 2199-12-31)"
    }
    page = client.get("/models/claims/breakdown?by=site&from=yesterday")  # without htmx: a page
    assert page.status_code == 422 and "must be a date like 2026-01-31" in page.text
