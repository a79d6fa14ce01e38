"""Benchmark the model owner pages at production scale: 1,000,000 decisions, SQLite and PostgreSQL.

Builds a database in bulk (recommendations, decisions, outcomes), serves it with gunicorn and
times the overview and breakdown pages over HTTP (median of repeated requests), and reports the
largest resident memory of the gunicorn processes.

    .venv/bin/python -m bench.analytics [--decisions 1000000] [--repeat 5] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import random
import re
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

from bench.loop import PASSWORD, gunicorn
from feedback import migrate
from feedback.accounts import services as accounts
from feedback.audit import Actor
from feedback.catalog import services as catalog
from feedback.models import Decision, Outcome, Recommendation
from feedback.overrides import rollup
from feedback.schemas import ModelIn, ModelVersionIn
from tests import pgserver

ACTOR = Actor(None, "bench")
SITES = ("Leeds", "Manchester", "Bristol", "Glasgow", "Cardiff", "Belfast")
PAGES = (
    ("overview", "/models/claims"),
    ("breakdown by site", "/models/claims/breakdown?by=site"),
    ("breakdown by segment", "/models/claims/breakdown?by=segment.band"),
    ("breakdown by confidence", "/models/claims/breakdown?by=confidence_decile"),
    ("who was right", "/models/claims/right?by=reviewer"),
)


def build(url: str, decisions: int, shards: int = 1, chunk: int = 50_000) -> float:
    """Create the schema and `decisions` decided cases over 90 days; return seconds taken."""
    started = time.perf_counter()
    engine = create_engine(url)
    migrate.upgrade(engine)
    rng = random.Random(1)
    with Session(engine, expire_on_commit=False) as session:
        model = catalog.register_model(
            session,
            ACTOR,
            spec=ModelIn(
                key="claims",
                name="Claims",
                actions=["pay", "review", "deny"],
                reason_codes=[
                    {"code": c, "label": c} for c in ("missing_context", "policy_exception", "fraud_signal", "other")
                ],
            ),
        )
        versions = [
            catalog.add_model_version(
                session, ACTOR, model_key="claims", spec=ModelVersionIn(version=v, stage="production")
            )
            for v in ("v1", "v2")
        ]
        accounts.create_user(session, ACTOR, email="owner@bench.test", role="model_owner", password=PASSWORD)
        reviewers = [
            accounts.create_user(
                session,
                ACTOR,
                email=f"r{i}@bench.test",
                role="frontline",
                password=PASSWORD,
                name=f"Reviewer {i:02d}",
            )
            for i in range(30)
        ]
        now = datetime.now(UTC)
        made = 0
        while made < decisions:
            size = min(chunk, decisions - made)
            recs, decs, outs = [], [], []
            for i in range(made, made + size):
                version = versions[0] if i < decisions // 2 else versions[1]
                band = rng.choice(("under_1k", "1k_10k", "over_10k"))
                created = now - timedelta(days=90 * (1 - i / decisions), minutes=rng.uniform(0, 600))
                recs.append(
                    {
                        "model_id": model.id,
                        "model_version_id": version.id,
                        "external_id": f"B{i}",
                        "subject": f"Claim {i}",
                        "site": rng.choice(SITES),
                        "segment": {"band": band, "channel": rng.choice(("web", "phone"))},
                        "recommended_action": "pay",
                        "confidence": round(rng.random(), 3),
                        "explanation": {"summary": "", "factors": []},
                        "features": None,
                        "flags": [],
                        "payload_hash": "0" * 64,
                        "created_at": created,
                        "status": "decided",
                        "row_version": 1,
                    }
                )
            ids = session.scalars(
                insert(Recommendation).returning(Recommendation.id, sort_by_parameter_order=True), recs
            ).all()
            for rec_id, rec in zip(ids, recs, strict=True):
                p = 0.35 if rec["segment"]["band"] == "over_10k" and rec["model_version_id"] == versions[0].id else 0.1
                roll = rng.random()
                action = "escalate" if roll < 0.03 else "override" if roll < 0.03 + p else "accept"
                opened = rec["created_at"] + timedelta(minutes=rng.uniform(1, 60))
                decs.append(
                    {
                        "recommendation_id": rec_id,
                        "model_id": model.id,
                        "model_version_id": rec["model_version_id"],
                        "reviewer_id": rng.choice(reviewers).id,
                        "action": action,
                        "final_action": None if action == "escalate" else "deny" if action == "override" else "pay",
                        "reason_code": rng.choice(("missing_context", "policy_exception"))
                        if action == "override"
                        else None,
                        "note": "",
                        "opened_at": opened,
                        "decided_at": opened + timedelta(seconds=rng.lognormvariate(3.8, 0.6)),
                        "ai_shown": True,
                        "channel": "ui",
                    }
                )
                if rng.random() < 0.3:
                    rec["truth"] = rng.choice(("pay", "deny"))
                    outs.append(
                        {
                            "recommendation_id": rec_id,
                            "source": "ledger",
                            "label": rec["truth"],
                            "value": None,
                            "observed_at": opened + timedelta(days=7),
                            "payload_hash": "0" * 64,
                        }
                    )
            session.execute(insert(Decision), decs)
            labels = {v.id: v.version for v in versions}
            # Counted as live decisions are, spread over the shards by decision id (ids start at 1).
            pairs = (
                ({**dec, "id": made + n + 1}, {**rec, "model_version": labels[rec["model_version_id"]]})
                for n, (dec, rec) in enumerate(zip(decs, recs, strict=True))
            )
            rollup.apply(session, rollup.tally(pairs, shards=shards))
            session.execute(insert(Outcome), outs)
            session.commit()
            made += size
            print(f"  built {made:,} decisions", flush=True)
        session.execute(text("ANALYZE"))  # fresh statistics, as a running installation would have
        session.commit()
    engine.dispose()
    return time.perf_counter() - started


def signed_in_opener(base: str) -> urllib.request.OpenerDirector:
    """An HTTP client with a session cookie for the model owner."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"email": "owner@bench.test", "password": PASSWORD, "csrf_token": token}).encode()
    opener.open(base + "/login", data=body).read()
    return opener


