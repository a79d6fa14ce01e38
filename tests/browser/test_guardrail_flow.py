"""A guardrail pauses a version: reviewers decide unaided until the model owner resumes it."""

from __future__ import annotations

import pytest

from feedback.review import decisions
from tests.factories import make_case, make_owner
from tests.helpers import sign_in

pytestmark = pytest.mark.browser


def test_guardrail_pauses_and_owner_resumes(browser, live):
    session = live["session"]
    reviewer = live["reviewer"]
    for n in range(20):  # history: 6 overrides in 20
        rec = make_case(session, n)
        extra = (
            {"action": "override", "final_action": "deny", "reason_code": "missing_context"}
            if n < 6
            else {"action": "accept"}
        )
        decisions.record_decision(session, reviewer, recommendation_id=rec.id, **extra)
    make_case(session, 100)
    make_case(session, 101)
    make_owner(session, email="owner@example.test", name="Omar")

    owner = browser.new_context().new_page()
    owner.errors = []
    owner.on("pageerror", lambda exc: owner.errors.append(str(exc)))
    sign_in(owner, live["url"], "owner@example.test")
    owner.goto(live["url"] + "/models/claims")
    owner.fill("#guardrail-form input[name=window_size]", "20")
    owner.fill("#guardrail-form input[name=threshold_pct]", "25")
    owner.check("#guardrail-form input[name=auto_pause]")
    owner.click("#guardrail-form button[type=submit]")
    owner.wait_for_selector("text=Guardrail added")

    # The next decision arrives (through the same service as the review screen) and trips it: 7 in 21 > 25%.
    rec = make_case(session, 30)
    decisions.record_decision(
        session,
        reviewer,
        recommendation_id=rec.id,
        action="override",
        final_action="deny",
        reason_code="missing_context",
    )

    rita = browser.new_context().new_page()
    rita.errors = []
    rita.on("pageerror", lambda exc: rita.errors.append(str(exc)))
    sign_in(rita, live["url"], "rita@example.test")
    rita.click("#start-reviewing")
    rita.wait_for_selector("#review-panel[data-case-id][data-ready]")
    assert "The AI recommendation is hidden" in rita.inner_text("#review-panel")
    assert "AI recommends" not in rita.inner_text("#review-panel")

    owner.reload()
    owner.wait_for_selector(".alert:has-text('the version was paused')")
    owner.click(".resume-button")
    owner.wait_for_selector("text=v1 resumed (production)")

    rita.reload()
    rita.wait_for_selector("#review-panel[data-case-id][data-ready]")
    assert "AI recommends" in rita.inner_text("#review-panel")
    rita.keyboard.press("a")
    rita.wait_for_selector("text=Accepted case")
    assert owner.errors == [] and rita.errors == []
