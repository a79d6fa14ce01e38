"""Typed SQLAlchemy models for the countersign loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, JSONType, utcnow

ROLES = ("frontline", "exception_handler", "model_owner", "analyst", "admin")
STAGES = ("shadow", "pilot", "production", "paused", "retired")
DECISION_ACTIONS = ("accept", "override", "escalate")
RECOMMENDATION_STATUSES = ("open", "decided", "escalated")
# Stages whose recommendations are shown to reviewers; in the others people decide unaided.
AI_VISIBLE_STAGES = ("pilot", "production")


def _in(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that a column holds one of the values."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(Base):
    """A person who signs in; the role decides what they may do."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


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


class Model(Base):
    """A decision model: its allowed actions (labels) and the reason codes for overriding it."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[str]] = mapped_column(JSONType)
    reason_codes: Mapped[list[dict[str, str]]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(back_populates="model", order_by="ModelVersion.id")

    def reason_label(self, code: str | None) -> str:
        """Human label of a reason code (the code itself when unknown)."""
        for reason in self.reason_codes:
            if reason["code"] == code:
                return reason["label"]
        return code or ""


class ModelVersion(Base):
    """One version of a model, in a stage that decides whether reviewers see its output."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        CheckConstraint(_in("stage", STAGES), name="stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship(back_populates="versions")

    @property
    def ai_visible(self) -> bool:
        """Whether reviewers see this version's recommendations."""
        return self.stage in AI_VISIBLE_STAGES


class Recommendation(Base):
    """One AI proposal for one case, waiting for (or holding) its human countersignature."""

    __tablename__ = "recommendations"
    __table_args__ = (
        UniqueConstraint("model_id", "external_id"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint(_in("status", RECOMMENDATION_STATUSES), name="status"),
        Index("ix_recommendations_queue", "status", "due_at", "id"),
        Index("ix_recommendations_model_site", "model_id", "site"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500))
    site: Mapped[str] = mapped_column(String(100))
    segment: Mapped[dict[str, Any]]
    recommended_action: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float]
    explanation: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any] | None]
    payload_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="open")
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None]
    claim_expires_at: Mapped[datetime | None]
    row_version: Mapped[int] = mapped_column(default=1)

    model: Mapped[Model] = relationship()
    model_version: Mapped[ModelVersion] = relationship()
    claimed_by: Mapped[User | None] = relationship()
    decision: Mapped[Decision | None] = relationship(back_populates="recommendation")

    __mapper_args__ = {"version_id_col": row_version}


class Decision(Base):
    """The human countersignature on a recommendation; at most one per recommendation."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(_in("action", DECISION_ACTIONS), name="action"),
        CheckConstraint(
            "action <> 'override' OR ai_shown = false OR reason_code IS NOT NULL",
            name="override_reason",
        ),
        Index("ix_decisions_decided_at", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"), unique=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    final_action: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    ai_shown: Mapped[bool]
    channel: Mapped[str] = mapped_column(String(8), default="ui")

    recommendation: Mapped[Recommendation] = relationship(back_populates="decision")
    reviewer: Mapped[User] = relationship()


class AuditEvent(Base):
    """Append-only, hash-chained record of one state change."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)
    occurred_at: Mapped[datetime]
    actor_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)


class AuditHead(Base):
    """The chain's tip: one row, locked by every append so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
