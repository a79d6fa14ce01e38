"""Readiness plans: fixed and audited, the pilot gated on a plan, kill pauses, promotion only on go or override."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from analytics import ab, sequential
from feedback import background
from feedback.accounts import services as accounts
from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from feedback.impact import assignment, experiments, runs
from feedback.models import Alert, AuditEvent, Decision, DecisionException, Experiment, ModelVersion
from feedback.models.readiness import ReadinessPlan
from feedback.outcomes import services as outcomes
from feedback.overrides import guardrails
from feedback.readiness import reports
from feedback.readiness import services as readiness
from feedback.review import claims, decisions
from feedback.schemas import ModelVersionIn, OutcomeIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_owner, make_user

OVERRIDES_AT_MOST_20 = readiness.Criterion(metric="override_rate", direction="at_most", threshold=0.2, min_n=30)
AT_LEAST_30_DECISIONS = readiness.Criterion(metric="decisions", direction="at_least", threshold=30, min_n=0)


@pytest.fixture
def shadow(session):
    """The claims model with v1 in production and v2 in shadow, owned by an owner."""
    make_model(session)
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="shadow")
    )
    return session.scalar(select(ModelVersion).where(ModelVersion.version == "v2"))


@pytest.fixture
def owner(session, shadow):
    return make_owner(session)


def decide(session, reviewer, n, action, version="v2", seconds=None):
    """Ingest case n for the version and decide it (override: to deny)."""
    rec = make_case(session, n, model_version=version)
    extra = {"final_action": "deny", "reason_code": "missing_context"} if action == "override" else {}
    decision = decisions.record_decision(session, reviewer, recommendation_id=rec.id, action=action, **extra)
    if seconds is not None:
        session.execute(
            update(Decision)
            .where(Decision.id == decision.id)
            .values(opened_at=decision.decided_at - timedelta(seconds=seconds))
        )
        session.commit()
    return decision


def audit_of(session, action):
    return [
        json.loads(e.details)
        for e in session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    ]


def test_the_pilot_cannot_start_without_a_plan(session, shadow, owner):
    actor = accounts.actor_of(owner)
    with pytest.raises(Conflict) as refused:
        catalog.set_version_stage(session, actor, version_id=shadow.id, stage="pilot")
    assert refused.value.fields == {"stage": "a readiness plan must be registered before the pilot"}
    session.rollback()
    assert session.get(ModelVersion, shadow.id).stage == "shadow"
    readiness.register_plan(session, actor, version_id=shadow.id, criteria=[OVERRIDES_AT_MOST_20])
    assert catalog.set_version_stage(session, actor, version_id=shadow.id, stage="pilot").stage == "pilot"


@pytest.mark.parametrize("stage", ["pilot", "production", "paused"])
def test_a_person_registers_a_new_version_in_shadow_so_no_gate_is_skipped(session, shadow, owner, stage):
    model_key = shadow.model.key
    with pytest.raises(Conflict) as refused:
        catalog.add_model_version(
            session, accounts.actor_of(owner), model_key=model_key, spec=ModelVersionIn(version="v9", stage=stage)
        )
    assert refused.value.fields == {"stage": "a new version starts in shadow"}
    session.rollback()
    assert session.scalar(select(ModelVersion.id).where(ModelVersion.version == "v9")) is None
    default = catalog.add_model_version(
        session, accounts.actor_of(owner), model_key=model_key, spec=ModelVersionIn(version="v9")
    )
    assert default.stage == "shadow"


def test_a_plan_is_fixed_and_each_change_is_a_new_version_audited_with_its_reason(session, shadow, owner):
    actor = accounts.actor_of(owner)
    first = readiness.register_plan(session, actor, version_id=shadow.id, criteria=[OVERRIDES_AT_MOST_20])
    catalog.set_version_stage(session, actor, version_id=shadow.id, stage="pilot")
    with pytest.raises(Conflict):
        readiness.register_plan(session, actor, version_id=shadow.id, criteria=[AT_LEAST_30_DECISIONS])
    session.rollback()
    with pytest.raises(ValidationFailed) as no_reason:
        readiness.change_plan(session, actor, version_id=shadow.id, criteria=[AT_LEAST_30_DECISIONS], reason="  ")
    assert no_reason.value.fields == {"reason": "must say why the plan changes"}
    session.rollback()
    looser = replace(OVERRIDES_AT_MOST_20, threshold=0.25)
    second = readiness.change_plan(
        session, actor, version_id=shadow.id, criteria=[looser, AT_LEAST_30_DECISIONS], reason="Leeds joins the pilot"
    )
    assert (first.plan_version, second.plan_version) == (1, 2)
    plans = session.scalars(select(ReadinessPlan).order_by(ReadinessPlan.plan_version)).all()
    overrides = {"metric": "override_rate", "direction": "at_most", "threshold": 0.2, "min_n": 30}
    decisions_30 = {"metric": "decisions", "direction": "at_least", "threshold": 30, "min_n": 0}
    assert [p.criteria for p in plans] == [[overrides], [{**overrides, "threshold": 0.25}, decisions_30]]
    assert isinstance(plans[1].criteria[1]["threshold"], int)  # a count is stored whole
    registered, changed = audit_of(session, "readiness_plan.registered"), audit_of(session, "readiness_plan.changed")
    assert registered == [
        {
            "version_id": shadow.id,
            "plan_version": 1,
            "criteria": [overrides],
            "reason": "",
            "stage": "shadow",
        }
    ]
    assert changed[0]["plan_version"] == 2 and changed[0]["reason"] == "Leeds joins the pilot"
    assert changed[0]["stage"] == "pilot" and changed[0]["criteria"][0]["threshold"] == 0.25
    # The verdict says which plan version it used.
    assert reports.scorecard(session, shadow).plan_version == 2
    # One readiness guardrail watches the version, however many plan versions.
    assert len(audit_of(session, "guardrail.added")) == 1


def test_only_owners_and_admins_write_plans(session, shadow, owner):
    analyst = make_user(session, "analyst")
    stranger = make_user(session, "model_owner")
    for who in (analyst, stranger):
        with pytest.raises(PermissionDenied):
            readiness.register_plan(
                session, accounts.actor_of(who), version_id=shadow.id, criteria=[OVERRIDES_AT_MOST_20]
            )
    with pytest.raises(NotFound):
        readiness.change_plan(
            session, accounts.actor_of(owner), version_id=shadow.id, criteria=[OVERRIDES_AT_MOST_20], reason="x"
        )


def test_validation_names_each_bad_field(session, shadow, owner):
    bad = [
        readiness.Criterion(metric="vibes", direction="at_most", threshold=0.2, min_n=10),
        readiness.Criterion(metric="decisions", direction="at_most", threshold=10.5, min_n=-1),
        readiness.Criterion(metric="accuracy", direction="at_least", threshold=1.5, min_n=10, experiment_id=3),
        readiness.Criterion(metric="experiment_effect", direction="at_least", threshold=0, min_n=10, experiment_id=999),
        readiness.Criterion(metric="override_rate", direction="at_most", threshold=0.2, min_n=10),
        readiness.Criterion(metric="override_rate", direction="at_most", threshold=0.3, min_n=10),
        readiness.Criterion(metric="median_seconds_to_decide", direction="at_least", threshold=0, min_n=10),
    ]
    with pytest.raises(ValidationFailed) as failed:
        readiness.register_plan(session, accounts.actor_of(owner), version_id=shadow.id, criteria=bad)
    assert failed.value.fields == {
        "criteria[0].metric": "must be one of decisions, override_rate, accuracy, sla_attainment, drift, "
        "median_seconds_to_decide, experiment_effect",
        "criteria[1].direction": "must be at_least for decisions",
        "criteria[1].threshold": "must be a whole number of decisions from 1 to 10000000",
        "criteria[1].min_n": "must be a whole number from 0 to 10000000",
        "criteria[2].threshold": "must be a share between 0 and 1",
        "criteria[2].experiment_id": "only an experiment_effect criterion names an experiment",
        "criteria[3].experiment_id": "names no experiment",
        "criteria[3].experiment_metric": "must be one of override, correct, handling_seconds",
        "criteria[5].metric": "repeats another criterion of this plan",
        "criteria[6].threshold": "must be seconds above 0 and at most 2592000",
    }
    assert session.scalar(select(ReadinessPlan.id)) is None
    with pytest.raises(ValidationFailed) as empty:
        readiness.register_plan(session, accounts.actor_of(owner), version_id=shadow.id, criteria=[])
    assert "criteria" in empty.value.fields


def pilot_with(session, owner, version, criteria):
    actor = accounts.actor_of(owner)
    readiness.register_plan(session, actor, version_id=version.id, criteria=criteria)
    catalog.set_version_stage(session, actor, version_id=version.id, stage="pilot")


def test_a_kill_verdict_pauses_the_version_through_its_guardrail(session, shadow, owner):
    pilot_with(session, owner, shadow, [OVERRIDES_AT_MOST_20, AT_LEAST_30_DECISIONS])
    reviewer = make_user(session)
    for n in range(40):
        decide(session, reviewer, n, "override" if n % 2 else "accept")
    card = reports.scorecard(session, shadow)
    overrides = card.criteria[0]
    assert (overrides.n, overrides.value) == (40, 0.5)
    assert (overrides.ci_low, overrides.ci_high) == pytest.approx(sequential.rate_interval(20, 40))
    assert overrides.ci_low > 0.2 and overrides.status == "kill" and card.verdict == "kill"
    # Decisions never judge the plan (it reads the whole pilot): the worker's guardrail sweep does.
    session.refresh(shadow)
    assert shadow.stage == "pilot"
    assert background.sweep_guardrails(session) == 1
    session.refresh(shadow)
    assert shadow.stage == "paused"
    alert = session.scalar(select(Alert))
    assert alert.paused_from == "pilot" and alert.guardrail.kind == "readiness"
    assert "readiness plan 1 reads kill: Override rate 50.0% against at most 20.0%" in alert.message
    stage_changes = audit_of(session, "model_version.stage_changed")
    assert stage_changes[-1] == {"from": "pilot", "to": "paused", "by": "guardrail"}


def test_keep_collecting_neither_pauses_nor_promotes(session, shadow, owner):
    pilot_with(session, owner, shadow, [OVERRIDES_AT_MOST_20])
    reviewer = make_user(session)
    for n in range(40):
        decide(session, reviewer, n, "override" if n % 5 == 0 else "accept")  # 20%: right at the limit
    card = reports.scorecard(session, shadow)
    assert card.verdict == "keep_collecting" and card.criteria[0].ci_low < 0.2 < card.criteria[0].ci_high
    guardrails.evaluate(session, [shadow.id], force=True)
    session.refresh(shadow)
    assert shadow.stage == "pilot" and session.scalar(select(Alert.id)) is None
    with pytest.raises(Conflict) as refused:
        catalog.set_version_stage(session, accounts.actor_of(owner), version_id=shadow.id, stage="production")
    assert refused.value.fields["stage"] == "readiness reads keep collecting"
    session.rollback()
    # An owner's reason is not enough: only an admin overrides.
    with pytest.raises(PermissionDenied):
        catalog.set_version_stage(
            session, accounts.actor_of(owner), version_id=shadow.id, stage="production", override_reason="trust me"
        )
    session.rollback()
    admin = make_user(session, "admin")
    promoted = catalog.set_version_stage(
        session, accounts.actor_of(admin), version_id=shadow.id, stage="production", override_reason="Board decision"
    )
    assert promoted.stage == "production"
    assert audit_of(session, "model_version.stage_changed")[-1] == {
        "from": "pilot",
        "to": "production",
        "readiness": "keep_collecting",
        "plan_version": 1,
        "override_reason": "Board decision",
    }


def test_a_go_verdict_promotes_and_the_audit_names_the_plan_it_used(session, shadow, owner):
    generous = replace(OVERRIDES_AT_MOST_20, threshold=0.5)
    pilot_with(session, owner, shadow, [generous, AT_LEAST_30_DECISIONS])
    reviewer = make_user(session)
    for n in range(60):
        decide(session, reviewer, n, "override" if n % 10 == 0 else "accept")
    card = reports.scorecard(session, shadow)
    assert [r.status for r in card.criteria] == ["go", "go"] and card.verdict == "go"
    assert card.criteria[0].ci_high < 0.5
    assert card.criteria[1].value == 60
    catalog.set_version_stage(session, accounts.actor_of(owner), version_id=shadow.id, stage="production")
    assert audit_of(session, "model_version.stage_changed")[-1] == {
        "from": "pilot",
        "to": "production",
        "readiness": "go",
        "plan_version": 1,
    }


def test_the_scorecard_reads_accuracy_sla_median_and_drift_with_their_evidence(session, shadow, owner):
    criteria = [
        readiness.Criterion(metric="median_seconds_to_decide", direction="at_least", threshold=5, min_n=10),
        readiness.Criterion(metric="accuracy", direction="at_least", threshold=0.6, min_n=10),
        readiness.Criterion(metric="sla_attainment", direction="at_least", threshold=0.9, min_n=1),
        readiness.Criterion(metric="drift", direction="at_most", threshold=0, min_n=100),
    ]
    pilot_with(session, owner, shadow, criteria)
    reviewer = make_user(session)
    decided = [
        decide(session, reviewer, n, "accept", seconds=2 if n < 25 else 60)  # most decided in 2 s: rubber-stamping
        for n in range(30)
    ]
    # The AI said "pay" every time; of 20 labelled cases, 15 were "pay".
    labels = [outcome(d.recommendation_id, "deny" if i < 5 else "pay") for i, d in enumerate(decided[:20])]
    outcomes.record_outcomes(session, TEST_ACTOR, items=labels)
    # Exceptions: 3 resolved in time, 1 resolved late, 1 open past its deadline (a miss), 1 open and not yet due.
    now = utcnow()
    for i, (resolved_after, due_after) in enumerate([(1, 4), (2, 4), (3, 4), (9, 4), (None, 1), (None, 15)]):
        rec = decided[i]
        session.add(
            DecisionException(
                recommendation_id=rec.recommendation_id,
                model_id=shadow.model_id,
                site="Leeds",
                kind="audit_sample",
                severity="high",
                opened_at=now - timedelta(hours=10),
                sla_due_at=now - timedelta(hours=10) + timedelta(hours=due_after),
                status="resolved" if resolved_after else "open",
                resolved_at=now - timedelta(hours=10) + timedelta(hours=resolved_after) if resolved_after else None,
            )
        )
    session.commit()
    card = reports.scorecard(session, shadow)
    median, accuracy, sla, drift = card.criteria
    assert median.value == pytest.approx(2.0, abs=1e-3) and median.n == 30
    assert median.ci_low == pytest.approx(2.0, abs=1e-3) and median.ci_high < 5 and median.status == "kill"
    assert (accuracy.n, accuracy.value) == (20, 0.75)
    assert (accuracy.ci_low, accuracy.ci_high) == pytest.approx(sequential.rate_interval(15, 20))
    assert accuracy.status == "keep_collecting" and accuracy.ci_low < 0.6 < accuracy.ci_high
    assert (sla.n, sla.value, sla.status) == (5, 0.6, "keep_collecting")
    # Drift is wired in: 30 recommendations in the current window, short of the criterion's 100.
    assert (drift.status, drift.n, drift.reason) == ("keep_collecting", 30, "30 of the 100 needed")
    assert card.verdict == "kill"
    assert card.as_api()["criteria"][0] == {
        "name": "median_seconds_to_decide",
        "threshold": 5.0,
        "direction": "at_least",
        "value": median.value,
        "ci_low": median.ci_low,
        "ci_high": median.ci_high,
        "n": 30,
        "status": "kill",
    }


def outcome(recommendation_id, label):
    return OutcomeIn.model_validate(
        {
            "recommendation_id": recommendation_id,
            "outcome": label,
            "observed_at": "2026-01-01T00:00:00+00:00",
            "source": "ledger",
        }
    )


def test_a_version_without_a_plan_reads_keep_collecting_and_needs_an_override_to_leave_pilot(session):
    make_model(session, stage="pilot")  # registered straight into pilot, as before plans existed
    version = session.scalar(select(ModelVersion))
    card = reports.scorecard(session, version)
    assert (card.plan_version, card.verdict, card.criteria) == (None, "keep_collecting", [])
    with pytest.raises(Conflict):
        catalog.set_version_stage(session, TEST_ACTOR, version_id=version.id, stage="production")
    session.rollback()
    # The operator (no user: the CLI) may override with a reason.
    done = catalog.set_version_stage(
        session, TEST_ACTOR, version_id=version.id, stage="production", override_reason="legacy pilot"
    )
    assert done.stage == "production"
    assert utcnow() - card.evaluated_at < timedelta(minutes=1)


def test_an_experiment_effect_criterion_reads_the_difference_on_its_anytime_valid_interval(session, shadow, owner):
    analyst, reviewer = make_user(session, "analyst"), make_user(session)
    production = session.scalar(select(ModelVersion).where(ModelVersion.version == "v1"))
    experiment = experiments.create_experiment(
        session,
        analyst,
        key="ab1",
        name="AI on or off",
        model_id=production.model_id,
        kind="ab",
        unit="case",
    )
    experiments.start_experiment(session, analyst, experiment_id=experiment.id)
    for n in range(120):
        rec = make_case(session, 1000 + n)
        claims.claim_case(session, reviewer, recommendation_id=rec.id)
        if assignment.hashed_arm(experiment.salt, str(rec.id), 0.5) == "control":
            # Unaided, reviewers choose "deny" (not the AI's "pay") six times in ten: an override.
            final = "deny" if n % 10 < 6 else "pay"
            decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="accept", final_action=final)
        else:
            action = "override" if n % 10 == 0 else "accept"
            extra = {"final_action": "deny", "reason_code": "missing_context"} if action == "override" else {}
            decisions.record_decision(session, reviewer, recommendation_id=rec.id, action=action, **extra)
    effect = readiness.Criterion(
        metric="experiment_effect",
        direction="at_most",
        threshold=0,
        min_n=50,
        experiment_id=experiment.id,
        experiment_metric="override",
    )
    readiness.register_plan(session, accounts.actor_of(owner), version_id=production.id, criteria=[effect])
    reading = reports.scorecard(session, production).criteria[0]
    frame = runs.ab_frame(session, session.get(Experiment, experiment.id)).dropna(subset=["override"])
    expected = ab.difference_in_means(frame, "override")
    assert reading.name == f"experiment_effect:{experiment.id}:override"
    assert reading.value == pytest.approx(expected.difference) and reading.n == 120
    low, high = sequential.mean_interval(expected.difference, expected.se, 120)
    assert (reading.ci_low, reading.ci_high) == pytest.approx((low, high))
    # Wider than the fixed-n interval, and still clear of zero: the AI lowers the override rate.
    assert low < expected.ci_low and high > expected.ci_high
    assert high < 0 and reading.status == "go"
