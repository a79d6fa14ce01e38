"""GET /api/v1/analytics/drift: rows per feature, windows, bad parameters, and who may read it."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from feedback.db import utcnow
from feedback.drift import reports
from feedback.models import ModelVersion
from tests.factories import make_model, make_user, token_for
from tests.helpers import store_on_days

FIELDS = {"feature", "kind", "method", "statistic", "p_value", "threshold", "drifted", "n_reference", "n_current"}


@pytest.fixture
def drifted(app, session):
    """claims v1: 40-54 days ago amounts around 100, the last 14 days around 130; channel steady."""
    make_model(session)
    version = session.scalar(select(ModelVersion))
    rng = random.Random(5)
    today = utcnow().date()
    days = [today - timedelta(days=(40 + i % 14) if i < 1200 else i % 14) for i in range(2400)]
    values = [
        {"amount": rng.gauss(100 if i < 1200 else 130, 20), "channel": rng.choice(["web", "phone"])}
        for i in range(2400)
    ]
    store_on_days(session, version, days, values)
    return token_for(app, session, make_user(session, "analyst"))


def test_rows_and_windows(client, drifted):
    response = client.get("/api/v1/analytics/drift?model=claims&version=v1", headers=drifted)
    assert response.status_code == 200, response.text
    body = response.json
    today = utcnow().date()
    assert body["current_from"] == (today - timedelta(days=13)).isoformat() and body["current_to"] == today.isoformat()
    assert body["reference_from"] == (today - timedelta(days=53)).isoformat()
    rows = {r["feature"]: r for r in body["rows"]}
    assert set(rows) == {"features.amount", "features.channel", "confidence", "recommended_action"}
    assert all(set(r) == FIELDS for r in body["rows"])
    amount = rows["features.amount"]
    assert amount["drifted"] and amount["method"] == "wasserstein" and amount["statistic"] > 1
    assert amount["n_reference"] == amount["n_current"] == 1200 and amount["threshold"] == 0.1
    assert not rows["features.channel"]["drifted"]


def test_explicit_windows(client, drifted):
    today = utcnow().date()
    start = (today - timedelta(days=13)).isoformat()
    query = f"model=claims&version=v1&reference_from={start}&reference_to={today}&from={start}&to={today}"
    body = client.get(f"/api/v1/analytics/drift?{query}", headers=drifted).json
    assert body["reference_from"] == start
    assert not any(r["drifted"] for r in body["rows"])  # a window against itself
    assert {r["statistic"] for r in body["rows"] if r["method"] == "wasserstein"} == {0.0}
    earlier = f"from={today - timedelta(days=30)}&to={today - timedelta(days=20)}"
    empty = client.get(f"/api/v1/analytics/drift?model=claims&version=v1&{earlier}", headers=drifted).json
    assert all(r["n_current"] == 0 and r["statistic"] is None and not r["drifted"] for r in empty["rows"])
    backwards = client.get(f"/api/v1/analytics/drift?model=claims&version=v1&from={today}&to={start}", headers=drifted)
    assert backwards.status_code == 200 and all(r["n_current"] == 0 for r in backwards.json["rows"])  # empty, as asked
    decade = client.get(f"/api/v1/analytics/drift?model=claims&version=v1&from=2000-01-01&to={today}", headers=drifted)
    assert decade.json["current_from"] == (today - timedelta(days=reports.MAX_WINDOW_DAYS)).isoformat()
    one_end = client.get(f"/api/v1/analytics/drift?model=claims&version=v1&reference_from={start}", headers=drifted)
    assert (one_end.json["reference_from"], one_end.json["reference_to"]) == (start, today.isoformat())  # 14 days


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("model=claims", 422, "version"),
        ("version=v1", 422, "model"),
        ("model=nope&version=v1", 404, "model"),
        ("model=claims&version=v9", 404, "version"),
        ("model=claims&version=v1&from=2026-13-01", 422, "from"),
        ("model=claims&version=v1&reference_from=0001-01-01&reference_to=2026-01-01", 422, "reference_from"),
    ],
)
def test_bad_parameters_are_named(client, drifted, query, status, field):
    response = client.get(f"/api/v1/analytics/drift?{query}", headers=drifted)
    assert response.status_code == status, response.text
    assert field in response.json["error"]["fields"], response.json


def test_only_model_readers(app, client, session, drifted):
    frontline = token_for(app, session, make_user(session, "frontline"))
    assert client.get("/api/v1/analytics/drift?model=claims&version=v1", headers=frontline).status_code == 403
    assert client.get("/api/v1/analytics/drift?model=claims&version=v1").status_code == 401


def test_documented_in_openapi(client, drifted):
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/analytics/drift"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"model", "version", "reference_from", "reference_to", "from", "to"}
    assert set(operation["responses"]) >= {"200", "404", "422"}
