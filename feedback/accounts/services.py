"""People and their credentials: users, passwords, sign-in throttling, sessions and API tokens.

A session cookie names its user and the user's session generation when it was issued. Logging
out, a new password, a new role and deactivation each bump the generation, which ends every
session the user has, on every host, at the next request.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedback import audit
from feedback.accounts.passwords import context_words, password_problem
from feedback.accounts.security import hash_password, new_token, token_digest, verify_password
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import Conflict, NotFound, TooManyAttempts, ValidationFailed
from feedback.models import ROLES, ApiToken, LoginThrottle, User

# `last_used_at` is written at most this often per token, so API reads stay reads.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def actor_of(user: User) -> Actor:
    """The audit actor for a signed-in user."""
    return Actor(user.id, user.email)


def normalise_email(email: str) -> str:
    """E-mail addresses are compared trimmed and in lower case."""
    return email.strip().lower()


def _user_by_email(session: Session, email: str) -> User:
    """The user with this e-mail, or NotFound naming the field."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"no user {email}", {"email": "unknown user"})
    return user


# --- users ------------------------------------------------------------------------------


def create_user(session: Session, actor: Actor, *, email: str, role: str, password: str, name: str = "") -> User:
    """Create a user with an argon2-hashed password that meets the password rules."""
    email = normalise_email(email)
    fields = {}
    if "@" not in email or len(email) > 254:
        fields["email"] = "must be an email address"
    if role not in ROLES:
        fields["role"] = f"must be one of {', '.join(ROLES)}"
    problem = password_problem(password, context_words(email, name))
    if problem:
        fields["password"] = problem
    if fields:
        raise ValidationFailed("the user is invalid", fields)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user {email} already exists", {"email": "already registered"})
    user = User(
        email=email,
        role=role,
        name=name.strip() or email.split("@")[0],
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, [Change("user.created", "user", user.id, {"email": email, "role": role})])
    session.commit()
    return user


def end_sessions(user: User) -> None:
    """Invalidate every session the user holds (the caller audits and commits)."""
    user.session_generation += 1


def users(session: Session) -> list[User]:
    """Everyone who can sign in or once could, by role then e-mail."""
    return list(session.scalars(select(User).order_by(User.role, User.email)))


def _not_oneself(actor: Actor, user: User, doing: str) -> None:
    """An administrator cannot lock themselves out; another administrator (or the CLI) must."""
    if actor.id is not None and actor.id == user.id:
        raise Conflict(f"you cannot {doing} yourself; ask another administrator", {"email": "is you"})


def end_user_sessions(session: Session, actor: Actor, *, email: str) -> User:
    """Sign a user out everywhere now (e.g. after a lost laptop), keeping their password and tokens."""
    user = _user_by_email(session, email)
    end_sessions(user)
    audit.record(session, actor, [Change("user.sessions_ended", "user", user.id)])
    session.commit()
    return user


def set_role(session: Session, actor: Actor, *, email: str, role: str) -> User:
    """Give a user another role; their sessions end, so the new role applies from the next sign-in."""
    user = _user_by_email(session, email)
    if role not in ROLES:
        raise ValidationFailed("the role is invalid", {"role": f"must be one of {', '.join(ROLES)}"})
    if user.role == role:
        return user
    _not_oneself(actor, user, "change the role of")
    old, user.role = user.role, role
    end_sessions(user)
    audit.record(session, actor, [Change("user.role_changed", "user", user.id, {"from": old, "to": role})])
    session.commit()
    return user


def deactivate_user(session: Session, actor: Actor, *, email: str) -> User:
    """Stop a user signing in: their sessions end and every API token of theirs is revoked for good."""
    user = _user_by_email(session, email)
    if not user.active:
        return user
    _not_oneself(actor, user, "deactivate")
    user.active = False
    end_sessions(user)
    revoked = session.scalars(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(ApiToken.prefix)
        .execution_options(synchronize_session=False)
    ).all()
    audit.record(session, actor, [Change("user.deactivated", "user", user.id, {"tokens_revoked": sorted(revoked)})])
    session.commit()
    return user


