"""Each role lands where its work is, in a real browser: the model owner's models, with a drawn trend."""

from __future__ import annotations

import re

import pytest

from feedback import services
from tests.browser.conftest import chart_datasets
from tests.factories import PASSWORD, make_case, make_owner, make_user

pytestmark = pytest.mark.browser


def sign_in(page, live, email):
    """Sign in through the form."""
    page.goto(live["url"] + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_roles_land_on_their_pages_and_the_owner_finds_their_models(page, live):
    session = live["session"]
    for n in range(6):
        rec = make_case(session, n)
        services.record_decision(session, recommendation_id=rec.id, reviewer=live["reviewer"], action="accept")
    make_owner(session, "claims", email="owner@example.test")
    make_user(session, "exception_handler", email="handler@example.test")
    make_user(session, "analyst", email="ana@example.test")

    sign_in(page, live, "handler@example.test")
    page.wait_for_url(re.compile(r"/exceptions$"))
    page.click("button:has-text('Sign out')")
    sign_in(page, live, "ana@example.test")
    page.wait_for_url(re.compile(r"/impact$"))
    page.click("button:has-text('Sign out')")

    sign_in(page, live, "owner@example.test")
    page.wait_for_url(re.compile(r"/models$"))
    assert page.get_attribute("header nav a[aria-current=page]", "href") == "/models"
    card = page.locator("#model-claims")
    assert "yours" in card.inner_text() and "production" in card.inner_text()
    assert chart_datasets(page, "#model-claims canvas[data-chart]") == 1
    card.locator("nav a:has-text('Who was right')").click()
    page.wait_for_url(re.compile(r"/models/claims/right"))
    assert page.errors == []
