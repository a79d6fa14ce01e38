"""Recommendations and the decisions people make on them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, JSONType, one_of_check, utcnow

if TYPE_CHECKING:
    from feedback.models.accounts import User
    from feedback.models.catalog import Model, ModelVersion
    from feedback.models.outcomes import Outcome


DECISION_ACTIONS = ("accept", "override", "escalate")


# open: waiting for a reviewer; exception: routed to the exceptions queue at ingest;
# escalated: a reviewer escalated it; decided / resolved: it has its final action.
RECOMMENDATION_STATUSES = ("open", "decided", "escalated", "exception", "resolved")


class Recommendation(Base):
    """One AI proposal for one case, waiting for (or holding) its human countersignature."""

    __tablename__ = "recommendations"
    __table_args__ = (
        UniqueConstraint("model_id", "external_id"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint(
            "(recommended_action IS NOT NULL AND confidence IS NOT NULL) OR error IS NOT NULL", name="action_or_error"
        ),
        CheckConstraint(one_of_check("status", RECOMMENDATION_STATUSES), name="status"),
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
    recommended_action: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None]
    explanation: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any] | None]
    flags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text)
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
    outcomes: Mapped[list[Outcome]] = relationship(order_by="Outcome.observed_at", viewonly=True)

    __mapper_args__ = {"version_id_col": row_version}


class Decision(Base):
    """The human countersignature on a recommendation; at most one per recommendation."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(one_of_check("action", DECISION_ACTIONS), name="action"),
        CheckConstraint(
            "action <> 'override' OR ai_shown = false OR reason_code IS NOT NULL",
            name="override_reason",
        ),
        Index("ix_decisions_decided_at", "decided_at"),
        Index("ix_decisions_version_decided", "model_version_id", "decided_at"),
        Index("ix_decisions_model_decided", "model_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"), unique=True)
    # Copied from the recommendation so override analytics group and window without a join.
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    final_action: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    ai_shown: Mapped[bool]
    channel: Mapped[str] = mapped_column(String(8), default="ui")
    # Decided on the review screen less than services.QUICK_DECISION_SECONDS after the case was
    # opened: too quick to have read it (docs/product.md).
    quick: Mapped[bool] = mapped_column(default=False, server_default=text("false"))

    recommendation: Mapped[Recommendation] = relationship(back_populates="decision")
    reviewer: Mapped[User] = relationship()
