"""The retraining backlog: items and their refreshes."""

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
from feedback.models.impact import RUN_STATUSES

if TYPE_CHECKING:
    from feedback.models.accounts import User
    from feedback.models.catalog import Model, ModelVersion


BACKLOG_STATUSES = ("new", "triaged", "planned", "in_training", "shipped", "verified", "dismissed")


class BacklogItem(Base):
    """A mined over-override pattern of one model version, tracked as retraining work.

    Identity is (version, pattern_key): refreshing the mining updates the item, never copies it.
    """

    __tablename__ = "backlog_items"
    __table_args__ = (
        UniqueConstraint("model_version_id", "pattern_key"),
        CheckConstraint(one_of_check("status", BACKLOG_STATUSES), name="status"),
        Index("ix_backlog_items_model_priority", "model_id", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    pattern_key: Mapped[str] = mapped_column(String(500))
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    title: Mapped[str] = mapped_column(Text)
    cases: Mapped[int]
    overrides: Mapped[int]
    rate: Mapped[float]
    rate_low: Mapped[float]
    rate_high: Mapped[float]
    baseline: Mapped[float]
    excess: Mapped[float]
    q_value: Mapped[float]
    wrong_share: Mapped[float]
    priority: Mapped[float]
    top_final_action: Mapped[str | None] = mapped_column(String(64))
    top_reason: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)  # credible at the last refresh
    status: Mapped[str] = mapped_column(String(16), default="new")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    verified_by_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_version: Mapped[int] = mapped_column(default=1)

    model: Mapped[Model] = relationship()
    model_version: Mapped[ModelVersion] = relationship(foreign_keys=[model_version_id])
    verified_by_version: Mapped[ModelVersion | None] = relationship(foreign_keys=[verified_by_version_id])
    owner: Mapped[User | None] = relationship()

    __mapper_args__ = {"version_id_col": row_version}


class BacklogRefresh(Base):
    """A retraining-backlog refresh run off the request path: its progress and outcome live here.

    Mining only reads; the items are written at the end in one short transaction that updates the
    mined statistics and never the triage (status, owner, notes), so triage goes on meanwhile.
    """

    __tablename__ = "backlog_refreshes"
    __table_args__ = (
        CheckConstraint(one_of_check("status", RUN_STATUSES), name="status"),
        Index("ix_backlog_refreshes_model_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(
        default=0, server_default=text("0")
    )  # worker attempts taken (see webapp/worker.py)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[int | None]
    updated: Mapped[int | None]
    retired: Mapped[int | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
