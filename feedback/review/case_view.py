"""One case read whole, for the read-only case view: the case, its decision, outcomes, exceptions and audit history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from feedback import permissions
from feedback.models import AuditEvent, Decision, DecisionException, Recommendation, User

# Audit details that name nobody and so may be shown to everyone who may read the case (an
# assignment's e-mails, say, may not).
SHOWN_DETAILS = ("final_action", "reason_code", "kind", "source", "channel", "ai_shown", "arm")


@dataclass(frozen=True)
class HistoryEntry:
    """One audit event of the case, with the actor as the viewer may see them."""

    occurred_at: datetime
    action: str
    actor: str
    details: dict[str, Any]


def case_detail(session: Session, recommendation_id: int) -> Recommendation | None:
    """A case with its model, version, decision (and reviewer) and outcomes loaded."""
    return session.scalar(
        select(Recommendation)
        .where(Recommendation.id == recommendation_id)
        .options(
            joinedload(Recommendation.model),
            joinedload(Recommendation.model_version),
            joinedload(Recommendation.decision).joinedload(Decision.reviewer),
            selectinload(Recommendation.outcomes),
        )
    )


def case_exceptions(session: Session, recommendation_id: int) -> list[DecisionException]:
    """The case's exceptions with the people on them, oldest first."""
    return list(
        session.scalars(
            select(DecisionException)
            .where(DecisionException.recommendation_id == recommendation_id)
            .options(
                joinedload(DecisionException.assignee),
                joinedload(DecisionException.raised_by),
                joinedload(DecisionException.resolved_by),
            )
            .order_by(DecisionException.opened_at)
        )
    )


def case_history(
    session: Session, viewer: User, recommendation_id: int, exception_ids: list[int]
) -> list[HistoryEntry]:
    """The audit events of the case and of its exceptions, oldest first, people shown as the viewer may see them."""
    about = [and_(AuditEvent.entity_type == "recommendation", AuditEvent.entity_id == str(recommendation_id))]
    if exception_ids:
        about.append(
            and_(AuditEvent.entity_type == "exception", AuditEvent.entity_id.in_([str(i) for i in exception_ids]))
        )
    events = session.scalars(select(AuditEvent).where(or_(*about)).order_by(AuditEvent.seq)).all()
    people = permissions.labels(session, viewer, {e.actor_id for e in events if e.actor_id is not None})
    entries = []
    for event in events:
        details = json.loads(event.details) if event.details else {}
        shown = {k: v for k, v in details.items() if k in SHOWN_DETAILS} if isinstance(details, dict) else {}
        # An event without a user is the system's (ingest by a service token's owner is a user).
        actor = people.get(event.actor_id, permissions.pseudonym(event.actor_id)) if event.actor_id else event.actor
        entries.append(HistoryEntry(event.occurred_at, event.action, actor, shown))
    return entries
