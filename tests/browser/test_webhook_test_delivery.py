"""An admin presses "Send a test delivery" and reads each endpoint's answer on the page."""

from __future__ import annotations

import pytest

from feedback.webhooks import services as webhooks
from tests.factories import make_user
from tests.helpers import Endpoint, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def endpoint():
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Endpoint.received = []
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_send_a_test_delivery_shows_the_answer(page, live, endpoint):
    session = live["session"]
    admin = make_user(session, "admin", email="ada@example.test", name="Ada")
    good = webhooks.create_webhook(session, admin, url=f"{endpoint}/ok", events=["backlog.item_created"])
    webhooks.create_webhook(session, admin, url=f"{endpoint}/broken", events=["backlog.item_created"])
    sign_in(page, live["url"], "ada@example.test")
    page.goto(live["url"] + "/admin/webhooks")

    page.locator("#webhooks tbody tr", has_text="/ok").get_by_role("button", name="Send a test delivery").click()
    page.wait_for_selector("#webhooks-notice")
    assert "answered 204" in page.inner_text("#webhooks-notice")
    assert "webhook.test" in page.inner_text("#deliveries tr.tested")
    assert "delivered" in page.inner_text("#deliveries tr.tested")

    page.locator("#webhooks tbody tr", has_text="/broken").get_by_role("button", name="Send a test delivery").click()
    page.wait_for_selector("#webhooks-problem")
    assert "failed: answered 500" in page.inner_text("#webhooks-problem")
    assert "failed" in page.inner_text("#deliveries tr.tested")
    paths = [path for path, _, _ in Endpoint.received]
    assert paths == ["/ok", "/broken"]
    assert all(h["X-Countersign-Event"] == "webhook.test" for _, h, _ in Endpoint.received)
    assert Endpoint.received[0][1]["X-Countersign-Signature"] == webhooks.sign(good.secret, Endpoint.received[0][2])
    assert page.errors == []
