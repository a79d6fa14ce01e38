"""People: users, their roles and passwords, and their sessions (sign-in is `login`, API tokens `tokens`).

A session cookie names its user and the user's session generation when it was issued. Logging
out, a new password, a new role and deactivation each bump the generation, which ends every
session the user has, on every host, at the next request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.accounts.passwords import context_words, password_problem
from feedback.accounts.security import hash_password, verify_password
from feedback.accounts.throttle import LoginThrottling, clear_failures, reserve_attempt
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import Conflict, NotFound, ValidationFailed
from feedback.models import ROLES, ApiToken, User
from feedback.permissions import Action


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


def create_user(session: Session, actor: Actor, *, email: str, role: str, password: str, name: str = "") -> User:
    """Create a user with an argon2-hashed password that meets the password rules."""
    permissions.require(actor, Action.ADMINISTER, session=session)
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


@dataclass(frozen=True)
class ImportedUser:
    """An account brought over from another system, with the argon2 hash of its password there."""

    email: str
    name: str
    role: str
    password_hash: str


def import_users(session: Session, actor: Actor, *, people: Sequence[ImportedUser]) -> list[User]:
    """Create many accounts at once, all or nothing, each keeping its argon2 password hash (no password is seen)."""
    permissions.require(actor, Action.ADMINISTER, session=session)
    emails = [normalise_email(person.email) for person in people]
    fields = {}
    for i, (person, email) in enumerate(zip(people, emails, strict=True)):
        if "@" not in email or len(email) > 254:
            fields[f"[{i}].email"] = "must be an email address"
        elif email in emails[:i]:
            fields[f"[{i}].email"] = f"repeats [{emails.index(email)}]"
        if person.role not in ROLES:
            fields[f"[{i}].role"] = f"must be one of {', '.join(ROLES)}"
        if not person.password_hash.startswith("$argon2id$"):
            fields[f"[{i}].password_hash"] = "must be an argon2id hash"
    if fields:
        raise ValidationFailed("the accounts are invalid; none was created", fields)
    taken = session.scalars(select(User.email).where(User.email.in_(emails))).all()
    if taken:
        raise Conflict(f"already registered: {', '.join(sorted(taken))}", {"email": "already registered"})
    users = [
        User(email=email, role=p.role, name=p.name.strip() or email.split("@")[0], password_hash=p.password_hash)
        for p, email in zip(people, emails, strict=True)
    ]
    session.add_all(users)
    session.flush()
    changes = [Change("user.created", "user", u.id, {"email": u.email, "role": u.role}) for u in users]
    audit.record(session, actor, changes)
    session.commit()
    return users


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
    permissions.require(actor, Action.ADMINISTER, session=session)
    user = _user_by_email(session, email)
    end_sessions(user)
    audit.record(session, actor, [Change("user.sessions_ended", "user", user.id)])
    session.commit()
    return user


def set_role(session: Session, actor: Actor, *, email: str, role: str) -> User:
    """Give a user another role; their sessions end, so the new role applies from the next sign-in."""
    permissions.require(actor, Action.ADMINISTER, session=session)
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
    permissions.require(actor, Action.ADMINISTER, session=session)
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
    permissions.require(actor, Action.ADMINISTER, session=session)
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
    permissions.require(actor, Action.ADMINISTER, session=session)
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
    reserve_attempt(session, account, address, throttling)
    if not verify_password(actor.password_hash, current_password):
        audit.record(session, actor_of(actor), [Change("password_change.failed", "user", actor.id)])
        session.commit()
        raise ValidationFailed("the current password is wrong", {"current_password": "is wrong"})
    clear_failures(session, account, address)
    _set_password(session, actor_of(actor), actor, new_password, "new_password")
    return actor
