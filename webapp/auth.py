"""Sessions for people, bearer tokens for the API, and role checks on the server."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Response, g, jsonify, redirect, request, session, url_for

from feedback.models import User
from feedback.services import user_for_token
from webapp.extensions import db
from webapp.htmx import is_htmx


def load_session_user() -> None:
    """Put the signed-in user (or None) on `g.user`."""
    user_id = session.get("user_id")
    user = db.session.get(User, user_id) if user_id else None
    g.user = user if user is not None and user.active else None


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def login_required(roles: Sequence[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require a signed-in user, and one of `roles` when given (403 otherwise)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.user is None:
                login = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
                if is_htmx():
                    return Response(status=401, headers={"HX-Redirect": login})
                return redirect(login)
            if roles is not None and g.user.role not in roles:
                from flask import abort

                abort(403)
            return view(*args, **kwargs)

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
