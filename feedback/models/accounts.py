"""People and their credentials."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, one_of_check, utcnow

ROLES = ("frontline", "exception_handler", "model_owner", "analyst", "admin")


class User(Base):
    """A person who signs in; the role decides what they may do."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(one_of_check("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Every session cookie carries the generation it was issued under; bumping it (logout, a new
    # password or role, deactivation) ends all of the user's sessions on every host at once.
    session_generation: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed sign-ins for one (account, client address) pair, and when the next try is allowed.

    `account` is the normalised e-mail as typed, known or not, so throttling reveals nothing.
    """

    __tablename__ = "login_throttles"
    __table_args__ = (Index("ix_login_throttles_address", "address"),)  # one address's failures across accounts

    account: Mapped[str] = mapped_column(String(254), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    # When this address last signed in to this account: known addresses skip the account-wide limit.
    succeeded_at: Mapped[datetime | None]
