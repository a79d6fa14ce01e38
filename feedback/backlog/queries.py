"""The retraining backlog's reads: ranked items, one item, its cases, its rate over time, refresh state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, joinedload

from analytics.overrides import compare_rates
from feedback import paging, sqldates
from feedback.backlog.conditions import pattern_clause
from feedback.db import utcnow
from feedback.errors import NotFound
from feedback.models import (
    BacklogItem,
    BacklogRefresh,
    Decision,
    Model,
    ModelVersion,
    Recommendation,
)

REFRESH_STALE_AFTER = timedelta(minutes=5)  # progress is written per version, seconds apart


def refresh_interrupted(job: BacklogRefresh, now: datetime | None = None) -> bool:
    """A refresh that stopped reporting progress (its worker was restarted): shown as interrupted."""
    return job.status in ("queued", "running") and job.updated_at < (now or utcnow()) - REFRESH_STALE_AFTER


def latest_refresh(session: Session, model_id: int) -> BacklogRefresh | None:
    """The model's most recent backlog refresh, if any."""
    return session.scalars(
        select(BacklogRefresh)
        .where(BacklogRefresh.model_id == model_id)
        .order_by(BacklogRefresh.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    ).first()


def get_refresh(session: Session, model_id: int, job_id: int) -> BacklogRefresh:
    """One of the model's refreshes, or NotFound."""
    job = session.get(BacklogRefresh, job_id, populate_existing=True)
    if job is None or job.model_id != model_id:
        raise NotFound(f"no backlog refresh {job_id}")
    return job


def item_payload(item: BacklogItem) -> dict[str, Any]:
    """The JSON shape of an item (API and webhooks)."""
    return {
        "id": item.id,
        "model": item.model.key if item.model else None,
        "model_version": item.model_version.version if item.model_version else None,
        "pattern": item.pattern_key,
        "conditions": item.conditions,
        "title": item.title,
        "cases": item.cases,
        "overrides": item.overrides,
        "rate": item.rate,
        "rate_low": item.rate_low,
        "rate_high": item.rate_high,
        "baseline": item.baseline,
        "ratio": item.rate / item.baseline if item.baseline else None,
        "excess_overrides": item.excess,
        "q_value": item.q_value,
        "ai_wrong_share": item.wrong_share,
        "priority": item.priority,
        "top_final_action": item.top_final_action,
        "top_reason": item.top_reason,
        "active": item.active,
        "status": item.status,
        "owner": item.owner.email if item.owner else None,
        "notes": item.notes,
        "verified_by_version": item.verified_by_version.version if item.verified_by_version else None,
        "row_version": item.row_version,
        "refreshed_at": item.refreshed_at.isoformat(),
    }


@dataclass(frozen=True)
class BacklogFilter:
    """Which backlog items a list shows."""

    model_key: str
    status: str | None = None
    version: str | None = None
    owner_id: int | None = None
    include_inactive: bool = False


def ranked(session: Session, flt: BacklogFilter) -> list[BacklogItem]:
    """The model's items, highest priority first (items no longer credible last, when asked for)."""
    query = (
        select(BacklogItem)
        .join(Model, Model.id == BacklogItem.model_id)
        .join(ModelVersion, ModelVersion.id == BacklogItem.model_version_id)
        .where(Model.key == flt.model_key)
        .options(
            joinedload(BacklogItem.model),
            joinedload(BacklogItem.model_version),
            joinedload(BacklogItem.owner),
            joinedload(BacklogItem.verified_by_version),
        )
        .order_by(BacklogItem.active.desc(), BacklogItem.priority.desc(), BacklogItem.id)
    )
    if flt.status:
        query = query.where(BacklogItem.status == flt.status)
    if flt.version:
        query = query.where(ModelVersion.version == flt.version)
    if flt.owner_id:
        query = query.where(BacklogItem.owner_id == flt.owner_id)
    if not flt.include_inactive:
        query = query.where(BacklogItem.active.is_(True))
    return list(session.scalars(query))


def get_item(session: Session, item_id: int) -> BacklogItem:
    """A backlog item, or NotFound."""
    item = session.get(
        BacklogItem,
        item_id,
        options=[joinedload(BacklogItem.model), joinedload(BacklogItem.model_version), joinedload(BacklogItem.owner)],
        populate_existing=True,
    )
    if item is None:
        raise NotFound(f"no backlog item {item_id}")
    return item


@dataclass(frozen=True)
class Verification:
    """A newer version's override rate on the same subgroup, against the item's."""

    version: ModelVersion
    cases: int
    overrides: int
    rate: float
    p_value: float
    lower: bool


def verification(session: Session, item: BacklogItem, alpha: float = 0.05) -> Verification | None:
    """Test the newest later version with cases in the subgroup: is its override rate significantly lower?"""
    newer = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == item.model_id, ModelVersion.created_at > item.model_version.created_at)
        .order_by(ModelVersion.created_at.desc())
    ).all()
    for version in newer:
        n, k = _subgroup_counts(session, version.id, item.conditions)
        if n < 10:
            continue
        comparison = compare_rates(version.version, k, n, item.model_version.version, item.overrides, item.cases)
        # One-sided: lower than the item's version.
        one_sided = comparison.p_value / 2 if comparison.difference < 0 else 1 - comparison.p_value / 2
        return Verification(version, n, k, k / n, one_sided, comparison.difference < 0 and one_sided < alpha)
    return None


