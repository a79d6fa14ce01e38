"""The demo's shadow challenger: claims v3 scores the same cases as v2 without reviewers seeing it.

v3 is better than v2 on motor claims, no different on home claims and worse on travel claims,
over enough decided cases with outcomes that the challenger page shows each by product.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit
from feedback.catalog import services as catalog
from feedback.challengers import bulk as challenger_bulk
from feedback.db import valid_json
from feedback.models import Decision, Model, ModelVersion, Recommendation
from feedback.outcomes import queries as outcome_queries
from feedback.schemas import ChallengerIn, ModelVersionIn

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
    v3 = catalog.add_model_version(session, actor, model_key=claims.key, spec=ModelVersionIn(version="v3"))
    v3.created_at = now - timedelta(days=SHADOW_DAYS)  # registered when its shadow run began, in the story
    cases = session.execute(
        select(
            Recommendation.id,
            Recommendation.recommended_action,
            Recommendation.confidence,
            valid_json(Recommendation.segment)["product"].as_string(),
            outcome_queries.first_label(),
        )
        .join(Decision, Decision.recommendation_id == Recommendation.id)
        .where(
            Recommendation.model_version_id == v2.id,
            Recommendation.recommended_action.is_not(None),
            Recommendation.created_at >= now - timedelta(days=SHADOW_DAYS),
        )
        .order_by(Recommendation.id)
    ).all()
    shadowed = []
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
        shadowed.append(challenger_bulk.Shadowed(rec_id, item, received_at=now - timedelta(days=1)))
    challenger_bulk.record_history(session, actor, version_id=v3.id, shadowed=shadowed)
    session.commit()
    progress(f"challenger: claims v3 in shadow scored {len(shadowed)} of v2's decided cases")
    return len(shadowed)
