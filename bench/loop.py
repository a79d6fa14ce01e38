"""The decision-cost ratio: what one decision costs in bare requests, on SQLite and on PostgreSQL.

It runs where users are: on the demo's world (its models, rules, guardrails of every kind and
experiments) plus `--history` decided cases of the last 90 days (1,000,000 by default, built in
bulk by `bench.history`), never on an empty database. Against one gunicorn, in one run, it
measures:

- ingest: 10,000 recommendations in batches of 1,000 (they become the cases decided next);
- sequential: decision requests one at a time, each followed by `GET /healthz` (median ratio);
- concurrent: `--clients` clients (16) deciding flat out, then the same clients asking
  `/healthz` flat out, alternating for `--rounds` rounds; the ratio of the two rates is how many
  bare requests one decision costs under load (issue 19's target: at most 4).

    make bench            # or: .venv/bin/python -m bench.loop [--workers 2] [--history 1000000]
                          #     [--backend sqlite|postgresql|both] [--sqlite-template instance/bench.sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench import history
from feedback import rollup, services
from feedback.audit import Actor
from feedback.db import utcnow
from tests import gunicornserver, pgserver

ACTOR = Actor(None, "bench")


def prepare(url: str, reviewers: int) -> tuple[str, list[str]]:
    """A service token and reviewer tokens on a database `bench.history` built."""
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        service = services.create_token(session, ACTOR, email="owner@countersign.test")
        tokens = [
            services.create_token(session, ACTOR, email=f"reviewer{n + 1:02d}@countersign.test")
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


def decide_all(port: int, ids: list[int], tokens: list[str], clients: int) -> tuple[float, int]:
    """Decide these cases from `clients` concurrent connections; return seconds taken and decisions made."""
    work = iter(ids)
    lock = threading.Lock()
    done = [0]

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                rec_id = next(work, None)
            if rec_id is None:
                break
            status, answer = post(
                conn, f"/api/v1/recommendations/{rec_id}/decision", {"action": "accept"}, tokens[n % len(tokens)]
            )
            assert status in (201, 409), answer  # 409: a rule sent the case to the exceptions queue at ingest
            with lock:
                done[0] += status == 201
        conn.close()

    return _flat_out(client, clients), done[0]


def healthz_all(port: int, requests: int, clients: int) -> float:
    """Send `requests` GET /healthz from `clients` concurrent connections; return seconds taken."""
    left = [requests]
    lock = threading.Lock()

    def client(_: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            assert get(conn, "/healthz") == 200
        conn.close()

    return _flat_out(client, clients)


def _flat_out(client: Callable[[int], None], clients: int) -> float:
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0


def ingest(conn: http.client.HTTPConnection, service: str, batches: int) -> tuple[list[int], list[float]]:
    """Post batches of 1,000 recommendations; return the new case ids and each batch's seconds."""
    ids: list[int] = []
    batch_times = []
    for b in range(batches):
        t0 = time.perf_counter()
        status, answer = post(conn, "/api/v1/recommendations", [item(b * 1000 + i) for i in range(1000)], service)
        batch_times.append(time.perf_counter() - t0)
        assert status == 201, answer
        ids.extend(i["id"] for i in answer["items"])
    return ids, batch_times


def run(url: str, label: str, args: argparse.Namespace) -> dict[str, float | str]:
    """Ingest, then time decisions sequentially and under concurrency, each beside /healthz."""
    service, tokens = prepare(url, reviewers=16)
    per_round = args.per_round
    batches = -(-(args.decisions + per_round * args.rounds) // 1000)
    with gunicorn(url, args.workers, args.threads) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start = time.perf_counter()
        ids, batch_times = ingest(conn, service, batches)
        ingest_seconds = time.perf_counter() - start
        latencies, bare = [], []
        for n, rec_id in enumerate(ids[: args.decisions]):
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
        # Alternating rounds, so both rates see the same machine (others' work comes and goes).
        rest = ids[args.decisions :]
        ratios, decision_rates, bare_rates = [], [], []
        for r in range(args.rounds):
            seconds, made = decide_all(port, rest[r * per_round : (r + 1) * per_round], tokens, args.clients)
            bare_seconds = healthz_all(port, per_round * 4, args.clients)
            decision_rates.append(made / seconds)
            bare_rates.append(per_round * 4 / bare_seconds)
            ratios.append(bare_rates[-1] / decision_rates[-1])
    latencies.sort()
    return {
        "backend": label,
        "ingest_per_second": round(batches * 1000 / ingest_seconds),
        "batch_median_ms": round(statistics.median(batch_times) * 1000),
        "decision_median_ms": round(statistics.median(latencies), 2),
        "decision_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "healthz_median_ms": round(statistics.median(bare), 2),
        "sequential_ratio": round(statistics.median(latencies) / statistics.median(bare), 1),
        f"decisions_per_s_{args.clients}": round(statistics.median(decision_rates), 1),
        f"healthz_per_s_{args.clients}": round(statistics.median(bare_rates), 1),
        f"ratio_{args.clients}_clients": round(statistics.median(ratios), 2),
        "ratio_each_round": " ".join(f"{r:.2f}" for r in ratios),
    }


@contextlib.contextmanager
def database(
    backend: str, history_n: int, template: str | None, per_day: int, shards: int = rollup.SHARDS
) -> Iterator[str]:
    """A database with the demo's world plus `history_n` decisions: a PostgreSQL cluster or a SQLite file.

    A SQLite template (built once, then copied) makes repeated runs quick.
    """
    if backend == "postgresql":
        with pgserver.running_postgres("countersign_bench", durable=True) as url:
            print(
                f"postgresql: history built in {history.build(url, history_n, per_day=per_day, shards=shards):.0f} s",
                flush=True,
            )
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        if template and Path(template).exists():
            shutil.copyfile(template, path)
        else:
            seconds = history.build(f"sqlite:///{path}", history_n, per_day=per_day, shards=shards)
            print(f"sqlite: history built in {seconds:.0f} s", flush=True)
            if template:
                shutil.copyfile(path, template)
        yield f"sqlite:///{path}"


def main() -> None:
    """Run on each backend and print one line of results each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gunicorn.conf.py's)")
    parser.add_argument("--decisions", type=int, default=300, help="sequential decision requests")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=400, help="decisions per concurrent round")
    parser.add_argument("--history", type=int, default=1_000_000, help="past decisions added to the demo's")
    parser.add_argument("--per-day", type=int, default=420, help="the demo's own cases a day for 90 days")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--sqlite-template", help="a SQLite file to reuse (built there on first use)")
    args = parser.parse_args()
    results = []
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            with database(backend, args.history, args.sqlite_template, args.per_day) as url:
                results.append(run(url, backend, args))
    print(
        f"gunicorn {args.workers} workers x {args.threads} threads; the demo plus {args.history:,} decisions of "
        f"history; {args.decisions} sequential decisions each followed by GET /healthz; {args.rounds} rounds of "
        f"{args.per_round} decisions then {args.per_round * 4} GET /healthz from {args.clients} clients; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for row in results:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
