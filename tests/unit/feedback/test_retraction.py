"""Undoing a decision: for ten seconds, by its reviewer, and everything it did is taken back."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from feedback import audit
from feedback.db import utcnow
from feedback.decision_exceptions import services as decision_exceptions
from feedback.errors import ClaimedByOther, DecisionFinal, NotFound, NotShown, PermissionDenied
from feedback.models import Alert, AuditEvent, Decision, DecisionException, ModelVersion, Recommendation
from feedback.outcomes import services as outcomes
from feedback.overrides import guardrails, rollup
from feedback.review import claims, decisions
from feedback.schemas import OutcomeIn, VersionRulesIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_user
from tests.helpers import snapshot


@pytest.fixture
def version(session):
    """The claims model's production version."""
    make_model(session)
    return session.scalar(select(ModelVersion))


def decide(session, reviewer, rec, action="accept"):
    """Claim the case (as the review screen does) and decide it."""
    claims.claim_case(session, reviewer, recommendation_id=rec.id)
    extra = {"final_action": "deny", "reason_code": "missing_context"} if action == "override" else {}
    extra = {"note": "unclear"} if action == "escalate" else extra
    return decisions.record_decision(session, reviewer, recommendation_id=rec.id, action=action, **extra)


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_undo_reopens_the_case_for_the_same_reviewer_and_counts_agree(session, version):
    rita = make_user(session)
    kept = decide(session, rita, make_case(session, 1), "override")
    rec = make_case(session, 2, segment={"claim_band": "only_here"}, site="Bristol")
    outcomes.record_outcomes(
        session,
        TEST_ACTOR,
        items=[
            OutcomeIn(recommendation_id=rec.id, outcome="deny", source="ledger", observed_at="2026-01-01T00:00:00Z")
        ],
    )
    before = snapshot(session)
    decide(session, rita, rec, "accept")
    assert snapshot(session) != before

    reopened = decisions.retract_decision(session, rita, recommendation_id=rec.id)

    assert reopened.status == "open" and reopened.claimed_by_id == rita.id and reopened.decision is None
    assert reopened.claim_expires_at > utcnow()
    assert session.scalar(select(Decision.recommendation_id)) == kept.recommendation_id
    # The counts are as if the decision had never been made: no cell for a site or segment only it had.
    after = snapshot(session)
    assert after == before
    assert not [c for c in after if c[3] in ("Bristol", "only_here")]
    rollup.rebuild(session)
    session.commit()
    assert snapshot(session) == after
    # The audit trail keeps the decision and says it was taken back; the chain still verifies.
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "decision.retracted")).one()
    details = json.loads(event.details)
    assert event.entity_id == str(rec.id) and details["action"] == "accept" and details["final_action"] == "pay"
    assert audit.verify_chain(session).ok
    # Decided again, it counts once.
    decide(session, rita, reopened, "override")
    rollup.rebuild(session)
    session.commit()
    recount = snapshot(session)
    decisions.retract_decision(session, rita, recommendation_id=rec.id)
    decide(session, rita, reopened, "override")
    assert snapshot(session) == recount


def test_undo_is_final_after_ten_seconds_for_others_and_for_earlier_decisions(session, version):
    rita, otto = make_user(session), make_user(session)
    first = make_case(session, 1)
    second = make_case(session, 2)
    decide(session, rita, first)
    decide(session, rita, second)
    with pytest.raises(DecisionFinal, match="only your last decision"):
        decisions.retract_decision(session, rita, recommendation_id=first.id)
    with pytest.raises(PermissionDenied):
        decisions.retract_decision(session, otto, recommendation_id=second.id)
    later = utcnow() + timedelta(seconds=decisions.UNDO_SECONDS + 1)
    with pytest.raises(DecisionFinal, match="can be undone for 10 seconds"):
        decisions.retract_decision(session, rita, recommendation_id=second.id, now=later)
    with pytest.raises(NotFound):
        decisions.retract_decision(session, rita, recommendation_id=make_case(session, 3).id)
    assert count(session, Decision) == 2
    assert session.scalar(select(func.count()).where(AuditEvent.action == "decision.retracted")) == 0


