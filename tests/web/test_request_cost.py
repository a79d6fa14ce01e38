"""What every request costs: no thread is started to serve one (issue 19)."""

from __future__ import annotations

import threading


def test_a_request_starts_no_thread(app, monkeypatch):
    """flask-sqlalchemy-lite's async teardown ran through asgiref, a new thread for every request."""
    started = []
    original = threading.Thread.start

    def start(thread):
        started.append(thread.name)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert started == []
