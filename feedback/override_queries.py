"""Override analytics in SQL: counts grouped in the database, never row by row in Python."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, Select, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.errors import ValidationFailed
from feedback.models import Decision, ModelVersion, Outcome, Recommendation, User

BREAKDOWNS = ("model_version", "site", "reason_code", "reviewer", "confidence_decile")
SEGMENT_ATTR = re.compile(r"^segment\.([A-Za-z0-9_]{1,64})$")
MAX_DAYS = 3660


@dataclass(frozen=True)
class Window:
    """Which decisions an override analysis covers: one model, a date range, maybe one version."""

    model_id: int
    start: datetime
    end: datetime
    version_id: int | None = None


def window(model_id: int, date_from: str | None, date_to: str | None, version_id: int | None = None) -> Window:
    """Parse an inclusive date range (default: the last 30 days), naming the bad field on error."""
    fields = {}
    today = utcnow().date()
    parsed: dict[str, date] = {}
    for name, raw, default in (("from", date_from, today - timedelta(days=29)), ("to", date_to, today)):
        try:
            parsed[name] = date.fromisoformat(raw) if raw else default
        except ValueError:
            fields[name] = "must be a date like 2026-01-31"
    if not fields and parsed["from"] > parsed["to"]:
        fields["from"] = "must not be after to"
    if not fields and (parsed["to"] - parsed["from"]).days > MAX_DAYS:
        fields["from"] = f"the range may span at most {MAX_DAYS} days"
    if fields:
        raise ValidationFailed("the date range is invalid", fields)
    start = datetime.combine(parsed["from"], time.min).replace(tzinfo=utcnow().tzinfo)
    end = datetime.combine(parsed["to"] + timedelta(days=1), time.min).replace(tzinfo=utcnow().tzinfo)
    return Window(model_id, start, end, version_id)


def _scope(query: Select, w: Window) -> Select:
    """Restrict to the window's model, dates and version; only decisions where the AI was shown."""
    query = query.where(
        Decision.model_id == w.model_id,
        Decision.decided_at >= w.start,
        Decision.decided_at < w.end,
        Decision.ai_shown.is_(True),
    )
    if w.version_id:
        query = query.where(Decision.model_version_id == w.version_id)
    return query


def _counts() -> list[Any]:
    """decisions, accepts, overrides and escalations as SQL aggregates."""
    return [
        func.count().label("decisions"),
        func.count().filter(Decision.action == "accept").label("accepts"),
        func.count().filter(Decision.action == "override").label("overrides"),
        func.count().filter(Decision.action == "escalate").label("escalations"),
    ]


def breakdown_key(session: Session, by: str) -> tuple[Any, bool]:
    """The SQL expression to group by, and whether it needs the recommendations joined."""
    if by == "model_version":
        return ModelVersion.version, False
    if by == "reviewer":
        return User.name, False
    if by == "reason_code":
        return func.coalesce(Decision.reason_code, literal("(accepted or escalated)")), False
    if by == "site":
        return Recommendation.site, True
    if by == "confidence_decile":
        decile = case(
            (Recommendation.confidence >= 1, 9), else_=cast(func.floor(Recommendation.confidence * 10), Integer)
        )
        return decile, True
    match = SEGMENT_ATTR.match(by)
    if match:
        return func.coalesce(Recommendation.segment[match.group(1)].as_string(), literal("(none)")), True
    raise ValidationFailed("unknown breakdown", {"by": f"must be one of {', '.join(BREAKDOWNS)} or segment.ATTRIBUTE"})


def override_counts(session: Session, w: Window, by: str) -> list[dict[str, Any]]:
    """Per group: decisions, accepts, overrides and escalations (one GROUP BY in the database)."""
    key, needs_case = breakdown_key(session, by)
    query = select(key.label("key"), *_counts()).select_from(Decision)
    if by == "model_version":
        query = query.join(ModelVersion, ModelVersion.id == Decision.model_version_id)
    if by == "reviewer":
        query = query.join(User, User.id == Decision.reviewer_id)
    if needs_case:
        query = query.join(Recommendation, Recommendation.id == Decision.recommendation_id)
    query = _scope(query, w).group_by(key).order_by(key)
    rows = [dict(r._mapping) for r in session.execute(query)]
    if by == "confidence_decile":
        for row in rows:
            row["key"] = f"{row['key'] / 10:.1f}–{(row['key'] + 1) / 10:.1f}"
    if by == "reason_code":
        # A reason's rate is its overrides over all accepts and overrides, so the reasons add up
        # to the total override rate.
        total = override_totals(session, w)
        rows = [
            {
                **row,
                "decisions": total["decisions"],
                "accepts": total["accepts"] + total["overrides"] - row["overrides"],
                "escalations": 0,
            }
            for row in rows
            if row["overrides"]
        ]
    return rows


def override_totals(session: Session, w: Window) -> dict[str, int]:
    """Totals over the whole window."""
    return dict(session.execute(_scope(select(*_counts()).select_from(Decision), w)).one()._mapping)


