"""Resolution analytics over HTTP, checked against raw rows and lifelines."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from sqlalchemy import select, update

from feedback.db import utcnow
from feedback.decision_exceptions import services as decision_exceptions
from feedback.models import DecisionException, ModelVersion
from feedback.schemas import VersionRulesIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_user, token_for


@pytest.fixture
def history(app, session):
    """Forty low-confidence exceptions with known ages; most resolved, some still open."""
    make_model(session)
    version = session.scalar(select(ModelVersion))
    decision_exceptions.set_version_rules(
        session, TEST_ACTOR, version_id=version.id, rules=VersionRulesIn(min_confidence=0.9)
    )
    rng = np.random.default_rng(11)
    now = utcnow()
    for n in range(40):
        make_case(session, n, confidence=0.5, site="Leeds" if n % 2 else "Bristol")
    for exc_id in session.scalars(select(DecisionException.id)).all():
        age = float(rng.uniform(30, 60))
        opened = now - timedelta(hours=age)
        took = min(float(rng.exponential(12)), age - 0.5)  # resolved in the past, never after now
        values = {"opened_at": opened, "sla_due_at": opened + timedelta(hours=24)}
        if exc_id % 4:  # three in four resolved; the rest are still open (censored)
            values.update(status="resolved", resolved_at=opened + timedelta(hours=took))
        session.execute(update(DecisionException).where(DecisionException.id == exc_id).values(**values))
    session.commit()
    return token_for(app, session, make_user(session, "analyst"))


def test_resolution_endpoint_shape_and_numbers(client, session, history):
    response = client.get("/api/v1/analytics/exceptions/resolution?model=claims&by=site", headers=history)
    assert response.status_code == 200
    rows = {r["key"]: r for r in response.json["rows"]}
    assert set(rows) == {"Bristol", "Leeds", "all"}
    assert set(rows["all"]) >= {
        "key",
        "n",
        "resolved",
        "censored",
        "median_hours",
        "median_ci_low",
        "median_ci_high",
        "p90_hours",
        "sla_breach_rate",
    }
    # Independent computation: raw rows, durations in Python, Kaplan–Meier by lifelines.
    session.rollback()
    raw = session.execute(
        select(
            DecisionException.site,
            DecisionException.opened_at,
            DecisionException.resolved_at,
            DecisionException.sla_due_at,
        )
    ).all()
    for key in ("Bristol", "Leeds", "all"):
        mine = [r for r in raw if key in ("all", r.site)]
        now = utcnow()
        hours = [((r.resolved_at or now) - r.opened_at).total_seconds() / 3600 for r in mine]
        events = [r.resolved_at is not None for r in mine]
        kmf = KaplanMeierFitter().fit(hours, events)
        row = rows[key]
        assert (row["n"], row["resolved"], row["censored"]) == (len(mine), sum(events), len(mine) - sum(events))
        # The median is the first time at which S(t) <= 0.5; S is often exactly 0.5 here (few cases
        # censored early), which each library computes with its own rounding, hence the tolerance.
        curve = kmf.survival_function_.iloc[:, 0]
        assert row["median_hours"] == pytest.approx(curve.index[curve.to_numpy() <= 0.5 + 1e-12][0], abs=1e-3)
        breached = sum(((r.resolved_at or now) > r.sla_due_at) for r in mine)
        assert row["sla_known_breaches"] == breached
        units = [h / ((r.sla_due_at - r.opened_at).total_seconds() / 3600) for h, r in zip(hours, mine, strict=True)]
        in_sla_units = KaplanMeierFitter().fit(units, events)
        assert row["sla_breach_rate"] == pytest.approx(in_sla_units.survival_function_at_times(1.0).iloc[0], abs=1e-9)


def test_resolution_endpoint_errors(client, session, history):
    bad = client.get("/api/v1/analytics/exceptions/resolution?by=colour", headers=history)
    assert bad.status_code == 422 and "by" in bad.json["error"]["fields"]
    assert client.get("/api/v1/analytics/exceptions/resolution?model=nope", headers=history).status_code == 404
    headers = token_for(client.application, session, make_user(session, "frontline"))
    assert client.get("/api/v1/analytics/exceptions/resolution", headers=headers).status_code == 403


def test_exceptions_list_and_resolve_api(client, session, history):
    handler = token_for(client.application, session, make_user(session, "exception_handler"))
    items = client.get("/api/v1/exceptions?status=open", headers=handler).json["items"]
    assert len(items) == 10 and all(i["status"] == "open" for i in items)
    assert [i["sla_due_at"] for i in items] == sorted(i["sla_due_at"] for i in items)
    done = client.post(
        f"/api/v1/exceptions/{items[0]['id']}/resolve",
        json={"final_action": "deny", "note": "checked"},
        headers=handler,
    )
    assert done.status_code == 200 and done.json["status"] == "resolved" and done.json["resolution_action"] == "deny"
    bad = client.post(f"/api/v1/exceptions/{items[1]['id']}/resolve", json={"final_action": "nah"}, headers=handler)
    assert bad.status_code == 409 and bad.json["error"]["code"] == "not_allowed"  # an action the model lacks
    assert "final_action" in bad.json["error"]["fields"]
    still = client.get("/api/v1/exceptions?status=open", headers=handler).json["items"]
    assert items[1]["id"] in [i["id"] for i in still]  # nothing stored
    assert client.get("/api/v1/exceptions", headers=history).status_code == 403  # analysts read, handlers work
