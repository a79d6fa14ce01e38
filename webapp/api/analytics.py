"""Analytics API: every number the dashboards show."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
from flask import g, request
from flask.typing import ResponseReturnValue

from analytics import overrides
from feedback import permissions
from feedback.catalog.services import get_model
from feedback.decision_exceptions import reports as exception_reports
from feedback.errors import NotFound
from feedback.frames import records
from feedback.overrides import queries as override_queries
from feedback.overrides import reports as override_reports
from feedback.params import Choice, Day, Int, ModelKey, Text, Version, parse_params
from feedback.permissions import Action
from feedback.schemas import (
    AlertListOut,
    AlertOut,
    ComparisonOut,
    ErrorOut,
    OverridesOut,
    ResolutionOut,
    RowsOut,
)
from webapp.api.blueprint import bp
from webapp.api.openapi import documented
from webapp.extensions import analytics_session, db

RESOLUTION_QUERY = (
    ModelKey(required=False),
    Choice("by", exception_reports.RESOLUTION_GROUPS, default="kind"),
    Int("days", 1, exception_reports.MAX_DAYS),
)


@bp.get("/analytics/exceptions/resolution")
@documented(
    "get",
    "/api/v1/analytics/exceptions/resolution",
    "Time to resolve exceptions (Kaplan–Meier, open ones censored now) and SLA breach rate, by kind, severity or site",
    query=RESOLUTION_QUERY,
    responses={
        200: ("one row per group plus 'all'", ResolutionOut),
        404: ("unknown model", ErrorOut),
        422: ("bad parameter", ErrorOut),
    },
)
def exception_resolution() -> ResponseReturnValue:
    """Resolution-time rows for a model (or all models)."""
    permissions.require(g.user, Action.READ_RESOLUTION)
    args = parse_params(request.args, RESOLUTION_QUERY)
    report = exception_reports.resolution_report(
        analytics_session(), model_key=args["model"], by=args["by"], days=args["days"]
    )
    return {"rows": records(report.table)}


PERIOD_QUERY = (
    ModelKey(),
    Day("from", description="first day, inclusive"),
    Day("to", description="last day, inclusive"),
)
OVERRIDES_QUERY = (
    *PERIOD_QUERY,
    Text("by", 80, pattern=override_queries.BREAKDOWN_PATTERN, hint=override_queries.BREAKDOWN_HINT),
    Version(),
)
COMPARE_QUERY = (*PERIOD_QUERY, Version("a", required=True), Version("b", required=True))
MATRIX_QUERY = (*PERIOD_QUERY, Version())
ACCURACY_QUERY = (*PERIOD_QUERY, Choice("by", override_reports.ACCURACY_GROUPS, default="model_version"))


def _period(args: dict[str, object]) -> dict[str, str | None]:
    """Model and dates, as the reports take them."""
    return {
        "key": str(args["model"]),
        "date_from": str(args["from"]) if args["from"] else None,
        "date_to": str(args["to"]) if args["to"] else None,
    }


@bp.get("/analytics/overrides")
@documented(
    "get",
    "/api/v1/analytics/overrides",
    "Override rate with Wilson 95% intervals by model_version, site, reason_code, reviewer, segment.ATTR or "
    "confidence_decile; each group tested against the rest",
    query=OVERRIDES_QUERY,
    responses={
        200: ("rows and the total", OverridesOut),
        404: ("unknown model", ErrorOut),
        422: ("bad parameter", ErrorOut),
    },
)
def overrides_by() -> ResponseReturnValue:
    """Override rates by one dimension."""
    permissions.require(g.user, Action.READ_MODELS)
    args = parse_params(request.args, OVERRIDES_QUERY)
    report = override_reports.breakdown(
        analytics_session(),
        by=args["by"] or "model_version",
        version=args["version"],
        viewer=g.user,  # reviewers by name for admins, else by pseudonym
        **_period(args),
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
    query=COMPARE_QUERY,
    responses={200: ("the comparison", ComparisonOut), 422: ("bad parameter", ErrorOut)},
)
def compare_versions() -> ResponseReturnValue:
    """Version a against version b."""
    permissions.require(g.user, Action.READ_MODELS)
    args = parse_params(request.args, COMPARE_QUERY)
    report = override_reports.breakdown(analytics_session(), by="model_version", **_period(args))
    rows = {r["key"]: r for r in records(report.table)}
    fields = {
        name: f"no accepted or overridden decisions for version {args[name]!r}"
        for name in ("a", "b")
        if args[name] not in rows or not rows[args[name]]["accepts"] + rows[args[name]]["overrides"]
    }
    if fields:
        raise NotFound("nothing to compare", fields)
    a, b = rows[args["a"]], rows[args["b"]]
    result = overrides.compare_rates(
        a["key"], a["overrides"], a["accepts"] + a["overrides"], b["key"], b["overrides"], b["accepts"] + b["overrides"]
    )
    return ComparisonOut(**asdict(result)).model_dump()


@bp.get("/analytics/action-matrix")
@documented(
    "get",
    "/api/v1/analytics/action-matrix",
    "Decisions per recommended action and final action ('(escalated)' while an exception is open)",
    query=MATRIX_QUERY,
    responses={200: ("one row per cell", RowsOut), 422: ("bad parameter", ErrorOut)},
)
def action_matrix() -> ResponseReturnValue:
    """Recommended -> final action counts."""
    permissions.require(g.user, Action.READ_MODELS)
    args = parse_params(request.args, MATRIX_QUERY)
    _, w = override_reports.model_window(analytics_session(), version=args["version"], **_period(args))
    return {"rows": override_queries.action_matrix(analytics_session(), w)}


@bp.get("/analytics/accuracy")
@documented(
    "get",
    "/api/v1/analytics/accuracy",
    "Who was right: AI and final-decision accuracy against outcomes, by model_version, reason_code or reviewer",
    query=ACCURACY_QUERY,
    responses={200: ("one row per group", RowsOut), 422: ("bad parameter", ErrorOut)},
)
def accuracy_by() -> ResponseReturnValue:
    """Accuracy rows."""
    permissions.require(g.user, Action.READ_MODELS)
    args = parse_params(request.args, ACCURACY_QUERY)
    frame = override_reports.who_was_right(analytics_session(), by=args["by"], viewer=g.user, **_period(args))
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
    permissions.require(g.user, Action.READ_MODELS)
    report = override_reports.overview(analytics_session(), **_period(parse_params(request.args, PERIOD_QUERY)))
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
    permissions.require(g.user, Action.READ_MODELS)
    period = _period(parse_params(request.args, PERIOD_QUERY))
    return {"rows": records(override_reports.reviewers(analytics_session(), viewer=g.user, **period))}


ALERTS_QUERY = (ModelKey(),)


@bp.get("/alerts")
@documented(
    "get",
    "/api/v1/alerts",
    "Guardrail alerts of a model, open ones first",
    query=ALERTS_QUERY,
    responses={200: ("the alerts", AlertListOut), 404: ("unknown model", ErrorOut)},
)
def alerts() -> ResponseReturnValue:
    """A model's alerts."""
    permissions.require(g.user, Action.READ_MODELS)
    model = get_model(db.session, parse_params(request.args, ALERTS_QUERY)["model"])
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
