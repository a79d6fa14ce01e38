"""Experiments: hashed assignment, staggered go-live, exposures, and the rules for editing them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scipy import stats
from sqlalchemy import func, select

from feedback.audit import verify_chain
from feedback.db import utcnow
from feedback.errors import Conflict, NotAllowedByConfiguration, PermissionDenied, ValidationFailed
from feedback.impact import experiments
from feedback.impact import queries as impact_queries
from feedback.impact.assignment import hashed_arm, remember_running_experiments, running_experiment
from feedback.impact.experiments import GoLive
from feedback.models import AuditEvent, Decision, Exposure
from feedback.review import claims, decisions
from tests.factories import make_case, make_model, make_user


def test_hashed_arm_is_deterministic_salted_and_weighted():
    arms = [hashed_arm("salt-a", str(i), 0.3) for i in range(20_000)]
    assert arms == [hashed_arm("salt-a", str(i), 0.3) for i in range(20_000)]
    shown = arms.count("ai_shown")
    # A binomial test: the share assigned matches the configured weight.
    assert stats.binomtest(shown, len(arms), 0.3).pvalue > 0.001
    other_salt = [hashed_arm("salt-b", str(i), 0.3) for i in range(20_000)]
    agreement = sum(a == b for a, b in zip(arms, other_salt, strict=True)) / len(arms)
    assert abs(agreement - (0.3**2 + 0.7**2)) < 0.02  # independent across salts


@pytest.fixture
def world(session):
    make_model(session)
    return {
        "analyst": make_user(session, "analyst"),
        "ann": make_user(session, name="Ann"),
        "bob": make_user(session, name="Bob"),
    }


def ab(session, analyst, unit="case", weight=0.5, key="ab1"):
    from feedback.models import Model

    model_id = session.scalar(select(Model.id))
    exp = experiments.create_experiment(
        session, analyst, key=key, name="AI on or off", model_id=model_id, kind="ab", unit=unit, ai_weight=weight
    )
    return experiments.start_experiment(session, analyst, experiment_id=exp.id)


FAR_OFF, NAIVE = datetime(2300, 1, 1, tzinfo=UTC), datetime(2027, 1, 1)  # past LAST_DAY; without a zone


def midnight(when: datetime) -> datetime:
    """The start of when's day, as a date-only go-live means."""
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def test_control_cases_are_decided_unaided_and_exposures_match_the_hash(session, world):
    exp = ab(session, world["analyst"])
    cases = [make_case(session, n) for n in range(1, 41)]
    decided = {"ai_shown": 0, "control": 0}
    for rec in cases:
        claims.claim_case(session, world["ann"], recommendation_id=rec.id)
        arm = hashed_arm(exp.salt, str(rec.id), 0.5)
        if arm == "control":
            # The recommendation is hidden: the reviewer must choose the final action.
            with pytest.raises(NotAllowedByConfiguration) as err:  # what this case allows: 409
                decisions.record_decision(session, world["ann"], recommendation_id=rec.id, action="accept")
            assert "final_action" in err.value.fields
            decision = decisions.record_decision(
                session, world["ann"], recommendation_id=rec.id, action="accept", final_action="deny"
            )
            assert decision.ai_shown is False and decision.action == "override" and decision.reason_code is None
        else:
            decision = decisions.record_decision(session, world["ann"], recommendation_id=rec.id, action="accept")
            assert decision.ai_shown is True
        decided[arm] += 1
    assert min(decided.values()) > 5
    exposures = session.execute(select(Exposure.recommendation_id, Exposure.arm, Exposure.unit_id)).all()
    assert len(exposures) == 40  # claim and decision by the same reviewer: one exposure
    assert all(arm == hashed_arm(exp.salt, unit, 0.5) for _, arm, unit in exposures)
    counts = {c.arm: c.units for c in impact_queries.exposure_counts(session, exp.id)}
    assert counts == decided
    shown = dict(session.execute(select(Decision.ai_shown, func.count()).group_by(Decision.ai_shown)).all())
    assert shown == {True: decided["ai_shown"], False: decided["control"]}
    events = session.scalars(select(AuditEvent.details).where(AuditEvent.action.like("decision.%"))).all()
    assert all('"arm"' in details for details in events)


def test_reviewer_assignment_gives_each_reviewer_one_arm(session, world):
    exp = ab(session, world["analyst"], unit="reviewer")
    reviewers = [make_user(session) for _ in range(12)]
    for i, reviewer in enumerate(reviewers):
        rec = make_case(session, i + 1)
        claims.claim_case(session, reviewer, recommendation_id=rec.id)
        decision = decisions.record_decision(
            session, reviewer, recommendation_id=rec.id, action="accept", final_action="pay"
        )
        expected = hashed_arm(exp.salt, str(reviewer.id), 0.5)
        assert decision.ai_shown is (expected == "ai_shown")


