"""Rollup counts of decisions, and the guardrails and alerts that watch them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, one_of_check, utcnow

if TYPE_CHECKING:
    from feedback.models.catalog import ModelVersion


class DecisionCount(Base):
    """Daily counts of countersignatures per version and breakdown key, kept in step with every decision.

    Override analytics read these few rows instead of scanning every decision. `dimension` is
    model_version, site, reviewer (key: user id), reason_code ("(accepted)" when none),
    confidence_decile (key: 0..9), action_pair, reviewer_speed (key: "user id:bucket") or
    segment.ATTR; only decisions where the AI was shown are counted.
    """

    __tablename__ = "decision_counts"
    __table_args__ = (
        UniqueConstraint("model_version_id", "day", "dimension", "key", "shard"),
        Index("ix_decision_counts_lookup", "model_id", "dimension", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    day: Mapped[str] = mapped_column(String(10))  # UTC date, YYYY-MM-DD
    dimension: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    # One of rollup.SHARDS copies of the cell, so concurrent decisions lock different rows; readers sum them.
    shard: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    accepts: Mapped[int] = mapped_column(default=0)
    overrides: Mapped[int] = mapped_column(default=0)
    escalations: Mapped[int] = mapped_column(default=0)
    # Against each case's first label outcome (accepts and overrides only).
    with_outcome: Mapped[int] = mapped_column(default=0)
    ai_right: Mapped[int] = mapped_column(default=0)
    final_right: Mapped[int] = mapped_column(default=0)
    outcome_overrides: Mapped[int] = mapped_column(default=0)
    corrected: Mapped[int] = mapped_column(default=0)
    overrode_right: Mapped[int] = mapped_column(default=0)


GUARDRAIL_KINDS = ("override_rate_above", "accuracy_below", "control_chart")


class Guardrail(Base):
    """A limit on a model version's behaviour; breaching it raises an alert and may pause the version."""

    __tablename__ = "guardrails"
    __table_args__ = (
        CheckConstraint(one_of_check("kind", GUARDRAIL_KINDS), name="kind"),
        CheckConstraint("window_size >= 10", name="window_size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # override_rate_above / accuracy_below: the last `window_size` decisions (or outcomes);
    # control_chart: days of baseline before the day checked.
    window_size: Mapped[int]
    threshold: Mapped[float | None]
    auto_pause: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    last_value: Mapped[float | None]
    last_checked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship()


class Alert(Base):
    """A guardrail breach for model owners to see and act on."""

    __tablename__ = "alerts"
    __table_args__ = (CheckConstraint(one_of_check("status", ("open", "acknowledged")), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guardrail_id: Mapped[int] = mapped_column(ForeignKey("guardrails.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    value: Mapped[float | None]
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    paused_from: Mapped[str | None] = mapped_column(String(16))
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None]

    guardrail: Mapped[Guardrail] = relationship()
    model_version: Mapped[ModelVersion] = relationship()
