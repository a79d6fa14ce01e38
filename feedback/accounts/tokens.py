"""API tokens: issued to a person, shown once, stored only as a hash, revocable."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.accounts.security import new_token, token_digest
from feedback.accounts.services import _user_by_email
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import Conflict, NotFound
from feedback.models import ApiToken, User
from feedback.permissions import Action

# `last_used_at` is written at most this often per token, so API reads stay reads.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def create_token(session: Session, actor: Actor, *, email: str, name: str = "") -> str:
    """Create an API token for an active user; return the token text, which is never stored."""
    permissions.require(actor, Action.ADMINISTER, session=session)
    user = _user_by_email(session, email)
    if not user.active:
        raise Conflict(f"{user.email} is deactivated", {"email": "deactivated user"})
    token = new_token()
    row = ApiToken(
        user_id=user.id,
        name=name or f"token for {user.email}",
        token_hash=token_digest(token),
        prefix=token[:10],
    )
    session.add(row)
    session.flush()
    audit.record(
        session, actor, [Change("token.created", "api_token", row.id, {"user": user.email, "prefix": row.prefix})]
    )
    session.commit()
    return token


def revoke_token(session: Session, actor: Actor, *, token_id: int) -> None:
    """Revoke an API token; it stops working at once."""
    permissions.require(actor, Action.ADMINISTER, session=session)
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no API token {token_id}")
    row.revoked_at = utcnow()
    audit.record(session, actor, [Change("token.revoked", "api_token", row.id, {"prefix": row.prefix})])
    session.commit()


def user_for_token(session: Session, token: str) -> User | None:
    """The active user owning a live token, or None; notes when the token was last used.

    `last_used_at` is written only when it is over a minute old, and the UPDATE's own WHERE skips
    a token another request has just touched, so a busy token costs one small write a minute.
    """
    found = session.execute(
        select(User, ApiToken.id, ApiToken.last_used_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None), User.active)
    ).first()
    if found is None:
        return None
    user, token_id, last_used = found
    now = utcnow()
    if last_used is None or last_used < now - TOKEN_TOUCH_INTERVAL:
        # A fresh transaction that starts with the write: SQLite then waits for its lock instead
        # of failing on a read snapshot another writer has moved past.
        session.rollback()
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOKEN_TOUCH_INTERVAL),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return user
