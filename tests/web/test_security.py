"""Sign-in throttling, cookie flags, headers and CSRF on every state-changing page route."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from feedback.models import AuditEvent
from tests.factories import PASSWORD, make_user, sign_in_cookie
from webapp import create_app
from webapp.extensions import db


@pytest.fixture
def make_app(database_url):
    """Apps with their own settings on the test database, their connections closed afterwards."""
    made = []

    def make(**settings):
        made.append(create_app({"DATABASE_URL": database_url, "SECRET_KEY": "k", **settings}))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


def audit_count(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(AuditEvent))


def test_failed_sign_ins_are_throttled_per_account_and_address(app, client, session):
    user = make_user(session, email="ana@example.test")
    other = make_user(session, email="bo@example.test")
    for _ in range(5):
        assert client.post("/login", data={"email": user.email, "password": "guess"}).status_code == 401
    before = audit_count(session)
    # Even the right password is refused from this address while it waits, and is not checked.
    blocked = client.post("/login", data={"email": "ANA@example.test ", "password": PASSWORD})
    assert blocked.status_code == 429
    assert 29 <= int(blocked.headers["Retry-After"]) <= 30
    assert "Too many failed sign-ins" in blocked.text
    assert audit_count(session) == before  # a flood of refused attempts does not grow the audit trail
    # The guesser cannot lock the owner out: from the owner's own address the account still opens.
    owner = app.test_client()
    response = owner.post(
        "/login", data={"email": user.email, "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert response.status_code == 302
    # Nor anyone else behind the guesser's address.
    assert client.post("/login", data={"email": other.email, "password": PASSWORD}).status_code == 302


def test_one_address_guessing_many_accounts_locks_none_of_them(app, client, session):
    make_user(session, email="cy@example.test")
    for n in range(40):
        response = client.post("/login", data={"email": f"nobody{n}@example.test", "password": "x"})
        assert response.status_code == 401
    assert client.post("/login", data={"email": "cy@example.test", "password": PASSWORD}).status_code == 302


@pytest.mark.parametrize("email", ["", "   ", "ünïcödé@example.test", "x" * 300 + "@example.test"])
def test_odd_e_mails_are_plain_failed_sign_ins(app, client, session, email):
    # (an e-mail longer than any can be, 320 characters, is a 422 naming the field: tests/web/hostile)
    before = audit_count(session)
    response = client.post("/login", data={"email": email, "password": "whatever it is"})
    assert response.status_code == 401 and "Wrong email or password" in response.text
    assert audit_count(session) == before + 1


def test_the_delay_runs_out(app, client, session):
    app.config["LOGIN_FIRST_DELAY_SECONDS"] = 1
    user = make_user(session)
    for _ in range(5):
        client.post("/login", data={"email": user.email, "password": "guess"})
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 429
    import time

    time.sleep(1.2)
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302


def test_session_cookie_is_secure_httponly_and_samesite_by_default(make_app, session):
    app = make_app(WTF_CSRF_ENABLED=False)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    user = make_user(session)
    client = app.test_client()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD}, base_url="https://cs.test")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_content_security_policy_forbids_inline_script(client):
    csp = client.get("/login").headers["Content-Security-Policy"]
    script = re.search(r"script-src ([^;]+)", csp).group(1)
    assert script.strip() == "'self'" and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp


def placeholder(match: re.Match[str]) -> str:
    """A value that routes for a URL rule's placeholder."""
    return next((word for word in ("enable", "start") if word in match.group(0)), "1")


def test_every_page_post_needs_a_csrf_token(make_app, session):
    """With CSRF on, each state-changing page route refuses a request without a token, htmx or not."""
    app = make_app(SESSION_COOKIE_SECURE=False, TESTING=True)
    admin = make_user(session, "admin")
    posts = [
        r
        for r in app.url_map.iter_rules()
        if r.methods & {"POST", "PUT", "PATCH", "DELETE"} and not r.rule.startswith("/api/")
    ]
    assert len(posts) >= 29
    before = audit_count(session)
    for htmx in (False, True):
        client = app.test_client()
        sign_in_cookie(client, admin)
        headers = {"HX-Request": "true"} if htmx else {}
        for rule in posts:
            url = re.sub(r"<[^<>]+>", placeholder, rule.rule)
            status = client.post(url, data={"email": admin.email, "password": PASSWORD}, headers=headers).status_code
            assert status == 400, f"{'htmx ' if htmx else ''}POST {url}: {status}"
    assert audit_count(session) == before
