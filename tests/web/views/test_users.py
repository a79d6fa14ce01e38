"""The people page: administrators change roles, sign people out and deactivate them."""

from __future__ import annotations

from sqlalchemy import select

from feedback.models import AuditEvent, User
from tests.factories import PASSWORD, login, make_user, token_for


def signed_in(client) -> bool:
    """Whether the client's session still opens a page."""
    return client.get("/").status_code == 302 and not client.get("/").location.startswith("/login")


def test_the_page_and_its_fragment_list_everyone_escaped(session, client, htmx_client):
    admin = make_user(session, "admin")
    make_user(session, "analyst", email="ana@example.test", name="<script>alert(1)</script>")
    login(client, admin)
    login(htmx_client, admin)
    page = client.get("/admin/users")
    assert page.status_code == 200 and "<html" in page.text and "ana@example.test" in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    fragment = htmx_client.get("/admin/users")
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="users-body"' in fragment.text
    assert 'href="/admin/users"' in page.text  # in the admin's navigation


def test_a_role_change_from_the_page_ends_that_persons_sessions(app, session, htmx_client):
    admin = make_user(session, "admin")
    handler = make_user(session, "exception_handler")
    login(htmx_client, admin)
    theirs = app.test_client()
    login(theirs, handler)
    response = htmx_client.post(f"/admin/users/{handler.id}/role", data={"role": "analyst"})
    assert response.status_code == 200 and "is now analyst" in response.text
    assert not signed_in(theirs)
    assert signed_in(htmx_client)
    session.rollback()
    session.expire_all()
    assert session.get(User, handler.id).role == "analyst"
    changed = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.role_changed")).one()
    assert changed.actor_id == admin.id


def test_an_unknown_role_is_refused_by_name_and_changes_nothing(session, htmx_client):
    admin = make_user(session, "admin")
    other = make_user(session, "analyst")
    login(htmx_client, admin)
    response = htmx_client.post(f"/admin/users/{other.id}/role", data={"role": "superuser"})
    # htmx: no swap, and the problem (naming the field) in a toast
    assert response.status_code == 422 and "role" in response.headers["HX-Trigger"]
    session.rollback()
    session.expire_all()
    assert session.get(User, other.id).role == "analyst"
    assert session.get(User, other.id).session_generation == 0


def test_an_admin_cannot_lock_themselves_out(session, htmx_client):
    admin = make_user(session, "admin")
    login(htmx_client, admin)
    for url, data in (
        (f"/admin/users/{admin.id}/role", {"role": "frontline"}),
        (f"/admin/users/{admin.id}/deactivate", {}),
    ):
        response = htmx_client.post(url, data=data)
        assert response.status_code == 409 and "ask another administrator" in response.text
    session.rollback()
    session.expire_all()
    me = session.get(User, admin.id)
    assert me.role == "admin" and me.active and me.session_generation == 0
    assert signed_in(htmx_client)


def test_deactivate_then_reactivate_from_the_page(app, session, htmx_client):
    admin = make_user(session, "admin")
    analyst = make_user(session, "analyst")
    headers = token_for(app, session, analyst)
    login(htmx_client, admin)
    theirs = app.test_client()
    login(theirs, analyst)
    response = htmx_client.post(f"/admin/users/{analyst.id}/deactivate")
    assert response.status_code == 200 and "API tokens revoked" in response.text
    assert not signed_in(theirs)
    assert app.test_client().get("/api/v1/models", headers=headers).status_code == 401
    assert theirs.post("/login", data={"email": analyst.email, "password": PASSWORD}).status_code == 401
    response = htmx_client.post(f"/admin/users/{analyst.id}/reactivate")
    assert response.status_code == 200 and "can sign in again" in response.text
    login(theirs, analyst)
    assert app.test_client().get("/api/v1/models", headers=headers).status_code == 401


def test_sign_out_everywhere_keeps_the_password(app, session, htmx_client):
    admin = make_user(session, "admin")
    reviewer = make_user(session)
    login(htmx_client, admin)
    laptop = app.test_client()
    login(laptop, reviewer)
    assert htmx_client.post(f"/admin/users/{reviewer.id}/sign-out").status_code == 200
    assert not signed_in(laptop)
    login(laptop, reviewer)
    session.rollback()
    session.expire_all()
    assert session.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "user.sessions_ended")) == admin.id


def test_an_unknown_user_is_404(session, htmx_client):
    admin = make_user(session, "admin")
    login(htmx_client, admin)
    assert htmx_client.post("/admin/users/999999/deactivate").status_code == 404
