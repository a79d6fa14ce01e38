"""Administrators manage people: roles, sign-outs and deactivation (each ends the user's sessions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, g, request

from feedback.accounts import services as accounts
from feedback.audit import Actor
from feedback.errors import Conflict, NotFound, ValidationFailed
from feedback.models import ROLES, User
from feedback.params import Choice, parse_params
from feedback.permissions import Action
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import render_page_or_block

bp = Blueprint("users", __name__, url_prefix="/admin/users")


def render_users(status: int = 200, **extra: Any) -> tuple[str, int]:
    """The people page, or its body block for htmx."""
    context: dict[str, Any] = {"people": accounts.users(db.session), "roles": ROLES, "problem": None, "notice": None}
    context.update(extra)
    return render_page_or_block("admin/users.html", "users_body", status=status, **context)


def apply(user_id: int, change: Callable[[Actor, str], str]) -> tuple[str, int]:
    """Run one audited change on the user named in the URL, and show the page with its outcome."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    try:
        notice = change(accounts.actor_of(g.user), user.email)
    except (ValidationFailed, Conflict, NotFound) as exc:
        db.session.rollback()
        detail = "; ".join(f"{k} {v}" for k, v in exc.fields.items())
        return render_users(exc.status, problem=f"{exc.message} ({detail})" if detail else exc.message)
    return render_users(notice=notice)


@bp.get("")
@login_required(Action.ADMINISTER)
def index() -> tuple[str, int]:
    """Everyone, with their role and state."""
    return render_users()


@bp.post("/<int:user_id>/role")
@login_required(Action.ADMINISTER)
def set_role(user_id: int) -> tuple[str, int]:
    """Give someone another role; their sessions end."""

    role = parse_params(request.form, (Choice("role", ROLES, required=True),))["role"]

    def change(actor: Actor, email: str) -> str:
        user = accounts.set_role(db.session, actor, email=email, role=role)
        return f"{user.email} is now {user.role.replace('_', ' ')}; their sessions ended."

    return apply(user_id, change)


@bp.post("/<int:user_id>/sign-out")
@login_required(Action.ADMINISTER)
def sign_out(user_id: int) -> tuple[str, int]:
    """Sign someone out on every device now."""

    def change(actor: Actor, email: str) -> str:
        accounts.end_user_sessions(db.session, actor, email=email)
        return f"{email} was signed out everywhere."

    return apply(user_id, change)


@bp.post("/<int:user_id>/deactivate")
@login_required(Action.ADMINISTER)
def deactivate(user_id: int) -> tuple[str, int]:
    """Stop someone signing in: sessions end, API tokens are revoked."""

    def change(actor: Actor, email: str) -> str:
        accounts.deactivate_user(db.session, actor, email=email)
        return f"{email} was deactivated: signed out everywhere, API tokens revoked."

    return apply(user_id, change)


@bp.post("/<int:user_id>/reactivate")
@login_required(Action.ADMINISTER)
def reactivate(user_id: int) -> tuple[str, int]:
    """Let someone sign in again (their old API tokens stay revoked)."""

    def change(actor: Actor, email: str) -> str:
        accounts.reactivate_user(db.session, actor, email=email)
        return f"{email} can sign in again; their old API tokens stay revoked."

    return apply(user_id, change)
