"""A row stored before the JSON checks existed never breaks an export or a page as a whole.

SQLite could be left holding `NaN` (text that is not JSON); PostgreSQL's JSONB holds 1e400,
which reads back as infinity. Rows past today's limits (300 feature keys, 100 segment keys)
were accepted too. Each is written here by raw SQL, as the old code left it.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pytest
from flask import Flask

from feedback.backlog import services as backlog
from feedback.exports import queries as export_queries
from feedback.exports import services as exports
from feedback.json_input import MAX_KEYS, SEGMENT_MAX_KEYS
from feedback.models import ExportJob, User
from feedback.review import decisions
from tests.factories import TEST_ACTOR, login, make_case, make_model, make_user, token_for
from tests.helpers import fetch


def strict_json(text: str) -> Any:
    """Parse JSON as any strict reader would: NaN and Infinity are errors."""

    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def broken(app: Flask, session) -> dict[str, Any]:
    """Five decided cases; the first holds non-finite numbers, the second 300 feature and 100 segment keys."""
    make_model(session)
    reviewer = make_user(session)
    ids = []
    for n in range(1, 6):
        case = make_case(session, n, segment={"claim_band": "over_10k" if n % 2 else "under_1k"})
        decisions.record_decision(session, reviewer, recommendation_id=case.id, action="accept")
        ids.append(case.id)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        features, segment = '{"amount": NaN, "ratio": Infinity, "deep": {"x": -Infinity}}', '{"claim_band": NaN}'
    else:
        features = '{"amount": 1e400, "ratio": -1e400, "deep": {"x": 123456789012345678901234567890}}'
        segment = '{"claim_band": 1e400}'
    wide_features = json.dumps({f"w{i:03d}": i for i in range(300)})
    wide_segment = json.dumps({f"s{i:03d}": "x" for i in range(100)})
    cast = "" if sqlite else "::jsonb"
    with session.get_bind().begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE recommendations SET features = '{features}'{cast}, segment = '{segment}'{cast} WHERE id = {ids[0]}"
        )
        conn.exec_driver_sql(
            f"UPDATE recommendations SET features = '{wide_features}'{cast}, segment = '{wide_segment}'{cast} "
            f"WHERE id = {ids[1]}"
        )
    admin = make_user(session, "admin")
    return {"ids": ids, "admin": admin, "auth": token_for(app, session, admin), "sqlite": sqlite}


def test_the_streamed_export_has_every_row_in_every_format(client, broken):
    url = "/api/v1/exports/decisions?model=claims&format="
    csv = fetch(client, url + "csv", broken["auth"])
    assert csv.status_code == 200
    frame = pd.read_csv(io.StringIO(csv.get_data(as_text=True)))
    assert sorted(frame["case_id"]) == broken["ids"]
    assert frame.loc[frame["case_id"] == broken["ids"][0], "feature.amount"].isna().all()
    # Columns come from the keys most cases hold, bounded, not from the one wide case.
    assert len([c for c in frame.columns if c.startswith("feature.")]) <= MAX_KEYS
    assert len([c for c in frame.columns if c.startswith("segment.")]) <= SEGMENT_MAX_KEYS
    assert "feature.amount" in frame.columns and "segment.claim_band" in frame.columns
    lines = fetch(client, url + "jsonl", broken["auth"])
    assert lines.status_code == 200
    rows = [strict_json(line) for line in lines.get_data(as_text=True).splitlines()]
    first = next(r for r in rows if r["case_id"] == broken["ids"][0])
    assert len(rows) == 5 and first["feature.amount"] is None
    # SQLite cannot read that row's JSON at all, so its cells are blank; PostgreSQL's numbers become null.
    assert first.get("feature.deep") == (None if broken["sqlite"] else '{"x": null}')
    parquet = fetch(client, url + "parquet", broken["auth"])
    assert parquet.status_code == 200
    assert sorted(pd.read_parquet(io.BytesIO(parquet.get_data()))["case_id"]) == broken["ids"]


def test_the_background_export_finishes(app, session, broken):
    from webapp.extensions import db

    admin = session.get(User, broken["admin"].id)
    for fmt in ("csv", "jsonl", "parquet"):
        job = exports.create_job(session, admin, spec=export_queries.ExportSpec(model_key="claims", format=fmt))
        with app.app_context():
            exports.run_job(db.sessionmaker, job.id)
        session.expire_all()
        done = session.get(ExportJob, job.id)
        assert (done.status, done.rows_done, done.message) == ("done", 5, "")


def test_pages_and_the_api_still_answer(app, client, session, broken):
    api = client.get(f"/api/v1/recommendations/{broken['ids'][0]}", headers=broken["auth"])
    assert api.status_code == 200
    # Always JSON: SQLite's NaN is answered as null; JSONB's 1e400 is a (valid, if huge) integer.
    amount = strict_json(api.get_data(as_text=True))["features"]["amount"]
    assert amount == (None if broken["sqlite"] else 10**400)
    login(client, broken["admin"])
    assert client.get("/models/claims").status_code == 200
    page = client.get("/models/claims/breakdown?by=segment.claim_band")
    assert page.status_code == 200
    # The menu offers the attributes most cases hold, bounded, not the wide case's hundred.
    assert "segment.claim_band" in page.text and page.text.count('value="segment.s0') <= SEGMENT_MAX_KEYS
    for cell in ("over_10k", "under_1k"):
        assert client.get(f"/models/claims/cases?by=segment.claim_band&cell={cell}&all=1").status_code == 200
    assert client.get("/models/claims/breakdown?by=segment.claim_band&format=csv").status_code == 200
    backlog.refresh(session, TEST_ACTOR, model_key="claims", min_cases=1)
    assert client.get("/models/claims/backlog").status_code == 200
