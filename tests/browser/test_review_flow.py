"""A reviewer works the queue in a real browser, with the keyboard."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from feedback import permissions
from feedback.models import Decision, Recommendation
from feedback.review import decisions
from tests.factories import PASSWORD, make_case, make_model, make_user
from tests.helpers import sign_in

pytestmark = pytest.mark.browser


def shown_case(page) -> str:
    """The id of the case in the review panel."""
    return page.get_attribute("#review-panel", "data-case-id")


def test_keyboard_accept_override_escalate_and_queue_advances(page, live):
    make_model(live["session"], "alerts", actions=("raise_alert", "dismiss"))
    for n in range(1, 5):
        if n == 2:  # a yes/no model: overriding it takes two keys, O and the reason's number
            make_case(live["session"], n, model="alerts", recommended_action="raise_alert")
        else:
            make_case(live["session"], n)
    sign_in(page, live["url"])
    assert "4</strong> open" in page.inner_html("#queue-table")
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    first = shown_case(page)
    assert "AI recommends" in page.inner_text("#review-panel")

    page.keyboard.press("a")
    page.wait_for_selector("text=Accepted case EXT-1 (pay).")
    page.wait_for_selector("#review-panel[data-ready]")  # keys wait for the settle time
    second = shown_case(page)
    assert second != first and page.url.endswith(f"/review/{second}")

    page.keyboard.press("o")
    assert page.is_visible("#override-form")
    page.keyboard.press("1")
    page.wait_for_selector("text=Overrode case EXT-2")
    page.wait_for_selector("#review-panel[data-ready]")
    third = shown_case(page)

    page.keyboard.press("e")
    page.keyboard.type("Policy wording is ambiguous")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Escalated case EXT-3.")
    assert shown_case(page) not in (first, second, third)

    live["session"].rollback()
    decisions = (
        live["session"]
        .execute(
            select(
                Recommendation.external_id, Decision.action, Decision.final_action, Decision.reason_code, Decision.note
            )
            .join(Decision, Decision.recommendation_id == Recommendation.id)
            .order_by(Decision.id)
        )
        .all()
    )
    assert [tuple(d) for d in decisions] == [
        ("EXT-1", "accept", "pay", None, ""),
        ("EXT-2", "override", "dismiss", "missing_context", ""),
        ("EXT-3", "escalate", None, None, "Policy wording is ambiguous"),
    ]
    page.goto(live["url"] + "/queue")
    assert "1</strong> open" in page.inner_html("#queue-table")
    assert page.errors == []


def test_override_with_three_actions_asks_for_the_final_action(page, live):
    make_case(live["session"], 1)
    sign_in(page, live["url"])
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    # O, then the final action's number (pay -> 1 review or 2 deny), then the reason's number.
    page.keyboard.press("o")
    assert "Press the final action's number, then the reason's number." in page.inner_text("#override-form")
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.wait_for_selector("text=Overrode case EXT-1 (review).")
    live["session"].rollback()
    assert live["session"].scalar(select(Decision.reason_code)) == "policy_exception"
    assert page.errors == []


def test_losing_a_race_shows_a_clear_message(page, live):
    make_case(live["session"], 1)
    sign_in(page, live["url"])
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    rec_id = int(shown_case(page))
    # The claim expires, and someone else decides through the API in the meantime.
    live["session"].rollback()  # leave the read snapshot before writing
    live["session"].execute(Recommendation.__table__.update().values(claimed_by_id=None, claim_expires_at=None))
    live["session"].commit()
    other = make_user(live["session"], name="Otto")
    decisions.record_decision(live["session"], other, recommendation_id=rec_id, action="accept", channel="api")
    page.keyboard.press("a")
    page.wait_for_selector("text=Your decision was not saved")
    # Rita sees who decided as a pseudonym: a colleague's identity is for admins only.
    shown = page.inner_text("#review-panel")
    assert f"Decided by {permissions.pseudonym(other.id)}" in shown and "Otto" not in shown
    assert page.errors == []


def test_hostile_explanation_renders_inert(page, live):
    make_case(
        live["session"],
        1,
        explanation={
            "summary": "<script>window.__owned = 1</script><b>bold</b>",
            "factors": [{"name": '<img src=x onerror="window.__owned = 2">', "value": "<i>v</i>", "contribution": 0.5}],
        },
        features={"note": '<svg onload="window.__owned = 3"></svg>'},
    )
    sign_in(page, live["url"])
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    assert page.evaluate("window.__owned") is None
    text = page.inner_text("#review-panel")
    assert "<script>window.__owned = 1</script><b>bold</b>" in text
    assert page.query_selector("#review-panel b") is None and page.query_selector("#review-panel img") is None


def test_queue_filter_swaps_table_without_errors(page, live):
    make_case(live["session"], 1, site="Leeds")
    make_case(live["session"], 2, site="Bristol")
    sign_in(page, live["url"])
    page.select_option("select[name=site]", "Bristol")
    page.wait_for_selector("#queue-table a:has-text('EXT-1')", state="detached")
    assert "EXT-2" in page.inner_text("#queue-table") and "EXT-1" not in page.inner_text("#queue-table")
    assert "site=Bristol" in page.url
    assert page.errors == []


def test_model_owner_registers_a_model_in_the_browser(page, live):
    make_user(live["session"], "model_owner", email="owner@example.test")
    page.goto(live["url"] + "/login")
    page.fill("input[name=email]", "owner@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/models$"))  # a model owner lands on their models
    page.click("header nav a:has-text('Registry')")
    page.wait_for_url(re.compile(r"/admin/models"))
    page.fill("#model-form input[name=key]", "bad key")
    page.fill("#model-form input[name=name]", "Loans")
    page.fill("#model-form textarea[name=actions]", "approve, decline")
    page.fill("#model-form textarea[name=reason_codes]", "income | Income not verified")
    page.click("#model-form button[type=submit]")
    page.wait_for_selector("#model-form .problem")
    page.fill("#model-form input[name=key]", "loans")
    page.click("#model-form button[type=submit]")
    page.wait_for_selector("text=Loan")
    page.wait_for_selector("h2:has-text('Loans')")
    assert page.errors == []


def test_expired_form_shows_a_toast_and_keeps_the_case(page, live):
    make_case(live["session"], 1)
    sign_in(page, live["url"])
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    case = shown_case(page)
    # As after a server restart with a new secret: every token on the page is stale.
    page.evaluate(
        "() => { document.body.setAttribute('hx-headers', JSON.stringify({'X-CSRFToken': 'stale'}));"
        " document.querySelectorAll('input[name=csrf_token]').forEach(i => { i.value = 'stale'; }); }"
    )
    page.keyboard.press("a")
    page.wait_for_selector("#toast:not([hidden]):has-text('This form has expired')")
    assert shown_case(page) == case and "AI recommends" in page.inner_text("#review-panel")
    live["session"].rollback()
    assert live["session"].scalar(select(Decision.id)) is None  # nothing was stored
    assert [e for e in page.errors if "400" not in e] == []
