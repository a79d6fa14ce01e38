"""Realistic history for every benchmark: the demo's world plus any number of past decisions, in bulk.

The demo (`seed-demo`) brings what users have: two models, their ingest rules, guardrails of
every kind (override rate, control chart, accuracy, two of them pausing), the finished A/B test
and the staggered rollout. On top of it, `build` adds `decisions` decided cases over the last 90
days to the demo's own versions (claims v1 then v2, fraud 2026.1), about 30% with a label
outcome, through the bulk paths a live installation uses: `feedback.bulk` (COPY on PostgreSQL)
for the rows and `rollup.tally`/`rollup.apply` for the daily counts, spread over the shards
by decision id as live decisions are. The guardrails then read windows deep in real history.

    .venv/bin/python -m bench.history sqlite:////tmp/x.sqlite --decisions 1000000
    .venv/bin/python -m bench.history postgresql --decisions 1000000   # a private durable cluster,
        # kept running until interrupted: compare two checkouts on it with `bench.loop --url URL`
"""

from __future__ import annotations

import argparse
import random
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from demo import catalog as demo
from demo.seed import seed as seed_demo
from feedback import bulk, migrate
from feedback.db import utcnow
from feedback.models import Decision, Model, ModelVersion, Outcome, Recommendation, User
from feedback.overrides import rollup
from tests import pgserver

PASSWORD = demo.DEMO_PASSWORD
OWNER = "owner@countersign.test"
DAYS = 90
FRAUD_SHARE = 0.3  # the demo's mix: 70% claims, 30% fraud alerts


class _Catalog:
    """The demo's models, versions and reviewers, as the generator needs them."""

    def __init__(self, session: Session) -> None:
        models = {m.key: m for m in session.scalars(select(Model))}
        self.claims, self.fraud = models[demo.CLAIMS.key], models[demo.FRAUD.key]
        versions = {(v.model_id, v.version): v for v in session.scalars(select(ModelVersion))}
        self.v1, self.v2 = versions[(self.claims.id, "v1")], versions[(self.claims.id, "v2")]
        self.f1 = versions[(self.fraud.id, "2026.1")]
        self.reviewers = list(session.scalars(select(User.id).where(User.role == "frontline").order_by(User.id)))
        self.reasons = {m.id: [r["code"] for r in m.reason_codes] for m in (self.claims, self.fraud)}


