"""Benchmark the drift page of a version with 1,000,000 recommendations, on SQLite and PostgreSQL.

On the demo's history, 1,000,000 more fraud-alert recommendations (version 2026.1, spread over
the last 60 days, with the demo's features) are stored in bulk and counted by the same code the
ingest path runs (`feedback.drift.histograms`). Then, through gunicorn, it times the drift page
and the drift API of that version side by side with the models page (the baseline: a page every
model owner opens) in the same run, median of repeated requests, and the ingest of 1,000
recommendations through the API (which keeps the histograms).

    make bench-drift     # or: .venv/bin/python -m bench.drift [--recommendations 1000000] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import random
import re
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import timedelta

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session

from bench.loop import gunicorn
from demo.catalog import DEMO_PASSWORD
from demo.seed import seed
from feedback import migrate
from feedback.accounts import tokens
from feedback.audit import Actor
from feedback.db import utcnow
from feedback.drift import histograms
from feedback.models import Model, ModelVersion, Recommendation
from tests import pgserver

ACTOR = Actor(None, "bench")
OWNER = "owner@countersign.test"
PAGES = (
    ("models page (baseline)", "/models"),
    ("drift page, 2026.1", "/models/fraud_alert/drift?version=2026.1"),
    ("drift API, 2026.1", "/api/v1/analytics/drift?model=fraud_alert&version=2026.1"),
)


def fraud_row(rng: random.Random, n: int, model_id: int, version_id: int, created: object) -> dict[str, object]:
    """One fraud-alert recommendation like the demo's."""
    category = rng.choices(("grocery", "travel", "electronics", "gambling"), weights=(4, 2, 2, 1))[0]
    card_present = rng.random() < 0.55
    confidence = round(min(max(rng.gauss(0.8, 0.1), 0.4), 0.99), 3)
    return {
        "model_id": model_id,
        "model_version_id": version_id,
        "external_id": f"BENCH-{n:08d}",
        "subject": f"Card payment {n}",
        "site": "Leeds",
        "segment": {"merchant_category": category, "card_present": "yes" if card_present else "no"},
        "recommended_action": "raise_alert" if rng.random() < 0.3 else "dismiss",
        "confidence": confidence,
        "explanation": {"summary": "", "factors": []},
        "features": {
            "amount": round(rng.lognormvariate(4.5, 1.1), 2),
            "merchant_category": category,
            "card_present": card_present,
            "country_mismatch": rng.random() < 0.1,
        },
        "flags": [],
        "payload_hash": "0" * 64,
        "created_at": created,
        "status": "decided",
        "row_version": 1,
    }


def build(url: str, recommendations: int, per_day: int, chunk: int = 20_000) -> tuple[float, str]:
    """The demo's history plus `recommendations` fraud alerts, counted; seconds taken and a service token."""
    started = time.perf_counter()
    engine = create_engine(url)
    migrate.upgrade(engine)
    rng = random.Random(3)
    with Session(engine, expire_on_commit=False) as session:
        assert seed(session, per_day=per_day, progress=lambda _: None), "the database was not empty"
        model = session.scalars(select(Model).where(Model.key == "fraud_alert")).one()
        version = session.scalars(
            select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == "2026.1")
        ).one()
        now = utcnow()
        for start in range(0, recommendations, chunk):
            rows = [
                fraud_row(rng, n, model.id, version.id, now - timedelta(days=60 * (1 - n / recommendations)))
                for n in range(start, min(start + chunk, recommendations))
            ]
            ids = session.scalars(
                insert(Recommendation).returning(Recommendation.id, sort_by_parameter_order=True), rows
            ).all()
            histograms.record(session, rows, list(ids))
            session.commit()
        session.execute(text("ANALYZE"))
        session.commit()
        token = tokens.create_token(session, ACTOR, email=OWNER)
    engine.dispose()
    return time.perf_counter() - started, token


def signed_in(base: str) -> urllib.request.OpenerDirector:
    """An HTTP client with the demo model owner's session cookie."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    body = {"email": OWNER, "password": DEMO_PASSWORD, "csrf_token": csrf.group(1)}
    opener.open(base + "/login", data=urllib.parse.urlencode(body).encode()).read()
    return opener


def ingest_batch(base: str, token: str, n: int) -> float:
    """Seconds to POST 1,000 fraud alerts through the API."""
    items = [
        {
            "model": "fraud_alert",
            "model_version": "2026.1",
            "external_id": f"BENCH-API-{n}-{i}",
            "subject": "Card payment",
            "site": "Leeds",
            "recommended_action": "dismiss",
            "confidence": 0.8,
            "explanation": {"summary": "", "factors": []},
            "features": {"amount": 10.0 + i, "merchant_category": "grocery", "card_present": True},
        }
        for i in range(1000)
    ]
    request = urllib.request.Request(
        base + "/api/v1/recommendations",
        data=json.dumps(items).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
        response.read()
    return time.perf_counter() - t0


def measure(url: str, label: str, token: str, repeat: int) -> list[tuple[str, str, float, float]]:
    """Median and worst seconds per page, and per 1,000-recommendation ingest, through gunicorn."""
    results = []
    with gunicorn(url, workers=2) as port:
        base = f"http://127.0.0.1:{port}"
        opener = signed_in(base)
        for name, path in PAGES:
            times = []
            for _ in range(repeat + 1):
                request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
                t0 = time.perf_counter()
                with opener.open(request) if path.startswith("/api") else opener.open(base + path) as response:
                    assert response.status == 200
                    response.read()
                times.append(time.perf_counter() - t0)
            times = times[1:]  # the first request warms the worker
            results.append((label, name, statistics.median(times), max(times)))
        batches = [ingest_batch(base, token, n) for n in range(repeat)]
        results.append((label, "ingest 1,000 via the API", statistics.median(batches), max(batches)))
    return results


def main() -> None:
    """Build, serve, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recommendations", type=int, default=1_000_000)
    parser.add_argument("--per-day", type=int, default=420, help="decided cases per day of the demo's 90 days")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    rows = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite"
            seconds, token = build(url, args.recommendations, args.per_day)
            print(f"sqlite: built in {seconds:.0f} s", flush=True)
            rows += measure(url, "sqlite", token, args.repeat)
    if args.backend in ("postgresql", "both"):
        with pgserver.running_postgres("countersign_bench", durable=True) as url:
            seconds, token = build(url, args.recommendations, args.per_day)
            print(f"postgresql: built in {seconds:.0f} s", flush=True)
            rows += measure(url, "postgresql", token, args.repeat)
    print(
        f"\nthe demo's history plus {args.recommendations:,} recommendations of fraud_alert 2026.1; "
        f"median of {args.repeat} requests through gunicorn (2 workers)"
    )
    for backend, name, median, worst in rows:
        print(f"{backend:<11} {name:<28} {median * 1000:8.0f} ms  (worst {worst * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
