"""Error pages speak Countersign's voice: what happened and what to do next, never the framework's stock text."""

from __future__ import annotations

import json
import re

import pytest
from flask import abort
from werkzeug.exceptions import default_exceptions

from tests.factories import login, make_model, make_user

STATUSES = (400, 403, 404, 405, 409, 422, 429, 500)
# What a page in our voice always has: a heading, what happened and a next step.
SECTIONS = ("<h1>", 'id="error-what"', 'id="error-next"')


def stock_wording(status: int) -> str:
    """The framework's own description of a status (the text that must never reach a person)."""
    return default_exceptions[status].description


def plain(html: str) -> str:
    """The page's text as a person reads it (entities decoded, tags dropped)."""
    import html as htmllib

    return htmllib.unescape(re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def raising(app):
    """A route that fails with any status the way framework code does (abort with no words of ours)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 is answered as in production

    def fail(status: int):
        if status == 500:
            raise RuntimeError("an unexpected bug")
        abort(status)

    app.add_url_rule("/test-fail/<int:status>", "test_fail", fail)
    return app


@pytest.mark.parametrize("status", STATUSES)
def test_every_error_page_says_what_happened_and_what_to_do_in_our_words(raising, session, client, status):
    login(client, make_user(session, "analyst"))
    page = client.get(f"/test-fail/{status}")
    assert page.status_code == status and page.mimetype == "text/html"
    text = plain(page.text)
    assert stock_wording(status) not in text
    assert all(section in page.text for section in SECTIONS)
    assert "Go to your own pages" in page.text
    if status == 500:
        # A reference a person can quote to an admin, and the bug's own text is not shown.
        assert re.search(r"Reference:\s+[0-9a-f]{32}", text) and "an unexpected bug" not in text


def test_a_frontline_reviewer_opening_an_admin_page(session, client):
    make_model(session)
    login(client, make_user(session, "frontline"))
    page = client.get("/admin/users")
    assert page.status_code == 403
    text = plain(page.text)
    assert "permission to access the requested resource" not in text and stock_wording(403) not in text
    assert "This page is not open to you" in text and "ask an admin" in text


def test_our_own_words_stay_under_our_heading(session, client):
    login(client, make_user(session, "analyst"))
    page = client.get("/impact/analyses/999999")  # a 404 of a view
    assert page.status_code == 404 and stock_wording(404) not in plain(page.text)
    wrong_method = client.get("/logout")  # a POST-only route
    assert wrong_method.status_code == 405 and "Allow" in wrong_method.headers
    assert stock_wording(405) not in plain(wrong_method.text) and "cannot be done from here" in wrong_method.text


def test_htmx_gets_a_partial_and_a_toast_and_the_api_keeps_json(raising, session, client, htmx_client, app):
    user = make_user(session, "analyst")
    login(htmx_client, user)
    fragment = htmx_client.get("/test-fail/403")
    assert fragment.status_code == 403 and fragment.headers["HX-Reswap"] == "none"
    assert fragment.text.lstrip().startswith('<section class="card narrow" id="error-page"')
    assert "<html" not in fragment.text
    toast = json.loads(fragment.headers["HX-Trigger"])["countersign:problem"]
    assert "not open to you" in toast and stock_wording(403) not in toast
    api = client.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.is_json and api.json["error"]["code"]
