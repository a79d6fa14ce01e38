"""Load benchmark: Locust drives gunicorn (gunicorn.conf.py) on PostgreSQL and on SQLite.

Every configuration runs on the demo's world plus `--history` past decisions (1,000,000;
`bench.history`), with 20,000 open claims in the queue. First, as the peer every phase is read
against, 16 clients ask `GET /healthz` flat out for 10 s on the same server. Then five phases,
each on the same database, in this order (--phases picks some):
  1. reviewers: 50 reviewers working the queue in the UI, each spending 1-3 s (mean 2 s) on a
     case, far quicker than a person, on a queue of 20,000 open cases;
  2. decisions: the same 50 reviewers with no think time and nothing else running: the most
     decisions per second the server can record;
  3. paced: 50 reviewers at 2 s per case while a model service ingests batches of 1,000 as fast
     as it can (the queue grows by its ingest);
  4. saturated: the same 50 reviewers and model service with no think time;
  5. ingest: two model services alone.
Reports throughput and p50/p95/p99 per action from Locust's own statistics.

    make bench-load       # or: .venv/bin/python -m bench.load [--workers 2 4] [--seconds 40] [--backends postgresql]
                          #     [--phases reviewers paced saturated ingest] [--history 1000000]
                          #     [--sqlite-template instance/bench.sqlite]

With --profile, py-spy samples every gunicorn worker during the mixed phase and prints the
hottest functions (needs root or ptrace rights).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from bench import loop
from feedback.models import Model, User
from feedback.review import ingest
from feedback.schemas import RecommendationIn
from tests.gunicornserver import ROOT, SECRET_KEY, gunicorn
from webapp import create_app
from webapp.auth import session_fields

REVIEWERS = 50
RAMP_SECONDS = 5
PHASES = ["reviewers", "decisions", "paced", "saturated", "ingest"]


def prepare(url: str, reviewers: int, cases: int) -> tuple[str, list[str], int]:
    """On a `bench.history` database: a service token, `cases` open claims, and `reviewers` signed-in reviewers.

    The demo has 20 frontline reviewers; more are added with the same password hash. Returns the
    service token, a session cookie per reviewer and the claims model's id (the reviewers' queue).
    """
    token, _ = loop.prepare(url, 0)
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        existing = session.scalars(select(User).where(User.role == "frontline").order_by(User.id)).all()
        session.add_all(
            User(
                email=f"load{n:02d}@countersign.test",
                name=f"Load {n:02d}",
                role="frontline",
                password_hash=existing[0].password_hash,
            )
            for n in range(len(existing), reviewers)
        )
        session.commit()
        people = session.execute(
            select(User.id, User.session_generation).where(User.role == "frontline").order_by(User.id)
        ).all()[:reviewers]
        model_id = session.scalar(select(Model.id).where(Model.key == "claims_triage"))
        for start in range(0, cases, 1000):
            batch = [
                RecommendationIn.model_validate({**loop.item(2 * n), "external_id": f"S-{loop.RUN}-{n}"})
                for n in range(start, min(start + 1000, cases))
            ]
            ingest.ingest_recommendations(session, loop.ACTOR, items=batch)
        # Autovacuum would analyse the freshly loaded table within a minute or so; without statistics
        # the queue page's planner sorts every open case (34 ms instead of 0.1 ms at 20,000).
        session.execute(text("ANALYZE"))
        session.commit()
    engine.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY})
    signer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookies = [signer.dumps(session_fields(user_id, generation)) for user_id, generation in people]
    return token, cookies, model_id or 0


def locust(
    port: int,
    users: int,
    seconds: int,
    *,
    token: str,
    cookies: list[str],
    classes: list[str],
    services_n: int,
    think: float = 0.0,
    model_id: int = 0,
) -> list[dict]:
    """Run Locust headless; return its per-request statistics rows."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "BENCH_COOKIES": ",".join(cookies),
            "BENCH_SERVICE_TOKEN": token,
            "BENCH_SERVICES": str(services_n),
            "BENCH_BATCH": "1000",
            "BENCH_THINK": str(think),
            "BENCH_MODEL": str(model_id),
        }
        args = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless"]
        # Users arrive over RAMP_SECONDS and the statistics restart once all are running, so the
        # figures are the steady state, not 50 people signing in within the same second.
        args += ["--users", str(users), "--spawn-rate", str(users / RAMP_SECONDS), "--reset-stats"]
        args += ["--run-time", f"{seconds + RAMP_SECONDS}s"]
        args += ["--host", f"http://127.0.0.1:{port}", "--csv", f"{tmp}/run", "--only-summary", "--stop-timeout", "10"]
        subprocess.run([*args, *classes], env=env, cwd=ROOT, capture_output=True, check=False, timeout=seconds + 120)
        with open(f"{tmp}/run_stats.csv") as handle:
            return list(csv.DictReader(handle))


