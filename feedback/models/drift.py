"""Drift histograms: what a version's recommendations looked like, day by day, kept at ingest."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from feedback.db import Base


class DriftCount(Base):
    """How many of a version's recommendations on one day had a feature's value in one bin, kept at ingest.

    `feature` is "features.NAME" for an input, or "confidence" / "recommended_action" for the
    output. Numbers (kind "numeric") count in the fixed bin `key` (analytics.drift.numeric_bin)
    with `total` their sum; text and booleans (kind "categorical") count under their value.
    """

    __tablename__ = "drift_counts"
    __table_args__ = (UniqueConstraint("model_version_id", "day", "feature", "kind", "key", "shard"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    day: Mapped[str] = mapped_column(String(10))  # UTC date of the recommendation, YYYY-MM-DD
    feature: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(12))
    key: Mapped[str] = mapped_column(String(200))
    # One of feedback.drift.histograms.SHARDS copies of the cell, picked per batch: concurrent ingests lock
    # different rows.
    shard: Mapped[int] = mapped_column(SmallInteger, default=0)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