def daily_override_counts(session: Session, w: Window) -> list[dict[str, Any]]:
    """Per version and UTC day: accepts and overrides (for the p-chart)."""
    if session.get_bind().dialect.name == "sqlite":
        day = func.date(Decision.decided_at)  # stored as UTC text
    else:
        day = func.to_char(func.timezone("UTC", Decision.decided_at), "YYYY-MM-DD")
    query = (
        select(
            ModelVersion.version.label("version"),
            day.label("day"),
            func.count().filter(Decision.action == "accept").label("accepts"),
            func.count().filter(Decision.action == "override").label("overrides"),
        )
        .select_from(Decision)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
    )
    query = _scope(query, w).group_by(ModelVersion.version, day).order_by(ModelVersion.version, day)
    return [dict(r._mapping) for r in session.execute(query)]


def _first_label() -> Select:
    """One label outcome per case: the earliest reported."""
    first = (
        select(Outcome.recommendation_id, func.min(Outcome.id).label("outcome_id"))
        .where(Outcome.label.is_not(None))
        .group_by(Outcome.recommendation_id)
        .subquery()
    )
    return select(first.c.recommendation_id, Outcome.label).join(Outcome, Outcome.id == first.c.outcome_id)


def accuracy_counts(session: Session, w: Window, by: str | None = None) -> list[dict[str, Any]]:
    """On decided cases with an outcome: how often the AI and the final decision were right.

    For overrides also: the human corrected a wrong AI, or overrode a right one.
    """
    truth = _first_label().subquery()
    ai_right = Recommendation.recommended_action == truth.c.label
    human_right = Decision.final_action == truth.c.label
    is_override = Decision.action == "override"
    columns = [
        func.count().label("with_outcome"),
        func.count().filter(ai_right).label("ai_right"),
        func.count().filter(human_right).label("final_right"),
        func.count().filter(is_override).label("overrides"),
        func.count().filter(and_(is_override, human_right, ~ai_right)).label("corrected"),
        func.count().filter(and_(is_override, ai_right)).label("overrode_right"),
    ]
    key: Any = None
    query = (
        select(*columns)
        .select_from(Decision)
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .join(truth, truth.c.recommendation_id == Decision.recommendation_id)
        .where(Decision.action != "escalate")
    )
    if by == "reviewer":
        key = User.name
        query = query.join(User, User.id == Decision.reviewer_id)
    elif by == "reason_code":
        key = func.coalesce(Decision.reason_code, literal("(accepted)"))
    elif by == "model_version":
        key = ModelVersion.version
        query = query.join(ModelVersion, ModelVersion.id == Decision.model_version_id)
    if key is not None:
        query = query.add_columns(key.label("key")).group_by(key).order_by(key)
    return [dict(r._mapping) for r in session.execute(_scope(query, w))]


def reviewer_speed(session: Session, w: Window) -> list[dict[str, Any]]:
    """Per reviewer: decisions, accepts, and seconds to decide in buckets (median computed from them)."""
    from feedback.frames import seconds_between

    seconds = seconds_between(session, Decision.opened_at, Decision.decided_at)
    # Log-spaced buckets keep the median exact to a few percent without moving every row out.
    bucket = cast(
        func.round(
            func.ln(
                func.max(seconds, 1.0) if session.get_bind().dialect.name == "sqlite" else func.greatest(seconds, 1.0)
            )
            * 20
        ),
        Integer,
    )
    query = (
        select(
            User.name.label("reviewer"),
            bucket.label("bucket"),
            func.count().label("decisions"),
            func.count().filter(Decision.action == "accept").label("accepts"),
            func.count().filter(Decision.action == "override").label("overrides"),
        )
        .select_from(Decision)
        .join(User, User.id == Decision.reviewer_id)
    )
    query = _scope(query, w).group_by(User.name, bucket).order_by(User.name, bucket)
    return [dict(r._mapping) for r in session.execute(query)]


def cases_behind(
    session: Session, w: Window, by: str, key: str, *, overrides_only: bool = True, limit: int = 100
) -> list[Recommendation]:
    """The decided cases behind one cell of a breakdown (drill-down)."""
    expr: Any
    expr, _ = breakdown_key(session, by)
    query = select(Recommendation).join(Decision, Decision.recommendation_id == Recommendation.id)
    if by == "model_version":
        query = query.join(ModelVersion, ModelVersion.id == Decision.model_version_id)
    if by == "reviewer":
        query = query.join(User, User.id == Decision.reviewer_id)
    if by == "confidence_decile":
        low = key.split("–")[0]
        try:
            value: Any = round(float(low) * 10)
        except ValueError:
            raise ValidationFailed("unknown decile", {"key": "must look like 0.3–0.4"}) from None
    elif by == "reason_code":
        value = key
        expr = Decision.reason_code
    else:
        value = key
    query = _scope(query.where(expr == value), w)
    if overrides_only:
        query = query.where(Decision.action == "override")
    return list(session.scalars(query.order_by(Decision.decided_at.desc()).limit(limit)))


def segment_keys(session: Session, model_id: int, sample: int = 200) -> list[str]:
    """Segment attributes seen in a model's most recent cases (for the breakdown menu)."""
    segments = session.scalars(
        select(Recommendation.segment)
        .where(Recommendation.model_id == model_id)
        .order_by(Recommendation.id.desc())
        .limit(sample)
    ).all()
    return sorted({key for segment in segments for key in (segment or {})})
