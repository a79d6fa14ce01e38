"""The demo's staggered rollout has a real effect, and the impact analysis recovers it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from demo import experiments as demo_experiments
from demo.seed import seed as seed_demo
from feedback import migrate
from feedback.models import AnalysisRun, Decision, Experiment


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """The full 90-day demo on its own SQLite database (about 25 s)."""
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.sqlite'}")
    migrate.upgrade(engine)
    with Session(engine) as session:
        assert seed_demo(session, progress=lambda _: None)
    yield engine
    engine.dispose()


def test_the_impact_page_recovers_the_true_handling_time_effect(seeded):
    with Session(seeded) as session:
        experiment = session.scalars(select(Experiment).where(Experiment.key == "fraud-rollout")).one()
        assert experiment.status == "running" and len(experiment.sites) == 6
        run = session.scalars(select(AnalysisRun).where(AnalysisRun.kind == "staggered")).one()
        assert run.status == "done", run.message
        simple = run.result["simple"]
        truth = demo_experiments.AI_HANDLING_FACTOR - 1
        assert simple["relative_ci_low"] < truth < simple["relative_ci_high"]
        assert simple["relative_ci_high"] < 0  # the effect is detected, not just covered
        assert {c["units"] for c in run.result["cohorts"]} and len(run.result["cohorts"]) == 4
        # Before go-live (and at the comparison site) the fraud AI was hidden from reviewers.
        hidden = session.scalar(
            select(func.count()).where(Decision.model_id == experiment.model_id, Decision.ai_shown.is_(False))
        )
        assert hidden > 1000


def test_the_demo_ab_test_passes_its_sample_ratio_check_and_cuped_sharpens_it(seeded):
    with Session(seeded) as session:
        run = session.scalars(select(AnalysisRun).where(AnalysisRun.kind == "ab")).one()
        assert run.status == "done", run.message
        result = run.result
        assert not result["srm"]["mismatch"] and result["clustered_by"] == "reviewer"
        handling = next(m for m in result["metrics"] if m["metric"] == "handling_seconds")
        truth = demo_experiments.AI_HANDLING_FACTOR - 1  # control reviewers took 1/0.85 as long
        assert handling["effect"]["lift_ci_low"] < truth < handling["effect"]["lift_ci_high"]
        assert handling["cuped"]["lift_ci_low"] < truth < handling["cuped"]["lift_ci_high"]
        # The reviewers' own pre-test speed explains most of the between-reviewer spread.
        assert handling["cuped"]["estimate_variance_reduction"] > 0.5
        assert handling["cuped"]["se"] < handling["effect"]["se"]


def test_the_seeded_poor_segment_is_the_top_backlog_item_and_stays_one(seeded):
    from feedback.audit import Actor
    from feedback.backlog import queries as backlog_queries
    from feedback.backlog import services as backlog
    from feedback.models import BacklogItem

    with Session(seeded) as session:
        items = backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims_triage"))
        assert items[0].pattern_key == "segment.claim_band=over_10k"
        assert items[0].model_version.version == "v1"
        assert items[0].title.startswith("v1 is overridden") and "where claim band is over £10k" in items[0].title
        before = session.scalar(select(func.count()).select_from(BacklogItem))
        summary = backlog.refresh(session, Actor(None, "test"), model_key="claims_triage")
        assert summary.created == 0
        assert session.scalar(select(func.count()).select_from(BacklogItem)) == before
        again = backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims_triage"))
        assert [i.id for i in again][:1] == [items[0].id]


def test_the_demo_model_owner_owns_both_models_and_nobody_else_does(seeded):
    from feedback.models import Model, ModelOwner, User

    with Session(seeded) as session:
        owned = session.execute(
            select(Model.key, User.email).join(ModelOwner, ModelOwner.model_id == Model.id).join(User)
        ).all()
    assert sorted(owned) == [("claims_triage", "owner@countersign.test"), ("fraud_alert", "owner@countersign.test")]


def test_the_demo_stores_outcomes_with_the_feeds_own_fingerprint(seeded):
    """Sending a seeded outcome again through the outcome service is a replay, not a conflict."""
    from feedback.audit import SYSTEM
    from feedback.models import Outcome
    from feedback.outcomes import services as outcomes
    from feedback.schemas import OutcomeIn

    with Session(seeded) as session:
        stored = session.scalars(select(Outcome).where(Outcome.label.is_not(None)).order_by(Outcome.id).limit(3)).all()
        again = [
            OutcomeIn(
                recommendation_id=o.recommendation_id, outcome=o.label, observed_at=o.observed_at, source=o.source
            )
            for o in stored
        ]
        answers = outcomes.record_outcomes(session, SYSTEM, items=again)
        assert [(a.id, a.created) for a in answers] == [(o.id, False) for o in stored]
