"""The challenger page: who may see it, what it shows, its CSV; and reviewers never see a challenger."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from feedback.catalog import services as catalog
from feedback.challengers import services as challenger_services
from feedback.db import utcnow
from feedback.outcomes.services import record_outcomes
from feedback.review import decisions
from feedback.schemas import ChallengerIn, ModelVersionIn, OutcomeIn
from tests.factories import TEST_ACTOR, login, make_case, make_model, make_user, token_for

SECRET = "Challenger-only explanation 7Q4Z"


@pytest.fixture
def world(session):
    """Claims with a champion v1 and a shadow v2 that scored every case (with a tell-tale explanation)."""
    make_model(session)
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="shadow")
    )
    reviewer = make_user(session, "frontline", email="rita@example.com")
    cases = [
        make_case(session, n, segment={"claim_band": band}) for n, band in enumerate(["small"] * 3 + ["large"] * 3, 1)
    ]
    for rec in cases:
        item = ChallengerIn.model_validate(
            {
                "model_version": "v2",
                "recommended_action": "deny",
                "confidence": 0.93,
                "explanation": {"summary": SECRET, "factors": [{"name": "secret_factor_q9", "contribution": 0.5}]},
            }
        )
        challenger_services.add_challengers(session, TEST_ACTOR, recommendation_id=rec.id, items=[item])
    for rec, final in zip(cases[:4], ["pay", "deny", "deny", "pay"], strict=True):
        action = "accept" if final == "pay" else "override"
        decisions.record_decision(
            session,
            reviewer,
            recommendation_id=rec.id,
            action=action,
            final_action=None if action == "accept" else final,
            reason_code=None if action == "accept" else "missing_context",
        )
    return {"reviewer": reviewer, "cases": cases}


def test_reviewers_never_see_a_challenger_on_any_page_or_api_answer(world, session, client, app):
    login(client, world["reviewer"])
    open_case, decided_case = world["cases"][-1], world["cases"][0]
    api = app.test_client()
    token = token_for(app, session, world["reviewer"])
    pages = [
        client.get("/queue"),
        client.get(f"/review/{open_case.id}"),
        client.get(f"/review/{decided_case.id}"),
        client.post("/review/next", follow_redirects=True),
        api.get(f"/api/v1/recommendations/{open_case.id}", headers=token),
        api.get(f"/api/v1/recommendations/{decided_case.id}", headers=token),
    ]
    assert [p.status_code for p in pages] == [200] * len(pages)
    assert any("AI recommends" in p.text for p in pages[:4])  # the champion's recommendation is shown
    for page in pages:
        assert SECRET not in page.text and "secret_factor_q9" not in page.text and "0.93" not in page.text
        assert "challenger" not in page.text.lower()
        assert not re.search(r"\bv2\b", page.text)  # the challenger's version is never named
    assert client.get("/models/claims/challengers").status_code == 403
    assert api.get("/api/v1/analytics/challengers?model=claims", headers=token).status_code == 403
    # The labelled-data export of decided cases carries the champion's recommendation, never a challenger's.
    admin = token_for(app, session, make_user(session, "admin"))
    for fmt in ("csv", "jsonl"):
        export = api.get(f"/api/v1/exports/decisions?model=claims&format={fmt}", headers=admin)
        assert export.status_code == 200 and "EXT-1" in export.text
        assert SECRET not in export.text and "secret_factor_q9" not in export.text and "0.93" not in export.text


def test_the_page_shows_the_comparison_with_its_sentences_chart_and_table(world, session, client):
    login(client, make_user(session, "analyst"))
    page = client.get("/models/claims/challengers?by=segment.claim_band")
    assert page.status_code == 200
    text = page.text
    assert "Version v2 against the champion" in text
    assert 'data-chart="challenger"' in text and 'id="challenger-table"' in text
    # 4 decided cases; the reviewer's final action was deny on two of them, as v2 said.
    assert "matched version v2 on 50.0% of cases" in text
    assert ">small</th>" in text and ">large</th>" in text  # the segment values, as the model words them
    assert "On decisions made without the AI" in text


def test_the_csv_has_the_tables_numbers(world, session, client):
    login(client, make_user(session, "model_owner"))
    response = client.get("/models/claims/challengers?by=segment.claim_band&format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    overall = next(r for r in rows if r["segment"] == "")
    assert (overall["version"], overall["n"], float(overall["agreement"])) == ("v2", "4", 0.5)
    assert {r["segment"]: r["n"] for r in rows if r["segment"]} == {"small": "3", "large": "1"}


def test_the_page_and_its_csv_keep_the_date_window(world, session, client):
    login(client, make_user(session, "analyst"))
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    page = client.get(f"/models/claims/challengers?from={tomorrow}")
    assert page.status_code == 200
    assert f"cases decided from {tomorrow}" in page.text and f'name="from" value="{tomorrow}"' in page.text
    assert "No decided cases scored by version v2" in page.text  # all 4 were decided today
    assert f"from={tomorrow}" in page.text.split('id="challenger-table"')[0]  # the CSV link keeps the window
    csv_rows = list(
        csv.DictReader(io.StringIO(client.get(f"/models/claims/challengers?from={tomorrow}&format=csv").text))
    )
    assert csv_rows == []
    assert client.get("/models/claims/challengers?to=2026-13-01").status_code == 422


def test_a_model_without_challengers_says_so(session, client):
    make_model(session)
    login(client, make_user(session, "admin"))
    page = client.get("/models/claims/challengers")
    assert page.status_code == 200 and "No challenger has scored" in page.text


@pytest.mark.parametrize("query", ["by=site", "decisions=some", "version=" + "x" * 70, "format=xml"])
def test_bad_parameters_are_422(world, session, client, query):
    login(client, make_user(session, "analyst"))
    assert client.get(f"/models/claims/challengers?{query}").status_code == 422


def test_unaided_decisions_are_compared_apart_with_the_reason(session, client):
    """With the champion in shadow, reviewers decide without the AI: the page's unaided section reports it."""
    make_model(session, stage="shadow")
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="shadow")
    )
    reviewer = make_user(session, "frontline", email="una@example.com")
    outcomes = []
    for n in range(1, 5):
        rec = make_case(session, n)
        item = ChallengerIn.model_validate(
            {"model_version": "v2", "recommended_action": "deny", "confidence": 0.6, "explanation": {"summary": "s"}}
        )
        challenger_services.add_challengers(session, TEST_ACTOR, recommendation_id=rec.id, items=[item])
        decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="override", final_action="deny")
        outcomes.append(
            OutcomeIn(recommendation_id=rec.id, outcome="deny", observed_at="2026-11-01T00:00:00Z", source="audit")
        )
    record_outcomes(session, TEST_ACTOR, items=outcomes)
    login(client, make_user(session, "analyst"))
    text = client.get("/models/claims/challengers").text
    assert "cannot have been swayed" in text
    assert "4 of version v2's cases were decided unaided" in text
    assert "it was right 100.0%" in text and "against 0.0%" in text  # the champion said pay; the truth was deny
    unaided = client.get("/models/claims/challengers?decisions=unaided&format=csv").text
    assert unaided.splitlines()[1].startswith("v2,,unaided,4,")
