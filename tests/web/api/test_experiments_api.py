"""Experiments and analyses over the API: same rules as the pages, tokens and roles enforced."""

from __future__ import annotations

import time

from tests.factories import make_model, make_user, token_for


def test_create_start_and_analyse_over_the_api(app, client, session):
    make_model(session)
    analyst = token_for(app, session, make_user(session, "analyst"))
    reviewer = token_for(app, session, make_user(session))
    body = {
        "key": "roll",
        "name": "Roll",
        "model": "claims",
        "kind": "staggered",
        "sites": [{"site": "Leeds", "go_live": "2026-01-05T00:00:00Z"}, {"site": "York", "go_live": None}],
    }
    assert client.post("/api/v1/experiments", json=body, headers=reviewer).status_code == 403
    assert client.get("/api/v1/experiments", headers=reviewer).status_code == 403
    bad = client.post("/api/v1/experiments", json={**body, "key": "Bad Key"}, headers=analyst)
    assert bad.status_code == 422 and "key" in bad.json["error"]["fields"]
    unknown = client.post("/api/v1/experiments", json={**body, "model": "nope"}, headers=analyst)
    assert unknown.status_code == 404
    made = client.post("/api/v1/experiments", json=body, headers=analyst)
    assert made.status_code == 201, made.json
    assert made.json["status"] == "draft" and {s["site"] for s in made.json["sites"]} == {"Leeds", "York"}
    exp_id = made.json["id"]
    taken = client.post("/api/v1/experiments", json=body, headers=analyst)
    assert taken.status_code == 409 and taken.json["error"]["code"] == "conflict", taken.json
    started = client.post(f"/api/v1/experiments/{exp_id}/start", headers=analyst)
    assert started.status_code == 200 and started.json["status"] == "running"
    assert client.post(f"/api/v1/experiments/{exp_id}/start", headers=analyst).status_code == 409
    # A staggered rollout is analysed from a panel, not per decision.
    assert client.post(f"/api/v1/experiments/{exp_id}/analyses", headers=analyst).status_code == 409

    from feedback.impact import panels as impact_panels
    from feedback.models import User
    from tests.helpers import GOOD

    user = session.query(User).filter_by(role="analyst").one()
    panel = impact_panels.upload_panel(session, user, name="p", raw=GOOD)
    queued = client.post(f"/api/v1/panels/{panel.id}/analyses", json={"control": "never", "draws": 99}, headers=analyst)
    assert queued.status_code == 202 and queued.headers["Location"].endswith(f"/api/v1/analyses/{queued.json['id']}")
    invalid = client.post(f"/api/v1/panels/{panel.id}/analyses", json={"method": "magic"}, headers=analyst)
    assert invalid.status_code == 422 and "method" in invalid.json["error"]["fields"]
    deadline = time.monotonic() + 20
    while True:
        polled = client.get(queued.headers["Location"], headers=analyst).json
        if polled["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # Two units only: the estimator runs, and the result carries every table.
    assert polled["status"] == "done", polled["message"]
    assert {"simple", "event_study", "cells", "pretest", "twfe"} <= set(polled["result"])


def test_an_analysis_returns_the_estimators_warnings(app, client, session):
    import numpy as np

    from feedback.impact import panels as impact_panels
    from tests.helpers import eventually_treated_panel

    analyst = make_user(session, "analyst")
    headers = token_for(app, session, analyst)
    raw = eventually_treated_panel(np.random.default_rng(3)).to_csv(index=False).encode()
    panel = impact_panels.upload_panel(session, analyst, name="all treated", raw=raw)
    queued = client.post(
        f"/api/v1/panels/{panel.id}/analyses", json={"control": "not_yet", "draws": 99}, headers=headers
    )
    assert queued.status_code == 202
    deadline = time.monotonic() + 20
    while (polled := client.get(queued.headers["Location"], headers=headers).json)["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "the analysis did not finish"
        time.sleep(0.1)
    assert polled["status"] == "done", polled["message"]
    warnings = polled["result"]["warnings"]
    assert any(
        w.startswith("no unit is never treated: the last cohort (7) serves only as the comparison") for w in warnings
    )
