"""Concurrent ingests of one version add to the same drift histogram cells: nothing is lost, nothing deadlocks."""

from __future__ import annotations

import random
import threading

from sqlalchemy import func, select

from feedback.drift import histograms
from feedback.models import DriftCount
from tests.factories import make_model, make_owner, payload, token_for


def test_concurrent_ingests_count_every_recommendation_once(app, session):
    make_model(session)
    headers = [token_for(app, session, make_owner(session)) for _ in range(4)]
    rng = random.Random(12)
    batches = [
        [
            payload(
                t * 1000 + b * 100 + i,
                features={"amount": round(rng.lognormvariate(6, 1), 2), "channel": rng.choice(["web", "phone"])},
            )
            for i in range(40)
        ]
        for t in range(4)
        for b in range(3)
    ]
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def ingest(t: int) -> None:
        client = app.test_client()
        barrier.wait()
        for b in range(3):
            answer = client.post("/api/v1/recommendations", json=batches[t * 3 + b], headers=headers[t])
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=ingest, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [201] * 12
    session.rollback()
    per_feature = dict(
        session.execute(select(DriftCount.feature, func.sum(DriftCount.count)).group_by(DriftCount.feature)).all()
    )
    features = ["features.amount", "features.channel", "confidence", "recommended_action"]
    assert per_feature == dict.fromkeys(features, 480)
    kept = session.execute(
        select(DriftCount.feature, DriftCount.key, func.sum(DriftCount.count))
        .group_by(DriftCount.feature, DriftCount.key)
        .order_by(DriftCount.feature, DriftCount.key)
    ).all()
    histograms.rebuild(session)
    session.commit()
    recount = session.execute(
        select(DriftCount.feature, DriftCount.key, func.sum(DriftCount.count))
        .group_by(DriftCount.feature, DriftCount.key)
        .order_by(DriftCount.feature, DriftCount.key)
    ).all()
    assert kept == recount
