"""The exceptions dashboard: resolution times and SLA breaches (Kaplan–Meier), and handling times by site."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import resolution
from feedback.catalog.services import get_model
from feedback.db import utcnow
from feedback.errors import ValidationFailed
from feedback.frames import exceptions_frame
from feedback.models import DecisionCount

RESOLUTION_GROUPS = resolution.GROUPINGS
MAX_DAYS = 3650


@dataclass(frozen=True)
class ResolutionReport:
    """Everything the exceptions dashboard shows."""

    model_key: str | None
    by: str
    now: datetime
    table: pd.DataFrame
    curves: pd.DataFrame
    handling: pd.DataFrame


def resolution_report(
    session: Session, *, model_key: str | None, by: str = "kind", days: int | None = None
) -> ResolutionReport:
    """Resolution times by kind, severity or site (open exceptions censored now), and handling times."""
    if by not in resolution.GROUPINGS:
        raise ValidationFailed("unknown grouping", {"by": f"must be one of {', '.join(resolution.GROUPINGS)}"})
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise ValidationFailed("bad period", {"days": f"must be between 1 and {MAX_DAYS}"})
    model_id = get_model(session, model_key).id if model_key else None
    now = utcnow()
    since = now - timedelta(days=days) if days else None
    frame = exceptions_frame(session, model_id=model_id, since=since)
    stamp = pd.Timestamp(now)
    return ResolutionReport(
        model_key=model_key,
        by=by,
        now=now,
        table=resolution.resolution_table(frame, by, stamp),
        curves=resolution.survival_curves(frame, by, stamp),
        handling=resolution.handling_times(
            pd.DataFrame(
                decision_speed_by_site(session, model_id=model_id, since=since),
                columns=["site", "bucket", "decisions"],
            ),
            "site",
        ),
    )


def decision_speed_by_site(session: Session, *, model_id: int | None, since: datetime | None) -> list[dict[str, Any]]:
    """How many decisions per site and log-spaced bucket of seconds from opening to deciding (from the counts)."""
    query = select(
        DecisionCount.key,
        func.sum(DecisionCount.accepts + DecisionCount.overrides + DecisionCount.escalations).label("decisions"),
    ).where(DecisionCount.dimension == "site_speed")
    if model_id:
        query = query.where(DecisionCount.model_id == model_id)
    if since:
        query = query.where(DecisionCount.day >= since.date().isoformat())
    rows = []
    for key, decisions in session.execute(query.group_by(DecisionCount.key)):
        site, _, bucket = key.rpartition(":")
        rows.append({"site": site, "bucket": int(bucket), "decisions": int(decisions or 0)})
    return rows
