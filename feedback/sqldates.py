"""Calendar periods in SQL: the same day and week on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session


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
