"""Sign-in: checking a password, throttling failed attempts per account and per address, and signing out."""

from __future__ import annotations

import functools

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit
from feedback.accounts.security import hash_password, verify_password
from feedback.accounts.services import actor_of, end_sessions, normalise_email
from feedback.accounts.throttle import LoginThrottling, clear_failures, reserve_attempt
from feedback.audit import Change
from feedback.models import User


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
    reserve_attempt(session, account, address, throttling)
    user = session.scalar(select(User).where(User.email == account))
    valid = verify_password(user.password_hash if user else _dummy_hash(), password)
    if user is None or not user.active or not valid:
        details = {"address": address} if address else {}
        audit.record(session, audit.SYSTEM, [Change("login.failed", "user", account[:64], details)])
        session.commit()
        return None
    clear_failures(session, account, address)
    audit.record(session, actor_of(user), [Change("login.succeeded", "user", user.id)])
    session.commit()
    return user


def record_logout(session: Session, actor: User) -> None:
    """Sign the user out everywhere: every session cookie of theirs stops working."""
    end_sessions(actor)
    audit.record(session, actor_of(actor), [Change("logout", "user", actor.id)])
    session.commit()
