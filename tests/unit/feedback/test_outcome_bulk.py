"""Imported history's outcomes (the demo's) are stored, counted and audited as the outcome service's are."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from feedback.db import utcnow
from feedback.models import AuditEvent, Outcome
from feedback.outcomes import bulk, services
from feedback.overrides import rollup
from feedback.review import decisions
from feedback.schemas import OutcomeIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_user
from tests.helpers import snapshot

COLUMNS = ("source", "label", "value", "observed_at")


def test_bulk_outcomes_equal_the_services_row_counts_and_audit(session):
    make_model(session)
    reviewer = make_user(session)
    observed = utcnow().replace(microsecond=0)
    cases = [make_case(session, n) for n in (1, 2)]
    for case in cases:
        decisions.record_decision(session, reviewer, recommendation_id=case.id, action="accept")
    by_service = OutcomeIn(recommendation_id=cases[0].id, outcome="deny", observed_at=observed, source="ledger")
    services.record_outcomes(session, TEST_ACTOR, items=[by_service])
    imported = OutcomeIn(recommendation_id=cases[1].id, outcome="deny", observed_at=observed, source="ledger")
    ids = bulk.record_history(session, TEST_ACTOR, reported=[bulk.Reported(cases[1].id, imported, observed)])
    session.commit()

    first, second = session.scalars(select(Outcome).order_by(Outcome.id)).all()
    assert ids == [second.id]
    assert [getattr(second, c) for c in COLUMNS] == [getattr(first, c) for c in COLUMNS]
    assert second.payload_hash == services.outcome_hash(imported, cases[1].id)  # a feed resending it is no conflict
    assert second.received_at == observed
    # The rollup counted the imported outcome: its cells equal a recount from the rows.
    incremental = snapshot(session)
    assert sum(row[7] for row in incremental if row[2] == "model_version") == 2  # with_outcome: both cases
    rollup.rebuild(session)
    assert snapshot(session) == incremental
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "outcome.recorded").order_by(AuditEvent.id)
    ).all()
    assert [e.entity_id for e in events] == [str(cases[0].id), str(cases[1].id)]
    assert events[0].actor == events[1].actor
    assert json.loads(events[1].details) == {"source": "ledger", "outcome_id": second.id}
    # Resent by the live feed, the imported outcome is recognised as the same one.
    again = services.record_outcomes(session, TEST_ACTOR, items=[imported])
    assert [(o.id, o.created) for o in again] == [(second.id, False)]


def test_no_history_stores_nothing(session):
    assert bulk.record_history(session, TEST_ACTOR, reported=[]) == []
    assert session.scalar(select(func.count()).select_from(Outcome)) == 0
