"""Analytics API: every number the dashboards show."""

from __future__ import annotations

from flask import g, request
from flask.typing import ResponseReturnValue

from feedback import reports
from feedback.errors import PermissionDenied
from feedback.schemas import ErrorOut, ResolutionOut
from webapp.api import bp
from webapp.api.openapi import documented
from webapp.extensions import db

ANALYTICS_ROLES = ("exception_handler", "model_owner", "analyst", "admin")


@bp.get("/analytics/exceptions/resolution")
@documented(
    "get",
    "/api/v1/analytics/exceptions/resolution",
    "Time to resolve exceptions (Kaplan–Meier, open ones censored now) and SLA breach rate, by kind, severity or site",
    query={"model": "string", "by": "string", "days": "integer"},
    responses={
        200: ("one row per group plus 'all'", ResolutionOut),
        404: ("unknown model", ErrorOut),
        422: ("bad parameter", ErrorOut),
    },
)
def exception_resolution() -> ResponseReturnValue:
    """Resolution-time rows for a model (or all models)."""
    if g.user.role not in ANALYTICS_ROLES:
        raise PermissionDenied(f"the {g.user.role} role may not read analytics")
    report = reports.resolution_report(
        db.session,
        model_key=request.args.get("model") or None,
        by=request.args.get("by", "kind"),
        days=request.args.get("days", type=int),
    )
    return {"rows": reports.records(report.table)}
