"""Sign in and out."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from feedback import services
from webapp.auth import login_required, safe_next
from webapp.extensions import db

bp = Blueprint("auth", __name__)

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
def login() -> Response | tuple[str, int] | str:
    """Show the sign-in form, or check the credentials."""
    if request.method == "GET":
        return render_template("auth/login.html", email="", error=None)
    email = request.form.get("email", "")
    user = services.authenticate(db.session, email=email, password=request.form.get("password", ""))
    if user is None:
        return render_template("auth/login.html", email=email, error="Wrong email or password."), 401
    session.clear()
    session["user_id"] = user.id
    session.permanent = True
    return redirect(safe_next(request.args.get("next")) or url_for(HOME_BY_ROLE[user.role]))


@bp.post("/logout")
@login_required()
def logout() -> Response:
    """Sign out and forget the session."""
    services.record_logout(db.session, g.user)
    session.clear()
    return redirect(url_for("auth.login"))
