"""Many outcomes at once: the path for imported history (the demo seeds through it).

Each row is what `record_outcomes` stores one batch at a time (`outcome_row`, with the feed's
own fingerprint), counted in the rollup and audited the same way (`count_and_audit`). The
checks `record_outcomes` makes on a live feed (naming cases, idempotency, conflicts) are the
importer's to have made: history arrives for cases it has just stored. Rows are inserted by
`feedback.bulk` (COPY on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import bulk, permissions
from feedback.audit import Actor
from feedback.models import Outcome, Recommendation
from feedback.outcomes.services import count_and_audit, outcome_hash, outcome_row
from feedback.permissions import Action
from feedback.schemas import OutcomeIn


@dataclass(frozen=True)
class Reported:
    """An outcome of a stored case, as its feed reported it, and when it arrived."""

    recommendation_id: int
    item: OutcomeIn
    received_at: datetime


def record_history(session: Session, actor: Actor, *, reported: Sequence[Reported]) -> list[int]:
    """Store outcomes of imported history; returns their ids. The caller commits.

    Only the owners of each case's model (and admins, and the operator's tools) import its outcomes.
    """
    if not reported:
        return []
    ids = list({one.recommendation_id for one in reported})
    for model_id in session.scalars(select(Recommendation.model_id).where(Recommendation.id.in_(ids)).distinct()):
        permissions.require(actor, Action.SEND_CASES, session=session, model_id=model_id)
    rows = []
    for one in reported:
        fingerprint = outcome_hash(one.item, one.recommendation_id)
        rows.append(outcome_row(one.item, one.recommendation_id, fingerprint) | {"received_at": one.received_at})
    ids = list(bulk.insert_returning_ids(session, Outcome, rows))
    count_and_audit(session, actor, rows=rows, ids=ids)
    return ids
