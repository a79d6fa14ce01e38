"""A frontline reviewer who opens an admin page reads why, in Countersign's words, and where to go."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import Forbidden, NotFound

from tests.helpers import sign_in

pytestmark = pytest.mark.browser


def test_frontline_opening_an_admin_page_reads_our_words(page, live):
    sign_in(page, live["url"], live["reviewer"].email)
    for path in ("/admin/users", "/admin/webhooks"):
        answer = page.goto(live["url"] + path)
        assert answer.status == 403
        text = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
        assert Forbidden.description not in text and "permission to access" not in text
        assert page.inner_text("h1") == "This page is not open to you"
        assert "ask an admin" in page.inner_text("#error-next")
    # The way out leads to the reviewer's own work.
    page.click("text=Go to your own pages")
    page.wait_for_load_state()
    assert page.url.rstrip("/").endswith("/queue")
    missing = page.goto(live["url"] + "/no-such-page")
    assert missing.status == 404 and NotFound.description not in page.inner_text("body")
    assert page.inner_text("h1") == "Countersign cannot find that"
    assert [e for e in page.errors if "403" not in e and "404" not in e] == []
