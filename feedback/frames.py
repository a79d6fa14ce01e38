"""The one place where queries become DataFrames for the pure analytics in `analytics/`."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from feedback.models import Decision, DecisionException, ModelVersion, Recommendation

Timestamp = ColumnElement[datetime] | InstrumentedAttribute[datetime]


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


def seconds_between(session: Session, start: Timestamp, end: Timestamp) -> ColumnElement[float]:
    """SQL for the seconds from `start` to `end`, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)


def handling_frame(session: Session, *, model_id: int | None = None, since: datetime | None = None) -> pd.DataFrame:
    """One row per decision: site, model_version and the seconds from opening to deciding (computed in SQL)."""
    query = (
        select(
            Recommendation.site,
            ModelVersion.version.label("model_version"),
            seconds_between(session, Decision.opened_at, Decision.decided_at).label("seconds"),
        )
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .join(ModelVersion, ModelVersion.id == Recommendation.model_version_id)
    )
    if model_id:
        query = query.where(Recommendation.model_id == model_id)
    if since:
        query = query.where(Decision.decided_at >= since)
    return pd.DataFrame(session.execute(query).all(), columns=["site", "model_version", "seconds"])
