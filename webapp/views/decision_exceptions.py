"""Exceptions: the handlers' queue, one exception's page, and the resolution-time dashboard."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, request, url_for

from feedback import exception_handling, permissions, queries, reports
from feedback.db import utcnow
from feedback.errors import Conflict, NotFound, ValidationFailed
from feedback.frames import records
from feedback.models import EXCEPTION_KINDS, SEVERITIES
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import analytics_session, db
from webapp.htmx import render_page_or_block

bp = Blueprint("decision_exceptions", __name__, url_prefix="/exceptions")

DASHBOARD_ROLES = ("exception_handler", "model_owner", "analyst", "admin")
STATUSES = ("active", "open", "in_progress", "resolved", "all")


def exception_filter() -> queries.ExceptionFilter:
    """The queue filter from the query string (unknown values are ignored)."""
    args = request.args
    status = args.get("status", "active")
    return queries.ExceptionFilter(
        status=status if status in STATUSES else "active",
        kind=args.get("kind") if args.get("kind") in EXCEPTION_KINDS else None,
        severity=args.get("severity") if args.get("severity") in SEVERITIES else None,
        site=args.get("site") or None,
        model_id=args.get("model", type=int) or None,
        assignee_id=g.user.id if args.get("mine") else None,
    )


@bp.get("")
@login_required(exception_handling.HANDLER_ROLES)
def index() -> tuple[str, int]:
    """The exceptions queue, ordered by SLA due time."""
    flt = exception_filter()
    page = max(request.args.get("page", 1, type=int), 1)
    now = utcnow()
    return render_page_or_block(
        "decision_exceptions/queue.html",
        "exception_table",
        flt=flt,
        page=page,
        now=now,
        mine=bool(request.args.get("mine")),
        items=queries.exception_list(db.session, flt, limit=50, offset=(page - 1) * 50),
        counts=queries.exception_counts(db.session, flt, now),
        kinds=EXCEPTION_KINDS,
        severities=SEVERITIES,
        statuses=STATUSES,
        sites=queries.exception_sites(db.session),
        models=queries.models_with_versions(db.session),
    )


def render_detail(exception_id: int, status: int = 200, **extra: Any) -> tuple[str, int]:
    """One exception's page, or its panel for htmx."""
    exc = queries.exception_detail(db.session, exception_id)
    if exc is None:
        abort(404)
    context: dict[str, Any] = {
        "exc": exc,
        "rec": exc.recommendation,
        "now": utcnow(),
        "handlers": exception_handling.handlers(db.session),
        "notice": None,
        "problem": None,
        "fields": {},
        "form": {},
    }
    context.update(extra)
    return render_page_or_block("decision_exceptions/detail.html", "exception_panel", status=status, **context)


@bp.get("/<int:exception_id>")
@login_required(exception_handling.HANDLER_ROLES)
def detail(exception_id: int) -> tuple[str, int]:
    """One exception with its case."""
    return render_detail(exception_id)


@bp.post("/<int:exception_id>/assign")
@login_required(exception_handling.HANDLER_ROLES)
def assign(exception_id: int) -> tuple[str, int]:
    """Claim, assign to someone else, or release."""
    choice = request.form.get("assignee", "")
    assignee_id = g.user.id if choice == "me" else (int(choice) if choice.isdigit() else None)
    try:
        exc = exception_handling.assign_exception(
            db.session, exception_id=exception_id, by=g.user, assignee_id=assignee_id
        )
    except NotFound:
        abort(404)
    except (Conflict, ValidationFailed) as err:
        return render_detail(exception_id, err.status, problem=err.message)
    notice = (
        f"Assigned to {permissions.person_name(g.user, exc.assignee)}."
        if exc.assignee
        else "Released: anyone can pick it up."
    )
    return render_detail(exception_id, notice=notice)


@bp.post("/<int:exception_id>/resolve")
@login_required(exception_handling.HANDLER_ROLES)
def resolve(exception_id: int) -> tuple[str, int]:
    """Resolve with a final action and a note."""
    form = request.form
    try:
        exc = exception_handling.resolve_exception(
            db.session,
            exception_id=exception_id,
            by=g.user,
            final_action=form.get("final_action", ""),
            note=form.get("note", ""),
        )
    except NotFound:
        abort(404)
    except ValidationFailed as err:
        return render_detail(exception_id, 422, problem=err.message, fields=err.fields, form=form.to_dict())
    except Conflict as err:
        return render_detail(exception_id, 409, problem=err.message)
    return render_detail(exception_id, notice=f"Resolved: {exc.resolution_action}.")


def report_args() -> dict[str, Any]:
    """Model, grouping and period of the dashboard from the query string."""
    days = request.args.get("days", type=int)
    return {
        "model_key": request.args.get("model") or None,
        "by": request.args.get("by", "kind"),
        "days": days if days else None,
    }


@bp.get("/dashboard")
@login_required(DASHBOARD_ROLES)
def dashboard() -> tuple[str, int]:
    """Survival curves, resolution-time table with intervals, breach rates and handling times."""
    args = report_args()
    report = reports.resolution_report(analytics_session(), **args)
    chart = {
        "series": [
            {
                "label": key,
                "points": [
                    {"x": round(h, 4), "y": round(s, 6)} for h, s in zip(part["hours"], part["survival"], strict=True)
                ],
            }
            for key, part in report.curves.groupby("key", sort=True)
        ],
        "xLabel": "hours since opened",
        "yLabel": "share still unresolved",
    }
    return render_page_or_block(
        "decision_exceptions/dashboard.html",
        "dashboard_body",
        report=report,
        rows=records(report.table),
        handling=records(report.handling),
        chart=chart,
        args=args,
        models=queries.models_with_versions(analytics_session()),
        csv_url=url_for("decision_exceptions.dashboard_csv", model=args["model_key"], by=args["by"], days=args["days"]),
    )


@bp.get("/dashboard.csv")
@login_required(DASHBOARD_ROLES)
def dashboard_csv() -> Response:
    """The resolution-time table as CSV."""
    report = reports.resolution_report(analytics_session(), **report_args())
    name = f"exception-resolution-by-{report.by}{'-' + report.model_key if report.model_key else ''}.csv"
    return csv_response(records(report.table), list(report.table.columns), name)
