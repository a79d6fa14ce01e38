"""The backlog refresh runs in the background: the button answers at once, the page shows the
progress, and the list reloads itself when the refresh is done."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from feedback.backlog import services as backlog
from feedback.models import BacklogItem
from tests.factories import make_owner, make_user
from tests.helpers import decide_many, sign_in

pytestmark = pytest.mark.browser


def test_refresh_button_progress_and_done(page, live):
    session = live["session"]
    decide_many(session, make_user(session, name="Rex"), "v1", 200, 1, lambda b: 0.5 if b == "over_10k" else 0.05)
    owner = make_owner(session, email="olive@example.test", name="Olive")
    sign_in(page, live["url"], "olive@example.test")

    # A refresh under way (queued by the test, which runs it itself: no timing luck).
    job, _ = backlog.start_refresh(session, owner, model_key="claims")
    page.goto(live["url"] + "/models/claims/backlog")
    page.wait_for_selector("#refresh-progress")
    assert "Refreshing from decisions" in page.inner_text("#backlog-refresh")
    assert page.locator("#refresh-form").count() == 0  # no second refresh while one runs
    assert page.locator("#backlog-table td.empty").count() == 1
    backlog.execute_refresh(session, job.id)
    # The poll sees it done and the list reloads itself with the mined items.
    page.wait_for_selector("#refresh-outcome")
    page.wait_for_selector("#backlog-table tbody tr[id^=item-]")
    assert "Last refresh" in page.inner_text("#refresh-outcome")

    # The button: the request returns at once and the background worker finishes the job.
    items = session.scalar(select(func.count()).select_from(BacklogItem))
    started = time.monotonic()
    with page.expect_response(lambda r: r.url.endswith("/backlog/refresh")) as answer:
        page.click("#refresh-form button")
    assert answer.value.status == 202 and time.monotonic() - started < 2.0
    # Done: the outcome of this second refresh (merged by identity: nothing new, nothing copied).
    page.wait_for_selector("#refresh-outcome:has-text('UTC: 0 new')", timeout=30_000)
    page.wait_for_selector("#refresh-form")  # and the button is back
    assert session.scalar(select(func.count()).select_from(BacklogItem)) == items
    assert page.errors == []
