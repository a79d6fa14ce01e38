"""Imported history's challengers and exposures (the demo's) are the rows the live services write."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from feedback.accounts.services import actor_of
from feedback.catalog import services as catalog
from feedback.challengers import bulk as challenger_bulk
from feedback.challengers import services as challengers
from feedback.db import utcnow
from feedback.errors import PermissionDenied, ValidationFailed
from feedback.impact import assignment, experiments
from feedback.models import AuditEvent, ChallengerRecommendation, Exposure, Outcome
from feedback.outcomes import bulk as outcome_bulk
from feedback.schemas import ChallengerIn, ModelVersionIn, OutcomeIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_user

CHALLENGER = {
    "model_version": "v2",
    "recommended_action": "deny",
    "confidence": 0.7,
    "explanation": {"summary": "Challenger thinks otherwise", "factors": [{"name": "amount", "contribution": 0.4}]},
}
COLUMNS = ("model_id", "model_version_id", "recommended_action", "confidence", "explanation", "payload_hash")


def test_bulk_challengers_equal_the_services_rows_and_audit(session):
    make_model(session)
    v2 = catalog.add_model_version(session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2"))
    one, two = make_case(session, 1), make_case(session, 2)
    item = ChallengerIn.model_validate(CHALLENGER)
    challengers.add_challengers(session, TEST_ACTOR, recommendation_id=one.id, items=[item])
    received = utcnow().replace(microsecond=0)
    shadowed = [challenger_bulk.Shadowed(two.id, item, received)]
    ids = challenger_bulk.record_history(session, TEST_ACTOR, version_id=v2.id, shadowed=shadowed)
    session.commit()
    by_service, imported = session.scalars(select(ChallengerRecommendation).order_by(ChallengerRecommendation.id))
    assert ids == [imported.id] and imported.recommendation_id == two.id and imported.created_at == received
    assert [getattr(imported, c) for c in COLUMNS] == [getattr(by_service, c) for c in COLUMNS]
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "challenger.ingested")).all()
    assert [json.loads(e.details) for e in events] == [
        {"recommendation_id": one.id, "model_version_id": v2.id},
        {"recommendation_id": two.id, "model_version_id": v2.id},
    ]
    # Sent again by the live path, the imported one is a replay, not a conflict.
    again = challengers.add_challengers(session, TEST_ACTOR, recommendation_id=two.id, items=[item])
    assert [(c.id, c.created) for c in again] == [(imported.id, False)]


def test_bulk_challengers_are_checked_for_version_and_owner(session):
    make_model(session)
    v2 = catalog.add_model_version(session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2"))
    case = make_case(session, 1)
    other = ChallengerIn.model_validate({**CHALLENGER, "model_version": "v9"})
    with pytest.raises(ValidationFailed) as wrong:
        challenger_bulk.record_history(
            session, TEST_ACTOR, version_id=v2.id, shadowed=[challenger_bulk.Shadowed(case.id, other, utcnow())]
        )
    assert wrong.value.fields == {"[0].model_version": "must be v2"}
    stranger = make_user(session, "model_owner")
    item = ChallengerIn.model_validate(CHALLENGER)
    with pytest.raises(PermissionDenied):
        challenger_bulk.record_history(
            session,
            actor_of(stranger),
            version_id=v2.id,
            shadowed=[challenger_bulk.Shadowed(case.id, item, utcnow())],
        )
    assert session.scalars(select(ChallengerRecommendation)).all() == []


@pytest.mark.parametrize("unit", ["case", "reviewer", "site"])
def test_bulk_exposures_equal_what_the_review_screen_records(session, unit):
    model = make_model(session)
    analyst = make_user(session, "analyst")
    reviewers = [make_user(session) for _ in range(3)]
    experiment = experiments.create_experiment(
        session, analyst, key="ab", name="AB", model_id=model.id, kind="ab", unit=unit, ai_weight=0.5
    )
    experiments.start_experiment(session, analyst, experiment_id=experiment.id)
    now = utcnow()
    cases = [make_case(session, n, site=("Leeds", "York")[n % 2]) for n in range(12)]
    for n, case in enumerate(cases[:6]):  # seen on screen
        assignment.expose(session, case, reviewers[n % 3].id, now)
    seen = [assignment.Seen(c.id, c.site, reviewers[n % 3].id, now) for n, c in enumerate(cases[6:], start=6)]
    assignment.record_history(session, TEST_ACTOR, experiment_id=experiment.id, seen=seen)
    session.commit()
    rows = session.execute(select(Exposure.recommendation_id, Exposure.unit_id, Exposure.arm)).all()
    assert len(rows) == 12
    for rec_id, unit_id, arm in rows:
        case = next(c for c in cases if c.id == rec_id)
        reviewer_id = reviewers[cases.index(case) % 3].id
        assert unit_id == assignment.unit_of(experiment, case, reviewer_id)
        assert arm == assignment.hashed_arm(experiment.salt, unit_id, 0.5)


def test_bulk_exposures_are_noted_once_and_refuse_other_models_cases_and_reviewers(session):
    model = make_model(session)
    make_model(session, "fraud", actions=("allow", "block"))
    analyst, reviewer = make_user(session, "analyst"), make_user(session)
    experiment = experiments.create_experiment(
        session, analyst, key="ab", name="AB", model_id=model.id, kind="ab", unit="case"
    )
    now = utcnow()
    case = make_case(session, 1)
    other = make_case(session, 2, model="fraud", recommended_action="allow")
    with pytest.raises(ValidationFailed) as outside:
        assignment.record_history(
            session,
            TEST_ACTOR,
            experiment_id=experiment.id,
            seen=[assignment.Seen(other.id, other.site, reviewer.id, now)],
        )
    assert outside.value.fields == {"[0].id": f"case {other.id} is not a case of this experiment's model"}
    with pytest.raises(PermissionDenied):
        assignment.record_history(
            session,
            actor_of(reviewer),
            experiment_id=experiment.id,
            seen=[assignment.Seen(case.id, case.site, reviewer.id, now)],
        )
    seen = [assignment.Seen(case.id, case.site, reviewer.id, now)] * 2
    assignment.record_history(session, TEST_ACTOR, experiment_id=experiment.id, seen=seen)
    assignment.record_history(session, TEST_ACTOR, experiment_id=experiment.id, seen=seen[:1])  # a replay
    session.commit()
    assert session.scalar(select(func.count()).select_from(Exposure)) == 1


def test_bulk_outcomes_are_only_for_the_owners_of_each_cases_model(session):
    make_model(session)
    case = make_case(session, 1)
    stranger = make_user(session, "model_owner")
    item = OutcomeIn(recommendation_id=case.id, outcome="deny", observed_at=utcnow(), source="ledger")
    with pytest.raises(PermissionDenied):
        outcome_bulk.record_history(
            session, actor_of(stranger), reported=[outcome_bulk.Reported(case.id, item, utcnow())]
        )
    assert session.scalar(select(func.count()).select_from(Outcome)) == 0
