"""Sign in and out."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from feedback import services
from feedback.errors import TooManyAttempts
from feedback.params import Text, parse_params
from webapp.auth import login_required, safe_next
from webapp.extensions import db

bp = Blueprint("auth", __name__)
LOGIN_FORM = (Text("email", 320), Text("password", 4096))

HOME_BY_ROLE = {
    "frontline": "queue.index",
    "exception_handler": "queue.index",
    "admin": "queue.index",
    "model_owner": "admin.models",
    "analyst": "admin.models",
}


@bp.get("/")
@login_required()
def home() -> Response:
    """Send each role to its main screen."""
    return redirect(url_for(HOME_BY_ROLE[g.user.role]))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]] | str:
    """Show the sign-in form, or check the credentials."""
    after = parse_params(request.args, (Text("next", 2000),))["next"]
    if request.method == "GET":
        return render_template("auth/login.html", email="", error=None)
    form = parse_params(request.form, LOGIN_FORM)
    email = form["email"] or ""
    try:
        user = services.authenticate(
            db.session,
            email=email,
            password=form["password"] or "",
            address=request.remote_addr,
            limits=services.LoginLimits(
                per_account=current_app.config["LOGIN_FAILURES_PER_ACCOUNT"],
                per_address=current_app.config["LOGIN_FAILURES_PER_ADDRESS"],
                window=timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"]),
            ),
        )
    except TooManyAttempts as exc:
        page = render_template("auth/login.html", email=email, error=exc.message)
        return page, 429, {"Retry-After": str(exc.retry_after)}
    if user is None:
        return render_template("auth/login.html", email=email, error="Wrong email or password."), 401
    session.clear()
    session["user_id"] = user.id
    session.permanent = True
    return redirect(safe_next(after) or url_for(HOME_BY_ROLE[user.role]))


@bp.post("/logout")
@login_required()
def logout() -> Response:
    """Sign out and forget the session."""
    services.record_logout(db.session, g.user)
    session.clear()
    return redirect(url_for("auth.login"))
