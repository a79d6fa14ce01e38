"""Many exceptions at once, opened and worked in bulk: the path for imported history (the demo seeds through it).

Each row is what `open_exception` and `resolve_exception` write one at a time: the same SLA due
time (`exception_row`), the same statuses, the same audit events. Rows are inserted by
`feedback.bulk` (COPY on PostgreSQL) and updated by one executemany per status.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from feedback import audit, bulk
from feedback.accounts.services import actor_of
from feedback.audit import Actor, Change
from feedback.db import Base
from feedback.decision_exceptions.services import exception_row, sla_hours
from feedback.models import DecisionException, User


@dataclass(frozen=True)
class Raised:
    """An exception to open on a case."""

    recommendation_id: int
    model_id: int
    site: str
    kind: str
    reason: str
    raised_by_id: int | None
    opened_at: datetime


@dataclass(frozen=True)
class Handled:
    """What a handler did with an open exception: resolved it (at a time, with a final action) or took it up."""

    exception_id: int
    recommendation_id: int
    kind: str
    handler: User
    resolved_at: datetime | None = None  # None: claimed, still in progress
    final_action: str | None = None


def open_exceptions(session: Session, actor: Actor, *, raised: Sequence[Raised]) -> list[int]:
    """Open these exceptions in the caller's transaction and audit them; their ids, in order."""
    if not raised:
        return []
    policies = sla_hours(session, list({r.model_id for r in raised}))
    rows = [
        {
            **exception_row(
                policies,
                recommendation_id=r.recommendation_id,
                model_id=r.model_id,
                site=r.site,
                kind=r.kind,
                reason=r.reason,
                raised_by_id=r.raised_by_id,
                opened_at=r.opened_at,
            ),
            "resolution_note": "",
            "row_version": 1,
        }
        for r in raised
    ]
    ids = bulk.insert_returning_ids(session, DecisionException, rows)
    changes = [
        Change("exception.raised", "exception", i, {"recommendation_id": r.recommendation_id, "kind": r.kind})
        for i, r in zip(ids, raised, strict=True)
    ]
    audit.record(session, actor, changes)
    return list(ids)


def record_handling(session: Session, *, handled: Sequence[Handled]) -> None:
    """Resolve or take up freshly opened exceptions in the caller's transaction, audited as each handler.

    A resolution resolves the case too, except for an audit sample (it re-checks a decided case).
    The rows were just written, so no row-version check is needed.
    """
    changes: dict[int, list[Change]] = defaultdict(list)
    handlers: dict[int, User] = {}
    by_status: dict[str, list[dict[str, Any]]] = {"resolved": [], "in_progress": []}
    resolved_cases = []
    for h in handled:
        handlers[h.handler.id] = h.handler
        if h.resolved_at is not None:
            by_status["resolved"].append(
                {
                    "id": h.exception_id,
                    "status": "resolved",
                    "resolved_at": h.resolved_at,
                    "assignee_id": h.handler.id,
                    "resolved_by_id": h.handler.id,
                    "resolution_action": h.final_action,
                    "row_version": 2,
                }
            )
            details = {"final_action": h.final_action, "kind": h.kind}
            changes[h.handler.id].append(Change("exception.resolved", "exception", h.exception_id, details))
            if h.kind != "audit_sample":
                resolved_cases.append({"v_id": h.recommendation_id})
        else:
            by_status["in_progress"].append(
                {"id": h.exception_id, "status": "in_progress", "assignee_id": h.handler.id, "row_version": 2}
            )
            claimed = {"to": h.handler.email}
            changes[h.handler.id].append(Change("exception.claimed", "exception", h.exception_id, claimed))
    table = Base.metadata.tables["exceptions"]
    for batch in by_status.values():
        if batch:
            columns: dict[str, Any] = {k: bindparam(f"v_{k}") for k in batch[0] if k != "id"}
            session.execute(
                update(table).where(table.c.id == bindparam("v_id")).values(**columns),
                [{f"v_{k}": v for k, v in row.items()} for row in batch],
            )
    if resolved_cases:
        cases = Base.metadata.tables["recommendations"]
        session.execute(update(cases).where(cases.c.id == bindparam("v_id")).values(status="resolved"), resolved_cases)
    for handler_id, handler_changes in changes.items():
        audit.record(session, actor_of(handlers[handler_id]), handler_changes)
