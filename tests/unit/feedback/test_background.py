"""Job rows behind the worker: one claim per attempt, retries with backoff, lost jobs queued again, sweeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from feedback import background
from feedback.db import utcnow
from feedback.models import Alert, BacklogRefresh, ExportChunk, ExportJob, ModelVersion
from feedback.overrides import guardrails
from feedback.review import decisions
from tests.factories import TEST_ACTOR, make_case, make_model, make_user


@pytest.fixture
def refresh(session):
    """A queued backlog refresh of the claims model."""
    model = make_model(session)
    job = BacklogRefresh(model_id=model.id)
    session.add(job)
    session.commit()
    return job


def test_an_attempt_is_claimed_once(session, refresh):
    assert background.claim(session, "backlog_refresh", refresh.id, 1)
    assert not background.claim(session, "backlog_refresh", refresh.id, 1)  # the same message delivered twice
    assert not background.claim(session, "backlog_refresh", refresh.id, 3)  # attempts are taken in order
    session.refresh(refresh)
    assert refresh.attempts == 1 and refresh.message == "attempt 1 starting"


def test_a_failed_attempt_is_queued_again_with_doubling_waits_then_fails(session, refresh):
    waits = []
    for attempt in (1, 2, 3):
        assert background.claim(session, "backlog_refresh", refresh.id, attempt)
        retry = background.failed_attempt(
            session, "backlog_refresh", refresh.id, attempt, "TimeoutError", max_attempts=3, base_seconds=5
        )
        waits.append(retry.delay)
        session.refresh(refresh)
        assert retry.again == (attempt < 3)
    assert waits[:2] == [5, 10]
    assert (refresh.status, refresh.attempts) == ("failed", 3)
    assert refresh.message == "failed after 3 attempts: TimeoutError" and refresh.finished_at is not None


def test_a_job_whose_worker_died_is_queued_again_then_fails_after_its_attempts(session, refresh):
    owner = make_user(session, "admin")
    export = ExportJob(format="csv", created_by_id=owner.id, status="running", attempts=3)
    session.add(export)
    session.commit()
    assert background.claim(session, "backlog_refresh", refresh.id, 1)
    lease = timedelta(minutes=10)
    assert background.reclaim_stale(session, lease=lease, max_attempts=3) == []  # both moved just now
    long_ago = utcnow() - timedelta(minutes=11)
    for model in (BacklogRefresh, ExportJob):
        session.execute(update(model).values(status="running", updated_at=long_ago))
    session.commit()
    again = background.reclaim_stale(session, lease=lease, max_attempts=3)
    assert again == [("backlog_refresh", refresh.id, 2)]
    session.refresh(refresh)
    session.refresh(export)
    assert (refresh.status, refresh.attempts) == ("queued", 1)
    assert (export.status, export.message) == ("failed", "failed after 3 attempts: its worker stopped")
    assert background.claim(session, "backlog_refresh", refresh.id, 2)


def test_a_new_export_attempt_starts_without_the_pieces_of_the_one_that_died(session):
    owner = make_user(session, "admin")
    export = ExportJob(format="csv", created_by_id=owner.id)
    session.add(export)
    session.commit()
    session.add(ExportChunk(job_id=export.id, seq=0, data=b"half"))
    session.commit()
    assert background.claim(session, "export", export.id, 1)
    assert session.scalar(select(func.count()).select_from(ExportChunk)) == 0


def test_queued_jobs_counts_what_waits_and_how_long(session, refresh):
    session.execute(update(BacklogRefresh).values(created_at=utcnow() - timedelta(seconds=90)))
    session.commit()
    queued = background.queued_jobs(session)
    assert queued["backlog_refresh"][0] == 1 and 89 < queued["backlog_refresh"][1] < 200
    assert queued["analysis"] == (0, 0.0) and queued["export"] == (0, 0.0)


def test_the_guardrail_sweep_opens_an_alert_for_a_breach_once(session):
    make_model(session)
    version = session.scalar(select(ModelVersion))
    reviewer = make_user(session)
    for n in range(10):
        rec = make_case(session, n)
        extra = {"final_action": "deny", "reason_code": "missing_context"} if n < 4 else {}
        action = "override" if n < 4 else "accept"
        decisions.record_decision(session, reviewer, recommendation_id=rec.id, action=action, **extra)
    guardrails.add_guardrail(
        session,
        TEST_ACTOR,
        version_id=version.id,
        kind="override_rate_above",
        window_size=10,
        threshold=0.3,
        auto_pause=False,
    )
    assert session.scalar(select(func.count()).select_from(Alert)) == 0  # added after the decisions
    assert background.sweep_guardrails(session) == 1
    assert background.sweep_guardrails(session) == 0  # the breach is already open
    assert session.scalar(select(Alert.value)) == pytest.approx(0.4)
