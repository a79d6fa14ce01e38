"""Exception rules at ingest, escalations, audit samples, SLAs, and working exceptions."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from feedback.decision_exceptions import services as decision_exceptions
from feedback.errors import Conflict, NotAllowedByConfiguration, PermissionDenied, ValidationFailed
from feedback.models import DecisionException, ModelVersion, Recommendation
from feedback.review import claims, decisions, ingest
from feedback.schemas import RecommendationIn, VersionRulesIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_user, payload, token_for


@pytest.fixture
def model(session):
    """The claims model with exception rules on v1."""
    made = make_model(session)
    version = session.scalar(select(ModelVersion))
    rules = VersionRulesIn(min_confidence=0.6, policy_flags=["high_value"], required_features=["amount"])
    decision_exceptions.set_version_rules(session, TEST_ACTOR, version_id=version.id, rules=rules)
    return made


def only_exception(session, rec_id):
    """The single exception of a case."""
    return session.scalars(select(DecisionException).where(DecisionException.recommendation_id == rec_id)).one()


def test_rules_choose_the_most_serious_kind_and_explain_all():
    item = RecommendationIn.model_validate(payload(1, confidence=0.4, flags=["high_value"], features={}))
    raised = decision_exceptions.rules_raise(
        item, {"min_confidence": 0.6, "policy_flags": ["high_value"], "required_features": ["amount"]}
    )
    assert (raised.kind, raised.severity) == ("policy", "high")
    assert raised.reason == "policy flag high_value; missing input amount; confidence 0.40 below 0.60"
    assert decision_exceptions.rules_raise(RecommendationIn.model_validate(payload(1)), {}) is None


@pytest.mark.parametrize(
    "overrides,kind,severity,hours",
    [
        ({"confidence": 0.5}, "low_confidence", "medium", 24),
        ({"flags": ["high_value"]}, "policy", "high", 8),
        ({"features": {"other": 1}}, "missing_data", "medium", 24),
        (
            {"recommended_action": None, "confidence": None, "explanation": None, "error": "timeout"},
            "model_error",
            "high",
            8,
        ),
    ],
)
def test_rules_route_cases_to_exceptions_at_ingest(session, model, overrides, kind, severity, hours):
    rec = make_case(session, 1, **overrides)
    assert rec.status == "exception"
    exc = only_exception(session, rec.id)
    assert (exc.kind, exc.severity, exc.status) == (kind, severity, "open")
    assert exc.sla_due_at - exc.opened_at == timedelta(hours=hours)
    assert claims.claim_next(session, make_user(session)) is None  # not in the reviewers' queue


def test_configured_sla_overrides_the_default(session, model):
    decision_exceptions.set_sla_policies(session, TEST_ACTOR, model=model, hours={("low_confidence", "medium"): 2.5})
    exc = only_exception(session, make_case(session, 1, confidence=0.5).id)
    assert exc.sla_due_at - exc.opened_at == timedelta(hours=2.5)
    with pytest.raises(ValidationFailed) as err:
        decision_exceptions.set_sla_policies(session, TEST_ACTOR, model=model, hours={("policy", "high"): -1})
    assert "policy.high" in err.value.fields


def test_model_error_payloads_are_checked(session, model):
    both = RecommendationIn.model_validate(payload(1, error="boom"))
    with pytest.raises(ValidationFailed) as err:
        ingest.ingest_recommendations(session, TEST_ACTOR, items=[both])
    assert set(err.value.fields) == {"[0].recommended_action", "[0].confidence"}
    neither = RecommendationIn.model_validate(payload(2, recommended_action=None))
    with pytest.raises(ValidationFailed) as err:
        ingest.ingest_recommendations(session, TEST_ACTOR, items=[neither])
    assert set(err.value.fields) == {"[0].recommended_action"}


def test_escalation_opens_a_reviewer_exception(session, model):
    rec = make_case(session, 1)
    reviewer = make_user(session)
    decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="escalate", note="odd dates")
    exc = only_exception(session, rec.id)
    assert (exc.kind, exc.reason, exc.raised_by_id) == ("reviewer_escalation", "odd dates", reviewer.id)


def test_audit_sample_is_reviewer_blind_and_at_the_configured_rate(session, model):
    draws = [decision_exceptions.in_audit_sample(i, 0.05) for i in range(1, 20001)]
    assert sum(draws) / len(draws) == pytest.approx(0.05, abs=0.006)
    assert draws == [decision_exceptions.in_audit_sample(i, 0.05) for i in range(1, 20001)]  # deterministic
    version = session.scalar(select(ModelVersion))
    decision_exceptions.set_version_rules(
        session, TEST_ACTOR, version_id=version.id, rules=VersionRulesIn(audit_sample_rate=1.0)
    )
    rec = make_case(session, 1)
    decisions.record_decision(session, make_user(session), recommendation_id=rec.id, action="accept")
    exc = only_exception(session, rec.id)
    assert exc.kind == "audit_sample" and exc.severity == "low"


def test_claim_assign_resolve(session, model):
    rec = make_case(session, 1, confidence=0.5)
    exc = only_exception(session, rec.id)
    ann, bob = make_user(session, "exception_handler", name="Ann"), make_user(session, "exception_handler", name="Bob")
    claimed = decision_exceptions.assign_exception(session, ann, exception_id=exc.id, assignee_id=ann.id)
    assert (claimed.status, claimed.assignee_id) == ("in_progress", ann.id)
    with pytest.raises(Conflict, match="assigned to Ann"):
        decision_exceptions.resolve_exception(session, bob, exception_id=exc.id, final_action="deny")
    with pytest.raises(NotAllowedByConfiguration) as err:  # an action the model lacks: 409
        decision_exceptions.resolve_exception(session, ann, exception_id=exc.id, final_action="launch")
    assert "final_action" in err.value.fields
    handed = decision_exceptions.assign_exception(session, ann, exception_id=exc.id, assignee_id=bob.id)
    assert handed.assignee_id == bob.id
    done = decision_exceptions.resolve_exception(session, bob, exception_id=exc.id, final_action="deny", note="ok")
    assert (done.status, done.resolution_action, done.resolved_by_id) == ("resolved", "deny", bob.id)
    assert session.get(Recommendation, rec.id, populate_existing=True).status == "resolved"
    with pytest.raises(Conflict, match="already resolved by Bob"):
        decision_exceptions.resolve_exception(session, bob, exception_id=exc.id, final_action="pay")
    with pytest.raises(Conflict):
        decision_exceptions.assign_exception(session, ann, exception_id=exc.id, assignee_id=ann.id)


def test_only_handlers_work_exceptions(session, model):
    exc = only_exception(session, make_case(session, 1, confidence=0.5).id)
    reviewer = make_user(session, "frontline")
    with pytest.raises(PermissionDenied):
        decision_exceptions.resolve_exception(session, reviewer, exception_id=exc.id, final_action="pay")
    with pytest.raises(ValidationFailed):
        decision_exceptions.assign_exception(
            session, make_user(session, "admin"), exception_id=exc.id, assignee_id=reviewer.id
        )


def test_two_handlers_race_to_resolve_and_one_wins(app, session, model):
    exc_id = only_exception(session, make_case(session, 1, confidence=0.5).id).id
    headers = [token_for(app, session, make_user(session, "exception_handler")) for _ in range(2)]
    barrier, results = threading.Barrier(2), []

    def resolve(header):
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/v1/exceptions/{exc_id}/resolve", json={"final_action": "pay"}, headers=header)
        results.append(response.status_code)

    threads = [threading.Thread(target=resolve, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [200, 409]
    session.rollback()
    assert session.scalar(select(func.count()).where(DecisionException.status == "resolved")) == 1


def test_the_bulk_path_writes_what_one_at_a_time_writes(session, model):
    """Imported history (the demo) opens and works exceptions in bulk with the same rows and audit as the services."""
    from feedback.decision_exceptions import bulk as exception_bulk
    from feedback.models import AuditEvent

    single_case, bulk_case, sampled = (make_case(session, n, confidence=0.95) for n in (1, 2, 3))
    single = decision_exceptions.open_exception(
        session, single_case, kind="reviewer_escalation", reason="Needs a senior look", raised_by=None
    )
    session.commit()
    raised = [
        exception_bulk.Raised(case.id, case.model_id, case.site, kind, "why", None, single.opened_at)
        for case, kind in ((bulk_case, "reviewer_escalation"), (sampled, "audit_sample"))
    ]
    escalated_id, sample_id = exception_bulk.open_exceptions(session, TEST_ACTOR, raised=raised)
    session.commit()
    opened = session.get(DecisionException, escalated_id)
    assert (opened.severity, opened.status, opened.sla_due_at) == (single.severity, "open", single.sla_due_at)
    handler = make_user(session, "exception_handler", name="Hana")
    later = single.opened_at + timedelta(hours=3)
    exception_bulk.record_handling(
        session,
        handled=[
            exception_bulk.Handled(escalated_id, bulk_case.id, "reviewer_escalation", handler, later, "deny"),
            exception_bulk.Handled(sample_id, sampled.id, "audit_sample", handler, later, "pay"),
        ],
    )
    session.commit()
    resolved = session.get(DecisionException, escalated_id, populate_existing=True)
    assert (resolved.status, resolved.resolved_by_id, resolved.resolution_action) == ("resolved", handler.id, "deny")
    assert session.get(Recommendation, bulk_case.id, populate_existing=True).status == "resolved"
    assert session.get(Recommendation, sampled.id, populate_existing=True).status != "resolved"  # an audit sample
    actions = session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.entity_type == "exception", AuditEvent.entity_id.in_([str(escalated_id), str(sample_id)])
        )
    ).all()
    assert sorted(actions) == ["exception.raised", "exception.raised", "exception.resolved", "exception.resolved"]