def test_undo_withdraws_the_exceptions_the_decision_opened_unless_taken_up(session, version):
    rita = make_user(session)
    handler = make_user(session, "exception_handler")
    escalated = make_case(session, 1)
    decide(session, rita, escalated, "escalate")
    assert count(session, DecisionException) == 1
    decisions.retract_decision(session, rita, recommendation_id=escalated.id)
    assert count(session, DecisionException) == 0
    withdrawn = session.scalar(select(func.count()).where(AuditEvent.action == "exception.withdrawn"))
    assert withdrawn == 1
    # Escalated again (the kind is unique per case), then a handler claims it: the decision stands.
    decide(session, rita, escalated, "escalate")
    exc_id = session.scalar(select(DecisionException.id))
    decision_exceptions.assign_exception(session, handler, exception_id=exc_id, assignee_id=handler.id)
    with pytest.raises(DecisionFinal, match="exception handler has already taken it up"):
        decisions.retract_decision(session, rita, recommendation_id=escalated.id)
    assert count(session, Decision) == 1
    # An accepted case drawn for a second review: the draw goes with the decision.
    decision_exceptions.set_version_rules(
        session, TEST_ACTOR, version_id=version.id, rules=VersionRulesIn(audit_sample_rate=1.0)
    )
    sampled = make_case(session, 2)
    decide(session, rita, sampled, "accept")
    assert session.scalar(select(DecisionException.kind).where(DecisionException.recommendation_id == sampled.id))
    decisions.retract_decision(session, rita, recommendation_id=sampled.id)
    session.expire_all()
    assert session.scalar(select(DecisionException.id).where(DecisionException.recommendation_id == sampled.id)) is None


def test_undo_withdraws_an_alert_that_no_longer_holds_and_unpauses(session, version):
    guardrails.add_guardrail(
        session,
        TEST_ACTOR,
        version_id=version.id,
        kind="override_rate_above",
        window_size=10,
        threshold=0.3,
        auto_pause=True,
    )
    rita = make_user(session)
    for n in range(9):
        decide(session, rita, make_case(session, n), "override" if n < 3 else "accept")
    last = make_case(session, 9)
    decide(session, rita, last, "override")  # 4 of 10 = 40% > 30%: alert, version paused
    session.refresh(version)
    assert version.stage == "paused" and count(session, Alert) == 1

    decisions.retract_decision(session, rita, recommendation_id=last.id)

    session.refresh(version)
    assert version.stage == "production" and count(session, Alert) == 0
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(4)).all()
    assert {"alert.withdrawn", "model_version.stage_changed", "decision.retracted"} <= set(actions)
    # Accepting it instead keeps the version under its limit.
    decide(session, rita, session.get(Recommendation, last.id), "accept")
    assert count(session, Alert) == 0


def test_an_alert_that_still_holds_stays(session, version):
    guardrails.add_guardrail(
        session,
        TEST_ACTOR,
        version_id=version.id,
        kind="override_rate_above",
        window_size=10,
        threshold=0.3,
        auto_pause=False,
    )
    rita = make_user(session)
    for n in range(11):
        decide(session, rita, make_case(session, n), "override" if n < 5 else "accept")
    assert count(session, Alert) == 1
    last = session.scalar(select(Recommendation).where(Recommendation.external_id == "EXT-10"))
    decisions.retract_decision(session, rita, recommendation_id=last.id)
    assert count(session, Alert) == 1


def test_a_decision_is_refused_unless_made_under_the_claim_it_was_shown_with(session, version):
    rita, otto = make_user(session), make_user(session)
    rec = make_case(session, 1)
    claims.claim_case(session, rita, recommendation_id=rec.id)
    stamp = claims.claim_stamp(session.get(Recommendation, rec.id))
    # The claim changes hands and comes back: the case was shown again under a new claim.
    claims.release_claim(session, rita, recommendation_id=rec.id)
    claims.claim_case(session, otto, recommendation_id=rec.id)
    with pytest.raises(ClaimedByOther):
        decisions.record_decision(session, rita, recommendation_id=rec.id, action="accept", shown_claim=stamp)
    session.execute(update(Recommendation).values(claim_expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    claims.claim_case(session, rita, recommendation_id=rec.id)
    with pytest.raises(NotShown):
        decisions.record_decision(session, rita, recommendation_id=rec.id, action="accept", shown_claim=stamp)
    fresh = claims.claim_stamp(session.get(Recommendation, rec.id))
    decision = decisions.record_decision(session, rita, recommendation_id=rec.id, action="accept", shown_claim=fresh)
    assert decision.quick  # decided well under QUICK_DECISION_SECONDS after the case was opened
    # The API's decisions need no claim and are never flagged.
    api = decisions.record_decision(
        session, otto, recommendation_id=make_case(session, 2).id, action="accept", channel="api"
    )
    assert not api.quick


def test_a_decision_after_the_floor_is_not_quick(session, version):
    rita = make_user(session)
    rec = make_case(session, 1)
    claims.claim_case(session, rita, recommendation_id=rec.id)
    earlier = utcnow() - timedelta(seconds=decisions.QUICK_DECISION_SECONDS + 1)
    session.execute(update(Recommendation).values(claimed_at=earlier))
    session.commit()
    decision = decisions.record_decision(session, rita, recommendation_id=rec.id, action="accept")
    assert not decision.quick
