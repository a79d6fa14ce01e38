"""A link on another site to a case opens it, but never claims it: claiming is a POST from our own pages."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from feedback.models import AuditEvent, Recommendation
from tests.factories import make_case
from tests.helpers import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A second web server, on another host name (so another site, not only another port)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"dir": tmp_path, "url": f"http://localhost:{server.server_port}"}
    finally:
        server.shutdown()
        server.server_close()


def claim_state(live: dict[str, Any], rec_id: int) -> tuple[int | None, int]:
    """Who holds the case, and how many case.claimed events the audit trail has."""
    session = live["session"]
    session.rollback()  # read what the server committed
    holder = session.scalar(select(Recommendation.claimed_by_id).where(Recommendation.id == rec_id))
    claims = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "case.claimed"))
    return holder, int(claims or 0)


def test_a_link_from_another_site_claims_nothing(page, live, other_site):
    rec = make_case(live["session"], 1)
    target = f"{live['url']}/review/{rec.id}"
    lure = f'<!doctype html><link rel="icon" href="data:,"><a id="lure" href="{target}">a cute cat</a>'
    (other_site["dir"] / "index.html").write_text(lure)
    sign_in(page, live["url"])

    page.goto(other_site["url"] + "/index.html")
    page.click("#lure")
    page.wait_for_url(target)
    page.wait_for_selector("#claim-button")  # the case is shown, with a button to take it
    page.wait_for_load_state("networkidle")  # anything htmx would send on load has been sent
    assert page.get_attribute("#review-panel", "data-case-id") is None
    assert claim_state(live, rec.id) == (None, 0)

    # The same link from the queue, one of our own pages, claims the case at once (a POST with CSRF).
    page.goto(live["url"] + "/queue")
    page.click("text=EXT-1")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    assert claim_state(live, rec.id) == (live["reviewer"].id, 1)
    assert re.search(r"AI recommends", page.inner_text("#review-panel"))
    assert page.errors == []
