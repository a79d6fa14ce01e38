"""Reports that join the database (via feedback.frames) to the pure analytics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.orm import Session

from analytics import resolution
from feedback import override_queries
from feedback.db import utcnow
from feedback.errors import ValidationFailed
from feedback.frames import exceptions_frame
from feedback.services import get_model

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
                override_queries.site_speed(session, model_id=model_id, since=since),
                columns=["site", "bucket", "decisions"],
            ),
            "site",
        ),
    )