def _subgroup_counts(session: Session, version_id: int, conditions: Sequence[dict[str, Any]]) -> tuple[int, int]:
    row = session.execute(
        select(func.count(), func.sum(case((Decision.action == "override", 1), else_=0)))
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .where(
            Decision.model_version_id == version_id,
            Decision.ai_shown.is_(True),
            Decision.action.in_(("accept", "override")),
            pattern_clause(conditions),
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def pattern_cases(
    session: Session,
    item: BacklogItem,
    *,
    overrides_only: bool = True,
    after: int | None = None,
    limit: int = paging.PAGE_SIZE,
) -> paging.Page:
    """The decided cases of the item's version in its pattern (its overrides unless told), a page at a time."""
    query = (
        select(
            Recommendation.id,
            Recommendation.external_id,
            Recommendation.subject,
            Recommendation.site,
            Recommendation.recommended_action,
            Recommendation.confidence,
            Decision.action,
            Decision.final_action,
            Decision.reason_code,
            Decision.note,
            Decision.decided_at,
        )
        .join(Decision, Decision.recommendation_id == Recommendation.id)
        .where(Decision.model_version_id == item.model_version_id, pattern_clause(item.conditions))
    )
    if overrides_only:
        query = query.where(Decision.action == "override")
    return paging.newest_first(session, query, after=after, limit=limit)


def rate_over_time(session: Session, item: BacklogItem) -> pd.DataFrame:
    """The subgroup's weekly override rate per version of the model (for the item's chart)."""
    week = sqldates.week_start(session, Decision.decided_at)
    rows = session.execute(
        select(
            ModelVersion.version,
            week.label("week"),
            func.count().label("n"),
            func.sum(case((Decision.action == "override", 1), else_=0)).label("overrides"),
        )
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(
            Decision.model_id == item.model_id,
            Decision.ai_shown.is_(True),
            Decision.action.in_(("accept", "override")),
            pattern_clause(item.conditions),
        )
        .group_by(ModelVersion.version, week)
        .order_by(week)
    ).all()
    frame = pd.DataFrame(rows, columns=["version", "week", "n", "overrides"])
    frame["rate"] = frame["overrides"] / frame["n"]
    return frame


def refreshed_at(session: Session, model_id: int) -> datetime | None:
    """When the model's backlog was last mined (None if never)."""
    return session.scalar(select(func.max(BacklogItem.refreshed_at)).where(BacklogItem.model_id == model_id))
