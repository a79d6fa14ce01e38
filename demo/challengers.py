"""The demo's shadow challenger: claims v3 scores the same cases as v2 without reviewers seeing it.

v3 is better than v2 on motor claims, no different on home claims and worse on travel claims,
over enough decided cases with outcomes that the challenger page shows each by product.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedback import audit, bulk
from feedback.audit import Change
from feedback.challengers.services import challenger_hash
from feedback.db import valid_json
from feedback.models import ChallengerRecommendation, Decision, Model, ModelVersion, Outcome, Recommendation
from feedback.schemas import ChallengerIn

# How often v3 names the true outcome, by product: v2 is right about 91% of the time on each, so v3 is
# better on motor, no different on home and worse on travel.
RIGHT_BY_PRODUCT = {"motor": 0.96, "home": 0.91, "travel": 0.6}
SHADOW_DAYS = 40  # v3 has scored v2's cases for this long


def seed_challenger(
    session: Session,
    actor: audit.Actor,
    claims: Model,
    v2: ModelVersion,
    now: datetime,
    rng: random.Random,
    progress: Callable[[str], None],
) -> int:
    """Register claims v3 in shadow and store its recommendations for v2's recent decided cases; return how many."""
    v3 = ModelVersion(model_id=claims.id, version="v3", stage="shadow", created_at=now - timedelta(days=SHADOW_DAYS))
    session.add(v3)
    session.flush()
    first = (
        select(Outcome.recommendation_id, func.min(Outcome.id).label("outcome_id"))
        .where(Outcome.label.is_not(None))
        .group_by(Outcome.recommendation_id)
        .subquery()
    )
    cases = session.execute(
        select(
            Recommendation.id,
            Recommendation.recommended_action,
            Recommendation.confidence,
            valid_json(Recommendation.segment)["product"].as_string(),
            Outcome.label,
        )
        .join(Decision, Decision.recommendation_id == Recommendation.id)
        .outerjoin(first, first.c.recommendation_id == Recommendation.id)
        .outerjoin(Outcome, Outcome.id == first.c.outcome_id)
        .where(
            Recommendation.model_version_id == v2.id,
            Recommendation.recommended_action.is_not(None),
            Recommendation.created_at >= now - timedelta(days=SHADOW_DAYS),
        )
        .order_by(Recommendation.id)
    ).all()
    rows = []
    for rec_id, champion, confidence, product, truth in cases:
        if truth is not None and product in RIGHT_BY_PRODUCT:
            right = rng.random() < RIGHT_BY_PRODUCT[product]
            action = truth if right else rng.choice([a for a in claims.actions if a != truth])
        else:  # without an outcome, v3 all but copies v2
            action = champion if rng.random() < 0.97 else rng.choice([a for a in claims.actions if a != champion])
        item = ChallengerIn.model_validate(
            {
                "model_version": "v3",
                "recommended_action": action,
                "confidence": round(min(max(confidence + rng.gauss(0, 0.05), 0.0), 1.0), 3),
                "explanation": {"summary": f"v3 shadow score: {action}", "factors": []},
            }
        )
        rows.append(
            {
                "recommendation_id": rec_id,
                "model_id": claims.id,
                "model_version_id": v3.id,
                "recommended_action": item.recommended_action,
                "confidence": item.confidence,
                "explanation": item.explanation.model_dump(mode="json"),
                "payload_hash": challenger_hash(item),
                "created_at": now - timedelta(days=1),
            }
        )
    bulk.insert_returning_ids(session, ChallengerRecommendation, rows)
    audit.record(
        session,
        actor,
        [
            Change(
                "model_version.registered",
                "model_version",
                v3.id,
                {"model": claims.key, "version": "v3", "stage": "shadow"},
            ),
            Change("challenger.seeded", "model_version", v3.id, {"cases": len(rows)}),
        ],
    )
    session.commit()
    progress(f"challenger: claims v3 in shadow scored {len(rows)} of v2's decided cases")
    return len(rows)
