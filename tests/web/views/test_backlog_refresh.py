"""Backlog refresh in the background: progress in the database, triage never overwritten or refused."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from feedback.backlog import queries as backlog_queries
from feedback.backlog import services as backlog
from feedback.db import utcnow
from feedback.models import BacklogItem, BacklogRefresh, Model
from tests.factories import TEST_ACTOR, login, make_model, make_owner, make_user
from tests.helpers import decide_many


def poll_until_finished(htmx_client, job_id, timeout=60.0):
    """Poll the refresh as the page does until its worker is done (HX-Trigger tells the list to reload)."""
    deadline = time.monotonic() + timeout
    while True:
        polled = htmx_client.get(f"/models/claims/backlog/refresh/{job_id}")
        assert polled.status_code == 200
        if polled.headers.get("HX-Trigger") == "backlog-refreshed":
            return polled
        assert time.monotonic() < deadline, "the refresh did not finish"
        time.sleep(0.2)


@pytest.fixture
def mined(session):
    """A mined claims backlog, its model owner and the reviewer who decided the cases."""
    make_model(session)
    reviewer = make_user(session, name="Rita")
    decide_many(session, reviewer, "v1", 200, 1, lambda band: 0.5 if band == "over_10k" else 0.05)
    backlog.refresh(session, TEST_ACTOR, model_key="claims")
    item = backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims"))[0]
    return {"item": item, "owner": make_owner(session), "reviewer": reviewer}


def test_triage_while_a_refresh_runs_is_answered_at_once_and_kept(session, client, mined):
    item, owner = mined["item"], mined["owner"]
    login(client, owner)
    form_version, cases_before = item.row_version, item.cases
    # More decisions in the pattern: the refresh has new statistics to write over this item.
    decide_many(session, mined["reviewer"], "v1", 120, 1000, lambda band: 0.6 if band == "over_10k" else 0.05)
    job, new = backlog.start_refresh(session, owner, model_key="claims")
    assert new and job.status == "queued"
    answers, versions = [], []

    def triage():
        # Exactly between the mining and the writing: the worst moment for a lost update.
        answers.append(
            client.post(
                f"/backlog/{item.id}",
                data={
                    "status": "planned",
                    "owner": owner.email,
                    "notes": "retrain with the new claim form",
                    "row_version": str(form_version),
                },
            )
        )
        versions.append(session.scalar(select(BacklogItem.row_version).where(BacklogItem.id == item.id)))

    backlog.execute_refresh(session, job.id, between=triage)
    assert [a.status_code for a in answers] == [200], answers[0].text
    session.expire_all()
    done = session.get(BacklogRefresh, job.id)
    assert done.status == "done" and done.progress == 1.0 and done.updated >= 1
    stored = session.get(BacklogItem, item.id)
    # The triage stands, and the refresh's statistics are in too.
    assert (stored.status, stored.owner_id, stored.notes) == ("planned", owner.id, "retrain with the new claim form")
    assert stored.cases > cases_before and stored.active
    # Only the triage moved the item's version: a form opened before the refresh still saves after it.
    assert versions[0] > form_version and stored.row_version == versions[0]
    again = client.post(f"/backlog/{item.id}", data={"status": "in_training", "row_version": str(versions[0])})
    assert again.status_code == 200
    assert session.scalar(select(func.count()).select_from(BacklogItem).where(BacklogItem.model_id == item.model_id))
    assert len(
        {i.pattern_key for i in backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims"))}
    ) == len(
        backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims"))
    )  # merged by identity: never a copy


def test_the_refresh_button_answers_at_once_and_the_page_polls_until_done(session, client, htmx_client, mined):
    login(htmx_client, mined["owner"])
    started = htmx_client.post("/models/claims/backlog/refresh")
    assert started.status_code == 202 and 'id="refresh-progress"' in started.text
    assert 'hx-trigger="every 1s"' in started.text
    job_id = session.scalar(select(func.max(BacklogRefresh.id)))
    polled = poll_until_finished(htmx_client, job_id)
    assert "every 1s" not in polled.text and "Last refresh" in polled.text
    page = htmx_client.get("/models/claims/backlog")
    assert 'hx-trigger="backlog-refreshed from:body"' in page.text and "Refresh from decisions" in page.text
    # Without htmx the POST answers with the list page (post/redirect/get).
    login(client, mined["owner"])
    assert client.get(f"/models/claims/backlog/refresh/{job_id}").status_code == 302
    assert client.get("/models/claims/backlog/refresh/999999", headers={"HX-Request": "true"}).status_code == 404


def test_a_second_press_shows_the_refresh_under_way(session, htmx_client, mined):
    owner = mined["owner"]
    login(htmx_client, owner)
    job, _ = backlog.start_refresh(session, owner, model_key="claims")  # queued, no worker: still "under way"
    again = htmx_client.post("/models/claims/backlog/refresh")
    assert again.status_code == 202 and f"/models/claims/backlog/refresh/{job.id}" in again.text
    assert session.scalar(select(func.count()).select_from(BacklogRefresh)) == 1


def test_a_refresh_whose_worker_died_shows_as_interrupted_and_can_start_again(session, htmx_client, mined):
    owner = mined["owner"]
    login(htmx_client, owner)
    model_id = session.scalar(select(Model.id).where(Model.key == "claims"))
    dead = BacklogRefresh(
        model_id=model_id,
        created_by_id=owner.id,
        status="running",
        progress=0.3,
        message="mining v1",
        updated_at=utcnow() - backlog_queries.REFRESH_STALE_AFTER - timedelta(minutes=1),
    )
    session.add(dead)
    session.commit()
    page = htmx_client.get("/models/claims/backlog")
    assert "stopped reporting progress" in page.text and "Refresh again" in page.text
    assert "every 1s" not in page.text
    restarted = htmx_client.post("/models/claims/backlog/refresh")
    assert restarted.status_code == 202
    newest = session.scalar(select(func.max(BacklogRefresh.id)))
    assert newest != dead.id and f"/models/claims/backlog/refresh/{newest}" in restarted.text
    assert "Last refresh" in poll_until_finished(htmx_client, newest).text


def test_an_unexpected_refresh_error_is_raised_for_the_worker(session, mined):
    owner = mined["owner"]
    job, _ = backlog.start_refresh(session, owner, model_key="claims")

    def fail():
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):  # raised for the worker, which retries it (tests/web/test_worker.py)
        backlog.execute_refresh(session, job.id, between=fail)
    session.expire_all()
    failed = session.get(BacklogRefresh, job.id)
    assert failed.status == "running" and failed.finished_at is None  # the worker records how it ended
