"""Readiness plans: the go/kill criteria a version's owner writes down before its pilot."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, JSONType, utcnow

if TYPE_CHECKING:
    from feedback.models.catalog import ModelVersion

# What a criterion may measure. Rates are judged on confidence sequences (analytics.sequential).
READINESS_METRICS = (
    "decisions",  # at least N decisions (a count: no interval)
    "override_rate",  # share of accepted-or-overridden decisions that overrode the AI
    "accuracy",  # share of decided cases with a label where the AI's action was right
    "sla_attainment",  # share of resolved exceptions resolved by their SLA deadline
    "drift",  # features drifted past their limit (a count; from the drift reports)
    "median_seconds_to_decide",  # a floor against rubber-stamping
    "experiment_effect",  # a linked experiment's difference, AI shown minus control
)
DIRECTIONS = ("at_least", "at_most")


class ReadinessPlan(Base):
    """One version of a version's readiness plan: never edited, a change adds the next plan_version.

    `criteria` holds dicts: metric, direction, threshold, min_n, and for experiment_effect
    experiment_id and experiment_metric (see feedback.readiness.services for the rules).
    """

    __tablename__ = "readiness_plans"
    __table_args__ = (UniqueConstraint("model_version_id", "plan_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    plan_version: Mapped[int]
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship()
