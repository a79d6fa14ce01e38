"""Keyset pagination of decided cases, newest decision first: a count, one page, and where the next one starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, not_, or_, select
from sqlalchemy.orm import Session

from feedback.errors import ValidationFailed
from feedback.models import Decision

PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    """One page of rows: how many match in all, how many came on earlier pages, and the next page's cursor."""

    rows: list[Any]
    total: int
    before: int
    next_after: int | None

    @property
    def first(self) -> int:
        """The position of the page's first row (1-based; 0 when empty)."""
        return self.before + 1 if self.rows else 0

    @property
    def last(self) -> int:
        """The position of the page's last row."""
        return self.before + len(self.rows)


def newest_first(
    session: Session,
    query: Select[*tuple[Any, ...]],
    *,
    after: int | None,
    limit: int = PAGE_SIZE,
    options: Sequence[Any] = (),
) -> Page:
    """A page of `query` (which joins Decision) by decided_at then id, descending, after decision `after`.

    Rows come back as the query's rows (loader `options` apply to them, not to the counts); the
    cursor reads Decision.id, added as a last column.
    """
    total = int(session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
    before = 0
    keyset = query
    if after is not None:
        at = session.scalar(select(Decision.decided_at).where(Decision.id == after))
        if at is None:
            raise ValidationFailed("the page cursor is invalid", {"after": "names no decision"})
        later = or_(Decision.decided_at < at, and_(Decision.decided_at == at, Decision.id < after))
        keyset = query.where(later)
        earlier = query.where(not_(later)).order_by(None).subquery()
        before = int(session.scalar(select(func.count()).select_from(earlier)) or 0)
    found = session.execute(
        keyset.add_columns(Decision.id.label("page_decision_id"))
        .options(*options)
        .order_by(Decision.decided_at.desc(), Decision.id.desc())
        .limit(limit + 1)
    ).all()
    more = len(found) > limit
    rows = list(found[:limit])
    return Page(rows=rows, total=total, before=before, next_after=rows[-1].page_decision_id if more else None)
