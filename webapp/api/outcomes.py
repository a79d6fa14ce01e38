"""Outcomes API: other systems report what actually happened."""

from __future__ import annotations

from flask import g
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.accounts import services as accounts
from feedback.outcomes import services as outcomes
from feedback.permissions import Action
from feedback.schemas import ErrorOut, OutcomeIn, OutcomesAnswer, OutcomeStored
from webapp.api.blueprint import bp, store_batch
from webapp.api.openapi import documented
from webapp.extensions import db


@bp.post("/outcomes")
@documented(
    "post",
    "/api/v1/outcomes",
    "Report outcomes: one object or a batch of up to 1,000 (all or nothing, idempotent on case + source)",
    body=OutcomeIn,
    batch=1000,
    responses={
        201: ("stored (a batch answers OutcomesOut; a single object answers OutcomeStored)", OutcomesAnswer),
        200: ("every item was already stored with the same content", OutcomesAnswer),
        403: ("role may not report outcomes, or a case is of a model this user does not own", ErrorOut),
        404: ("an item names a case that is not stored (`unknown_reference`)", ErrorOut),
        409: (
            "an outcome from this source is already stored with a different value (`conflict`), the batch repeats"
            " one with a different value (`repeated_in_request`), or a label the case's model lacks (`not_allowed`)",
            ErrorOut,
        ),
        422: ("invalid items; each bad field is named as [index].field", ErrorOut),
    },
)
def report_outcomes() -> ResponseReturnValue:
    """Store outcomes sent by another system."""
    permissions.require(g.user, Action.SEND_CASES)
    return store_batch(
        OutcomeIn,
        lambda items: outcomes.record_outcomes(db.session, accounts.actor_of(g.user), items=items),
        lambda s: OutcomeStored(
            id=s.id, recommendation_id=s.recommendation_id, source=s.source, created=s.created
        ).model_dump(),
    )
