"""Faults under load: a gunicorn worker is SIGKILLed and PostgreSQL crashes and restarts while
model services ingest and reviewers decide. Afterwards every acknowledged write is stored exactly
once, no case has two decisions, the audit chain verifies, and clients only ever saw answers they
can act on: success, 409 for a write that had already landed, 503 with Retry-After, or (for requests
the killed worker was serving) a dropped connection.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from feedback import migrate
from feedback.models import Decision, Recommendation
from tests import pgserver
from tests.factories import make_model, make_owner, make_user, payload, token_for
from tests.gunicornserver import ROOT, gunicorn

REQUIRE_POSTGRES = os.environ.get("COUNTERSIGN_REQUIRE_POSTGRES") == "1"
RUN_SECONDS = 9.0


class Client:
    """One simulated client: JSON over a fresh loopback connection, every answer tallied."""

    def __init__(self, port: int, token: str, seen: Counter[str]) -> None:
        self.port, self.headers, self.seen = port, {"Authorization": f"Bearer {token}"}, seen

    def post(self, path: str, body: Any) -> tuple[int | None, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, json.dumps(body), {**self.headers, "Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.seen["dropped"] += 1
            return None, None
        finally:
            conn.close()
        self.seen[str(response.status)] += 1
        if response.status == 503:
            self.seen["503 with Retry-After" if response.getheader("Retry-After") else "503 bare"] += 1
        return response.status, json.loads(data) if data else None


@pytest.fixture
def cluster():
    if pgserver.bindir() is None:
        if REQUIRE_POSTGRES:
            pytest.fail("PostgreSQL server binaries not found")
        pytest.skip("PostgreSQL server binaries not found")
    with pgserver.postgres_cluster("countersign_faults", durable=True) as running:
        engine = create_engine(running.url)
        migrate.upgrade(engine)
        engine.dispose()
        yield running


def test_acknowledged_writes_survive_a_killed_worker_and_a_database_crash(cluster, tmp_path):
    engine = create_engine(cluster.url)
    with Session(engine, expire_on_commit=False) as session:
        make_model(session)
        service_token = token_for(None, session, make_owner(session))["Authorization"].split()[1]
        reviewer_tokens = [
            token_for(None, session, make_user(session, "frontline"))["Authorization"].split()[1] for _ in range(4)
        ]

    seen: Counter[str] = Counter()
    open_cases: queue.Queue[int] = queue.Queue()
    acked_recs: dict[str, int] = {}
    acked_decisions: dict[int, int] = {}  # case id -> decision id
    landed_maybe: set[int] = set()
    stop = threading.Event()

    with gunicorn(cluster.url, workers=2, threads=4, log=tmp_path / "gunicorn.log") as server:

        def ingest() -> None:
            client, batch_no = Client(server.port, service_token, seen), 0
            while not stop.is_set():
                batch_no += 1
                items = [payload(batch_no * 100 + i) for i in range(10)]
                while True:  # retry the same batch until it is acknowledged: ingest is idempotent
                    status, body = client.post("/api/v1/recommendations", items)
                    if status in (200, 201):
                        for item in body["items"]:
                            acked_recs[item["external_id"]] = item["id"]
                            if item["created"]:
                                open_cases.put(item["id"])
                        break
                    assert status in (None, 503), (status, body)
                    time.sleep(0.2)

        def review(token: str) -> None:
            client = Client(server.port, token, seen)
            while not stop.is_set():
                try:
                    case_id = open_cases.get(timeout=0.2)
                except queue.Empty:
                    continue
                while True:
                    status, body = client.post(f"/api/v1/recommendations/{case_id}/decision", {"action": "accept"})
                    if status == 201:
                        acked_decisions[case_id] = body["id"]
                        break
                    if status == 409:  # an earlier attempt landed before its answer was lost
                        landed_maybe.add(case_id)
                        break
                    assert status in (None, 503), (status, body)
                    time.sleep(0.2)

        threads = [threading.Thread(target=ingest)] + [
            threading.Thread(target=review, args=(t,)) for t in reviewer_tokens
        ]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        time.sleep(2.5)
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(2.5)
        cluster.restart("immediate")
        time.sleep(max(0.0, RUN_SECONDS - (time.monotonic() - started)))
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert victim not in server.worker_pids() and len(server.worker_pids()) == 2  # the master replaced it

    assert seen["201"] > 50, seen
    assert seen["503"] >= 1 and seen["503 bare"] == 0, seen  # the database outage was answered with 503s
    assert not {k for k in seen if k.startswith("5") and k not in ("503", "503 with Retry-After")}, seen

    engine.dispose()  # its pooled connection died with the database
    with Session(engine) as session:
        stored = dict(session.execute(select(Recommendation.external_id, Recommendation.id)).all())
        for external_id, rec_id in acked_recs.items():
            assert stored.get(external_id) == rec_id
        assert session.scalar(select(func.count()).select_from(Recommendation)) == len(stored)
        decisions = session.execute(select(Decision.recommendation_id, Decision.id)).all()
        per_case = Counter(case for case, _ in decisions)
        assert max(per_case.values()) == 1
        by_case = dict(decisions)
        for case_id, decision_id in acked_decisions.items():
            assert by_case.get(case_id) == decision_id
        assert landed_maybe <= set(by_case)  # a 409 means some attempt did land
    engine.dispose()

    verified = subprocess.run(
        [str(Path(sys.executable).parent / "countersign"), "audit", "verify"],
        env={**os.environ, "DATABASE_URL": cluster.url, "SECRET_KEY": "x"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact" in verified.stdout
