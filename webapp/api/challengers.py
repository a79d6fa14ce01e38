"""Shadow challengers: send them for a stored case, and compare them with the champion."""

from __future__ import annotations

from flask import g, request
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.accounts.services import actor_of
from feedback.catalog.services import get_model
from feedback.challengers import reports
from feedback.challengers import services as challenger_services
from feedback.params import Day, ModelKey, Text, Version, parse_params
from feedback.permissions import Action
from feedback.schemas import ChallengerAnswer, ChallengerIn, ChallengersOut, ErrorOut, StoredChallengerOut
from webapp.api.blueprint import bp, store_batch
from webapp.api.openapi import documented
from webapp.extensions import analytics_session, db

CHALLENGERS_QUERY = (
    ModelKey(),
    Version(),
    Text("by", 80, pattern=reports.BY_PATTERN, hint=reports.BY_HINT, description="segment.ATTRIBUTE to break down by"),
    Day("from", description="only cases decided on this UTC day or later (default: from the first)"),
    Day("to", description="only cases decided on this UTC day or earlier (default: to now; before `from`: none)"),
)


@bp.post("/recommendations/<int:recommendation_id>/challengers")
@documented(
    "post",
    "/api/v1/recommendations/{recommendation_id}/challengers",
    "Store shadow recommendations of other versions of the case's model (never shown to reviewers);"
    " one object or an array, all or nothing, idempotent on (case, model_version)",
    body=ChallengerIn,
    batch=1000,  # store_batch's limit (MAX_BATCH), as for recommendations
    path_params={"recommendation_id": "id"},
    responses={
        201: ("stored (an array answers items; one object answers the stored item)", ChallengerAnswer),
        200: ("every challenger was already stored with the same payload", ChallengerAnswer),
        403: ("only the model's owners and admins may send its challengers", ErrorOut),
        404: ("unknown case, or a model_version the case's model lacks (`unknown_reference`)", ErrorOut),
        409: (
            "a version already stored for this case with a different payload (`conflict`), the case's own version"
            " or an action the model lacks (`not_allowed`), or a version repeated with a different payload"
            " (`repeated_in_request`)",
            ErrorOut,
        ),
        422: ("invalid challengers; each bad field is named as [index].field", ErrorOut),
    },
)
def add_challengers(recommendation_id: int) -> ResponseReturnValue:
    """Store challengers for one case."""
    permissions.require(g.user, Action.SEND_CASES)  # before reading the body
    return store_batch(
        ChallengerIn,
        lambda items: challenger_services.add_challengers(
            db.session, actor_of(g.user), recommendation_id=recommendation_id, items=items
        ),
        lambda r: StoredChallengerOut(id=r.id, model_version=r.model_version, created=r.created).model_dump(),
    )


@bp.get("/analytics/challengers")
@documented(
    "get",
    "/api/v1/analytics/challengers",
    "Each challenger against the champion on the same decided cases: agreement with the reviewer's final"
    " decision, would-be override rate and accuracy against outcomes with Wilson 95% intervals, and McNemar's"
    " test (exact binomial below 25 discordant pairs, continuity-corrected chi-square from there); rows for all"
    " decisions and for unaided ones, overall and by segment",
    query=CHALLENGERS_QUERY,
    responses={
        200: ("one row per challenger version (and segment), for all and for unaided decisions", ChallengersOut),
        404: ("unknown model or version", ErrorOut),
        422: ("bad parameter", ErrorOut),
    },
)
def challenger_analytics() -> ResponseReturnValue:
    """Challenger rows for a model."""
    permissions.require(g.user, Action.READ_MODELS)
    args = parse_params(request.args, CHALLENGERS_QUERY)
    session = analytics_session()
    model = get_model(session, args["model"])
    result = reports.comparison(session, model, args["version"], args["by"], since=args["from"], until=args["to"])
    return ChallengersOut(
        model=model.key,
        version=result.version,
        by=result.by,
        since=result.since,
        until=result.until,
        unaided_note=reports.UNAIDED_WHY,
        rows=result.rows,
    ).model_dump(mode="json")
