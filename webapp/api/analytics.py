"""Analytics API: every number the dashboards show."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
from flask import g, request
from flask.typing import ResponseReturnValue

from analytics import overrides
from feedback import override_queries, override_reports, reports
from feedback.errors import PermissionDenied, ValidationFailed
from feedback.frames import records
from feedback.schemas import (
    AlertListOut,
    AlertOut,
    ComparisonOut,
    ErrorOut,
    OverridesOut,
    ResolutionOut,
    RowsOut,
)
from feedback.services import get_model
from webapp.api import bp
from webapp.api.openapi import documented
from webapp.extensions import analytics_session, db

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
        analytics_session(),
        model_key=request.args.get("model") or None,
        by=request.args.get("by", "kind"),
        days=request.args.get("days", type=int),
    )
    return {"rows": records(report.table)}


OVERRIDE_ROLES = ("model_owner", "analyst", "admin")


def _require(roles: tuple[str, ...]) -> None:
    """Analytics are for these roles only."""
    if g.user.role not in roles:
        raise PermissionDenied(f"the {g.user.role} role may not read these analytics")


def _period() -> dict[str, str | None]:
    """Model, dates and version from the query string."""
    args = request.args
    if not args.get("model"):
        raise ValidationFailed("a model is required", {"model": "name the model by its key"})
    return {"key": args["model"], "date_from": args.get("from") or None, "date_to": args.get("to") or None}


PERIOD_QUERY = {"model": "string", "from": "string", "to": "string"}


@bp.get("/analytics/overrides")
@documented(
    "get",
    "/api/v1/analytics/overrides",
    "Override rate with Wilson 95% intervals by model_version, site, reason_code, reviewer, segment.ATTR or "
    "confidence_decile; each group tested against the rest",
    query={**PERIOD_QUERY, "by": "string", "version": "string"},
    responses={
        200: ("rows and the total", OverridesOut),
        404: ("unknown model", ErrorOut),
        422: ("bad parameter", ErrorOut),
    },
)
def overrides_by() -> ResponseReturnValue:
    """Override rates by one dimension."""
    _require(OVERRIDE_ROLES)
    report = override_reports.breakdown(
        analytics_session(),
        by=request.args.get("by", "model_version"),
        version=request.args.get("version") or None,
        viewer=g.user,  # reviewers by name for admins, else by pseudonym
        **_period(),
    )
    return {
        "rows": records(report.table),
        "total": records(pd.DataFrame([report.total]))[0],
    }


@bp.get("/analytics/overrides/compare")
@documented(
    "get",
    "/api/v1/analytics/overrides/compare",
    "Compare the override rate of two versions: difference with Newcombe's interval and a two-proportion z-test",
    query={**PERIOD_QUERY, "a": "string", "b": "string"},
    responses={200: ("the comparison", ComparisonOut), 422: ("bad parameter", ErrorOut)},
)
def compare_versions() -> ResponseReturnValue:
    """Version a against version b."""
    _require(OVERRIDE_ROLES)
    report = override_reports.breakdown(analytics_session(), by="model_version", **_period())
    rows = {r["key"]: r for r in records(report.table)}
    fields = {
        name: f"no accepted or overridden decisions for version {request.args.get(name)!r}"
        for name in ("a", "b")
        if request.args.get(name) not in rows
        or not rows[request.args[name]]["accepts"] + rows[request.args[name]]["overrides"]
    }
    if fields:
        raise ValidationFailed("unknown versions", fields)
    a, b = rows[request.args["a"]], rows[request.args["b"]]
    result = overrides.compare_rates(
        a["key"], a["overrides"], a["accepts"] + a["overrides"], b["key"], b["overrides"], b["accepts"] + b["overrides"]
    )
    return ComparisonOut(**asdict(result)).model_dump()


@bp.get("/analytics/action-matrix")
@documented(
    "get",
    "/api/v1/analytics/action-matrix",
    "Decisions per recommended action and final action ('(escalated)' while an exception is open)",
    query={**PERIOD_QUERY, "version": "string"},
    responses={200: ("one row per cell", RowsOut), 422: ("bad parameter", ErrorOut)},
)
def action_matrix() -> ResponseReturnValue:
    """Recommended -> final action counts."""
    _require(OVERRIDE_ROLES)
    _, w = override_reports.model_window(analytics_session(), version=request.args.get("version") or None, **_period())
    return {"rows": override_queries.action_matrix(analytics_session(), w)}


@bp.get("/analytics/accuracy")
@documented(
    "get",
    "/api/v1/analytics/accuracy",
    "Who was right: AI and final-decision accuracy against outcomes, by model_version, reason_code or reviewer",
    query={**PERIOD_QUERY, "by": "string"},
    responses={200: ("one row per group", RowsOut), 422: ("bad parameter", ErrorOut)},
)
def accuracy_by() -> ResponseReturnValue:
    """Accuracy rows."""
    _require(OVERRIDE_ROLES)
    by = request.args.get("by", "model_version")
    frame = override_reports.who_was_right(analytics_session(), by=by, viewer=g.user, **_period())
    return {"rows": records(frame)}


@bp.get("/analytics/control-chart")
@documented(
    "get",
    "/api/v1/analytics/control-chart",
    "Daily override rate per version with p-chart limits from each version's first 14 days, and signals",
    query=PERIOD_QUERY,
    responses={200: ("one row per version and day", RowsOut), 422: ("bad parameter", ErrorOut)},
)
def control_chart() -> ResponseReturnValue:
    """p-chart rows."""
    _require(OVERRIDE_ROLES)
    report = override_reports.overview(analytics_session(), **_period())
    return {"rows": records(report.chart)}


@bp.get("/analytics/reviewers")
@documented(
    "get",
    "/api/v1/analytics/reviewers",
    "Per reviewer: accept rate (Wilson interval), override rate and median seconds to decide",
    query=PERIOD_QUERY,
    responses={200: ("one row per reviewer", RowsOut), 422: ("bad parameter", ErrorOut)},
)
def reviewer_rows() -> ResponseReturnValue:
    """Reviewer rows."""
    _require(OVERRIDE_ROLES)
    return {"rows": records(override_reports.reviewers(analytics_session(), viewer=g.user, **_period()))}


@bp.get("/alerts")
@documented(
    "get",
    "/api/v1/alerts",
    "Guardrail alerts of a model, open ones first",
    query={"model": "string"},
    responses={200: ("the alerts", AlertListOut), 404: ("unknown model", ErrorOut)},
)
def alerts() -> ResponseReturnValue:
    """A model's alerts."""
    _require(OVERRIDE_ROLES)
    model = get_model(db.session, _period()["key"] or "")
    return {
        "items": [
            AlertOut(
                id=a.id,
                model_version=a.model_version.version,
                opened_at=a.opened_at,
                value=a.value,
                message=a.message,
                status=a.status,
                paused_from=a.paused_from,
            ).model_dump(mode="json")
            for a in override_reports.model_alerts(db.session, model)
        ]
    }
