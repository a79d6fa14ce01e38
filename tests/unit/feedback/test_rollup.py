"""The daily counts kept on every decision equal a recount from the decisions themselves."""

from __future__ import annotations

from sqlalchemy import select

from feedback import rollup, services
from feedback.models import DecisionCount
from tests.factories import make_case, make_model, make_user


def snapshot(session):
    """Every count row as a comparable tuple."""
    session.expire_all()
    return sorted(
        (c.model_version_id, c.day, c.dimension, c.key, c.accepts, c.overrides, c.escalations)
        for c in session.scalars(select(DecisionCount))
    )


def test_incremental_counts_equal_a_recount(session):
    make_model(session)
    reviewers = [make_user(session), make_user(session)]
    for n in range(12):
        rec = make_case(
            session,
            n,
            site=("Leeds", "Bristol")[n % 2],
            segment={"band": "big" if n % 3 else "small"},
            confidence=0.05 + n * 0.08,
        )
        kind = n % 3
        if kind == 0:
            services.record_decision(session, recommendation_id=rec.id, reviewer=reviewers[n % 2], action="accept")
        elif kind == 1:
            services.record_decision(
                session,
                recommendation_id=rec.id,
                reviewer=reviewers[n % 2],
                action="override",
                final_action="deny",
                reason_code="missing_context",
            )
        else:
            services.record_decision(
                session, recommendation_id=rec.id, reviewer=reviewers[n % 2], action="escalate", note="?"
            )
    incremental = snapshot(session)
    dimensions = {row[2] for row in incremental}
    assert dimensions == {
        "model_version",
        "site",
        "reviewer",
        "reason_code",
        "confidence_decile",
        "segment.band",
        "action_pair",
    }
    assert sum(r[4] + r[5] + r[6] for r in incremental if r[2] == "model_version") == 12
    rollup.rebuild(session)
    session.commit()
    assert snapshot(session) == incremental
