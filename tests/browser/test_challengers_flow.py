"""Shadow challengers in a real browser: the comparison page draws its chart with the table's numbers,
and a reviewer working the queue never sees a challenger."""

from __future__ import annotations

import re

import pytest

from feedback.catalog import services as catalog
from feedback.challengers import services as challenger_services
from feedback.review import decisions
from feedback.schemas import ChallengerIn, ModelVersionIn
from tests.browser.conftest import chart_datasets
from tests.factories import TEST_ACTOR, make_case, make_user
from tests.helpers import sign_in

pytestmark = pytest.mark.browser

SECRET = "Shadow-only reasoning 5KX"


def seed(session, reviewer):
    """Six claims cases scored by a shadow v2 as well; four decided, with outcomes on all of them."""
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="shadow")
    )
    cases = [
        make_case(session, n, segment={"claim_band": band}) for n, band in enumerate(["small"] * 3 + ["large"] * 3, 1)
    ]
    for rec in cases:
        item = ChallengerIn.model_validate(
            {"model_version": "v2", "recommended_action": "deny", "confidence": 0.9, "explanation": {"summary": SECRET}}
        )
        challenger_services.add_challengers(session, TEST_ACTOR, recommendation_id=rec.id, items=[item])
    for rec, final in zip(cases[:4], ["pay", "deny", "deny", "pay"], strict=True):
        override = final != "pay"
        decisions.record_decision(
            session,
            reviewer,
            recommendation_id=rec.id,
            action="override" if override else "accept",
            final_action=final if override else None,
            reason_code="missing_context" if override else None,
        )
    return cases


def test_the_comparison_page_draws_the_tables_numbers(page, live):
    seed(live["session"], live["reviewer"])
    make_user(live["session"], "model_owner", email="owner@example.test")
    sign_in(page, live["url"], email="owner@example.test")
    page.goto(live["url"] + "/models")
    page.click("text=Challengers")
    page.wait_for_selector("#challenger-table")
    assert "Version v2 against the champion" in page.inner_text("h2")
    page.select_option("select[name=by]", "segment.claim_band")
    page.wait_for_selector("#challenger-table >> text=large")
    assert page.url.endswith("by=segment.claim_band") or "by=segment.claim_band" in page.url
    assert chart_datasets(page) == 4  # challenger, its interval's two edges, champion
    rows = page.locator("#challenger-table tbody tr")
    assert rows.count() == 3  # all cases, small, large
    assert "50.0%" in rows.nth(0).inner_text()  # reviewers' final decision matched v2 on 2 of 4
    page.select_option("select[name=decisions]", "unaided")
    page.wait_for_selector("text=No decided cases scored by version v2 were decided without the AI")
    assert not page.errors


def test_a_reviewer_working_the_queue_never_sees_a_challenger(page, live):
    seed(live["session"], make_user(live["session"], email="other@example.test"))
    sign_in(page, live["url"])
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    text = page.inner_text("body")
    assert "AI recommends" in text
    assert SECRET not in text and "challenger" not in text.lower() and not re.search(r"\bv2\b", text)
    page.goto(live["url"] + "/models/claims/challengers")
    assert "challenger-table" not in page.content()
    assert not [e for e in page.errors if "403" not in e]
