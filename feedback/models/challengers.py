"""Shadow challengers: another version of a case's model scoring the same case, never shown to reviewers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from feedback.db import Base, utcnow


class ChallengerRecommendation(Base):
    """What another version of the case's model would have recommended; one per (case, version).

    Deliberately no relationship from Recommendation: nothing that renders a case for a reviewer
    can reach it by accident.
    """

    __tablename__ = "challenger_recommendations"
    __table_args__ = (
        UniqueConstraint("recommendation_id", "model_version_id"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        Index("ix_challenger_recommendations_version", "model_version_id", "recommendation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    # Copied from the case so a model's challengers are counted without a join.
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    recommended_action: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float]
    explanation: Mapped[dict[str, Any]]
    payload_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
