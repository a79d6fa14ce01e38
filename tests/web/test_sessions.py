"""Sessions end on the server: logout, password, role and deactivation; idle and absolute limits."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from feedback.accounts import services as accounts
from feedback.db import utcnow
from feedback.models import ApiToken, AuditEvent, Decision, User
from tests.factories import PASSWORD, TEST_ACTOR, login, make_case, make_model, make_user, sign_in_cookie, token_for

NEW_PASSWORD = "lantern harbour quietly"


def signed_in(client) -> bool:
    """Whether the client's cookie still opens a page that needs sign-in."""
    response = client.get("/queue")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def copy_cookie(app, source):
    """A new client holding the same session cookie as `source` (a stolen copy)."""
    thief = app.test_client()
    cookie = source.get_cookie("session")
    thief.set_cookie(cookie.key, cookie.value)
    return thief


def test_a_copied_cookie_dies_at_logout_for_reads_and_writes(app, client, session):
    make_model(session)
    rec = make_case(session)
    user = make_user(session, name="Rita")
    login(client, user)
    thief = copy_cookie(app, client)
    assert signed_in(thief)
    logout = client.post("/logout")
    assert logout.status_code == 302 and "session=;" in logout.headers["Set-Cookie"]  # this browser forgets it too
    page = thief.get(f"/review/{rec.id}")
    assert page.status_code == 302 and page.location.startswith("/login")
    write = thief.post(f"/review/{rec.id}/decision", data={"action": "escalate", "note": "from a stolen cookie"})
    assert write.status_code == 302 and write.location.startswith("/login")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Decision)) == 0
    # The dead cookie is cleared, and signing in again works.
    assert not signed_in(client)
    login(client, user)
    assert signed_in(client)


def test_logout_ends_the_users_sessions_everywhere(app, client, session):
    user = make_user(session)
    other = make_user(session)
    laptop, phone, theirs = app.test_client(), app.test_client(), app.test_client()
    for c, u in ((laptop, user), (phone, user), (theirs, other)):
        login(c, u)
    laptop.post("/logout")
    assert not signed_in(phone)
    assert signed_in(theirs)


def test_a_dead_session_tells_htmx_to_go_to_the_login_page(app, client, session):
    user = make_user(session)
    login(client, user)
    stolen = copy_cookie(app, client)
    stolen.environ_base["HTTP_HX_REQUEST"] = "true"
    client.post("/logout")
    response = stolen.get("/queue")
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/login")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"generation": None}, id="no-generation"),
        pytest.param({"generation": 7}, id="other-generation"),
        pytest.param({"signed_in_at": None}, id="no-sign-in-time"),
        pytest.param({"seen_at": "recently"}, id="bad-idle-clock"),
        pytest.param({"user_id": "1"}, id="id-as-text"),
    ],
)
def test_a_cookie_not_issued_by_login_is_refused(app, client, session, fields):
    user = make_user(session)
    sign_in_cookie(client, user, **fields)
    assert not signed_in(client)


def test_the_idle_timeout_ends_a_session(app, client, session):
    app.config["SESSION_IDLE_SECONDS"] = 120
    user = make_user(session)
    now = int(time.time())
    sign_in_cookie(client, user, seen_at=now - 121)
    assert not signed_in(client)
    sign_in_cookie(client, user, seen_at=now - 118)
    assert signed_in(client)
    # Activity moves the idle clock on.
    with client.session_transaction() as cookie:
        assert cookie["seen_at"] >= now


def test_activity_never_stretches_the_absolute_lifetime(app, client, session):
    user = make_user(session)
    now = int(time.time())
    sign_in_cookie(client, user, signed_in_at=now - 12 * 3600 - 1, seen_at=now)
    assert not signed_in(client)
    sign_in_cookie(client, user, signed_in_at=now - 12 * 3600 + 60, seen_at=now)
    assert signed_in(client)


def test_the_idle_timeout_defaults_to_thirty_minutes(app):
    assert app.config["SESSION_IDLE_SECONDS"] == 1800
    assert app.permanent_session_lifetime == timedelta(hours=12)


def test_changing_ones_password_ends_the_other_sessions_but_not_this_one(app, client, session):
    user = make_user(session, email="pat@example.test")
    other_device = app.test_client()
    login(client, user)
    login(other_device, user)
    assert "Change password" in client.get("/account/password").text
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert response.status_code == 200 and "Password changed" in response.text
    assert signed_in(client)
    assert not signed_in(other_device)
    fresh = app.test_client()
    assert fresh.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 401
    assert fresh.post("/login", data={"email": user.email, "password": NEW_PASSWORD}).status_code == 302
    session.rollback()
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == str(user.id))).all()
    assert "user.password_changed" in actions


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"current_password": "not my password"}, "current_password", "Current password is wrong"),
        ({"new_password": "short one", "confirm_password": "short one"}, "new_password", "at least 15 characters"),
        (
            {"new_password": "passwordpassword", "confirm_password": "passwordpassword"},
            "new_password",
            "too easy to guess",
        ),
        (
            {"new_password": "1qaz2wsx3edc4rfv", "confirm_password": "1qaz2wsx3edc4rfv"},
            "new_password",
            "most common passwords",
        ),
        (
            {"new_password": "pat@example.test", "confirm_password": "pat@example.test"},
            "new_password",
            "too easy to guess",
        ),
        ({"confirm_password": "something else entirely"}, "confirm_password", "does not match"),
    ],
)
def test_a_refused_password_change_names_the_field_and_changes_nothing(app, client, session, form, field, message):
    user = make_user(session, email="pat@example.test")
    other_device = app.test_client()
    login(client, user)
    login(other_device, user)
    before = session.scalar(select(User.password_hash).where(User.id == user.id))
    data = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, **form}
    response = client.post("/account/password", data=data)
    assert response.status_code == 422
    assert message in response.text
    session.rollback()
    assert session.scalar(select(User.password_hash).where(User.id == user.id)) == before
    assert signed_in(other_device) and signed_in(client)


