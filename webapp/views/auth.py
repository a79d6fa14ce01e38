"""Sign in and out, and change one's own password."""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from feedback.accounts import login as sign_in
from feedback.accounts import services as accounts
from feedback.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from feedback.errors import TooManyAttempts, ValidationFailed
from feedback.params import Text, parse_params
from webapp import navigation
from webapp.auth import login_required, login_throttling, safe_next, start_session
from webapp.extensions import db

bp = Blueprint("auth", __name__)
LOGIN_FORM = (Text("email", 320), Text("password", 4096))
# Passwords are never stripped; a value longer than any password can be is refused before hashing.
PASSWORD_FORM = tuple(Text(name, 4 * MAX_LENGTH) for name in ("current_password", "new_password", "confirm_password"))


@bp.get("/")
@login_required()
def home() -> Response:
    """Send each role to its main screen."""
    return redirect(navigation.home_url(g.user.role))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]] | str:
    """Show the sign-in form, or check the credentials."""
    after = parse_params(request.args, (Text("next", 2000),))["next"]
    if request.method == "GET":
        return render_template("auth/login.html", email="", error=None)
    form = parse_params(request.form, LOGIN_FORM)
    email = form["email"] or ""
    try:
        user = sign_in.authenticate(
            db.session,
            email=email,
            password=form["password"] or "",
            address=request.remote_addr,
            throttling=login_throttling(current_app),
        )
    except TooManyAttempts as exc:
        page = render_template("auth/login.html", email=email, error=exc.message)
        return page, 429, {"Retry-After": str(exc.retry_after)}
    if user is None:
        return render_template("auth/login.html", email=email, error="Wrong email or password."), 401
    start_session(user)
    return redirect(safe_next(after) or navigation.home_url(user.role))


@bp.post("/logout")
@login_required()
def logout() -> Response:
    """Sign out: this session and every other of the user's end on the server, not only here."""
    sign_in.record_logout(db.session, g.user)
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
    form = parse_params(request.form, PASSWORD_FORM)
    new = form["new_password"] or ""
    if new != (form["confirm_password"] or ""):
        return render_password(422, fields={"confirm_password": "does not match the new password"})
    try:
        user = accounts.change_password(
            db.session,
            g.user,
            current_password=form["current_password"] or "",
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
