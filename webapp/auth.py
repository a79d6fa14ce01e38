"""Sessions for people, bearer tokens for the API, and role checks on the server."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, jsonify, redirect, request, session, url_for

from feedback import permissions
from feedback.accounts.throttle import LoginThrottling
from feedback.accounts.tokens import user_for_token
from feedback.models import User
from feedback.permissions import Action
from webapp.extensions import db
from webapp.htmx import is_htmx

# How stale the idle clock in the cookie may get before a request moves it on.
SEEN_RESOLUTION = 60


def session_fields(user_id: int, generation: int) -> dict[str, int]:
    """What a new session cookie holds: the user, their session generation and the two clocks."""
    now = int(time.time())
    return {"user_id": user_id, "generation": generation, "signed_in_at": now, "seen_at": now}


def start_session(user: User) -> None:
    """Issue a fresh session cookie for the user under their current session generation."""
    session.clear()
    session.update(session_fields(user.id, user.session_generation))
    session.permanent = True


def session_is_live(user: User | None, now: int) -> bool:
    """Whether the cookie's session still stands: user active, generation current, neither clock run out."""
    if user is None or not user.active or session.get("generation") != user.session_generation:
        return False
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    signed_in, seen = session.get("signed_in_at"), session.get("seen_at")
    if not isinstance(signed_in, int) or not isinstance(seen, int):
        return False
    return now - signed_in < lifetime and now - seen < current_app.config["SESSION_IDLE_SECONDS"]


def load_session_user() -> None:
    """Put the signed-in user (or None) on `g.user`; a dead session's cookie is cleared."""
    user_id = session.get("user_id")
    if not user_id:
        return
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    now = int(time.time())
    if not session_is_live(user, now):
        session.clear()
        return
    if now - session["seen_at"] >= SEEN_RESOLUTION:
        session["seen_at"] = now
    g.user = user


def login_throttling(app: Flask) -> LoginThrottling:
    """The sign-in throttle built from the app's settings."""
    return LoginThrottling(
        free_failures=int(app.config["LOGIN_FREE_FAILURES"]),
        first_delay=timedelta(seconds=float(app.config["LOGIN_FIRST_DELAY_SECONDS"])),
        max_delay=timedelta(seconds=float(app.config["LOGIN_MAX_DELAY_SECONDS"])),
        account_failures=int(app.config["LOGIN_ACCOUNT_FAILURES"]),
        address_failures=int(app.config["LOGIN_ADDRESS_FAILURES"]),
    )


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def login_required(action: Action | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require a signed-in user, and one whose role may take `action` when given (403 otherwise)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.user is None:
                login = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
                if is_htmx():
                    return Response(status=401, headers={"HX-Redirect": login})
                return redirect(login)
            if action is not None and not permissions.allows(g.user.role, action):
                from flask import abort

                abort(403)
            return view(*args, **kwargs)

        # The menu and the landing pages read who may open a page from here (webapp/navigation.py).
        wrapped.action = action  # type: ignore[attr-defined]
        return wrapped

    return decorator


def api_user() -> User | Response:
    """The user behind the request's bearer token, or a 401 JSON answer."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = user_for_token(db.session, token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if user is None:
        response = jsonify(error={"code": "unauthorized", "message": "a valid bearer token is required", "fields": {}})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="countersign"'
        return response
    return user
