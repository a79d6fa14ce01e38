"""Exceptions and the SLAs they are resolved against."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, one_of_check

if TYPE_CHECKING:
    from feedback.models.accounts import User
    from feedback.models.catalog import Model
    from feedback.models.review import Recommendation


EXCEPTION_KINDS = ("reviewer_escalation", "low_confidence", "policy", "missing_data", "model_error", "audit_sample")


SEVERITIES = ("low", "medium", "high", "critical")


EXCEPTION_STATUSES = ("open", "in_progress", "resolved")


# SLA hours by severity when a model has no policy of its own for a kind and severity.
DEFAULT_SLA_HOURS = {"critical": 4, "high": 8, "medium": 24, "low": 72}


class DecisionException(Base):
    """A case that left the happy path, to be resolved by an exception handler within its SLA."""

    __tablename__ = "exceptions"
    __table_args__ = (
        UniqueConstraint("recommendation_id", "kind"),
        CheckConstraint(one_of_check("kind", EXCEPTION_KINDS), name="kind"),
        CheckConstraint(one_of_check("severity", SEVERITIES), name="severity"),
        CheckConstraint(one_of_check("status", EXCEPTION_STATUSES), name="status"),
        CheckConstraint("(status = 'resolved') = (resolved_at IS NOT NULL)", name="resolved_at"),
        Index("ix_exceptions_queue", "status", "sla_due_at"),
        Index("ix_exceptions_model_opened", "model_id", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    site: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime]
    sla_due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_action: Mapped[str | None] = mapped_column(String(64))
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    row_version: Mapped[int] = mapped_column(default=1)

    recommendation: Mapped[Recommendation] = relationship()
    model: Mapped[Model] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    raised_by: Mapped[User | None] = relationship(foreign_keys=[raised_by_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    __mapper_args__ = {"version_id_col": row_version}


class SlaPolicy(Base):
    """How long a model's exceptions of one kind and severity may stay unresolved."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("model_id", "kind", "severity"),
        CheckConstraint(one_of_check("kind", EXCEPTION_KINDS), name="kind"),
        CheckConstraint(one_of_check("severity", SEVERITIES), name="severity"),
        CheckConstraint("hours > 0", name="hours"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    hours: Mapped[float]
