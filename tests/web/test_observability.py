"""Health checks, request ids, JSON logs without secrets, Prometheus metrics and 503s when the database is gone."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from feedback.models import Recommendation
from tests import pgserver
from tests.factories import PASSWORD, login, make_case, make_model, make_user, token_for
from webapp.observability import JsonFormatter, redact


def scrape(client, headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics keyed by name and labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"status": "ok", "checks": {"database": "ok", "migrations": "current"}}


def test_readyz_is_503_when_migrations_are_behind(app, client, session):
    head = session.scalar(text("SELECT version_num FROM alembic_version"))
    session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json["checks"]["migrations"] == f"database at 0001, code expects {head}"
    finally:
        session.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})
        session.commit()


def test_request_id_is_generated_or_kept_when_plain(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.19"}).headers["X-Request-ID"] == "lb-7f3a.19"
    forged = client.get("/healthz", headers={"X-Request-ID": 'x" level=error <script>'}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged)


def test_logs_are_json_with_request_id_and_no_secrets(app, client, session):
    user = make_user(session, "admin")
    headers = token_for(app, session, user)
    token = headers["Authorization"].split()[1]
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level, root.level = root.level, logging.INFO
    try:
        login(client, user)
        api = client.get("/api/v1/models", headers={**headers, "X-Request-ID": "trace-42"})
        assert api.status_code == 200
        client.post("/login", data={"email": user.email, "password": "wrong-" + PASSWORD})
    finally:
        root.removeHandler(handler)
        root.level = old_level
    lines = captured.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    access = [e for e in entries if e["logger"] == "countersign.access"]
    assert [(e["method"], e["path"], e["status"]) for e in access] == [
        ("POST", "/login", 302),
        ("GET", "/api/v1/models", 200),
        ("POST", "/login", 401),
    ]
    assert access[1]["request_id"] == "trace-42" and access[1]["route"] == "/api/v1/models"
    assert access[1]["user_id"] == user.id and access[1]["duration_ms"] >= 0
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["request_id"]) for e in (access[0], access[2]))
    everything = captured.getvalue()
    assert token not in everything and PASSWORD not in everything


def test_redact_removes_credentials():
    line = redact(
        "connect postgresql://app:s3cr3t@db:5432/cs failed; Authorization: Bearer cs_abc.def; password=hunter2&x=1"
    )
    assert "s3cr3t" not in line and "cs_abc.def" not in line and "hunter2" not in line
    assert "postgresql://app:[redacted]@db:5432/cs" in line and "x=1" in line


def test_metrics_need_a_metrics_or_admin_token(app, client, session):
    app.config["METRICS_TOKEN"] = "scrape-me"
    frontline = token_for(app, session, make_user(session, "frontline"))
    admin = token_for(app, session, make_user(session, "admin"))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=frontline).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-mE"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
    assert client.get("/metrics", headers=admin).status_code == 200


def test_metrics_count_decisions_and_report_the_workload(app, client, session):
    make_model(session)
    for n in range(1, 5):
        make_case(session, n)
    reviewer = token_for(app, session, make_user(session, "frontline"))
    admin = token_for(app, session, make_user(session, "admin"))
    cases = list(session.scalars(select(Recommendation.id).order_by(Recommendation.id)))
    before = scrape(client, admin)
    decided = "countersign_decisions_total", (("action", "override"), ("model", "claims"))
    overridden = "countersign_overrides_total", (("model", "claims"), ("reason_code", "missing_context"))
    escalated = "countersign_decisions_total", (("action", "escalate"), ("model", "claims"))
    override = {"action": "override", "final_action": "deny", "reason_code": "missing_context"}
    escalate = {"action": "escalate", "note": "needs a specialist"}
    for rec_id, body in ((cases[0], override), (cases[1], escalate)):
        assert client.post(f"/api/v1/recommendations/{rec_id}/decision", json=body, headers=reviewer).status_code == 201
    after = scrape(client, admin)
    assert after[decided] - before.get(decided, 0) == 1
    assert after[overridden] - before.get(overridden, 0) == 1
    assert after[escalated] - before.get(escalated, 0) == 1
    assert after["countersign_queue_depth", (("model", "claims"),)] == 2
    assert after["countersign_open_exceptions", (("model", "claims"),)] == 1
    assert after["countersign_overdue_exceptions", (("model", "claims"),)] == 0
    route = "/api/v1/recommendations/<int:recommendation_id>/decision"
    count = "countersign_http_request_duration_seconds_count", (("method", "POST"), ("route", route), ("status", "201"))
    assert after[count] - before.get(count, 0) == 2


@pytest.fixture
def app_without_database(tmp_path):
    """An app whose PostgreSQL is not there (nothing listens on the port)."""
    from webapp import create_app

    dead = f"postgresql://countersign:pw@127.0.0.1:{pgserver.free_port()}/countersign"
    settings = {"TESTING": True, "DATABASE_URL": dead, "SECRET_KEY": "x", "WTF_CSRF_ENABLED": False}
    app = create_app(settings)
    yield app
    with app.app_context():
        from webapp.extensions import db

        db.engine.dispose()


def test_database_outage_is_503_with_retry_after(app_without_database):
    client = app_without_database.test_client()
    api = client.get("/api/v1/models", headers={"Authorization": "Bearer cs_whatever"})
    assert api.status_code == 503 and api.headers["Retry-After"] == "2"
    assert api.json["error"]["code"] == "unavailable"
    page = client.post("/login", data={"email": "a@example.test", "password": "x"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "2"
    assert "nothing was saved" in page.text
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
