"""The review queue in SQL: open cases by urgency, their counts, and one case with what it needs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload

from feedback.models import (
    Decision,
    Model,
    Recommendation,
)


@dataclass(frozen=True)
class QueueFilter:
    """Which open cases a reviewer is looking at."""

    model_id: int | None = None
    site: str | None = None


def _open_cases(flt: QueueFilter) -> Select[*tuple[Any, ...]]:
    """Base query of open cases under a filter."""
    query = select(Recommendation).where(Recommendation.status == "open")
    if flt.model_id:
        query = query.where(Recommendation.model_id == flt.model_id)
    if flt.site:
        query = query.where(Recommendation.site == flt.site)
    return query


# Due time (cases without one last), then arrival: the order of the (status, due_at, id) index,
# so the database walks the index instead of sorting every open case.
MOST_URGENT_FIRST = (Recommendation.due_at.asc().nulls_last(), Recommendation.id)


def open_cases(session: Session, flt: QueueFilter, *, limit: int = 50, offset: int = 0) -> list[Recommendation]:
    """Open cases, most urgent first (due time, then arrival), with model, version and claimant."""
    query = (
        _open_cases(flt)
        .options(
            joinedload(Recommendation.model),
            joinedload(Recommendation.model_version),
            joinedload(Recommendation.claimed_by),
        )
        .order_by(*MOST_URGENT_FIRST)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class QueueCounts:
    """How much work is waiting under a filter, and where."""

    total: int
    overdue: int
    claimed: int
    by_model: list[tuple[int, str, int]]
    by_site: list[tuple[str, int]]


def queue_counts(session: Session, flt: QueueFilter, now: datetime) -> QueueCounts:
    """Counts of open cases: total, overdue, claimed (under the filter), per model (under the site
    filter) and per site (under the model filter).

    One pass over the open cases, grouped by model and site, summed here: three separate counts
    read a 170,000-case queue three times (200 ms of database time on two cores).
    """
    cells = session.execute(
        select(
            Recommendation.model_id,
            Model.name,
            Recommendation.site,
            func.count(),
            func.count().filter(Recommendation.due_at < now),
            func.count().filter(Recommendation.claim_expires_at > now),
        )
        .join(Model, Model.id == Recommendation.model_id)
        .where(Recommendation.status == "open")
        .group_by(Recommendation.model_id, Model.name, Recommendation.site)
    ).all()
    by_model: Counter[tuple[int, str]] = Counter()
    by_site: Counter[str] = Counter()
    total = overdue = claimed = 0
    for model_id, name, site, count, late, held in cells:
        in_model = not flt.model_id or model_id == flt.model_id
        in_site = not flt.site or site == flt.site
        if in_site:
            by_model[(model_id, name)] += count
        if in_model:
            by_site[site] += count
        if in_model and in_site:
            total, overdue, claimed = total + count, overdue + late, claimed + held
    return QueueCounts(
        total=total,
        overdue=overdue,
        claimed=claimed,
        by_model=sorted(((i, n, c) for (i, n), c in by_model.items()), key=lambda row: (row[1], row[0])),
        by_site=sorted(by_site.items()),
    )


def case_detail(session: Session, recommendation_id: int) -> Recommendation | None:
    """One case with everything the review screen shows."""
    return session.get(
        Recommendation,
        recommendation_id,
        options=[
            joinedload(Recommendation.model),
            joinedload(Recommendation.model_version),
            joinedload(Recommendation.claimed_by),
            joinedload(Recommendation.decision).joinedload(Decision.reviewer),
        ],
        populate_existing=True,
    )


def case_sites(session: Session, model_id: int | None = None) -> list[str]:
    """The sites cases came from (of one model, when given), in order."""
    query = select(Recommendation.site).distinct().order_by(Recommendation.site)
    if model_id:
        query = query.where(Recommendation.model_id == model_id)
    return list(session.scalars(query))


def open_case_count(session: Session, version_id: int) -> int:
    """How many cases of a version wait for a decision."""
    query = select(func.count()).where(Recommendation.model_version_id == version_id, Recommendation.status == "open")
    return int(session.scalar(query) or 0)


def open_cases_by_model(session: Session) -> list[tuple[str, int]]:
    """(model key, open cases) of every model with cases waiting."""
    rows = session.execute(
        select(Model.key, func.count(Recommendation.id))
        .join(Recommendation, Recommendation.model_id == Model.id)
        .where(Recommendation.status == "open")
        .group_by(Model.key)
    )
    return [(key, int(count)) for key, count in rows]