def _case(rng: random.Random, n: int, of: int, cat: _Catalog, now: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One decided case (recommendation row, decision row) at position n of `of` in time order."""
    created = now - timedelta(days=DAYS * (1 - n / of) + 1, minutes=rng.uniform(0, 600))
    site = rng.choice(demo.SITES)
    if rng.random() < FRAUD_SHARE:
        model, version, actions = cat.fraud, cat.f1, ("raise_alert", "dismiss")
        segment = {"merchant_category": rng.choice(("grocery", "travel", "online")), "card_present": "yes"}
        p = 0.12
    else:
        model, actions = cat.claims, ("pay", "review", "deny")
        version = cat.v1 if n < of // 2 else cat.v2
        band = rng.choices(("under_1k", "1k_10k", "over_10k"), weights=(5, 4, 1.5))[0]
        segment = {"claim_band": band, "channel": rng.choice(("web", "phone", "broker")), "product": "motor"}
        p = 0.45 if band == "over_10k" and version is cat.v1 else 0.1
    recommended = rng.choice(actions)
    rec = {
        "model_id": model.id,
        "model_version_id": version.id,
        "external_id": f"H-{n:08d}",
        "subject": f"Case {n}",
        "site": site,
        "segment": segment,
        "recommended_action": recommended,
        "confidence": round(rng.uniform(0.55, 0.99), 3),
        "explanation": {"summary": "", "factors": []},
        "features": None,
        "flags": [],
        "payload_hash": "0" * 64,
        "created_at": created,
        "status": "decided",
        "row_version": 1,
    }
    roll = rng.random()
    action = "escalate" if roll < 0.03 else "override" if roll < 0.03 + p else "accept"
    opened = created + timedelta(minutes=rng.uniform(1, 60))
    other = next(a for a in actions if a != recommended)
    dec = {
        "model_id": model.id,
        "model_version_id": version.id,
        "reviewer_id": rng.choice(cat.reviewers),
        "action": action,
        "final_action": None if action == "escalate" else other if action == "override" else recommended,
        "reason_code": rng.choice(cat.reasons[model.id]) if action == "override" else None,
        "note": "",
        "opened_at": opened,
        "decided_at": opened + timedelta(seconds=rng.lognormvariate(3.8, 0.6)),
        "ai_shown": True,
        "channel": "ui",
        "quick": False,
    }
    if rng.random() < 0.3:
        rec["truth"] = recommended if rng.random() < 0.85 else other
    return rec, dec


def add_history(
    session: Session,
    decisions: int,
    *,
    shards: int = rollup.SHARDS,
    chunk: int = 50_000,
    progress: Callable[[str], None] = print,
) -> None:
    """Add `decisions` decided cases of the last 90 days to the demo's versions, in bulk, committing per chunk."""
    cat = _Catalog(session)
    labels = {v.id: v.version for v in (cat.v1, cat.v2, cat.f1)}
    rng = random.Random(1)
    now = utcnow()
    made = 0
    while made < decisions:
        size = min(chunk, decisions - made)
        pairs = [_case(rng, i, decisions, cat, now) for i in range(made, made + size)]
        recs = [rec for rec, _ in pairs]
        truths = [rec.pop("truth", None) for rec in recs]
        rec_ids = bulk.insert_returning_ids(session, Recommendation, recs)
        decs = [{**dec, "recommendation_id": rec_id} for rec_id, (_, dec) in zip(rec_ids, pairs, strict=True)]
        dec_ids = bulk.insert_returning_ids(session, Decision, decs)
        outs = [
            {
                "recommendation_id": rec_id,
                "source": "ledger",
                "label": truth,
                "value": None,
                "observed_at": dec["decided_at"] + timedelta(days=7),
                "received_at": dec["decided_at"] + timedelta(days=7),
                "payload_hash": "0" * 64,
            }
            for rec_id, truth, dec in zip(rec_ids, truths, decs, strict=True)
            if truth is not None
        ]
        bulk.insert_rows(session, Outcome, outs)
        # Counted as live decisions are: each in the shard its id picks, with its accuracy if labelled.
        counted = (
            ({**dec, "id": dec_id}, {**rec, "model_version": labels[rec["model_version_id"]], "truth": truth})
            for dec_id, dec, rec, truth in zip(dec_ids, decs, recs, truths, strict=True)
        )
        rollup.apply(session, rollup.tally(counted, shards=shards))
        session.commit()
        made += size
        progress(f"  history: {made:,} decisions")


def build(
    url: str,
    decisions: int = 1_000_000,
    *,
    per_day: int = 420,
    shards: int = rollup.SHARDS,
    progress: Callable[[str], None] = print,
) -> float:
    """Migrate, seed the demo (at `per_day` cases a day), add `decisions` more in bulk, analyse; seconds taken."""
    started = time.perf_counter()
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        assert seed_demo(session, per_day=per_day, progress=lambda _: None), "the database was not empty"
        progress(f"  demo seeded in {time.perf_counter() - started:.0f} s")
        add_history(session, decisions, shards=shards, progress=progress)
        session.execute(text("ANALYZE"))  # fresh statistics, as autovacuum would soon give a running installation
        session.commit()
    engine.dispose()
    return time.perf_counter() - started


def main() -> None:
    """Build one database and say how long it took."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="a database URL, or `postgresql` for a private cluster kept until interrupted")
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--per-day", type=int, default=420)
    args = parser.parse_args()
    if args.url != "postgresql":
        print(f"built in {build(args.url, args.decisions, per_day=args.per_day):.0f} s")
        return
    with pgserver.running_postgres("countersign_bench", durable=True) as url:
        print(f"built in {build(url, args.decisions, per_day=args.per_day):.0f} s")
        print(f"serving {url} until interrupted", flush=True)
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # then the cluster is always stopped and removed
        signal.sigwait(stop)


if __name__ == "__main__":
    main()
