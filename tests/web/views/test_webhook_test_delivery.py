"""An admin sends a test delivery to a webhook: a real endpoint on loopback gets a signed
`webhook.test` event, the attempt is logged, and the endpoint's answer is shown."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from feedback.models import AuditEvent, WebhookDelivery
from feedback.webhooks import services as webhooks
from tests.factories import login, make_model, make_owner, make_user
from tests.helpers import Endpoint


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Endpoint.received = []
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def admin(session, client):
    make_model(session)
    user = make_user(session, "admin")
    login(client, user)
    return user


def test_a_test_delivery_is_signed_marked_logged_and_its_answer_shown(session, client, admin, endpoint):
    hook = webhooks.create_webhook(session, admin, url=f"{endpoint}/ok", events=["backlog.item_created"])
    page = client.get("/admin/webhooks")
    assert f'action="/admin/webhooks/{hook.id}/test"' in page.text and "Send a test delivery" in page.text
    answered = client.post(f"/admin/webhooks/{hook.id}/test")
    assert answered.status_code == 200
    assert 'id="webhooks-notice"' in answered.text and "answered 204" in answered.text
    ((path, headers, body),) = Endpoint.received
    assert path == "/ok" and headers["X-Countersign-Event"] == "webhook.test"
    assert headers["X-Countersign-Signature"] == webhooks.sign(hook.secret, body)  # the usual signature
    sent = json.loads(body)
    assert sent["event"] == "webhook.test" and sent["data"]["test"] is True and sent["data"]["webhook_id"] == hook.id
    session.expire_all()
    delivery = session.scalars(select(WebhookDelivery)).one()
    assert (delivery.event, delivery.status, delivery.attempts, delivery.last_status_code) == (
        "webhook.test",
        "delivered",
        1,
        204,
    )
    assert headers["X-Countersign-Delivery"] == str(delivery.id) and delivery.payload.encode() == body
    assert session.scalar(select(func.count()).where(AuditEvent.action == "webhook.tested")) == 1


def test_a_failing_endpoint_is_shown_as_failed_and_not_retried(session, client, admin, endpoint):
    hook = webhooks.create_webhook(session, admin, url=f"{endpoint}/broken", events=["backlog.item_created"])
    answered = client.post(f"/admin/webhooks/{hook.id}/test")
    assert answered.status_code == 200
    assert 'id="webhooks-problem"' in answered.text and "failed: answered 500" in answered.text
    session.expire_all()
    delivery = session.scalars(select(WebhookDelivery)).one()
    assert (delivery.status, delivery.last_status_code, delivery.next_attempt_at) == ("failed", 500, None)
    assert webhooks.deliver_due(session) == 0 and len(Endpoint.received) == 1  # a test is sent once


def test_an_unreachable_endpoint_shows_the_error(session, client, admin):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = webhooks.create_webhook(session, admin, url=f"http://127.0.0.1:{port}/in", events=["backlog.item_created"])
    answered = client.post(f"/admin/webhooks/{hook.id}/test")
    assert answered.status_code == 200 and "failed: no answer (" in answered.text
    session.expire_all()
    delivery = session.scalars(select(WebhookDelivery)).one()
    assert delivery.status == "failed" and delivery.last_status_code is None and delivery.last_error


def test_only_admins_send_test_deliveries(session, client, endpoint):
    make_model(session)
    admin = make_user(session, "admin")
    hook = webhooks.create_webhook(session, admin, url=f"{endpoint}/ok", events=["backlog.item_created"])
    login(client, make_owner(session))
    assert client.post(f"/admin/webhooks/{hook.id}/test").status_code == 403
    login(client, admin)
    assert client.post("/admin/webhooks/999999/test").status_code == 404
    assert client.get(f"/admin/webhooks/{hook.id}/test").status_code == 405  # never on a GET
    assert Endpoint.received == []