def gunicorn_rss_mb() -> float:
    """Largest resident set of any gunicorn process, in MB."""
    out = subprocess.run(["ps", "-C", "python", "-o", "rss=,args="], capture_output=True, text=True).stdout
    sizes = [int(line.split()[0]) for line in out.splitlines() if "gunicorn" in line]
    return max(sizes) / 1024 if sizes else float("nan")


def measure(url: str, label: str, repeat: int) -> list[tuple[str, str, float, float]]:
    """Median and worst seconds per page through gunicorn (2 workers)."""
    results = []
    with gunicorn(url, workers=2) as port:
        base = f"http://127.0.0.1:{port}"
        opener = signed_in_opener(base)
        period = f"from={(datetime.now(UTC) - timedelta(days=91)).date()}"
        for name, path in PAGES:
            target = base + path + ("&" if "?" in path else "?") + period
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                with opener.open(target) as response:
                    assert response.status == 200
                    response.read()
                times.append(time.perf_counter() - t0)
            results.append((label, name, statistics.median(times), max(times)))
        results.append((label, "largest gunicorn process (MB)", gunicorn_rss_mb(), float("nan")))
    return results


def main() -> None:
    """Build, serve, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--shards", type=int, default=rollup.SHARDS, help="count shards to spread over (1: as after a recount)"
    )
    args = parser.parse_args()
    rows = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite"
            print(f"sqlite: built in {build(url, args.decisions, args.shards):.0f} s", flush=True)
            rows += measure(url, "sqlite", args.repeat)
    if args.backend in ("postgresql", "both"):
        with pgserver.running_postgres("countersign_bench", durable=True) as url:
            print(f"postgresql: built in {build(url, args.decisions, args.shards):.0f} s", flush=True)
            rows += measure(url, "postgresql", args.repeat)
    print(f"\n{args.decisions:,} decisions; all 90 days selected; median of {args.repeat} requests through gunicorn")
    for backend, name, median, worst in rows:
        if name.startswith("largest"):
            print(f"{backend:<11} {name:<32} {median:8.0f}")
        else:
            print(f"{backend:<11} {name:<32} {median * 1000:8.0f} ms  (worst {worst * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
