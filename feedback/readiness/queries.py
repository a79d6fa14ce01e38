"""Reads for readiness plans: the plans, and the counts each criterion is judged on (SQL aggregates)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.errors import NotFound
from feedback.models import Decision, DecisionException, Model, ModelVersion, Recommendation
from feedback.models.readiness import ReadinessPlan
from feedback.outcomes.queries import first_label


def latest_plan(session: Session, version_id: int) -> ReadinessPlan | None:
    """The version's plan in force: its highest plan version (None before one is registered)."""
    return session.scalar(
        select(ReadinessPlan)
        .where(ReadinessPlan.model_version_id == version_id)
        .order_by(ReadinessPlan.plan_version.desc())
        .limit(1)
    )


def latest_plans(session: Session, version_ids: list[int]) -> dict[int, ReadinessPlan]:
    """The plan in force of each of these versions that has one (one query)."""
    if not version_ids:
        return {}
    newest = (
        select(ReadinessPlan.model_version_id, func.max(ReadinessPlan.plan_version).label("top"))
        .where(ReadinessPlan.model_version_id.in_(version_ids))
        .group_by(ReadinessPlan.model_version_id)
        .subquery()
    )
    plans = session.scalars(
        select(ReadinessPlan).join(
            newest,
            and_(
                ReadinessPlan.model_version_id == newest.c.model_version_id,
                ReadinessPlan.plan_version == newest.c.top,
            ),
        )
    )
    return {plan.model_version_id: plan for plan in plans}


def plan_history(session: Session, version_id: int) -> list[ReadinessPlan]:
    """Every plan version of a version, newest first."""
    return list(
        session.scalars(
            select(ReadinessPlan)
            .where(ReadinessPlan.model_version_id == version_id)
            .order_by(ReadinessPlan.plan_version.desc())
        )
    )


@dataclass(frozen=True)
class Counts:
    """Events of n trials."""

    events: int
    n: int


def _sum(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def decision_counts(session: Session, version_id: int) -> tuple[int, Counts]:
    """AI-shown decisions of the version, and its overrides among those accepted or overridden."""
    shown = and_(Decision.model_version_id == version_id, Decision.ai_shown.is_(True))
    total, judged, overrides = session.execute(
        select(
            func.count(),
            _sum(Decision.action.in_(("accept", "override"))),
            _sum(Decision.action == "override"),
        ).where(shown)
    ).one()
    return int(total), Counts(int(overrides), int(judged))


def accuracy_counts(session: Session, version_id: int) -> Counts:
    """Decided cases of the version with a label outcome, and those where the AI's action was the label."""
    label = first_label()
    rows = (
        select(Recommendation.recommended_action.label("ai"), label.label("label"))
        .select_from(Decision)
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .where(Decision.model_version_id == version_id)
        .subquery()
    )
    n, right = session.execute(
        select(func.count(), _sum(rows.c.ai == rows.c.label)).where(rows.c.label.is_not(None))
    ).one()
    return Counts(int(right), int(n))


def sla_counts(session: Session, version_id: int) -> Counts:
    """Exceptions of the version's cases that met or missed their SLA: resolved by the deadline, of all
    resolved plus those still open past it (a miss already)."""
    now = utcnow()
    late_open = and_(DecisionException.status != "resolved", DecisionException.sla_due_at < now)
    settled = or_(DecisionException.status == "resolved", late_open)
    on_time = and_(
        DecisionException.status == "resolved", DecisionException.resolved_at <= DecisionException.sla_due_at
    )
    n, met = session.execute(
        select(func.count(), _sum(on_time))
        .select_from(DecisionException)
        .join(Recommendation, Recommendation.id == DecisionException.recommendation_id)
        .where(Recommendation.model_version_id == version_id, settled)
    ).one()
    return Counts(int(met), int(n))


def seconds_to_decide(session: Session) -> ColumnElement[Any]:
    """Seconds from opening a case to deciding it, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", Decision.decided_at - Decision.opened_at)
    return (func.julianday(Decision.decided_at) - func.julianday(Decision.opened_at)) * 86400.0


def decide_seconds_at_ranks(session: Session, version_id: int, ranks: list[int]) -> dict[int, float]:
    """The AI-shown decisions' seconds-to-decide at these 0-based ranks in ascending order (one query each)."""
    seconds = seconds_to_decide(session)
    shown = and_(Decision.model_version_id == version_id, Decision.ai_shown.is_(True))
    found = {}
    for rank in sorted(set(ranks)):
        value = session.scalar(select(seconds).where(shown).order_by(seconds, Decision.id).offset(rank).limit(1))
        if value is not None:
            found[rank] = float(value)
    return found


def version_by_key(session: Session, model_key: str, version: str) -> ModelVersion:
    """A model's version by the model's key and the version's name, or NotFound naming which is unknown."""
    model = session.scalar(select(Model).where(Model.key == model_key))
    if model is None:
        raise NotFound(f"no model {model_key!r}", {"model": "unknown model"})
    found = session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version)
    )
    if found is None:
        raise NotFound(f"{model_key} has no version {version!r}", {"version": "unknown version"})
    return found
