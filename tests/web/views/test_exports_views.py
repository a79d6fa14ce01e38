"""Background exports keep their bytes in the database: any host serves the download, failures leave nothing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from feedback import csvsafe
from feedback.db import utcnow
from feedback.exports import formats as export_formats
from feedback.exports import queries as export_queries
from feedback.exports import services as exports
from feedback.models import ExportChunk, ExportJob
from feedback.review import decisions, ingest
from feedback.schemas import RecommendationIn
from tests.conftest import app_config
from tests.factories import TEST_ACTOR, login, make_model, make_user, payload, token_for

DECIDED = 120


@pytest.fixture
def decided(app, session):
    """120 decided cases (every fifth overridden) and 5 escalated ones, which exports leave out."""
    make_model(session)
    items = [RecommendationIn.model_validate(payload(n)) for n in range(DECIDED + 5)]
    reviewer = make_user(session)
    for n, stored in enumerate(ingest.ingest_recommendations(session, TEST_ACTOR, items=items)):
        if n >= DECIDED:
            extra = {"action": "escalate", "note": "unsure"}
        elif n % 5 == 0:
            extra = {"action": "override", "final_action": "deny", "reason_code": "missing_context"}
        else:
            extra = {"action": "accept"}
        decisions.record_decision(session, reviewer, recommendation_id=stored.id, **extra)
    return session


def wait_for(client, job_url: str) -> str:
    deadline = time.monotonic() + 30
    while "every 1s" in (page := client.get(job_url, headers={"HX-Request": "true"}).text):
        assert time.monotonic() < deadline, page
        time.sleep(0.1)
    return page


def test_download_from_another_host_equals_the_streamed_export(app, decided, monkeypatch):
    """Written by one app in small pieces, served by a second app that shares only the database."""
    from webapp import create_app
    from webapp.extensions import db

    monkeypatch.setattr(export_formats, "CHUNK", 10)  # rows leave the cursor ten at a time...
    monkeypatch.setattr(exports, "PIECE_BYTES", 2000)  # ...and are stored in pieces of about 2 kB
    owner = make_user(decided, "model_owner")
    client = app.test_client()
    login(client, owner)
    job_url = client.post("/exports", data={"model": "claims", "format": "csv"}).headers["Location"]
    assert "Download" in wait_for(client, job_url)

    other_host = create_app(app_config(app.config["DATABASE_URL"]))
    other = other_host.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    try:
        with other.get(job_url + "/download") as download:
            assert download.status_code == 200
            assert download.headers["Content-Disposition"].endswith('.csv"')
            stored = download.data
        streamed = other.get("/api/v1/exports/decisions?model=claims", headers=token_for(app, decided, owner))
        assert stored == streamed.data and int(download.headers["Content-Length"]) == len(stored)
        streamed.close()
    finally:
        with other_host.app_context():
            db.engine.dispose()
    decided.rollback()
    job_id = int(job_url.rsplit("/", 1)[1])
    pieces = decided.scalars(select(func.length(ExportChunk.data)).where(ExportChunk.job_id == job_id)).all()
    assert len(pieces) > 3 and sum(pieces) == len(stored)
    assert len(stored.decode().splitlines()) == 1 + DECIDED


def test_a_failed_export_keeps_no_bytes(app, decided, monkeypatch):
    from webapp import jobs
    from webapp.extensions import db

    app.config.update(JOB_MAX_ATTEMPTS=2, JOB_RETRY_SECONDS=0.05)
    owner = make_user(decided, "model_owner")
    job = exports.create_job(decided, owner, spec=export_queries.ExportSpec(model_key="claims"))
    monkeypatch.setattr(export_formats, "CHUNK", 10)
    monkeypatch.setattr(exports, "PIECE_BYTES", 500)  # pieces are committed before the failure
    calls = {"n": 0}
    real = csvsafe.cell

    def failing(value):
        calls["n"] += 1
        if calls["n"] > 600:
            raise OSError("disk on fire")
        return real(value)

    monkeypatch.setattr(csvsafe, "cell", failing)
    pieces_written = []
    with app.app_context():
        engine = db.engine
        listener = lambda *a: pieces_written.append(1) if "INSERT INTO export_chunks" in a[2] else None  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
    try:
        with app.test_request_context():
            jobs.submit_export(job.id)  # the in-process worker: tried twice, then failed
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            decided.rollback()
            stored = decided.get(ExportJob, job.id, populate_existing=True)
            if stored.status == "failed":
                break
            time.sleep(0.05)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(pieces_written) >= 2  # written, committed, then removed with the failure
    assert (stored.status, stored.attempts) == ("failed", 2)
    assert stored.message == "failed after 2 attempts: OSError"
    assert decided.scalar(select(func.count()).select_from(ExportChunk)) == 0
    client = app.test_client()
    login(client, owner)
    assert client.get(f"/exports/{job.id}/download").status_code == 404


def test_old_exports_are_forgotten_when_a_new_one_is_queued(app, decided):
    from webapp.extensions import db

    owner = make_user(decided, "model_owner")
    old = exports.create_job(decided, owner, spec=export_queries.ExportSpec(model_key="claims"))
    with app.app_context():
        exports.run_job(db.sessionmaker, old.id)
    decided.rollback()
    assert decided.scalar(select(func.count()).select_from(ExportChunk)) >= 1
    decided.execute(update(ExportJob).values(finished_at=utcnow() - timedelta(days=8)))
    decided.commit()
    recent = exports.create_job(decided, owner, spec=export_queries.ExportSpec(model_key="claims"), keep_days=7)
    assert decided.scalars(select(ExportJob.id)).all() == [recent.id]
    assert decided.scalar(select(func.count()).select_from(ExportChunk)) == 0
