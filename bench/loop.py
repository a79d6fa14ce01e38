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
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench import history
from feedback import migrate
from feedback.accounts import tokens as api_tokens
from feedback.audit import Actor
from feedback.db import utcnow
from feedback.overrides import rollup
from tests import gunicornserver, pgserver

ACTOR = Actor(None, "bench")


def prepare(url: str, reviewers: int) -> tuple[str, list[str]]:
    """A service token and reviewer tokens on a database `bench.history` built."""
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        service = api_tokens.create_token(session, ACTOR, email="owner@countersign.test")
        tokens = [
            api_tokens.create_token(session, ACTOR, email=f"reviewer{n + 1:02d}@countersign.test")
            for n in range(reviewers)
        ]
    engine.dispose()
    return service, tokens


@contextlib.contextmanager
def gunicorn(url: str, workers: int, threads: int = 1) -> Iterator[int]:
    """Serve the app with gunicorn.conf.py on a free loopback port; yield the port."""
    with gunicornserver.gunicorn(url, workers=workers, threads=threads) as server:
        yield server.port


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes have used so far (from /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(workers: list[int]) -> list[int]:
    """The gunicorn workers, plus this benchmark's PostgreSQL backends (their database is countersign_bench)."""
    backends = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if b"countersign_bench" in (proc / "cmdline").read_bytes():
                    backends.append(int(proc.name))
    return workers + backends


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


RUN = uuid.uuid4().hex[:8]  # external ids differ from run to run, so runs can share one database


def item(n: int) -> dict:
    """One realistic recommendation for one of the demo's two models, at a site where the AI is live.

    Claims cases are watched by override-rate and control-chart guardrails, fraud alerts by an
    accuracy guardrail: the decisions go through every kind.
    """
    common = {
        "external_id": f"B-{RUN}-{n:07d}",
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
    with gunicornserver.gunicorn(url, workers=args.workers, threads=args.threads) as server:
        port = server.port
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
        ratios, decision_rates, bare_rates, cpu_ratios, decision_cpu, bare_cpu = [], [], [], [], [], []
        for r in range(args.rounds):
            # Server CPU (gunicorn workers and, on PostgreSQL, the database backends) per request: the
            # ratio that does not move with the other work on the machine.
            pids = server_pids(server.worker_pids())
            cpu0 = cpu_seconds(pids)
            seconds, made = decide_all(port, rest[r * per_round : (r + 1) * per_round], tokens, args.clients)
            cpu1 = cpu_seconds(pids)
            bare_seconds = healthz_all(port, per_round * 4, args.clients)
            cpu2 = cpu_seconds(pids)
            decision_rates.append(made / seconds)
            bare_rates.append(per_round * 4 / bare_seconds)
            ratios.append(bare_rates[-1] / decision_rates[-1])
            decision_cpu.append((cpu1 - cpu0) * 1000 / made)
            bare_cpu.append((cpu2 - cpu1) * 1000 / (per_round * 4))
            cpu_ratios.append(decision_cpu[-1] / bare_cpu[-1])
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
        "server_cpu_ms_decision": round(statistics.median(decision_cpu), 2),
        "server_cpu_ms_healthz": round(statistics.median(bare_cpu), 3),
        "server_cpu_ratio": round(statistics.median(cpu_ratios), 2),
    }


@contextlib.contextmanager
def database(
    backend: str,
    history_n: int,
    template: str | None,
    per_day: int,
    shards: int = rollup.SHARDS,
    url: str | None = None,
) -> Iterator[str]:
    """A database with the demo's world plus `history_n` decisions: a PostgreSQL cluster or a SQLite file.

    A SQLite template (built once, then copied) makes repeated runs quick; `url` names a database
    `bench.history` already built (to compare two commits on the same data, one after the other).
    """
    if url:
        _upgrade(url)  # built by an older checkout, perhaps
        yield url
        return
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
            _upgrade(f"sqlite:///{path}")
        else:
            seconds = history.build(f"sqlite:///{path}", history_n, per_day=per_day, shards=shards)
            print(f"sqlite: history built in {seconds:.0f} s", flush=True)
            if template:
                shutil.copyfile(path, template)
        yield f"sqlite:///{path}"


def _upgrade(url: str) -> None:
    """Bring a reused database to this checkout's schema (nothing to do when it is already there)."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


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
    parser.add_argument("--url", help="a database bench.history built (then --backend names its kind)")
    args = parser.parse_args()
    results = []
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            with database(backend, args.history, args.sqlite_template, args.per_day, url=args.url) as url:
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
