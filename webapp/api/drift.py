"""Drift API: each feature's drift for one version, current window against reference."""

from __future__ import annotations

from flask import g, request
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.drift import reports
from feedback.params import Day, ModelKey, Version, parse_params
from feedback.permissions import Action
from feedback.schemas import DriftOut, ErrorOut
from webapp.api.blueprint import bp
from webapp.api.openapi import documented
from webapp.extensions import analytics_session

DRIFT_QUERY = (
    ModelKey(),
    Version(required=True),
    Day("reference_from", description="first day of the reference window (default: the first 14 days in pilot)"),
    Day("reference_to", description="last day of the reference window, inclusive (one end alone: 14 days)"),
    Day("from", description="first day of the current window (default: 13 days before `to`)"),
    Day("to", description="last day of the current window, inclusive (default: today)"),
)


@bp.get("/analytics/drift")
@documented(
    "get",
    "/api/v1/analytics/drift",
    "Drift of every feature, the confidence and the recommended-action mix of one version: Wasserstein/std "
    "and KS for numbers, Jensen–Shannon and chi-square for categories; tests when either window has at most "
    "1000 values, distances (threshold 0.1) above",
    query=DRIFT_QUERY,
    responses={
        200: ("one row per feature, and the windows compared", DriftOut),
        404: ("unknown model or version", ErrorOut),
        422: ("bad parameter", ErrorOut),
    },
)
def drift_rows() -> ResponseReturnValue:
    """Drift rows of one version."""
    permissions.require(g.user, Action.READ_MODELS)
    args = parse_params(request.args, DRIFT_QUERY)
    session = analytics_session()
    _, version = reports.version_of(session, args["model"], args["version"])
    reference, current = reports.windows(session, version.id, *reports.requested(args))
    rows = reports.compare_windows(session, version.id, reference, current)
    return DriftOut(
        reference_from=reference[0] if reference else None,
        reference_to=reference[1] if reference else None,
        current_from=current[0],
        current_to=current[1],
        rows=reports.as_dicts(rows),
    ).model_dump(mode="json")