def test_guessing_the_current_password_is_throttled(app, client, session):
    user = make_user(session)
    login(client, user)
    wrong = {"current_password": "guess", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    for _ in range(5):
        assert client.post("/account/password", data=wrong).status_code == 422
    right = {**wrong, "current_password": PASSWORD}
    response = client.post("/account/password", data=right)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 29


def test_a_role_change_ends_the_users_sessions(app, client, session):
    user = make_user(session, "exception_handler")
    login(client, user)
    assert client.get("/exceptions").status_code == 200
    result = app.test_cli_runner().invoke(args=["user", "set-role", user.email, "frontline"])
    assert result.exit_code == 0, result.output
    assert not signed_in(client)
    login(client, user)
    assert client.get("/exceptions").status_code == 403
    session.rollback()
    event_ = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.role_changed")).one()
    assert '"from":"exception_handler"' in event_.details and '"to":"frontline"' in event_.details


def test_deactivation_ends_sessions_and_kills_api_tokens_for_good(app, client, session):
    user = make_user(session, "analyst")
    login(client, user)
    headers = token_for(app, session, user)
    assert client.get("/api/v1/models", headers=headers).status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(args=["user", "deactivate", user.email])
    assert result.exit_code == 0 and "API tokens are revoked" in result.output
    assert not signed_in(client)
    assert app.test_client().get("/api/v1/models", headers=headers).status_code == 401
    assert app.test_client().post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 401
    # Coming back does not bring the old tokens back.
    assert runner.invoke(args=["user", "reactivate", user.email]).exit_code == 0
    assert app.test_client().get("/api/v1/models", headers=headers).status_code == 401
    login(client, user)
    session.rollback()
    assert session.scalar(select(func.count()).where(ApiToken.revoked_at.is_(None))) == 0


def test_cli_password_reset_follows_the_rules_and_ends_sessions(app, client, session):
    user = make_user(session)
    login(client, user)
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["user", "set-password", user.email, "--password", "aaaaaaaaaaaaaaaa"])
    assert weak.exit_code != 0 and "password: is too easy to guess" in weak.output
    assert signed_in(client)
    done = runner.invoke(args=["user", "set-password", user.email, "--password", NEW_PASSWORD])
    assert done.exit_code == 0, done.output
    assert not signed_in(client)
    assert app.test_client().post("/login", data={"email": user.email, "password": NEW_PASSWORD}).status_code == 302


def test_cli_sign_out_ends_the_users_sessions_only(app, client, session):
    user = make_user(session)
    other = make_user(session)
    theirs = app.test_client()
    login(client, user)
    login(theirs, other)
    result = app.test_cli_runner().invoke(args=["user", "sign-out", user.email])
    assert result.exit_code == 0 and "signed out everywhere" in result.output
    assert not signed_in(client)
    assert signed_in(theirs)
    login(client, user)


def test_cli_account_commands_name_unknown_users(app):
    runner = app.test_cli_runner()
    for args in (
        ["set-role", "ghost@example.test", "analyst"],
        ["deactivate", "ghost@example.test"],
        ["sign-out", "ghost@example.test"],
        ["set-password", "ghost@example.test", "--password", "lantern harbour quietly"],
    ):
        result = runner.invoke(args=["user", *args])
        assert result.exit_code != 0 and "email: unknown user" in result.output


def test_api_token_use_is_recorded_at_most_once_a_minute(app, session):
    user = make_user(session, "analyst")
    headers = token_for(app, session, user)
    client = app.test_client()
    writes = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    with app.app_context():
        from webapp.extensions import db

        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(10):
            assert client.get("/api/v1/models", headers=headers).status_code == 200
        assert len(writes) == 1
        session.rollback()
        first = session.scalar(select(ApiToken.last_used_at))
        assert first is not None and utcnow() - first < timedelta(minutes=1)
        # Once the stamp is over a minute old, the next request moves it on (once).
        session.execute(update(ApiToken).values(last_used_at=first - timedelta(minutes=2)))
        session.commit()
        writes.clear()
        for _ in range(3):
            client.get("/api/v1/models", headers=headers)
        assert len(writes) == 1
        session.rollback()
        assert session.scalar(select(ApiToken.last_used_at)) > first
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_deactivated_user_gets_no_new_token(app, session):
    user = make_user(session)
    accounts.deactivate_user(session, TEST_ACTOR, email=user.email)
    result = app.test_cli_runner().invoke(args=["token", "create", user.email])
    assert result.exit_code != 0 and "deactivated" in result.output
