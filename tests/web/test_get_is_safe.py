"""GET never changes state: every GET route of the app, as every role, leaves every row as it was."""

from __future__ import annotations

from flask import Flask

from feedback.models import ROLES
from tests.helpers import QUERY, url_for_rule
from tests.web.hostile.conftest import database_fingerprint


def get_rules(app: Flask) -> list[tuple[str, str]]:
    """(endpoint, rule) of every GET route but static files."""
    rules = app.url_map.iter_rules()
    return sorted((r.endpoint, r.rule) for r in rules if "GET" in r.methods and r.endpoint != "static")


def test_every_get_route_as_every_role_writes_nothing(app: Flask, world):
    rules = get_rules(app)
    assert {"review.case", "review.next_case", "api.get_recommendation"} <= {endpoint for endpoint, _ in rules}
    before = database_fingerprint(app)
    changed = []
    for endpoint, rule in rules:
        url = url_for_rule(rule, world["ids"]) + QUERY.get(endpoint, "")
        is_api = rule.startswith("/api/") or endpoint == "metrics"
        for role in [None, *ROLES]:
            headers = world["tokens"][role] if is_api and role else {}
            # As a browser following a link from our own pages: the review page may claim at once.
            headers = {**headers, "Sec-Fetch-Site": "same-origin"}
            for extra in ({}, {"HX-Request": "true"}):  # the page and its fragment
                with world["clients"][role].get(url, headers={**headers, **extra}) as response:
                    assert response.status_code < 500, f"GET {url} as {role}: {response.status_code}"
            after = database_fingerprint(app)
            if after != before:
                changed.append(f"GET {url} as {role or 'anonymous'}")
                before = after
    assert changed == [], "these GET requests changed the database:\n" + "\n".join(changed)


def test_the_fingerprint_sees_a_claim(app: Flask, world):
    """The check above could fail: claiming a case (a POST) changes the fingerprint."""
    before = database_fingerprint(app)
    url = f"/review/{world['ids']['recommendation_id']}"
    assert world["clients"]["frontline"].post(url).status_code in (302, 409)
    assert database_fingerprint(app) != before
