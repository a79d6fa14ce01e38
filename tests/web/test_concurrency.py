"""Races decided by the database: two reviewers, one case, exactly one decision."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from feedback import audit
from feedback.db import utcnow
from feedback.models import Decision, Recommendation
from tests.factories import make_case, make_model, make_owner, make_user, payload, token_for


def race(calls):
    """Run the calls at the same instant in threads; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_two_reviewers_race_for_each_case_and_exactly_one_wins(app, session):
    make_model(session)
    cases = [make_case(session, n).id for n in range(1, 9)]
    headers = [token_for(app, session, make_user(session, name=n)) for n in ("Ann", "Bob")]
    for rec_id in cases:
        statuses = race(
            [
                lambda h=h, rec_id=rec_id: (
                    app.test_client()
                    .post(f"/api/v1/recommendations/{rec_id}/decision", json={"action": "accept"}, headers=h)
                    .status_code
                )
                for h in headers
            ]
        )
        assert sorted(statuses) == [201, 409], statuses
    session.rollback()
    per_case = session.execute(
        select(Decision.recommendation_id, func.count()).group_by(Decision.recommendation_id)
    ).all()
    assert sorted(per_case) == [(c, 1) for c in cases]
    assert session.scalar(select(func.count()).where(Recommendation.status == "open")) == 0
    assert audit.verify_chain(session).ok


def test_the_database_itself_refuses_a_second_decision(app, session):
    make_model(session)
    rec = make_case(session)
    reviewer = make_user(session)
    row = {
        "recommendation_id": rec.id,
        "model_id": rec.model_id,
        "model_version_id": rec.model_version_id,
        "reviewer_id": reviewer.id,
        "action": "accept",
        "final_action": "pay",
        "note": "",
        "opened_at": utcnow(),
        "decided_at": utcnow(),
        "ai_shown": True,
        "channel": "api",
    }
    session.execute(insert(Decision), [row])
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(insert(Decision), [row])
        session.commit()
    session.rollback()


def test_concurrent_ingest_of_the_same_batch_stores_it_once(app, session):
    make_model(session)
    headers = token_for(app, session, make_owner(session))
    batch = [payload(n) for n in range(1, 51)]
    statuses = race(
        [
            lambda: app.test_client().post("/api/v1/recommendations", json=batch, headers=headers).status_code
            for _ in range(3)
        ]
    )
    assert sorted(statuses)[-1] == 201 and set(statuses) <= {200, 201}, statuses
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Recommendation)) == 50
    assert audit.verify_chain(session).ok
