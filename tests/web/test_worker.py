"""Background jobs on the job library: a job survives a SIGKILL of its worker, retries, dead letters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from feedback.db import utcnow
from feedback.impact import panels as impact_panels
from feedback.impact import runs as impact_runs
from feedback.models import AnalysisRun, User
from tests.factories import login, make_user, token_for
from webapp import jobs, worker

ROOT = Path(__file__).resolve().parents[2]


def _panel_csv() -> bytes:
    rng = np.random.default_rng(3)
    rows = ["unit,period,value,treated"]
    for u in range(40):
        cohort = (0, 4, 6)[u % 3]
        for t in range(1, 9):
            treated = int(cohort > 0 and t >= cohort)
            rows.append(f"u{u},{t},{50 + 0.5 * t - 3 * treated + rng.normal(0, 1):.3f},{treated}")
    return ("\n".join(rows) + "\n").encode()


def _queued_run(session) -> int:
    analyst = make_user(session, "analyst")
    panel = impact_panels.upload_panel(session, analyst, name="kill", raw=_panel_csv())
    run = impact_runs.queue_panel_analysis(session, analyst, panel_id=panel.id, draws=99)
    return run.id


def _wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def queue_app(app: Flask, database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, dict[str, str]]]:
    """The test app switched to the database queue, and the environment of worker processes on it."""
    app.config["JOBS_IN_PROCESS"] = False
    if database_url.startswith("sqlite"):
        app.config["QUEUE_URL"] = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    huey = worker.queue_of(app)[0]
    huey.flush()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "COUNTERSIGN_QUEUE_URL": app.config["QUEUE_URL"],
        "COUNTERSIGN_JOB_LEASE_SECONDS": "1",
        "COUNTERSIGN_LOG_LEVEL": "WARNING",
    }
    yield app, env
    huey.flush()
    huey.storage.close()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, *args, "worker"], cwd=ROOT, env=env, stdout=out, stderr=out)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_job_survives_a_sigkill_of_its_worker(queue_app, session, tmp_path):
    app, env = queue_app
    run_id = _queued_run(session)
    with app.test_request_context():
        jobs.submit(run_id)

    def row() -> AnalysisRun:
        session.rollback()
        found = session.scalars(select(AnalysisRun).where(AnalysisRun.id == run_id)).one()
        session.refresh(found)
        return found

    log = tmp_path / "workers.log"
    first = _start([str(ROOT / "tests" / "paused_worker.py")], env, log)
    try:
        _wait_for(lambda: row().status == "running", 60, "the first worker to start the analysis")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL
    killed = row()
    assert (killed.status, killed.attempts, killed.result) == ("running", 1, None)  # killed mid-job

    second = _start(["-m", "webapp.main"], env, log)
    try:
        _wait_for(lambda: row().status in ("done", "failed"), 90, "the second worker to finish the analysis")
    finally:
        _stop(second)
    done = row()
    assert done.status == "done", (done.message, log.read_text()[-3000:])
    assert done.attempts == 2 and done.progress == 1.0
    assert done.result is not None and done.result["simple"]["att"] < 0  # the effect of -3 was estimated


def _poll_api(client, headers, run_id: int, until: Callable[[dict], bool]) -> dict:
    deadline = time.monotonic() + 30
    while True:
        body = client.get(f"/api/v1/analyses/{run_id}", headers=headers).get_json()
        if until(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_a_failing_job_is_retried_with_backoff_then_fails_after_its_attempts(app, client, session, monkeypatch):
    app.config.update(JOB_MAX_ATTEMPTS=3, JOB_RETRY_SECONDS=0.2)
    started: list[float] = []

    def lost_connection(_session, _run_id):
        started.append(time.monotonic())
        raise ConnectionError("server closed the connection")

    monkeypatch.setattr(impact_runs, "execute_run", lost_connection)
    run_id = _queued_run(session)
    analyst = session.scalars(select(AnalysisRun.created_by_id)).one()
    headers = token_for(app, session, session.get(User, analyst))
    with app.test_request_context():
        jobs.submit(run_id)
    body = _poll_api(client, headers, run_id, lambda b: b["status"] == "failed")
    assert body["status"] == "failed" and body["attempts"] == 3, body
    assert body["message"] == "failed after 3 attempts: ConnectionError"
    assert len(started) == 3
    first_wait, second_wait = started[1] - started[0], started[2] - started[1]
    assert first_wait >= 0.2 and second_wait >= 0.4  # 0.2 s, then doubled
    login(client, session.get(User, analyst))
    page = client.get(f"/impact/analyses/{run_id}")
    assert "failed after 3 attempts" in page.text


def test_a_job_that_fails_once_succeeds_on_its_second_attempt(app, client, session, monkeypatch):
    app.config.update(JOB_MAX_ATTEMPTS=3, JOB_RETRY_SECONDS=0.05)
    real = impact_runs.execute_run
    calls: list[int] = []

    def flaky(db_session, run_id):
        calls.append(run_id)
        if len(calls) == 1:
            raise ConnectionError("server closed the connection")
        real(db_session, run_id)

    monkeypatch.setattr(impact_runs, "execute_run", flaky)
    run_id = _queued_run(session)
    analyst = session.get(User, session.scalars(select(AnalysisRun.created_by_id)).one())
    headers = token_for(app, session, analyst)  # before the job: on SQLite it holds the write lock
    with app.test_request_context():
        jobs.submit(run_id)
    body = _poll_api(client, headers, run_id, lambda b: b["status"] in ("done", "failed"))
    # Two attempts; a third only if the second met a passing error of its own (a busy database).
    assert body["status"] == "done" and body["attempts"] >= 2, body
    assert body["result"]["simple"]["att"] < 0 and calls == [run_id] * body["attempts"]


def test_metrics_show_the_queue_depth_and_the_oldest_job(queue_app, client, session):
    """With no worker running, queued jobs pile up: /metrics shows how many and since when."""
    admin = token_for(queue_app[0], session, make_user(session, "admin"))
    run_id = _queued_run(session)
    session.execute(update(AnalysisRun).values(created_at=utcnow() - timedelta(seconds=120)))
    session.commit()
    with queue_app[0].test_request_context():
        jobs.submit(run_id)  # nobody consumes it
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200
    samples = {
        (s.name, s.labels.get("kind")): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples["countersign_jobs_queued", "analysis"] == 1
    assert 120 <= samples["countersign_jobs_oldest_queued_seconds", "analysis"] < 600
    assert samples["countersign_jobs_queued", "export"] == 0
    assert samples["countersign_jobs_oldest_queued_seconds", "export"] == 0
    session.refresh(session.get(AnalysisRun, run_id))
    assert session.get(AnalysisRun, run_id).status == "queued"  # the web process did not run it


def test_the_sqlite_queue_lives_next_to_the_database(tmp_path):
    from webapp import create_app

    relative = create_app({"DATABASE_URL": "sqlite:///countersign.sqlite", "SECRET_KEY": "k"})
    assert worker.queue_url(relative) == f"sqlite:///{Path(relative.instance_path) / 'countersign-queue.sqlite'}"
    absolute = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}", "SECRET_KEY": "k"})
    assert worker.queue_url(absolute) == f"sqlite:///{tmp_path / 'x-queue.sqlite'}"
    postgres = create_app({"DATABASE_URL": "postgresql://u:p@db.internal/cs", "SECRET_KEY": "k"})
    assert worker.queue_url(postgres) == "postgresql://u:p@db.internal/cs"  # the same database