def reactivate_user(session: Session, actor: Actor, *, email: str) -> User:
    """Let a deactivated user sign in again (their old API tokens stay revoked)."""
    user = _user_by_email(session, email)
    if user.active:
        return user
    user.active = True
    audit.record(session, actor, [Change("user.reactivated", "user", user.id)])
    session.commit()
    return user


def _set_password(session: Session, actor: Actor, user: User, password: str, field: str) -> None:
    """Check the new password against the rules, store its hash and end the user's sessions."""
    problem = password_problem(password, context_words(user.email, user.name))
    if problem:
        session.rollback()
        raise ValidationFailed("the new password is not accepted", {field: problem})
    user.password_hash = hash_password(password)
    end_sessions(user)
    audit.record(session, actor, [Change("user.password_changed", "user", user.id)])
    session.commit()


def set_password(session: Session, actor: Actor, *, email: str, password: str) -> User:
    """Reset a user's password (an administrator's action); their sessions end."""
    user = _user_by_email(session, email)
    _set_password(session, actor, user, password, "password")
    return user


def change_password(
    session: Session,
    actor: User,
    *,
    current_password: str,
    new_password: str,
    address: str | None = None,
    throttling: LoginThrottling | None = None,
) -> User:
    """A signed-in user changes their own password, proving the current one (throttled like sign-in)."""
    throttling = throttling or LoginThrottling()
    account = actor.email
    _reserve_attempt(session, account, address, throttling)
    if not verify_password(actor.password_hash, current_password):
        audit.record(session, actor_of(actor), [Change("password_change.failed", "user", actor.id)])
        session.commit()
        raise ValidationFailed("the current password is wrong", {"current_password": "is wrong"})
    _clear_failures(session, account, address)
    _set_password(session, actor_of(actor), actor, new_password, "new_password")
    return actor


# --- signing in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginThrottling:
    """Growing delays between failed sign-ins, per (account, client address).

    Each pair gets `free_failures` tries, then waits `first_delay`, doubling with each further
    failure up to `max_delay`. Someone guessing from one address therefore never slows the
    account's owner down elsewhere. NIST caps guesses on one account at 100 however many addresses
    try: past `account_failures` failures from addresses that never signed in to the account, those
    addresses share one growing delay too, while the addresses the owner has used stay free.
    A pair's count starts afresh after `forget_after` without a failure.
    """

    free_failures: int = 5
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(minutes=15)
    account_failures: int = 100
    forget_after: timedelta = timedelta(days=1)

    def delay(self, failures: int, free: int) -> timedelta:
        """The wait after `failures` failures when the first `free` cost nothing."""
        if failures < free:
            return timedelta(0)
        doublings: int = 2 ** min(failures - free, 32)
        return min(self.max_delay, self.first_delay * doublings)


@functools.cache
def _dummy_hash() -> str:
    """Checked when the e-mail is unknown, so a miss costs the same time as a wrong password."""
    return hash_password("countersign-timing-equaliser")


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    address: str | None = None,
    throttling: LoginThrottling | None = None,
) -> User | None:
    """Return the active user with these credentials (auditing the login), else None.

    Each attempt is counted as a failure before the password is checked, in the database, so
    parallel guesses on any worker or host all meet the same delay; a success clears it. A
    throttled attempt raises TooManyAttempts without checking the password or writing audit rows.
    """
    # A NUL cannot be stored on PostgreSQL; no address holds one, so it simply never matches.
    account = normalise_email(email).replace("\x00", "\ufffd")[:254]
    throttling = throttling or LoginThrottling()
    _reserve_attempt(session, account, address, throttling)
    user = session.scalar(select(User).where(User.email == account))
    valid = verify_password(user.password_hash if user else _dummy_hash(), password)
    if user is None or not user.active or not valid:
        details = {"address": address} if address else {}
        audit.record(session, audit.SYSTEM, [Change("login.failed", "user", account[:64], details)])
        session.commit()
        return None
    _clear_failures(session, account, address)
    audit.record(session, actor_of(user), [Change("login.succeeded", "user", user.id)])
    session.commit()
    return user


