"""A session cookie copied before logout is dead afterwards, in a real browser."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from feedback.models import AuditEvent, Decision, Recommendation
from tests.factories import PASSWORD, make_case

pytestmark = pytest.mark.browser


def test_a_cookie_copied_before_logout_is_dead_after_it(browser, page, live):
    rec = make_case(live["session"], 1)
    page.goto(live["url"] + "/login")
    page.fill("input[name=email]", "rita@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/queue"))
    copied = [c for c in page.context.cookies() if c["name"] == "session"]
    assert len(copied) == 1 and copied[0]["httpOnly"]
    csrf = page.get_attribute(".signout input[name=csrf_token]", "value")

    thief = browser.new_context()
    try:
        thief.add_cookies(copied)
        stolen = thief.new_page()
        # Before logout the copy works like the original.
        stolen.goto(live["url"] + "/queue")
        assert stolen.url.endswith("/queue") and "Sign out" in stolen.inner_text("header")

        page.click(".signout button[type=submit]")
        page.wait_for_url(re.compile(r"/login"))

        # A fresh context with the copied cookie is sent to the sign-in page, for any page.
        fresh = browser.new_context()
        try:
            fresh.add_cookies(copied)
            replay = fresh.new_page()
            replay.goto(live["url"] + f"/review/{rec.id}")
            assert re.search(r"/login(\?|$)", replay.url)
            assert replay.locator("input[name=password]").count() == 1
            assert "Sign out" not in replay.inner_text("header")
            # A POST with the copied cookie and a valid CSRF token is turned away and changes nothing.
            fresh.add_cookies(copied)  # the GET above cleared it; put the stolen copy back
            audited = live["session"].scalar(select(func.count()).select_from(AuditEvent))
            answer = fresh.request.post(
                live["url"] + f"/review/{rec.id}/decision",
                form={"action": "escalate", "note": "sent with a stolen cookie"},
                headers={"X-CSRFToken": csrf},
                max_redirects=0,
            )
            assert answer.status == 302 and answer.headers["location"].startswith("/login")
        finally:
            fresh.close()
    finally:
        thief.close()
    own = live["session"]
    own.expire_all()
    assert own.scalar(select(func.count()).select_from(Decision)) == 0
    assert own.get(Recommendation, rec.id).status == "open"
    assert own.scalar(select(func.count()).select_from(AuditEvent)) == audited
    assert page.errors == []
