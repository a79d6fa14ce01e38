"""Fixtures of the web tests: one of everything a route can point at."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.impact import experiments
from feedback.impact import panels as impact_panels
from feedback.impact import runs as impact_runs
from feedback.models import ROLES, Alert, AuditEvent, BacklogRefresh, ExportJob, Guardrail, ModelVersion
from feedback.review import decisions
from tests.factories import backlog_item, make_case, make_model, make_user, sign_in_cookie, token_for
from tests.helpers import simulated_panel

F, X, M, A, D = "frontline", "exception_handler", "model_owner", "analyst", "admin"


@pytest.fixture
def world(app: Flask, session):
    """One of everything a route can point at, and a signed-in client and a token per role."""
    model = make_model(session)
    version_id = session.scalar(select(ModelVersion.id))
    users = {role: make_user(session, role) for role in ROLES}
    someone = make_user(session)  # the one the people page's changes are tried on
    # The model owner owns this model: a model owner who does not is refused (tests/web/test_ownership.py).
    catalog.set_model_owners(session, users[D], model_key="claims", owner_emails=[users[M].email])
    open_case = make_case(session, 1)
    escalated = make_case(session, 2)
    decisions.record_decision(session, users[F], recommendation_id=escalated.id, action="escalate", note="unclear")
    accepted = make_case(session, 3)
    decisions.record_decision(session, users[F], recommendation_id=accepted.id, action="accept")
    exception_id = session.scalar(select(func.max(AuditEvent.entity_id)).where(AuditEvent.action == "exception.raised"))
    experiment = experiments.create_experiment(
        session, users[A], key="ab", name="AB", model_id=model.id, kind="ab", unit="case"
    )
    frame = simulated_panel(np.random.default_rng(1), units=12, periods=4)
    panel = impact_panels.upload_panel(session, users[A], name="panel", raw=frame.to_csv(index=False).encode())
    params = {"control": "never", "method": "reg"}
    run = impact_runs.queue_panel_analysis(session, users[A], panel_id=panel.id, **params)
    guardrail = Guardrail(model_version_id=version_id, kind="override_rate_above", window_size=50, threshold=0.5)
    session.add(guardrail)
    session.flush()
    alert = Alert(guardrail_id=guardrail.id, model_version_id=version_id, message="breach")
    item = backlog_item(model.id, version_id, "v1 is overridden more at Leeds")
    export = ExportJob(format="csv", params={"model": "claims"}, created_by_id=users[D].id, status="queued")
    refresh = BacklogRefresh(model_id=model.id, created_by_id=users[D].id, status="done")  # the job_id as well
    session.add_all([alert, item, export, refresh])
    session.commit()
    from feedback.webhooks import services as webhooks

    hook = webhooks.create_webhook(
        session, users[D], url="https://hooks.example.test/in", events=["backlog.item_created"]
    )
    ids = {
        "key": "claims",
        "version": "v1",  # a version by name, as the readiness routes take it
        "recommendation_id": open_case.id,
        "exception_id": int(exception_id),
        "experiment_id": experiment.id,
        "panel_id": panel.id,
        "run_id": run.id,
        "item_id": item.id,
        "job_id": export.id,
        "webhook_id": hook.id,
        "version_id": version_id,
        "alert_id": alert.id,
        "guardrail_id": guardrail.id,
        "user_id": someone.id,
        "change": "start",
        "name": "htmx.min.js",
    }
    clients: dict[str | None, FlaskClient] = {None: app.test_client()}
    for role, user in users.items():
        clients[role] = app.test_client()
        sign_in_cookie(clients[role], user)
    tokens = {role: token_for(app, session, user) for role, user in users.items()}
    session.rollback()
    return {"ids": ids, "clients": clients, "tokens": tokens, "exception_valid_until": utcnow() + timedelta(days=1)}
