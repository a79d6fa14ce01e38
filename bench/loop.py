"""Benchmark the countersign loop over HTTP against gunicorn, on SQLite and on PostgreSQL.

Measures: the time to ingest 10,000 recommendations in batches of 1,000, and the latency of
one decision request (median and 95th percentile over sequential requests).

    make bench            # or: .venv/bin/python -m bench.loop [--workers 4] [--decisions 500]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from feedback import migrate, services
from feedback.audit import Actor
from feedback.db import utcnow
from feedback.schemas import ModelIn, ModelVersionIn
from tests import gunicornserver, pgserver

ACTOR = Actor(None, "bench")
PASSWORD = "bench lantern harbour quietly"


def prepare(url: str, reviewers: int) -> tuple[str, list[str]]:
    """Migrate, register a model, and create a service token and reviewer tokens."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        services.register_model(
            session,
            ACTOR,
            ModelIn(
                key="claims",
                name="Claims",
                actions=["pay", "review", "deny"],
                reason_codes=[{"code": "missing_context", "label": "Missing context"}],
            ),
        )
        services.add_model_version(session, ACTOR, model_key="claims", spec=ModelVersionIn(version="v1"))
        services.create_user(session, ACTOR, email="svc@bench.test", role="model_owner", password=PASSWORD)
        service = services.create_token(session, ACTOR, email="svc@bench.test")
        tokens = []
        for n in range(reviewers):
            email = f"r{n}@bench.test"
            services.create_user(session, ACTOR, email=email, role="frontline", password=PASSWORD)
            tokens.append(services.create_token(session, ACTOR, email=email))
    engine.dispose()
    return service, tokens


@contextlib.contextmanager
def gunicorn(url: str, workers: int, threads: int = 1) -> Iterator[int]:
    """Serve the app with gunicorn.conf.py on a free loopback port; yield the port."""
    with gunicornserver.gunicorn(url, workers=workers, threads=threads) as server:
        yield server.port


def post(conn: http.client.HTTPConnection, path: str, body: object, token: str) -> tuple[int, dict]:
    """POST JSON and return the status and parsed answer."""
    conn.request(
        "POST",
        path,
        body=json.dumps(body),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def item(n: int) -> dict:
    """One realistic recommendation payload."""
    return {
        "model": "claims",
        "model_version": "v1",
        "external_id": f"B-{n:07d}",
        "subject": f"Claim {n}",
        "site": ("Leeds", "Bristol", "Cardiff")[n % 3],
        "segment": {"claim_band": ("under_1k", "1k_10k", "over_10k")[n % 3], "channel": "web"},
        "recommended_action": ("pay", "review", "deny")[n % 3],
        "confidence": round(0.5 + (n % 50) / 100, 2),
        "explanation": {
            "summary": "Routine claim with complete documents.",
            "factors": [
                {"name": "amount", "value": 100 + n % 9000, "contribution": -0.2},
                {"name": "documents_complete", "value": True, "contribution": 0.15},
                {"name": "prior_claims", "value": n % 4, "contribution": -0.05},
            ],
        },
        "features": {"amount": 100 + n % 9000, "prior_claims": n % 4, "policy_age_months": n % 120},
        "due_at": (utcnow() + timedelta(hours=24)).isoformat(),
    }


def run(url: str, label: str, workers: int, decisions: int) -> dict[str, float]:
    """Ingest 10 x 1,000, then time sequential decision requests."""
    service, tokens = prepare(url, reviewers=4)
    with gunicorn(url, workers) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        ids: list[int] = []
        batch_times = []
        start = time.perf_counter()
        for b in range(10):
            t0 = time.perf_counter()
            status, answer = post(conn, "/api/v1/recommendations", [item(b * 1000 + i) for i in range(1000)], service)
            batch_times.append(time.perf_counter() - t0)
            assert status == 201, answer
            ids.extend(i["id"] for i in answer["items"])
        ingest_seconds = time.perf_counter() - start
        latencies = []
        for n, rec_id in enumerate(ids[:decisions]):
            t0 = time.perf_counter()
            status, answer = post(
                conn, f"/api/v1/recommendations/{rec_id}/decision", {"action": "accept"}, tokens[n % len(tokens)]
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            assert status == 201, answer
        conn.close()
    latencies.sort()
    return {
        "backend": label,
        "ingest_10k_seconds": round(ingest_seconds, 2),
        "ingest_per_second": round(10_000 / ingest_seconds),
        "batch_median_ms": round(statistics.median(batch_times) * 1000),
        "decision_median_ms": round(statistics.median(latencies), 2),
        "decision_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
    }


def main() -> None:
    """Run on both backends and print one line of results each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--decisions", type=int, default=500)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{tmp}/bench.sqlite", "sqlite", args.workers, args.decisions))
    with pgserver.running_postgres("countersign_bench", durable=True) as url:
        results.append(run(url, "postgresql", args.workers, args.decisions))
    print(f"gunicorn workers: {args.workers}; {args.decisions} sequential decision requests")
    header = list(results[0])
    print("  ".join(f"{h:>20}" for h in header))
    for row in results:
        print("  ".join(f"{row[h]!s:>20}" for h in header))


if __name__ == "__main__":
    main()