def _throttle_insert(session: Session, account: str, address: str) -> Any:  # the dialect's INSERT statement
    """INSERT of an empty throttle row that does nothing when the pair already has one."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(LoginThrottle).values(account=account, address=address, failures=0).on_conflict_do_nothing()


def _reserve_attempt(session: Session, account: str, address: str | None, throttling: LoginThrottling) -> None:
    """Count one attempt for (account, address) and commit, or raise TooManyAttempts while it must wait."""
    address = (address or "")[:64]
    now = utcnow()
    session.execute(_throttle_insert(session, account, address))
    # Locked until commit on PostgreSQL; SQLite's writers take turns anyway.
    row = session.get(LoginThrottle, (account, address), with_for_update=True, populate_existing=True)
    assert row is not None
    if row.last_failed_at is not None and row.last_failed_at < now - throttling.forget_after:
        row.failures, row.next_attempt_at = 0, None
    waits = [row.next_attempt_at]
    if row.succeeded_at is None:
        waits.append(_account_allowed_at(session, account, now, throttling))
    allowed_at = max((w for w in waits if w is not None), default=None)
    if allowed_at is not None and allowed_at > now:
        session.rollback()
        wait = max(1, int((allowed_at - now).total_seconds() + 0.999))
        raise TooManyAttempts(f"Too many failed sign-ins. Try again in {_readable(wait)}.", retry_after=wait)
    row.failures += 1
    row.last_failed_at = now
    row.next_attempt_at = now + throttling.delay(row.failures, throttling.free_failures)
    if random.random() < 0.01:
        _forget_stale(session, now - throttling.forget_after)
    session.commit()


def _account_allowed_at(session: Session, account: str, now: datetime, throttling: LoginThrottling) -> datetime | None:
    """When addresses that never signed in to the account may try again, past its total failure cap."""
    total, latest = session.execute(
        select(func.coalesce(func.sum(LoginThrottle.failures), 0), func.max(LoginThrottle.last_failed_at)).where(
            LoginThrottle.account == account,
            LoginThrottle.succeeded_at.is_(None),
            LoginThrottle.last_failed_at >= now - throttling.forget_after,
        )
    ).one()
    if latest is None or total < throttling.account_failures:
        return None
    return latest + throttling.delay(total, throttling.account_failures)


def _clear_failures(session: Session, account: str, address: str | None) -> None:
    """A correct password from this address: its count restarts and it counts as the owner's."""
    session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.account == account, LoginThrottle.address == (address or "")[:64])
        .values(failures=0, next_attempt_at=None, succeeded_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _forget_stale(session: Session, before: datetime) -> None:
    """Drop pairs that have not failed for a long time and never signed in (the table stays small)."""
    session.execute(
        delete(LoginThrottle)
        .where(
            LoginThrottle.succeeded_at.is_(None),
            or_(LoginThrottle.last_failed_at.is_(None), LoginThrottle.last_failed_at < before),
        )
        .execution_options(synchronize_session=False)
    )


def _readable(seconds: int) -> str:
    """Seconds as a rough, readable wait."""
    return f"{seconds} seconds" if seconds < 90 else f"{round(seconds / 60)} minutes"


def record_logout(session: Session, actor: User) -> None:
    """Sign the user out everywhere: every session cookie of theirs stops working."""
    end_sessions(actor)
    audit.record(session, actor_of(actor), [Change("logout", "user", actor.id)])
    session.commit()


# --- API tokens ---------------------------------------------------------------------------


def create_token(session: Session, actor: Actor, *, email: str, name: str = "") -> str:
    """Create an API token for an active user; return the token text, which is never stored."""
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
