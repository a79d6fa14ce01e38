"""Sign in and out, and change one's own password."""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from feedback import accounts
from feedback.errors import TooManyAttempts, ValidationFailed
from feedback.passwords import MAX_LENGTH, MIN_LENGTH
from webapp import navigation
from webapp.auth import login_required, login_throttling, safe_next, start_session
from webapp.extensions import db

bp = Blueprint("auth", __name__)


@bp.get("/")
@login_required()
def home() -> Response:
    """Send each role to its main screen."""
    return redirect(navigation.home_url(g.user.role))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]] | str:
    """Show the sign-in form, or check the credentials."""
    if request.method == "GET":
        return render_template("auth/login.html", email="", error=None)
    email = request.form.get("email", "")
    try:
        user = accounts.authenticate(
            db.session,
            email=email,
            password=request.form.get("password", ""),
            address=request.remote_addr,
            throttling=login_throttling(current_app),
        )
    except TooManyAttempts as exc:
        page = render_template("auth/login.html", email=email, error=exc.message)
        return page, 429, {"Retry-After": str(exc.retry_after)}
    if user is None:
        return render_template("auth/login.html", email=email, error="Wrong email or password."), 401
    start_session(user)
    return redirect(safe_next(request.args.get("next")) or navigation.home_url(user.role))


@bp.post("/logout")
@login_required()
def logout() -> Response:
    """Sign out: this session and every other of the user's end on the server, not only here."""
    accounts.record_logout(db.session, g.user)
    session.clear()
    return redirect(url_for("auth.login"))


def render_password(status: int = 200, **extra: object) -> tuple[str, int]:
    """The change-password page."""
    context: dict[str, object] = {"fields": {}, "notice": None, "min_length": MIN_LENGTH, "max_length": MAX_LENGTH}
    context.update(extra)
    return render_template("auth/password.html", **context), status


@bp.get("/account/password")
@login_required()
def password() -> tuple[str, int]:
    """The form for changing one's own password."""
    return render_password()


@bp.post("/account/password")
@login_required()
def change_password() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Change one's own password; every other session of the user ends, this one carries on."""
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        return render_password(422, fields={"confirm_password": "does not match the new password"})
    try:
        user = accounts.change_password(
            db.session,
            g.user,
            current_password=request.form.get("current_password", ""),
            new_password=new,
            address=request.remote_addr,
            throttling=login_throttling(current_app),
        )
    except TooManyAttempts as exc:
        page, _ = render_password(fields={"current_password": exc.message})
        return page, 429, {"Retry-After": str(exc.retry_after)}
    except ValidationFailed as exc:
        return render_password(422, fields=exc.fields)
    start_session(user)
    return render_password(notice="Password changed. You were signed out everywhere else.")
