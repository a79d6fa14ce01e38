"""Ingest recommendations, read them, and countersign them from other tools."""

from __future__ import annotations

from flask import g
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.accounts import services as accounts
from feedback.permissions import Action
from feedback.review import decisions
from feedback.review import ingest as review_ingest
from feedback.review import queries as review_queries
from feedback.schemas import (
    DecisionIn,
    DecisionOut,
    ErrorOut,
    IngestAnswer,
    IngestedItem,
    RecommendationIn,
    RecommendationOut,
)
from feedback.validation import parse
from webapp.api.blueprint import bp, json_body, not_found, store_batch
from webapp.api.openapi import documented
from webapp.api.serialize import decision_out, recommendation_out
from webapp.extensions import db

BATCH = 1000


@bp.post("/recommendations")
@documented(
    "post",
    "/api/v1/recommendations",
    "Ingest one recommendation or a batch of up to 1,000 (all or nothing, idempotent on model + external_id)",
    body=RecommendationIn,
    batch=BATCH,
    responses={
        201: ("stored (a batch answers IngestOut; a single object answers IngestedItem)", IngestAnswer),
        200: ("every item was already stored with the same payload", IngestAnswer),
        403: ("role may not ingest, or an item is for a model this user does not own", ErrorOut),
        404: ("an item names a model or version that is not registered (`unknown_reference`)", ErrorOut),
        409: (
            "an external_id is already stored with a different payload (`conflict`), or repeated in the batch"
            " with a different one (`repeated_in_request`), or a recommended_action the model lacks (`not_allowed`)",
            ErrorOut,
        ),
        422: ("invalid items; each bad field is named as [index].field", ErrorOut),
    },
)
def ingest() -> ResponseReturnValue:
    """Store recommendations sent by a model service."""
    permissions.require(g.user, Action.SEND_CASES)
    return store_batch(
        RecommendationIn,
        lambda items: review_ingest.ingest_recommendations(db.session, accounts.actor_of(g.user), items=items),
        lambda r: IngestedItem(id=r.id, external_id=r.external_id, created=r.created).model_dump(),
    )


@bp.get("/recommendations/<int:recommendation_id>")
@documented(
    "get",
    "/api/v1/recommendations/{recommendation_id}",
    "A recommendation with its decision, if any",
    path_params={"recommendation_id": "id"},
    responses={200: ("the recommendation", RecommendationOut), 404: ("unknown id", ErrorOut)},
)
def get_recommendation(recommendation_id: int) -> ResponseReturnValue:
    """Read one recommendation."""
    rec = review_queries.case_detail(db.session, recommendation_id)
    if rec is None:
        not_found(f"recommendation {recommendation_id}")
    return recommendation_out(rec, g.user)


@bp.post("/recommendations/<int:recommendation_id>/decision")
@documented(
    "post",
    "/api/v1/recommendations/{recommendation_id}/decision",
    "Countersign a recommendation (the same rules as the review screen)",
    body=DecisionIn,
    path_params={"recommendation_id": "id"},
    responses={
        201: ("recorded", DecisionOut),
        403: ("role may not decide", ErrorOut),
        404: ("unknown id", ErrorOut),
        409: (
            "already decided, or another reviewer holds the case; or a final_action or reason_code the case's"
            " model does not allow, or one the case's state rules out (`not_allowed`)",
            ErrorOut,
        ),
        422: ("invalid decision", ErrorOut),
    },
)
def decide(recommendation_id: int) -> ResponseReturnValue:
    """Record a decision through the shared service."""
    permissions.require(g.user, Action.REVIEW)  # before reading the body
    spec = parse(DecisionIn, json_body())
    decision = decisions.record_decision(
        db.session,
        g.user,
        recommendation_id=recommendation_id,
        action=spec.action,
        final_action=spec.final_action,
        reason_code=spec.reason_code,
        note=spec.note,
        channel="api",
    )
    return decision_out(decision, g.user).model_dump(mode="json"), 201
