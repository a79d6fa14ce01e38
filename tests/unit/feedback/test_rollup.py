"""The daily counts kept on every decision equal a recount from the decisions themselves."""

from __future__ import annotations

from sqlalchemy import select

from feedback.models import DecisionCount, Recommendation
from feedback.outcomes import services as outcomes
from feedback.overrides import rollup
from feedback.review import decisions
from feedback.schemas import OutcomeIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_user
from tests.helpers import snapshot


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
            decisions.record_decision(session, reviewers[n % 2], recommendation_id=rec.id, action="accept")
        elif kind == 1:
            decisions.record_decision(
                session,
                reviewers[n % 2],
                recommendation_id=rec.id,
                action="override",
                final_action="deny",
                reason_code="missing_context",
            )
        else:
            decisions.record_decision(session, reviewers[n % 2], recommendation_id=rec.id, action="escalate", note="?")
    # Outcomes arrive after most decisions; one arrives before its decision; a second source never double-counts.
    cases = session.scalars(select(Recommendation.id).order_by(Recommendation.id)).all()
    items = [
        {
            "recommendation_id": rec_id,
            "outcome": ("pay", "deny")[i % 2],
            "source": "ledger",
            "observed_at": "2026-01-01T00:00:00+00:00",
        }
        for i, rec_id in enumerate(cases[:8])
    ]
    items.append({**items[0], "source": "audit", "outcome": "deny"})
    outcomes.record_outcomes(session, TEST_ACTOR, items=[OutcomeIn.model_validate(i) for i in items])
    early = make_case(session, 99, segment={"band": "big"})
    outcomes.record_outcomes(
        session,
        TEST_ACTOR,
        items=[
            OutcomeIn.model_validate(
                {
                    "recommendation_id": early.id,
                    "outcome": "deny",
                    "source": "ledger",
                    "observed_at": "2026-01-01T00:00:00+00:00",
                }
            )
        ],
    )
    decisions.record_decision(
        session,
        reviewers[0],
        recommendation_id=early.id,
        action="override",
        final_action="deny",
        reason_code="policy_exception",
    )
    incremental = snapshot(session)
    totals = [r for r in incremental if r[2] == "model_version"]
    assert sum(r[7] for r in totals) == 7  # with_outcome: 9 labelled cases minus 2 escalated
    dimensions = {row[2] for row in incremental}
    assert dimensions == {
        "model_version",
        "site",
        "reviewer",
        "reason_code",
        "confidence_decile",
        "segment.band",
        "action_pair",
        "reviewer_speed",
        "site_speed",
    }
    assert sum(r[4] + r[5] + r[6] for r in incremental if r[2] == "model_version") == 13
    # Decisions counted as they happen spread over the shards; a recount puts everything in shard 0.
    assert len(set(session.scalars(select(DecisionCount.shard)))) > 1
    own = select(DecisionCount.shard).where(DecisionCount.dimension.in_(rollup.UNSHARDED))
    assert set(session.scalars(own)) == {0}  # a reviewer's own cells are never contended
    rollup.rebuild(session)
    session.commit()
    assert snapshot(session) == incremental
    assert set(session.scalars(select(DecisionCount.shard))) == {0}