def test_staggered_rollout_hides_the_ai_until_the_site_goes_live(session, world):
    from feedback.models import Model

    now = utcnow()
    model_id = session.scalar(select(Model.id))
    exp = experiments.create_experiment(
        session,
        world["analyst"],
        key="rollout",
        name="Rollout",
        model_id=model_id,
        kind="staggered",
        sites=[
            GoLive("Leeds", now - timedelta(days=1)),
            GoLive("York", midnight(now + timedelta(days=3))),
            GoLive("Hull"),
        ],
    )
    experiments.start_experiment(session, world["analyst"], experiment_id=exp.id)
    shown = {}
    for n, site in enumerate(("Leeds", "York", "Hull"), start=1):
        rec = make_case(session, n, site=site)
        decision = decisions.record_decision(
            session, world["ann"], recommendation_id=rec.id, action="accept", final_action="pay"
        )
        shown[site] = decision.ai_shown
    assert shown == {"Leeds": True, "York": False, "Hull": False}

    # A future date may move; a site that is live may not, and nobody may go live in the past.
    future = midnight(now + timedelta(days=5))
    leeds = next(s for s in exp.sites if s.site == "Leeds")
    sites = [GoLive("Leeds", leeds.go_live_at), GoLive("York", future), GoLive("Hull")]
    updated = experiments.update_experiment(session, world["analyst"], experiment_id=exp.id, sites=sites)
    assert {s.site: s.go_live_at for s in updated.sites}["York"] == future
    with pytest.raises(ValidationFailed) as err:
        experiments.update_experiment(
            session, world["analyst"], experiment_id=exp.id, sites=[*sites[1:], GoLive("Leeds", future)]
        )
    assert "sites.Leeds" in err.value.fields
    assert verify_chain(session).ok


def test_one_running_experiment_per_model_and_roles(session, world):
    ab(session, world["analyst"])
    from feedback.models import Model

    model_id = session.scalar(select(Model.id))
    second = experiments.create_experiment(
        session, world["analyst"], key="ab2", name="Second", model_id=model_id, kind="ab", unit="site"
    )
    with pytest.raises(Conflict):
        experiments.start_experiment(session, world["analyst"], experiment_id=second.id)
    with pytest.raises(PermissionDenied):
        experiments.create_experiment(session, world["ann"], key="x", name="X", model_id=model_id, kind="ab")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"key": "Bad Key!", "name": "N", "kind": "ab"}, "key"),
        ({"key": "k", "name": " ", "kind": "ab"}, "name"),
        ({"key": "k", "name": "N" * 201, "kind": "ab"}, "name"),
        ({"key": "k", "name": "N", "kind": "ab", "hypothesis": "H" * 4001}, "hypothesis"),
        ({"key": "k", "name": "N", "kind": "ab", "ai_weight": 1.5}, "ai_weight"),
        ({"key": "k", "name": "N", "kind": "ab", "ai_weight": float("nan")}, "ai_weight"),
        ({"key": "k", "name": "N", "kind": "ab", "unit": "team"}, "unit"),
        ({"key": "k", "name": "N", "kind": "trial"}, "kind"),
        ({"key": "k", "name": "N", "kind": "staggered", "sites": [GoLive("Leeds", FAR_OFF)]}, "sites[0].go_live"),
        ({"key": "k", "name": "N", "kind": "staggered", "sites": [GoLive("Leeds", NAIVE)]}, "sites[0].go_live"),
        ({"key": "k", "name": "N", "kind": "staggered", "sites": [GoLive("Leeds")]}, "sites"),
        ({"key": "k", "name": "N", "kind": "staggered"}, "sites"),
    ],
)  # fmt: skip
def test_invalid_experiments_name_the_field(session, world, data, field):
    from feedback.models import Model

    with pytest.raises(ValidationFailed) as err:
        experiments.create_experiment(session, world["analyst"], model_id=session.scalar(select(Model.id)), **data)
    assert field in err.value.fields
    assert impact_queries.list_experiments(session) == []


def test_a_running_split_cannot_change(session, world):
    exp = ab(session, world["analyst"])
    with pytest.raises(ValidationFailed) as err:
        experiments.update_experiment(session, world["analyst"], experiment_id=exp.id, ai_weight=0.2)
    assert "ai_weight" in err.value.fields
    stopped = experiments.stop_experiment(session, world["analyst"], experiment_id=exp.id)
    assert stopped.status == "stopped"
    with pytest.raises(Conflict):
        experiments.update_experiment(session, world["analyst"], experiment_id=exp.id, name="renamed")


def test_remembered_running_experiment_is_read_once_and_forgotten_on_change(session, world):
    from sqlalchemy import event

    from feedback.models import Model

    model_id = session.scalar(select(Model.id))
    remember_running_experiments(session)
    reads = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().startswith("SELECT experiments."):
            reads.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert running_experiment(session, model_id) is None
        assert running_experiment(session, model_id) is None
        assert len(reads) == 1
        started = ab(session, world["analyst"])  # flushes an Experiment: the memo is forgotten
        assert running_experiment(session, model_id).id == started.id
        assert running_experiment(session, model_id).id == started.id
        experiments.stop_experiment(session, world["analyst"], experiment_id=started.id)
        assert running_experiment(session, model_id) is None
    finally:
        event.remove(engine, "before_cursor_execute", count)