def profile(pids: list[int], seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """Start py-spy on the workers (raw collapsed stacks), or None if it cannot attach."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return None
    procs = [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(seconds),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out.with_suffix(f".{pid}.txt")),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]
    return procs[0] if procs else None


def hottest(out: Path, top: int = 15) -> list[tuple[str, float]]:
    """Self-time share of the hottest frames across the workers' collapsed stacks."""
    totals: dict[str, int] = {}
    for path in out.parent.glob(out.stem + ".*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            leaf = frames[-1]
            totals[leaf] = totals.get(leaf, 0) + int(count)
    grand = sum(totals.values()) or 1
    return [(frame, n / grand) for frame, n in sorted(totals.items(), key=lambda kv: -kv[1])[:top]]


def row(stats: list[dict], name: str) -> dict:
    return next((r for r in stats if r["Name"] == name), {})


def report(label: str, stats: list[dict], bare: list[dict] | None = None) -> None:
    print(f"\n{label}")
    print(f"  {'action':<18}{'requests':>9}{'failed':>8}{'per s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}")
    for r in stats:
        if r["Name"] == "Aggregated":
            continue
        print(
            f"  {r['Name']:<18}{r['Request Count']:>9}{r['Failure Count']:>8}{float(r['Requests/s']):>9.1f}"
            f"{r['50%']:>8}{r['95%']:>8}{r['99%']:>8}"
        )
    decided, healthz = row(stats, "decide"), row(bare or [], "healthz")
    if decided and healthz and float(decided["Requests/s"]):
        ratio = float(healthz["Requests/s"]) / float(decided["Requests/s"])
        print(f"  => /healthz per second flat out / decisions per second: {ratio:.1f}")
    ingest = row(stats, "ingest 1000")
    if ingest:
        print(f"  => recommendations ingested per second: {float(ingest['Requests/s']) * 1000:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--workers", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--services", type=int, default=1, help="model services ingesting during the mixed phase")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers during the first phase run")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=PHASES)
    parser.add_argument("--history", type=int, default=1_000_000, help="past decisions added to the demo's")
    parser.add_argument("--per-day", type=int, default=420, help="the demo's own cases a day for 90 days")
    parser.add_argument("--sqlite-template", help="a SQLite file to reuse (built there on first use)")
    parser.add_argument("--url", help="a database bench.history built (one backend, one worker count)")
    args = parser.parse_args()
    print(f"the demo plus {args.history:,} decisions of history; load average {os.getloadavg()[0]:.1f}", flush=True)
    for backend in args.backends:
        for workers in args.workers:
            with loop.database(backend, args.history, args.sqlite_template, args.per_day, url=args.url) as url:
                token, cookies, model = prepare(url, REVIEWERS, cases=max(20_000, 500 * args.seconds))
                with gunicorn(url, workers=workers, threads=args.threads) as server:
                    spy_out = Path(tempfile.mkdtemp()) / "profile"
                    spy = profile(server.worker_pids(), args.seconds, spy_out) if args.profile else None
                    users = REVIEWERS + args.services
                    both = ["Reviewer", "ModelService"]
                    common = {"token": token, "cookies": cookies, "model_id": model}
                    # The bare request first, as the peer every phase is read against.
                    bare = locust(server.port, 16, 10, classes=["Bare"], services_n=0, **common)
                    report(f"{backend}, {workers} workers: 16 clients asking GET /healthz flat out", bare)
                    if "reviewers" in args.phases:
                        alone = locust(
                            server.port,
                            REVIEWERS,
                            args.seconds,
                            classes=["Reviewer"],
                            services_n=0,
                            think=2.0,
                            **common,
                        )
                        report(f"{backend}, {workers} workers: {REVIEWERS} reviewers (2 s per case), no ingest", alone)
                    if "decisions" in args.phases:
                        flat_out = locust(
                            server.port, REVIEWERS, args.seconds, classes=["Reviewer"], services_n=0, **common
                        )
                        report(
                            f"{backend}, {workers} workers: {REVIEWERS} reviewers with no think time, no ingest",
                            flat_out,
                            bare,
                        )
                    if "paced" in args.phases:
                        paced = locust(
                            server.port,
                            users,
                            args.seconds,
                            classes=both,
                            services_n=args.services,
                            think=2.0,
                            **common,
                        )
                        report(
                            f"{backend}, {workers} workers x {args.threads} threads: {REVIEWERS} reviewers "
                            f"(2 s per case) + {args.services} model service(s), {args.seconds} s",
                            paced,
                        )
                    if "saturated" in args.phases:
                        saturated = locust(
                            server.port, users, args.seconds, classes=both, services_n=args.services, **common
                        )
                        report(f"{backend}, {workers} workers: {REVIEWERS} reviewers with no think time", saturated)
                    if spy is not None:
                        time.sleep(3)
                        print("  hottest frames (self time, all workers):")
                        for frame, share in hottest(spy_out):
                            print(f"    {share:6.1%}  {frame}")
                    if "ingest" in args.phases:
                        alone = locust(
                            server.port, 2, max(15, args.seconds // 2), classes=["ModelService"], services_n=2, **common
                        )
                        report(f"{backend}, {workers} workers: 2 model services alone", alone)
                    sys.stdout.flush()


if __name__ == "__main__":
    main()
