"""The one place where queries become DataFrames for the pure analytics in `analytics/`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.models import DecisionException


def exceptions_frame(session: Session, *, model_id: int | None = None, since: datetime | None = None) -> pd.DataFrame:
    """One row per exception: kind, severity, site, opened_at, resolved_at, sla_due_at, status."""
    query = select(
        DecisionException.kind,
        DecisionException.severity,
        DecisionException.site,
        DecisionException.opened_at,
        DecisionException.resolved_at,
        DecisionException.sla_due_at,
        DecisionException.status,
    )
    if model_id:
        query = query.where(DecisionException.model_id == model_id)
    if since:
        query = query.where(DecisionException.opened_at >= since)
    rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=["kind", "severity", "site", "opened_at", "resolved_at", "sla_due_at", "status"])
    for column in ("opened_at", "resolved_at", "sla_due_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Frame rows as JSON-ready dicts: NaN becomes None and numpy scalars plain Python."""
    out = []
    for row in frame.astype(object).to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            if hasattr(value, "item"):
                value = value.item()
            clean[key] = None if isinstance(value, float) and value != value else value
        out.append(clean)
    return out
