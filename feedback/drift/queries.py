"""Reads behind drift: a version's pilot start, and its histograms summed over a window."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedback.models import AuditEvent, DriftCount

STAGE_EVENTS = ("model_version.registered", "model_version.stage_changed")
COLUMNS = ["feature", "kind", "key", "count", "total"]


def pilot_start(session: Session, version_id: int) -> date | None:
    """The UTC day the version first entered pilot (registered in it, or moved to it), from the audit trail."""
    events = session.execute(
        select(AuditEvent.action, AuditEvent.details, AuditEvent.occurred_at)
        .where(
            AuditEvent.entity_type == "model_version",
            AuditEvent.entity_id == str(version_id),
            AuditEvent.action.in_(STAGE_EVENTS),
        )
        .order_by(AuditEvent.seq)
    )
    for action, details, occurred_at in events:
        stage = json.loads(details).get("stage" if action == STAGE_EVENTS[0] else "to")
        if stage == "pilot":
            return occurred_at.date()
    return None


def first_day(session: Session, version_id: int) -> date | None:
    """The first UTC day the version has any counted recommendation."""
    day = session.scalar(select(func.min(DriftCount.day)).where(DriftCount.model_version_id == version_id))
    return date.fromisoformat(day) if day else None


def histogram(
    session: Session, version_id: int, window: tuple[date, date], *, by_day: bool = False, feature: str | None = None
) -> pd.DataFrame:
    """Counts and sums per (feature, kind, key), and per day if asked, over an inclusive window of days."""
    grouping = [DriftCount.feature, DriftCount.kind, DriftCount.key]
    if by_day:
        grouping.insert(0, DriftCount.day)
    query = (
        select(*grouping, func.sum(DriftCount.count), func.sum(DriftCount.total))
        .where(
            DriftCount.model_version_id == version_id,
            DriftCount.day >= window[0].isoformat(),
            DriftCount.day <= window[1].isoformat(),
        )
        .group_by(*grouping)
    )
    if feature is not None:
        query = query.where(DriftCount.feature == feature)
    rows = session.execute(query).all()
    columns = (["day"] if by_day else []) + COLUMNS
    frame = pd.DataFrame(rows, columns=columns)
    frame["count"] = frame["count"].astype("int64")
    frame["total"] = frame["total"].astype(float)
    return frame
