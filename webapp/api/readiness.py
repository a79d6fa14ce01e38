"""Readiness API: a version's scorecard, and its plan registered (POST) or changed as a new plan version (PUT)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.accounts.services import actor_of
from feedback.errors import ValidationFailed
from feedback.models.readiness import ReadinessPlan
from feedback.permissions import Action
from feedback.readiness import queries, reports
from feedback.readiness import services as plan_services
from feedback.schemas import (
    ErrorOut,
    ReadinessOut,
    ReadinessPlanChangeIn,
    ReadinessPlanIn,
    ReadinessPlanListOut,
    ReadinessPlanOut,
)
from feedback.schemas.readiness import criterion_field
from feedback.validation import parse
from webapp.api.blueprint import bp, json_body
from webapp.api.openapi import documented
from webapp.extensions import db

PATH = "/api/v1/models/{key}/versions/{version}/readiness"
PARAMS = {"key": "key", "version": "key"}  # a version name has the shape of a key


def parse_plan(schema: type[ReadinessPlanIn]) -> ReadinessPlanIn:
    """The body as a plan, or 422 naming each bad field as `criteria[1].threshold`."""
    try:
        return parse(schema, json_body())
    except ValidationFailed as exc:
        exc.fields = {criterion_field(key): problem for key, problem in exc.fields.items()}
        raise


def criteria_of(spec: ReadinessPlanIn) -> list[plan_services.Criterion]:
    """The checked body's criteria, typed for the service."""
    return [plan_services.Criterion(**criterion.model_dump()) for criterion in spec.criteria]


def plan_out(plan: ReadinessPlan, key: str, version: str) -> dict[str, Any]:
    """A plan version as the API shows it."""
    return ReadinessPlanOut(
        model=key,
        version=version,
        plan_version=plan.plan_version,
        criteria=plan.criteria,
        reason=plan.reason,
        created_at=plan.created_at,
    ).model_dump(mode="json")


@bp.get("/models/<key>/versions/<version>/readiness")
@documented(
    "get",
    PATH,
    "A version's readiness: each criterion of the plan in force, and the plan, read go, kill or keep_collecting "
    "on anytime-valid intervals (plan_version null: no plan registered)",
    path_params=PARAMS,
    responses={
        200: ("the scorecard", ReadinessOut),
        403: ("role may not read models", ErrorOut),
        404: ("unknown model or version", ErrorOut),
    },
)
def readiness_scorecard(key: str, version: str) -> ResponseReturnValue:
    """Evaluate the plan now (reads only: nothing is stored)."""
    permissions.require(g.user, Action.READ_MODELS)
    found = queries.version_by_key(db.session, key, version)
    return ReadinessOut.model_validate(reports.scorecard(db.session, found).as_api()).model_dump(mode="json")


@bp.get("/models/<key>/versions/<version>/readiness/plans")
@documented(
    "get",
    PATH + "/plans",
    "Every version of a version's readiness plan, newest first, with the reason for each change",
    path_params=PARAMS,
    responses={
        200: ("the plan versions", ReadinessPlanListOut),
        403: ("role may not read models", ErrorOut),
        404: ("unknown model or version", ErrorOut),
    },
)
def plan_versions(key: str, version: str) -> ResponseReturnValue:
    """The plan's history."""
    permissions.require(g.user, Action.READ_MODELS)
    found = queries.version_by_key(db.session, key, version)
    return {"items": [plan_out(p, key, version) for p in queries.plan_history(db.session, found.id)]}


@bp.post("/models/<key>/versions/<version>/readiness/plan")
@documented(
    "post",
    PATH + "/plan",
    "Register a version's readiness plan (before its pilot): each criterion a metric, direction, threshold and "
    "minimum sample. A kill verdict then pauses the version through its readiness guardrail.",
    body=ReadinessPlanIn,
    path_params=PARAMS,
    responses={
        201: ("registered", ReadinessPlanOut),
        403: ("only the model's owners or an admin", ErrorOut),
        404: ("unknown model or version", ErrorOut),
        409: (
            "a plan is already registered (change it with PUT), a criterion repeated, or an experiment_id "
            "naming no experiment or one of another model",
            ErrorOut,
        ),
        422: ("invalid fields, each named (e.g. criteria[1].threshold)", ErrorOut),
    },
)
def register_plan(key: str, version: str) -> ResponseReturnValue:
    """Register the first plan."""
    permissions.require(g.user, Action.CHANGE_MODEL)
    found = queries.version_by_key(db.session, key, version)
    spec = parse_plan(ReadinessPlanIn)
    plan = plan_services.register_plan(
        db.session, actor_of(g.user), version_id=found.id, criteria=criteria_of(spec), reason=spec.reason
    )
    return plan_out(plan, key, version), 201


@bp.put("/models/<key>/versions/<version>/readiness/plan")
@documented(
    "put",
    PATH + "/plan",
    "Record a version's readiness plan: the first (201), or the next plan version (200), with its reason in "
    "the audit trail; earlier versions stay, as do the verdicts that used them",
    body=ReadinessPlanChangeIn,
    path_params=PARAMS,
    responses={
        200: ("the new plan version", ReadinessPlanOut),
        201: ("the first plan version", ReadinessPlanOut),
        403: ("only the model's owners or an admin", ErrorOut),
        404: ("unknown model or version", ErrorOut),
        409: ("a criterion repeated, or an experiment_id naming no experiment or one of another model", ErrorOut),
        422: ("invalid fields, each named (e.g. criteria[1].threshold); a change needs a reason", ErrorOut),
    },
)
def change_plan(key: str, version: str) -> ResponseReturnValue:
    """Record the next plan version (or the first: PUT names the plan, whether or not it exists yet)."""
    permissions.require(g.user, Action.CHANGE_MODEL)
    found = queries.version_by_key(db.session, key, version)
    spec = parse_plan(ReadinessPlanChangeIn)
    record = plan_services.change_plan if queries.latest_plan(db.session, found.id) else plan_services.register_plan
    plan = record(db.session, actor_of(g.user), version_id=found.id, criteria=criteria_of(spec), reason=spec.reason)
    return plan_out(plan, key, version), 201 if plan.plan_version == 1 else 200
