"""Export jobs and the stored pieces of their files."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from feedback.db import Base, JSONType, one_of_check, utcnow
from feedback.models.impact import RUN_STATUSES

EXPORT_FORMATS = ("csv", "jsonl", "parquet")


class ExportJob(Base):
    """A labelled-data export written off the request path, with its progress."""

    __tablename__ = "export_jobs"
    __table_args__ = (
        CheckConstraint(one_of_check("status", RUN_STATUSES), name="status"),
        CheckConstraint(one_of_check("format", EXPORT_FORMATS), name="format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(
        default=0, server_default=text("0")
    )  # worker attempts taken (see webapp/worker.py)
    rows_done: Mapped[int] = mapped_column(default=0)
    rows_total: Mapped[int | None]
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ExportChunk(Base):
    """One piece of a finished export's bytes, kept in the database so any host can serve the download."""

    __tablename__ = "export_chunks"

    job_id: Mapped[int] = mapped_column(ForeignKey("export_jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
