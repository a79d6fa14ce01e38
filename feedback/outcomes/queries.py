"""Outcomes in SQL: the label a decided case is judged against."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from feedback.models import (
    Decision,
    Outcome,
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
