"""Each role lands where its work is, in a real browser: the model owner's models, with a drawn trend."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.models import Alert, Decision, Guardrail, ModelVersion, Recommendation
from feedback.overrides import rollup
from feedback.review import decisions, ingest
from feedback.schemas import ModelVersionIn, RecommendationIn
from tests.browser.conftest import chart_datasets
from tests.factories import TEST_ACTOR, make_case, make_owner, make_user, payload
from tests.helpers import sign_in

pytestmark = pytest.mark.browser


def test_roles_land_on_their_pages_and_the_owner_finds_their_models(page, live):
    session = live["session"]
    for n in range(6):
        rec = make_case(session, n)
        decisions.record_decision(session, live["reviewer"], recommendation_id=rec.id, action="accept")
    make_owner(session, "claims", email="owner@example.test")
    make_user(session, "exception_handler", email="handler@example.test")
    make_user(session, "analyst", email="ana@example.test")

    sign_in(page, live["url"], "handler@example.test")
    page.wait_for_url(re.compile(r"/exceptions$"))
    page.click("button:has-text('Sign out')")
    sign_in(page, live["url"], "ana@example.test")
    page.wait_for_url(re.compile(r"/impact$"))
    page.click("button:has-text('Sign out')")

    sign_in(page, live["url"], "owner@example.test")
    page.wait_for_url(re.compile(r"/models$"))
    assert page.get_attribute("header nav a[aria-current=page]", "href") == "/models"
    card = page.locator("#model-claims")
    assert "yours" in card.inner_text() and "production" in card.inner_text()
    assert chart_datasets(page, "#model-claims canvas[data-chart]") == 1
    card.locator("nav a:has-text('Who was right')").click()
    page.wait_for_url(re.compile(r"/models/claims/right"))
    assert page.errors == []


def test_overview_shows_both_versions_and_drill_down_pages_to_a_read_only_case(page, live):
    session = live["session"]
    catalog.add_model_version(session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2"))
    v1, v2 = session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
    ingested = [RecommendationIn.model_validate(payload(n, site="Leeds")) for n in range(110)]
    ingest.ingest_recommendations(session, TEST_ACTOR, items=ingested)
    now = utcnow()
    for n, rec in enumerate(session.scalars(select(Recommendation).order_by(Recommendation.id))):
        old = n < 105  # v1's decisions, 60 days ago: outside the old 30-day default
        decided = now - timedelta(days=60 if old else 0, minutes=n)
        session.add(
            Decision(
                recommendation_id=rec.id,
                model_id=rec.model_id,
                model_version_id=v1.id if old else v2.id,
                reviewer_id=live["reviewer"].id,
                action="override",
                final_action="deny",
                reason_code="missing_context",
                opened_at=decided - timedelta(seconds=20),
                decided_at=decided,
                ai_shown=True,
            )
        )
    session.execute(update(Recommendation).values(status="decided"))
    v1.stage = "retired"
    session.flush()
    guardrail = Guardrail(model_version_id=v1.id, kind="override_rate_above", window_size=50, threshold=0.1)
    session.add(guardrail)
    session.flush()
    session.add(Alert(guardrail_id=guardrail.id, model_version_id=v1.id, message="v1 overridden too often"))
    rollup.rebuild(session)
    session.commit()
    make_user(session, "analyst", email="ana@example.test")

    sign_in(page, live["url"], "ana@example.test")
    page.wait_for_url(re.compile(r"/impact$"))
    page.goto(live["url"] + "/models/claims")
    assert "v2 and the version before it, v1" in page.inner_text("#period-note")
    assert page.locator("#version-table a:has-text('v1')").count() == 1
    assert page.locator("div.alert").count() == 0 and page.locator("#alert-history").count() == 1

    page.click("#version-table a:has-text('v1')")  # the breakdown of v1 over the period shown
    page.click("#breakdown-table a:has-text('Leeds')")
    page.wait_for_selector(".page-count")
    assert page.inner_text(".page-count").startswith("100 of 105")
    page.click("a.next-page")
    page.wait_for_selector(".page-count:has-text('Cases 101–105 of 105')")
    assert page.locator("#cases-table tbody tr").count() == 5 and page.locator("a.next-page").count() == 0
    page.locator("#cases-table tbody a").first.click()
    page.wait_for_selector("#case-history")
    assert "AI recommends" in page.inner_text("#case-body") and "override → Deny" in page.inner_text("#case-decision")
    assert "Rita" not in page.inner_text("#case-body")  # an analyst sees the reviewer's pseudonym
    assert page.errors == []
