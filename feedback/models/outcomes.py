"""Outcomes: what later turned out to be true for a case."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, utcnow

if TYPE_CHECKING:
    from feedback.models.review import Recommendation


class Outcome(Base):
    """What later turned out to be true for a case, as reported by one source."""

    __tablename__ = "outcomes"
    __table_args__ = (
        UniqueConstraint("recommendation_id", "source"),
        CheckConstraint("(label IS NULL) <> (value IS NULL)", name="label_or_value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    source: Mapped[str] = mapped_column(String(100))
    label: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None]
    observed_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload_hash: Mapped[str] = mapped_column(String(64))

    recommendation: Mapped[Recommendation] = relationship()
