"""The models list: each model's versions, override-rate trend, open alerts and backlog, in a few grouped queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedback import permissions
from feedback.catalog import queries as catalog_queries
from feedback.db import utcnow
from feedback.models import Alert, BacklogItem, DecisionCount, Model, ModelVersion, User

TREND_WEEKS = 12
# Backlog items still waiting for work: credible at the last refresh and neither verified nor dismissed.
DONE_BACKLOG_STATUSES = ("verified", "dismissed")


@dataclass
class ModelSummary:
    """One model as the models list shows it."""

    model: Model
    owned: bool
    owners: list[User]
    open_alerts: int = 0
    backlog: int = 0
    trend: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latest_rate(self) -> float | None:
        """The override rate of the most recent week with decisions."""
        judged = [w for w in self.trend if w["judged"]]
        return judged[-1]["rate"] if judged else None


def week_starts(today: date, weeks: int = TREND_WEEKS) -> list[date]:
    """The first days of the `weeks` seven-day periods ending today, oldest first."""
    return [today - timedelta(days=7 * (weeks - i) - 1) for i in range(weeks)]


def weekly_override_trend(session: Session, model_ids: list[int], today: date) -> dict[int, list[dict[str, Any]]]:
    """Per model: accepts, overrides and override rate per seven-day period, from the daily counts (one query)."""
    starts = week_starts(today)
    rows = session.execute(
        select(
            DecisionCount.model_id,
            DecisionCount.day,
            func.sum(DecisionCount.accepts).label("accepts"),
            func.sum(DecisionCount.overrides).label("overrides"),
        )
        .where(
            DecisionCount.model_id.in_(model_ids),
            DecisionCount.dimension == "model_version",
            DecisionCount.day >= starts[0].isoformat(),
            DecisionCount.day <= today.isoformat(),
        )
        .group_by(DecisionCount.model_id, DecisionCount.day)
    )
    sums = {m: [[0, 0] for _ in starts] for m in model_ids}
    for model_id, day, accepts, overrides in rows:
        week = (date.fromisoformat(day) - starts[0]).days // 7
        sums[model_id][week][0] += int(accepts or 0)
        sums[model_id][week][1] += int(overrides or 0)
    trends: dict[int, list[dict[str, Any]]] = {}
    for model_id, weeks in sums.items():
        trends[model_id] = [
            {
                "week": start.isoformat(),
                "judged": accepts + overrides,
                "overrides": overrides,
                "rate": overrides / (accepts + overrides) if accepts + overrides else None,
            }
            for start, (accepts, overrides) in zip(starts, weeks, strict=True)
        ]
    return trends


def open_alert_counts(session: Session) -> dict[int, int]:
    """Per model: open alerts of versions that are not retired (a retired version's alerts are history)."""
    rows = session.execute(
        select(ModelVersion.model_id, func.count(Alert.id))
        .join(Alert, Alert.model_version_id == ModelVersion.id)
        .where(Alert.status == "open", ModelVersion.stage != "retired")
        .group_by(ModelVersion.model_id)
    )
    return {model_id: int(n) for model_id, n in rows}


def open_backlog_counts(session: Session) -> dict[int, int]:
    """Per model: backlog items still waiting for work."""
    rows = session.execute(
        select(BacklogItem.model_id, func.count(BacklogItem.id))
        .where(BacklogItem.active.is_(True), BacklogItem.status.not_in(DONE_BACKLOG_STATUSES))
        .group_by(BacklogItem.model_id)
    )
    return {model_id: int(n) for model_id, n in rows}


def model_summaries(session: Session, viewer: User) -> list[ModelSummary]:
    """Every model the viewer may see, the ones they own first, then by name."""
    models = catalog_queries.models_with_versions(session)
    owned = permissions.owned_model_ids(session, viewer) if viewer.role == "model_owner" else set()
    owners = catalog_queries.model_owners(session)
    alerts = open_alert_counts(session)
    backlog = open_backlog_counts(session)
    trends = weekly_override_trend(session, [m.id for m in models], utcnow().date())
    summaries = [
        ModelSummary(
            model=m,
            owned=m.id in owned,
            owners=owners.get(m.id, []),
            open_alerts=alerts.get(m.id, 0),
            backlog=backlog.get(m.id, 0),
            trend=trends.get(m.id, []),
        )
        for m in models
    ]
    return sorted(summaries, key=lambda s: (not s.owned, s.model.name.lower()))
