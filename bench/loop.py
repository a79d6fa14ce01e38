"""Benchmark the countersign loop over HTTP against gunicorn, on SQLite and on PostgreSQL.

It runs where users are: on the demo's 90 days of history (its models, rules, guardrails of
every kind and experiments), never on an empty database. It measures the time to ingest 10,000
recommendations in batches of 1,000, and the latency of one decision request (median and 95th
percentile over sequential requests) side by side with `/healthz` on the same server in the same
run: the decision-cost ratio says how many bare requests one decision costs.

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

from demo.seed import seed as seed_demo
from feedback import migrate
from feedback.accounts import services as accounts
from feedback.audit import Actor
from feedback.db import utcnow
from tests import gunicornserver, pgserver

ACTOR = Actor(None, "bench")


def prepare(url: str, reviewers: int, per_day: int) -> tuple[str, list[str]]:
    """Migrate, seed the demo's history, and create a service token and reviewer tokens."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        assert seed_demo(session, per_day=per_day, progress=lambda _: None), "the database was not empty"
        service = accounts.create_token(session, ACTOR, email="owner@countersign.test")
        tokens = [
            accounts.create_token(session, ACTOR, email=f"reviewer{n + 1:02d}@countersign.test")
            for n in range(reviewers)
        ]
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
    """One realistic recommendation for one of the demo's two models, at a site where the AI is live.

    Claims cases are watched by override-rate and control-chart guardrails, fraud alerts by an
    accuracy guardrail: the decisions go through every kind.
    """
    common = {
        "external_id": f"B-{n:07d}",
        "site": ("Leeds", "Manchester")[n % 2],
        "confidence": round(0.6 + (n % 40) / 100, 2),
        "due_at": (utcnow() + timedelta(hours=24)).isoformat(),
    }
    amount = 100 + n % 9000
    if n % 2:
        return {
            **common,
            "model": "fraud_alert",
            "model_version": "2026.1",
            "subject": f"Transaction {n}",
            "segment": {"merchant_category": "grocery", "card_present": "yes"},
            "recommended_action": "dismiss",
            "explanation": {
                "summary": "Usual spending.",
                "factors": [{"name": "amount", "value": amount, "contribution": -0.2}],
            },
            "features": {"amount": amount, "merchant_category": "grocery", "card_present": True},
        }
    return {
        **common,
        "model": "claims_triage",
        "model_version": "v2",
        "subject": f"Claim {n}",
        "segment": {"claim_band": "1k_10k", "channel": "web", "product": "home"},
        "recommended_action": "pay",
        "explanation": {
            "summary": "Routine claim with complete documents.",
            "factors": [
                {"name": "amount", "value": amount, "contribution": -0.2},
                {"name": "documents_complete", "value": True, "contribution": 0.15},
            ],
        },
        "features": {"amount": amount, "policy_age_months": n % 120, "prior_claims": n % 4, "documents_complete": True},
    }


def get(conn: http.client.HTTPConnection, path: str) -> int:
    """GET and return the status."""
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def run(url: str, label: str, workers: int, decisions: int, per_day: int) -> dict[str, float]:
    """Ingest 10 x 1,000, then time sequential decision requests, each beside a /healthz request."""
    service, tokens = prepare(url, reviewers=4, per_day=per_day)
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
        latencies, bare = [], []
        for n, rec_id in enumerate(ids[:decisions]):
            t0 = time.perf_counter()
            status, answer = post(
                conn, f"/api/v1/recommendations/{rec_id}/decision", {"action": "accept"}, tokens[n % len(tokens)]
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            assert status in (201, 409), answer  # 409: a rule sent the case to the exceptions queue at ingest
            t0 = time.perf_counter()
            assert get(conn, "/healthz") == 200
            bare.append((time.perf_counter() - t0) * 1000)
        conn.close()
    latencies.sort()
    return {
        "backend": label,
        "ingest_10k_seconds": round(ingest_seconds, 2),
        "ingest_per_second": round(10_000 / ingest_seconds),
        "batch_median_ms": round(statistics.median(batch_times) * 1000),
        "decision_median_ms": round(statistics.median(latencies), 2),
        "decision_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "healthz_median_ms": round(statistics.median(bare), 2),
        "decision_cost_ratio": round(statistics.median(latencies) / statistics.median(bare), 1),
    }


def main() -> None:
    """Run on both backends and print one line of results each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--per-day", type=int, default=420, help="decided cases per day of the demo's 90 days")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run(f"sqlite:///{tmp}/bench.sqlite", "sqlite", args.workers, args.decisions, args.per_day))
    with pgserver.running_postgres("countersign_bench", durable=True) as url:
        results.append(run(url, "postgresql", args.workers, args.decisions, args.per_day))
    print(
        f"gunicorn workers: {args.workers}; demo history at {args.per_day} decisions a day for 90 days; "
        f"{args.decisions} sequential decision requests, each followed by GET /healthz"
    )
    header = list(results[0])
    print("  ".join(f"{h:>20}" for h in header))
    for row in results:
        print("  ".join(f"{row[h]!s:>20}" for h in header))


if __name__ == "__main__":
    main()
