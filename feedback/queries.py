"""Read-side queries: aggregation happens here, in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session, joinedload

from feedback.models import Decision, DecisionException, Model, Outcome, Recommendation


@dataclass(frozen=True)
class QueueFilter:
    """Which open cases a reviewer is looking at."""

    model_id: int | None = None
    site: str | None = None


def _open_cases(flt: QueueFilter) -> Select:
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
    """Counts of open cases: total, overdue, claimed, and per model and per site (three queries)."""
    cases = _open_cases(flt).subquery()
    totals = session.execute(
        select(
            func.count(),
            func.count().filter(cases.c.due_at < now),
            func.count().filter(cases.c.claim_expires_at > now),
        ).select_from(cases)
    ).one()
    by_model = session.execute(
        select(Model.id, Model.name, func.count(Recommendation.id))
        .join(Recommendation, Recommendation.model_id == Model.id)
        .where(Recommendation.status == "open")
        .where(Recommendation.site == flt.site if flt.site else true())
        .group_by(Model.id, Model.name)
        .order_by(Model.name)
    ).all()
    by_site = session.execute(
        select(Recommendation.site, func.count())
        .where(Recommendation.status == "open")
        .where(Recommendation.model_id == flt.model_id if flt.model_id else true())
        .group_by(Recommendation.site)
        .order_by(Recommendation.site)
    ).all()
    return QueueCounts(
        total=totals[0],
        overdue=totals[1],
        claimed=totals[2],
        by_model=[(int(i), str(n), int(c)) for i, n, c in by_model],
        by_site=[(str(site), int(c)) for site, c in by_site],
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


def models_with_versions(session: Session) -> list[Model]:
    """Every model with its versions, by name."""
    return list(session.scalars(select(Model).options(joinedload(Model.versions)).order_by(Model.name)).unique())


@dataclass(frozen=True)
class ExceptionFilter:
    """Which exceptions a handler is looking at."""

    status: str = "active"  # active (open or in progress), open, in_progress, resolved, all
    kind: str | None = None
    severity: str | None = None
    site: str | None = None
    model_id: int | None = None
    assignee_id: int | None = None


def _exceptions(flt: ExceptionFilter) -> Select:
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


def first_label() -> Any:
    """Correlated scalar subquery: the decided case's first label outcome (what accuracy is judged against).

    A per-row indexed lookup; joining a grouped subquery instead made SQLite rescan outcomes.
    """
    return (
        select(Outcome.label)
        .where(Outcome.recommendation_id == Decision.recommendation_id, Outcome.label.is_not(None))
        .order_by(Outcome.id)
        .limit(1)
        .scalar_subquery()
    )


def period_start(session: Session, column: Any, period: str) -> Any:
    """The UTC day, or the Monday of the week, a timestamp falls in, as YYYY-MM-DD text, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc(period, func.timezone("UTC", column)), "YYYY-MM-DD")
    if period == "day":
        return func.date(column)
    return func.date(column, "weekday 0", "-6 days")


def week_start(session: Session, column: Any) -> Any:
    """The Monday of the week a timestamp falls in (YYYY-MM-DD)."""
    return period_start(session, column, "week")
