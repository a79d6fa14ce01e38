"""The countersign console command."""

from __future__ import annotations

import time

from sqlalchemy import func, select, text

from feedback.accounts.security import token_digest
from feedback.audit import Actor
from feedback.backlog import services as backlog
from feedback.models import (
    ApiToken,
    BacklogItem,
    BacklogRefresh,
    Decision,
    DecisionException,
    Outcome,
    Recommendation,
    User,
)


def test_user_and_token_commands(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["user", "create", "Boss@Example.test", "--role", "admin", "--password", "a long password"]
    )
    assert result.exit_code == 0, result.output
    assert "created boss@example.test (admin)" in result.output
    dup = runner.invoke(
        args=["user", "create", "boss@example.test", "--role", "admin", "--password", "a long password"]
    )
    assert dup.exit_code != 0 and "already exists" in dup.output
    weak = runner.invoke(args=["user", "create", "x@example.test", "--role", "admin", "--password", "short"])
    assert weak.exit_code != 0 and "password: must be at least 15 characters" in weak.output
    token = runner.invoke(args=["token", "create", "boss@example.test"]).output.strip()
    assert token.startswith("cs_")
    stored = session.scalar(select(ApiToken))
    assert stored.token_hash == token_digest(token) and token not in stored.token_hash
    response = app.test_client().get("/api/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    revoked = runner.invoke(args=["token", "revoke", str(stored.id)])
    assert revoked.exit_code == 0
    assert app.test_client().get("/api/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_password_prompt(app, session):
    result = app.test_cli_runner().invoke(
        args=["user", "create", "p@example.test", "--role", "analyst"], input="prompted password\nprompted password\n"
    )
    assert result.exit_code == 0, result.output
    assert session.scalar(select(User.role).where(User.email == "p@example.test")) == "analyst"


def test_seed_demo_then_audit_verify_then_tamper(app, session):
    runner = app.test_cli_runner()
    seeded = runner.invoke(args=["seed-demo", "--days", "20", "--per-day", "30"])
    assert seeded.exit_code == 0, seeded.output
    assert "history: 20/20 days, 600 cases" in seeded.output and "reviewer01@countersign.test" in seeded.output
    decided = session.scalar(select(func.count()).select_from(Decision))
    routed = session.scalar(select(func.count()).where(~Recommendation.decision.has(), Recommendation.status != "open"))
    still_open = session.scalar(select(func.count()).where(Recommendation.status == "open"))
    # Every case is in the reviewers' queue, decided there, or routed to exceptions by the ingest rules.
    # 600 cases of history, 160 live ones, and the 400 of the pilot its readiness plan killed (demo/readiness.py).
    assert session.scalar(select(func.count()).select_from(Recommendation)) == 1160 == decided + routed + still_open
    assert routed > 0 and decided > 500
    assert session.scalar(select(func.count()).select_from(User)) == 25
    kinds = set(session.scalars(select(DecisionException.kind).distinct()))
    assert {"reviewer_escalation", "low_confidence"} <= kinds
    assert session.scalar(select(func.count()).select_from(Outcome)) > 0
    again = runner.invoke(args=["seed-demo", "--days", "20", "--per-day", "30"])
    assert "already present" in again.output
    assert session.scalar(select(func.count()).select_from(Decision)) == decided
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "audit chain intact" in ok.output
    session.execute(text("UPDATE audit_events SET actor = 'someone else' WHERE seq = 40"))
    session.commit()
    bad = runner.invoke(args=["audit", "verify"])
    assert bad.exit_code == 1 and "event #40" in bad.output


def test_backlog_refresh_and_webhook_delivery_commands(app, session):
    from tests.factories import make_model

    make_model(session)
    runner = app.test_cli_runner()
    refreshed = runner.invoke(args=["backlog", "refresh", "claims"])
    assert refreshed.exit_code == 0 and "0 new, 0 updated" in refreshed.output
    missing = runner.invoke(args=["backlog", "refresh", "nope"])
    assert missing.exit_code != 0 and "no model" in missing.output
    delivered = runner.invoke(args=["webhooks", "deliver"])
    assert delivered.exit_code == 0 and "attempted 0" in delivered.output


def test_seed_demo_can_leave_the_backlog_to_the_worker(app, session):
    """make demo's seeding queues each model's backlog refresh, and the worker mines it."""
    runner = app.test_cli_runner()
    seeded = runner.invoke(args=["seed-demo", "--days", "30", "--per-day", "120", "--mine-in-worker"])
    assert seeded.exit_code == 0, seeded.output
    assert seeded.output.count("mining queued for the worker") == 2
    assert "item(s); top:" not in seeded.output  # nothing mined by the command itself
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the app's job consumer (a worker) picks them up
        session.rollback()
        jobs = session.scalars(select(BacklogRefresh).order_by(BacklogRefresh.id)).all()
        if len(jobs) == 2 and all(job.status == "done" for job in jobs):
            break
        time.sleep(0.2)
    assert [(job.status, job.created_by_id) for job in jobs] == [("done", None), ("done", None)]
    assert session.scalar(select(func.count()).select_from(BacklogItem)) > 0
    # Mining again here finds nothing new: the worker mined what the command would have.
    for key in ("claims_triage", "fraud_alert"):
        assert backlog.refresh(session, Actor(None, "test"), model_key=key).created == 0
