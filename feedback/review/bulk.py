"""Many decisions at once: the path for imported history (the demo seeds through it).

Each decision is what `record_decision` writes one at a time: the row, its place in the rollup
counts, and its audit event in the reviewer's name with the same details. Rows go in through
`feedback.bulk` (COPY on PostgreSQL).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit, bulk
from feedback.audit import Actor, Change
from feedback.models import Decision, User
from feedback.overrides import rollup


def insert_decisions(session: Session, *, decisions: Sequence[dict[str, Any]], cases: Sequence[dict[str, Any]]) -> None:
    """Store decided cases' decisions in the caller's transaction, counted and audited.

    `decisions` are Decision rows (with recommendation_id, reviewer_id, action, final_action, ...);
    `cases` say, in the same order, what the rollup groups each decision by: model_id,
    model_version_id, model_version, site, confidence, segment and recommended_action.
    """
    if not decisions:
        return
    bulk.insert_rows(session, Decision, list(decisions))
    rollup.apply(session, rollup.tally(zip(decisions, cases, strict=True)))
    by_reviewer: dict[int, list[Change]] = defaultdict(list)
    for dec in decisions:
        details = {
            "final_action": dec["final_action"],
            "reason_code": dec["reason_code"],
            "ai_shown": dec.get("ai_shown", True),
            "channel": dec.get("channel", "ui"),
            **({"quick": True} if dec.get("quick") else {}),
        }
        by_reviewer[dec["reviewer_id"]].append(
            Change(f"decision.{dec['action']}", "recommendation", dec["recommendation_id"], details)
        )
    emails = {i: e for i, e in session.execute(select(User.id, User.email).where(User.id.in_(list(by_reviewer))))}
    for reviewer_id, changes in by_reviewer.items():
        audit.record(session, Actor(reviewer_id, emails[reviewer_id]), changes)
