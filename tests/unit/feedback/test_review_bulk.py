"""Imported history's decisions (the demo's) count and audit as the decision service's do."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from feedback.db import utcnow
from feedback.models import AuditEvent, DecisionCount, Recommendation
from feedback.review import bulk, decisions
from tests.factories import make_case, make_model, make_user


def _counts(session) -> list[tuple[str, str, int, int, int]]:
    """The rollup's totals per dimension and key, shards added up."""
    cell = (DecisionCount.dimension, DecisionCount.key)
    totals = (DecisionCount.accepts, DecisionCount.overrides, DecisionCount.escalations)
    rows = session.execute(select(*cell, *(func.sum(t) for t in totals)).group_by(*cell).order_by(*cell)).all()
    return [(d, k, int(a), int(o), int(e)) for d, k, a, o, e in rows]


def test_bulk_decisions_count_and_audit_as_one_decision_at_a_time(session):
    make_model(session)
    reviewer = make_user(session, "frontline", name="Rita")
    one = make_case(session, 1, confidence=0.9)
    decisions.record_decision(session, reviewer, recommendation_id=one.id, action="override", final_action="deny",
                              reason_code="missing_context")  # fmt: skip
    by_service = _counts(session)
    session.execute(DecisionCount.__table__.delete())
    session.commit()
    two = make_case(session, 2, confidence=0.9)
    now = utcnow()
    row = {
        "recommendation_id": two.id, "model_id": two.model_id, "model_version_id": two.model_version_id,
        "reviewer_id": reviewer.id, "action": "override", "final_action": "deny", "reason_code": "missing_context",
        "note": "", "ai_shown": True, "opened_at": now, "decided_at": now, "channel": "ui", "quick": True,
    }  # fmt: skip
    case = {
        "model_id": two.model_id, "model_version_id": two.model_version_id, "model_version": "v1", "site": two.site,
        "confidence": two.confidence, "segment": two.segment, "recommended_action": two.recommended_action,
    }  # fmt: skip
    bulk.insert_decisions(session, decisions=[row], cases=[case])
    session.commit()
    assert _counts(session) == by_service  # the same cells, the same counts
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "decision.override").order_by(AuditEvent.id)
    ).all()
    service_event, bulk_event = events
    assert bulk_event.actor == service_event.actor == reviewer.email
    by_service_details, bulk_details = json.loads(service_event.details), json.loads(bulk_event.details)
    by_service_details.pop("decision_id")  # the bulk path inserts rows without reading their ids back
    assert bulk_details == by_service_details
    assert session.get(Recommendation, two.id) is not None
