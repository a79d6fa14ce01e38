"""Exceptions API: list and resolve through the same services as the UI."""

from __future__ import annotations

from flask import g, request
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.decision_exceptions import queries as exception_queries
from feedback.decision_exceptions import services as decision_exceptions
from feedback.models import EXCEPTION_KINDS, SEVERITIES
from feedback.params import Choice, Int, Text, parse_params
from feedback.permissions import Action
from feedback.schemas import ErrorOut, ExceptionListOut, ExceptionOut, ExceptionResolveIn
from feedback.validation import parse
from webapp.api.blueprint import bp, json_body
from webapp.api.openapi import documented
from webapp.api.serialize import exception_out
from webapp.extensions import db

LIST_QUERY = (
    Choice("status", exception_queries.EXCEPTION_FILTER_STATUSES, default="active"),
    Choice("kind", EXCEPTION_KINDS),
    Choice("severity", SEVERITIES),
    Text("site"),
    Int("limit", 1, 1000, default=100),
)


@bp.get("/exceptions")
@documented(
    "get",
    "/api/v1/exceptions",
    "Exceptions, soonest SLA first (status: active, open, in_progress, resolved, all)",
    query=LIST_QUERY,
    responses={200: ("the exceptions", ExceptionListOut), 403: ("role may not handle exceptions", ErrorOut)},
)
def list_exceptions() -> ResponseReturnValue:
    """List exceptions under a filter."""
    permissions.require(g.user, Action.HANDLE_EXCEPTIONS)
    args = parse_params(request.args, LIST_QUERY)
    flt = exception_queries.ExceptionFilter(
        status=args["status"], kind=args["kind"], severity=args["severity"], site=args["site"]
    )
    items = exception_queries.exception_list(db.session, flt, limit=args["limit"])
    return {"items": [exception_out(e, g.user) for e in items]}


@bp.post("/exceptions/<int:exception_id>/resolve")
@documented(
    "post",
    "/api/v1/exceptions/{exception_id}/resolve",
    "Resolve an exception with the final action",
    body=ExceptionResolveIn,
    path_params={"exception_id": "id"},
    responses={
        200: ("resolved", ExceptionOut),
        403: ("role may not handle exceptions", ErrorOut),
        404: ("unknown id", ErrorOut),
        409: (
            "already resolved or assigned to someone else, or a final_action the model lacks (`not_allowed`)",
            ErrorOut,
        ),
        422: ("invalid resolution", ErrorOut),
    },
)
def resolve(exception_id: int) -> ResponseReturnValue:
    """Resolve through the shared service."""
    permissions.require(g.user, Action.HANDLE_EXCEPTIONS)  # before reading the body
    spec = parse(ExceptionResolveIn, json_body())
    exc = decision_exceptions.resolve_exception(
        db.session, g.user, exception_id=exception_id, final_action=spec.final_action, note=spec.note
    )
    return exception_out(exc, g.user)
