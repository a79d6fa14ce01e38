"""A realistic demo: claims triage and payment-fraud alerts at six sites over ninety days.

Patterns worth finding: claims v1 is poor on claims over 10k (reviewers override it for
missing context, most of all in Leeds) and v2 fixes that; low confidence draws more
overrides; reviewer03 rubber-stamps in seconds while reviewer11 overrides twice as often.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from demo import drift
from demo.cases import break_a_rule, claim_case, decide_unaided, fraud_case, scale_handling
from demo.catalog import CLAIMS, SEED_ACTOR, build_catalog, create_users, staff_by_site
from demo.challengers import seed_challenger
from demo.experiments import AI_HANDLING_FACTOR, ab_experiment, rollout_experiment, rollout_schedule
from demo.history import World, insert_history
from demo.readiness import seed_readiness
from feedback.backlog import queries as backlog_queries
from feedback.backlog import services as backlog
from feedback.db import utcnow
from feedback.models import Model, User
from feedback.overrides import guardrails


def seed(
    session: Session,
    *,
    days: int = 90,
    per_day: int = 420,
    rng_seed: int = 7,
    progress: Callable[[str], None] = print,
    queue_refresh: Callable[[int], None] | None = None,
) -> bool:
    """Create the demo scenario; return False (changing nothing) if it is already there.

    The backlog is mined here, unless `queue_refresh` is given: then each model's refresh is
    queued and handed to it (the job's id), for a worker to mine while the server starts.
    """
    if session.scalar(select(Model.id).where(Model.key == CLAIMS.key)) is not None:
        return False
    rng = random.Random(rng_seed)
    now = utcnow().replace(second=0, microsecond=0)

    progress("users…")
    reviewers = create_users(session)
    progress("models and versions…")
    claims, fraud, (v1, v2, f1) = build_catalog(session, now, days)
    handlers = list(session.scalars(select(User).where(User.role == "exception_handler")))

    personality = {r.id: math.exp(rng.gauss(0, 0.3)) for r in reviewers}
    personality[reviewers[2].id] = 0.08  # reviewer03 rubber-stamps
    personality[reviewers[10].id] = 2.0  # reviewer11 overrides often
    world = World(rng, now, reviewers, handlers, personality)
    staff = staff_by_site(reviewers)
    rollout = rollout_schedule(now, days)
    ab_test = ab_experiment(session, claims, now, days)
    exposed: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (case, decision) seen in the A/B test
    counter = 0
    chunk_days = 10
    for start in range(days, 0, -chunk_days):
        recs: list[dict[str, Any]] = []
        decided: list[dict[str, Any]] = []
        routed: list[dict[str, Any]] = []
        for day in range(start, max(start - chunk_days, 0), -1):
            midnight = (now - timedelta(days=day)).replace(hour=0, minute=0)
            for _ in range(per_day):
                counter += 1
                created = midnight + timedelta(minutes=rng.uniform(7 * 60, 19 * 60))
                if rng.random() < 0.7:
                    version = v1 if day > days // 2 else v2
                    rec, dec = claim_case(rng, counter, claims, version, created, staff, personality)
                    if ab_test.window[0] <= created < ab_test.window[1]:
                        arm = ab_test.arm(dec["reviewer_id"])
                        if arm == "control":  # unaided: the same judgement, more slowly
                            decide_unaided(dec, rec["recommended_action"])
                            scale_handling(dec, 1 / AI_HANDLING_FACTOR)
                        exposed.append((rec, dec))
                else:
                    rec, dec = fraud_case(rng, counter, fraud, f1, created, staff, personality, rollout)
                    drift.shift_amount(rec, now)
                rec["truth"] = dec.pop("truth")
                if break_a_rule(rng, rec):  # the ingest rules send it to the exceptions queue
                    routed.append(rec)
                else:
                    recs.append(rec)
                    decided.append(dec)
        world.store_history(session, recs, decided)
        world.store_routed(session, routed)
        ab_test.record_exposures(session, exposed)
        exposed = []
        progress(f"history: {days - max(start - chunk_days, 0)}/{days} days, {counter} cases")

    live = []
    for i in range(160):
        counter += 1
        created = now - timedelta(minutes=rng.uniform(5, 10 * 60))
        if rng.random() < 0.7:
            rec, _ = claim_case(rng, counter, claims, v2, created, staff, personality)
        else:
            rec, _ = fraud_case(rng, counter, fraud, f1, created, staff, personality, rollout)
            drift.shift_amount(rec, now)
        rec["due_at"] = created + timedelta(hours=rng.choice((4, 8, 24, 24, 48)))
        live.append(rec)
        if i % 40 == 0:
            rec["due_at"] = now - timedelta(minutes=rng.uniform(10, 300))  # a few already overdue
    insert_history(session, live, [])
    session.commit()
    progress(f"live queue: {len(live)} new cases (the ingest rules routed some to exceptions)")

    # v1's trouble with large claims shows in its overall override rate: its guardrail trips.
    for version, kind, window_size, threshold, pause in (
        (v1, "override_rate_above", 500, 0.12, True),
        (v2, "override_rate_above", 500, 0.2, True),
        (v2, "control_chart", 28, None, False),
        (f1, "accuracy_below", 300, 0.8, False),
    ):
        guardrails.add_guardrail(
            session,
            SEED_ACTOR,
            version_id=version.id,
            kind=kind,
            window_size=window_size,
            threshold=threshold,
            auto_pause=pause,
        )
    drift.watch(session, f1)
    alerts = guardrails.evaluate(session, [v1.id, v2.id, f1.id], force=True)
    progress(f"guardrails: {len(alerts)} alert(s) raised")
    rollout_experiment(session, fraud, rollout, now - timedelta(days=days), progress)
    ab_test.finish(session, progress)
    seed_challenger(session, SEED_ACTOR, claims, v2, now, rng, progress)
    seed_readiness(
        session,
        models=(claims, fraud),
        versions=(v1, v2, f1),
        staff=staff,
        personality=personality,
        rng=rng,
        start=now - timedelta(days=days),
        progress=progress,
    )
    # Last, so a worker mining it meanwhile never waits on the seed's own writes.
    for model in (claims, fraud):
        if queue_refresh is not None:
            job, _ = backlog.start_refresh(session, SEED_ACTOR, model_key=model.key)
            queue_refresh(job.id)
            progress(f"backlog {model.key}: mining queued for the worker")
            continue
        summary = backlog.refresh(session, SEED_ACTOR, model_key=model.key)
        top = backlog_queries.ranked(session, backlog_queries.BacklogFilter(model.key))
        progress(f"backlog {model.key}: {summary.created} item(s); top: {top[0].title if top else 'none'}")
    return True
