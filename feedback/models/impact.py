"""Experiments, impact panels and analysis runs."""

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
    from feedback.models.catalog import Model


EXPERIMENT_KINDS = ("ab", "staggered")


EXPERIMENT_UNITS = ("case", "reviewer", "site")


EXPERIMENT_STATUSES = ("draft", "running", "stopped")


ARMS = ("ai_shown", "control")


class Experiment(Base):
    """An A/B test of showing the AI, or a staggered rollout of it across sites, on one model.

    A/B: each unit (case, reviewer or site) is hashed with the salt into `ai_shown` with
    probability `ai_weight`, else `control`. Staggered: a site is `ai_shown` from its go-live
    date on. At most one experiment per model runs at a time (a partial unique index).
    """

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(one_of_check("kind", EXPERIMENT_KINDS), name="kind"),
        CheckConstraint(one_of_check("unit", EXPERIMENT_UNITS), name="unit"),
        CheckConstraint(one_of_check("status", EXPERIMENT_STATUSES), name="status"),
        CheckConstraint("kind = 'ab' OR unit = 'site'", name="staggered_by_site"),
        CheckConstraint("ai_weight > 0 AND ai_weight < 1", name="ai_weight"),
        Index(
            "uq_experiments_running_model",
            "model_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    ai_weight: Mapped[float] = mapped_column(default=0.5)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_version: Mapped[int] = mapped_column(default=1)

    model: Mapped[Model] = relationship()
    sites: Mapped[list[RolloutSite]] = relationship(
        order_by="RolloutSite.site", cascade="all, delete-orphan", back_populates="experiment"
    )

    __mapper_args__ = {"version_id_col": row_version}

    @property
    def weights(self) -> dict[str, float]:
        """The configured share of units per arm (what the sample-ratio check expects)."""
        return {"ai_shown": self.ai_weight, "control": 1 - self.ai_weight}


class RolloutSite(Base):
    """One site's go-live in a staggered rollout; no date means a comparison site that stays unaided."""

    __tablename__ = "rollout_sites"
    __table_args__ = (UniqueConstraint("experiment_id", "site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    site: Mapped[str] = mapped_column(String(100))
    go_live_at: Mapped[datetime | None]

    experiment: Mapped[Experiment] = relationship(back_populates="sites")


class Exposure(Base):
    """A reviewer was shown a case under an experiment arm: the record that assignment can be checked against."""

    __tablename__ = "exposures"
    __table_args__ = (
        UniqueConstraint("experiment_id", "recommendation_id", "reviewer_id"),
        CheckConstraint(one_of_check("arm", ARMS), name="arm"),
        Index("ix_exposures_experiment_arm", "experiment_id", "arm"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    unit_id: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(16))
    exposed_at: Mapped[datetime] = mapped_column(default=utcnow)


PANEL_SOURCES = ("platform", "upload")


RUN_STATUSES = ("queued", "running", "done", "failed")


class ImpactPanel(Base):
    """A unit x period panel of one outcome, with each unit's treatment, ready for impact analysis."""

    __tablename__ = "impact_panels"
    __table_args__ = (CheckConstraint(one_of_check("source", PANEL_SOURCES), name="source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    metric: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))  # day, week, or the uploaded period labels
    covariates: Mapped[list[str]] = mapped_column(JSONType, default=list)
    units: Mapped[int]
    periods: Mapped[int]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    experiment: Mapped[Experiment | None] = relationship()
    created_by: Mapped[User] = relationship()


class PanelRow(Base):
    """One unit in one period: the outcome, whether the unit was treated, and covariates."""

    __tablename__ = "panel_rows"
    __table_args__ = (UniqueConstraint("panel_id", "unit", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    panel_id: Mapped[int] = mapped_column(ForeignKey("impact_panels.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(200))
    period: Mapped[int]  # 1, 2, ... in time order
    label: Mapped[str] = mapped_column(String(32))  # the period as people read it
    value: Mapped[float]
    treated: Mapped[bool]
    covariates: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class AnalysisRun(Base):
    """An impact analysis computed off the request path; its progress and result live here."""

    __tablename__ = "analysis_runs"
    __table_args__ = (CheckConstraint(one_of_check("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # staggered or ab
    panel_id: Mapped[int | None] = mapped_column(ForeignKey("impact_panels.id", ondelete="CASCADE"))
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(
        default=0, server_default=text("0")
    )  # worker attempts taken (see webapp/worker.py)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    panel: Mapped[ImpactPanel | None] = relationship()
    experiment: Mapped[Experiment | None] = relationship()
