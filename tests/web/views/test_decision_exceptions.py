"""Exceptions pages: queue, detail, claim and resolve, dashboard and CSV, settings."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import select

from feedback.decision_exceptions import services as decision_exceptions
from feedback.models import DecisionException, ModelVersion, SlaPolicy
from feedback.schemas import VersionRulesIn
from tests.factories import TEST_ACTOR, login, make_case, make_model, make_owner, make_user, token_for


@pytest.fixture
def handler(session, client, htmx_client):
    """A signed-in exception handler and three routed cases (two low-confidence, one policy flag)."""
    make_model(session)
    version = session.scalar(select(ModelVersion))
    rules = VersionRulesIn(min_confidence=0.6, policy_flags=["high_value"])
    decision_exceptions.set_version_rules(session, TEST_ACTOR, version_id=version.id, rules=rules)
    make_case(session, 1, confidence=0.5, site="Leeds")
    make_case(session, 2, confidence=0.4, site="Bristol")
    make_case(session, 3, flags=["high_value"], site="Leeds")
    user = make_user(session, "exception_handler", name="Hana")
    login(client, user)
    login(htmx_client, user)
    return user


def ids(session):
    """Exception ids, oldest first."""
    session.rollback()
    return session.scalars(select(DecisionException.id).order_by(DecisionException.id)).all()


def test_queue_orders_by_sla_and_filters(handler, client, htmx_client):
    page = client.get("/exceptions")
    assert page.status_code == 200 and "3</strong> matching" in page.text
    # The policy exception (8 h SLA) is due before the low-confidence ones (24 h).
    assert page.text.index("EXT-3") < page.text.index("EXT-1")
    fragment = htmx_client.get("/exceptions?kind=low_confidence&site=Leeds")
    assert fragment.text.lstrip().startswith('<div id="exception-table">')
    assert "1</strong> matching" in fragment.text and "EXT-1" in fragment.text and "EXT-3" not in fragment.text


def test_claim_then_resolve_over_htmx(handler, client, htmx_client, session):
    exc_id = ids(session)[0]
    page = client.get(f"/exceptions/{exc_id}")
    assert page.status_code == 200 and "confidence 0.50 below 0.60" in page.text and "Claim" in page.text
    claimed = htmx_client.post(f"/exceptions/{exc_id}/assign", data={"assignee": "me"})
    assert claimed.status_code == 200 and "Assigned to Hana." in claimed.text
    assert claimed.text.lstrip().startswith('<section id="exception-panel"')
    missing = htmx_client.post(f"/exceptions/{exc_id}/resolve", data={"note": "x"})
    assert missing.status_code == 422 and "must be one of pay, review, deny" in missing.text
    done = htmx_client.post(f"/exceptions/{exc_id}/resolve", data={"final_action": "review", "note": "docs <b>ok</b>"})
    assert done.status_code == 200 and "Resolved: Review." in done.text
    assert "docs &lt;b&gt;ok&lt;/b&gt;" in done.text
    again = htmx_client.post(f"/exceptions/{exc_id}/resolve", data={"final_action": "pay"})
    assert again.status_code == 409 and "already resolved" in again.text


def test_assigned_to_someone_else(handler, app, session, htmx_client):
    exc_id = ids(session)[0]
    other = make_user(session, "exception_handler", name="Lena")
    decision_exceptions.assign_exception(session, other, exception_id=exc_id, assignee_id=other.id)
    page = htmx_client.get(f"/exceptions/{exc_id}")
    assert 'id="resolve-form"' not in page.text
    refused = htmx_client.post(f"/exceptions/{exc_id}/resolve", data={"final_action": "pay"})
    assert refused.status_code == 409 and "assigned to Lena" in refused.text


def test_dashboard_table_chart_and_csv_agree_with_the_api(handler, app, session, client):
    decision_exceptions.resolve_exception(session, handler, exception_id=ids(session)[0], final_action="pay")
    page = client.get("/exceptions/dashboard?by=kind")
    assert page.status_code == 200 and 'id="resolution-table"' in page.text
    chart = json.loads(
        re.search(r'<script type="application/json" id="survival-data">(.*?)</script>', page.text, re.S).group(1)
    )
    assert [s["label"] for s in chart["series"]] == ["Low confidence", "Policy rule"]  # words, not codes
    assert chart["series"][0]["points"][0] == {"x": 0, "y": 1}
    download = client.get("/exceptions/dashboard.csv?by=kind")
    assert download.mimetype == "text/csv" and "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    api = client.get("/api/v1/analytics/exceptions/resolution?by=kind", headers=token_for(app, session, handler)).json
    assert [r["key"] for r in rows] == [r["key"] for r in api["rows"]] == ["low_confidence", "policy", "all"]
    for mine, theirs in zip(rows, api["rows"], strict=True):
        assert int(mine["n"]) == theirs["n"] and int(mine["censored"]) == theirs["censored"]
        assert (mine["median_hours"] == "") == (theirs["median_hours"] is None)
    fragment = client.get("/exceptions/dashboard?by=site", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="dashboard-body">') and "Leeds" in fragment.text


def test_settings_save_sla_and_rules(session, client, htmx_client):
    make_model(session)
    owner = make_owner(session)
    login(htmx_client, owner)
    page = htmx_client.get("/admin/models/claims/settings")
    assert page.status_code == 200 and 'name="policy.high"' in page.text
    saved = htmx_client.post("/admin/models/claims/sla", data={"policy.high": "6", "low_confidence.medium": ""})
    assert saved.status_code == 200 and "SLA table saved." in saved.text
    session.rollback()
    assert [(p.kind, p.severity, p.hours) for p in session.scalars(select(SlaPolicy))] == [("policy", "high", 6.0)]
    bad = htmx_client.post("/admin/models/claims/sla", data={"policy.high": "soon"})
    assert bad.status_code == 422 and "policy.high" in bad.text and "must be a number from 0 to 8760" in bad.text
    version = session.scalar(select(ModelVersion))
    rules = htmx_client.post(
        f"/admin/versions/{version.id}/rules",
        data={
            "min_confidence": "0.7",
            "policy_flags": "vip, high_value",
            "required_features": "amount",
            "audit_sample_pct": "5",
        },
    )
    assert rules.status_code == 200 and "Rules for v1 saved." in rules.text
    session.rollback()
    assert session.get(ModelVersion, version.id).rules == {
        "min_confidence": 0.7,
        "policy_flags": ["vip", "high_value"],
        "required_features": ["amount"],
        "audit_sample_rate": 0.05,
    }
    wrong = htmx_client.post(f"/admin/versions/{version.id}/rules", data={"min_confidence": "1.5"})
    assert wrong.status_code == 422 and "min_confidence" in wrong.text


def test_roles(session, client):
    make_model(session)
    login(client, make_user(session, "frontline"))
    assert client.get("/exceptions").status_code == 403
    assert client.get("/exceptions/dashboard").status_code == 403
    analyst = client.application.test_client()
    login(analyst, make_user(session, "analyst"))
    assert analyst.get("/exceptions").status_code == 403
    assert analyst.get("/exceptions/dashboard").status_code == 200
    assert analyst.post("/admin/models/claims/sla", data={}).status_code == 403
