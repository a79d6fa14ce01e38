"""Exceptions in SQL: the filtered list, its counts, and one exception with what it needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, joinedload

from feedback.models import (
    Decision,
    DecisionException,
    Model,
    Recommendation,
)


@dataclass(frozen=True)
class ExceptionFilter:
    """Which exceptions a handler is looking at (`status` is one of EXCEPTION_FILTER_STATUSES)."""

    status: str = "active"  # active (open or in progress), open, in_progress, resolved, all
    kind: str | None = None
    severity: str | None = None
    site: str | None = None
    model_id: int | None = None
    assignee_id: int | None = None


EXCEPTION_FILTER_STATUSES = ("active", "open", "in_progress", "resolved", "all")


def _exceptions(flt: ExceptionFilter) -> Select[*tuple[Any, ...]]:
    """Base query of exceptions under a filter."""
    query = select(DecisionException)
    if flt.status == "active":
        query = query.where(DecisionException.status != "resolved")
    elif flt.status != "all":
        query = query.where(DecisionException.status == flt.status)
    for column, value in (
        (DecisionException.kind, flt.kind),
        (DecisionException.severity, flt.severity),
        (DecisionException.site, flt.site),
        (DecisionException.model_id, flt.model_id),
        (DecisionException.assignee_id, flt.assignee_id),
    ):
        if value:
            query = query.where(column == value)
    return query


def exception_list(
    session: Session, flt: ExceptionFilter, *, limit: int = 50, offset: int = 0
) -> list[DecisionException]:
    """Exceptions, the ones due soonest (or most overdue) first."""
    query = (
        _exceptions(flt)
        .options(
            joinedload(DecisionException.recommendation),
            joinedload(DecisionException.model),
            joinedload(DecisionException.assignee),
        )
        .order_by(DecisionException.sla_due_at, DecisionException.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))


def exception_counts(session: Session, flt: ExceptionFilter, now: datetime) -> dict[str, int]:
    """How many exceptions match, how many are overdue, how many are unassigned."""
    matched = _exceptions(flt).subquery()
    total, overdue, unassigned = session.execute(
        select(
            func.count(),
            func.count().filter((matched.c.sla_due_at < now) & (matched.c.status != "resolved")),
            func.count().filter(matched.c.assignee_id.is_(None) & (matched.c.status != "resolved")),
        ).select_from(matched)
    ).one()
    return {"total": total, "overdue": overdue, "unassigned": unassigned}


def exception_sites(session: Session) -> list[str]:
    """Sites that have exceptions, for the filter."""
    return list(session.scalars(select(DecisionException.site).distinct().order_by(DecisionException.site)))


def exception_detail(session: Session, exception_id: int) -> DecisionException | None:
    """One exception with its case, the case's decision and the people involved."""
    return session.get(
        DecisionException,
        exception_id,
        options=[
            joinedload(DecisionException.recommendation).joinedload(Recommendation.model_version),
            joinedload(DecisionException.recommendation)
            .joinedload(Recommendation.decision)
            .joinedload(Decision.reviewer),
            joinedload(DecisionException.model),
            joinedload(DecisionException.assignee),
            joinedload(DecisionException.raised_by),
            joinedload(DecisionException.resolved_by),
        ],
        populate_existing=True,
    )


def unresolved_exceptions_by_model(session: Session, now: datetime) -> list[tuple[str, int, int]]:
    """(model key, unresolved exceptions, of which past their SLA) of every model with any."""
    rows = session.execute(
        select(
            Model.key,
            func.count(DecisionException.id),
            func.coalesce(func.sum(case((DecisionException.sla_due_at < now, 1), else_=0)), 0),
        )
        .join(DecisionException, DecisionException.model_id == Model.id)
        .where(DecisionException.status != "resolved")
        .group_by(Model.key)
    )
    return [(key, int(count), int(late)) for key, count, late in rows]
