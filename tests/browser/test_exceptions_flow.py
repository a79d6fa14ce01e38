"""An exception handler works an exception, an outcome arrives over HTTP, the dashboard draws."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from sqlalchemy import select

from feedback.accounts import tokens
from feedback.decision_exceptions import services as decision_exceptions
from feedback.models import DecisionException, ModelVersion
from feedback.schemas import VersionRulesIn
from tests.browser.conftest import chart_datasets
from tests.factories import TEST_ACTOR, make_case, make_owner, make_user
from tests.helpers import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def routed(live):
    """Low-confidence cases routed to the exceptions queue, and a handler."""
    session = live["session"]
    version = session.scalar(select(ModelVersion))
    decision_exceptions.set_version_rules(
        session, TEST_ACTOR, version_id=version.id, rules=VersionRulesIn(min_confidence=0.6)
    )
    cases = [make_case(session, n, confidence=0.45) for n in (1, 2)]
    make_user(session, "exception_handler", email="hana@example.test", name="Hana")
    return cases


def test_handler_claims_and_resolves_then_an_outcome_arrives(page, live, routed):
    sign_in(page, live["url"], "hana@example.test")
    page.goto(live["url"] + "/exceptions")
    page.click("#exception-table a:has-text('EXT-1')")
    page.wait_for_selector("#exception-panel")
    assert "confidence 0.45 below 0.60" in page.inner_text("#exception-panel")
    page.click("#claim-button")
    page.wait_for_selector("text=Assigned to Hana.")
    page.check("#resolve-form input[value=deny]")
    page.fill("#resolve-form input[name=note]", "Invoice does not match the claim")
    page.click("#resolve-form button[type=submit]")
    page.wait_for_selector("text=Resolved: deny.")

    # The claims ledger reports what happened, over the real HTTP API.
    session = live["session"]
    token = tokens.create_token(session, TEST_ACTOR, email=make_owner(session).email)
    request = urllib.request.Request(
        live["url"] + "/api/v1/outcomes",
        data=json.dumps(
            {
                "model": "claims",
                "external_id": "EXT-1",
                "outcome": "deny",
                "observed_at": "2026-06-01T09:00:00+00:00",
                "source": "claims_ledger",
            }
        ).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    page.reload()
    panel = page.inner_text("#exception-panel")
    assert "What happened" in panel and "reported by claims_ledger" in panel and "the AI was wrong" in panel
    session.rollback()
    exc = session.scalar(select(DecisionException).where(DecisionException.status == "resolved"))
    assert exc.resolution_action == "deny" and exc.resolution_note == "Invoice does not match the claim"
    assert page.errors == []


def test_dashboard_draws_survival_curves(page, live, routed):
    session = live["session"]
    handler = make_user(session, "exception_handler")
    first = session.scalars(select(DecisionException.id).order_by(DecisionException.id)).first()
    decision_exceptions.resolve_exception(session, handler, exception_id=first, final_action="pay")
    sign_in(page, live["url"], "hana@example.test")
    page.goto(live["url"] + "/exceptions/dashboard")
    page.wait_for_selector("#resolution-table")
    assert chart_datasets(page) == 1
    page.select_option("select[name=by]", "site")
    page.wait_for_url(re.compile(r"by=site"))
    page.wait_for_selector("#resolution-table th:has-text('Leeds')")
    assert chart_datasets(page) >= 1
    assert page.errors == []
