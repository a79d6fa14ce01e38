"""Exceptions: the handlers' queue, one exception's page, and the resolution-time dashboard."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, request, url_for

from feedback import permissions
from feedback.catalog import queries as catalog_queries
from feedback.db import utcnow
from feedback.decision_exceptions import queries as exception_queries
from feedback.decision_exceptions import reports as exception_reports
from feedback.decision_exceptions import services as decision_exceptions
from feedback.errors import FIELD_FAULTS, Conflict, NotFound, ValidationFailed
from feedback.frames import records
from feedback.impact import assignment as arms
from feedback.models import EXCEPTION_KINDS, SEVERITIES
from feedback.params import MAX_PAGE, Choice, Flag, Id, Int, ModelKey, Text, parse_params
from feedback.permissions import Action
from webapp import charts
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import analytics_session, db
from webapp.htmx import render_page_or_block

bp = Blueprint("decision_exceptions", __name__, url_prefix="/exceptions")

STATUSES = exception_queries.EXCEPTION_FILTER_STATUSES
FILTER = (
    Choice("status", STATUSES, default="active"),
    Choice("kind", EXCEPTION_KINDS),
    Choice("severity", SEVERITIES),
    Text("site"),
    Id("model"),
    Flag("mine"),
    Int("page", 1, MAX_PAGE, default=1),
)
ASSIGNEE = Text("assignee", 12)  # "me", an id, or blank to release
RESOLVE_FORM = (Text("final_action", 64), Text("note", 2000))  # the service names the allowed actions
DASHBOARD = (
    ModelKey(required=False),
    Choice("by", exception_reports.RESOLUTION_GROUPS, default="kind"),
    Int("days", 1, exception_reports.MAX_DAYS),
)


def exception_filter() -> tuple[exception_queries.ExceptionFilter, dict[str, Any]]:
    """The queue filter from the query string, and the parsed parameters."""
    args = parse_params(request.args, FILTER)
    flt = exception_queries.ExceptionFilter(
        status=args["status"],
        kind=args["kind"],
        severity=args["severity"],
        site=args["site"],
        model_id=args["model"],
        assignee_id=g.user.id if args["mine"] else None,
    )
    return flt, args


@bp.get("")
@login_required(Action.HANDLE_EXCEPTIONS)
def index() -> tuple[str, int]:
    """The exceptions queue, ordered by SLA due time."""
    flt, args = exception_filter()
    page = args["page"]
    now = utcnow()
    return render_page_or_block(
        "decision_exceptions/queue.html",
        "exception_table",
        flt=flt,
        page=page,
        now=now,
        mine=args["mine"],
        items=exception_queries.exception_list(db.session, flt, limit=50, offset=(page - 1) * 50),
        counts=exception_queries.exception_counts(db.session, flt, now),
        kinds=EXCEPTION_KINDS,
        severities=SEVERITIES,
        statuses=STATUSES,
        sites=exception_queries.exception_sites(db.session),
        models=catalog_queries.models_with_versions(db.session),
    )


def render_detail(exception_id: int, status: int = 200, **extra: Any) -> tuple[str, int]:
    """One exception's page, or its panel for htmx."""
    exc = exception_queries.exception_detail(db.session, exception_id)
    if exc is None:
        abort(404)
    context: dict[str, Any] = {
        "exc": exc,
        "rec": exc.recommendation,
        "assignment": None,
        "ai_shown": arms.ai_shown_for(exc.recommendation.model_version, None),
        "now": utcnow(),
        "handlers": decision_exceptions.handlers(db.session),
        "notice": None,
        "problem": None,
        "fields": {},
        "form": {},
    }
    context.update(extra)
    return render_page_or_block("decision_exceptions/detail.html", "exception_panel", status=status, **context)


@bp.get("/<int:exception_id>")
@login_required(Action.HANDLE_EXCEPTIONS)
def detail(exception_id: int) -> tuple[str, int]:
    """One exception with its case."""
    return render_detail(exception_id)


@bp.post("/<int:exception_id>/assign")
@login_required(Action.HANDLE_EXCEPTIONS)
def assign(exception_id: int) -> tuple[str, int]:
    """Claim, assign to someone else, or release."""
    choice = parse_params(request.form, (ASSIGNEE,))["assignee"]
    if choice == "me":
        assignee_id: int | None = g.user.id
    else:
        assignee_id = parse_params(request.form, (Id("assignee"),))["assignee"]
    try:
        exc = decision_exceptions.assign_exception(
            db.session, g.user, exception_id=exception_id, assignee_id=assignee_id
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
@login_required(Action.HANDLE_EXCEPTIONS)
def resolve(exception_id: int) -> tuple[str, int]:
    """Resolve with a final action and a note."""
    form = request.form
    try:
        values = parse_params(form, RESOLVE_FORM)
        exc = decision_exceptions.resolve_exception(
            db.session,
            g.user,
            exception_id=exception_id,
            final_action=values["final_action"] or "",
            note=values["note"] or "",
        )
    except FIELD_FAULTS as err:
        return render_detail(exception_id, err.status, problem=err.message, fields=err.fields, form=form.to_dict())
    except NotFound:
        abort(404)
    except Conflict as err:
        return render_detail(exception_id, 409, problem=err.message)
    return render_detail(exception_id, notice=f"Resolved: {exc.model.action_label(exc.resolution_action)}.")


def report_args() -> dict[str, Any]:
    """Model, grouping and period of the dashboard from the query string."""
    args = parse_params(request.args, DASHBOARD)
    return {"model_key": args["model"], "by": args["by"], "days": args["days"]}


@bp.get("/dashboard")
@login_required(Action.READ_RESOLUTION)
def dashboard() -> tuple[str, int]:
    """Survival curves, resolution-time table with intervals, breach rates and handling times."""
    args = report_args()
    report = exception_reports.resolution_report(analytics_session(), **args)
    chart = charts.survival(report.curves, args["by"])
    return render_page_or_block(
        "decision_exceptions/dashboard.html",
        "dashboard_body",
        report=report,
        rows=records(report.table),
        handling=records(report.handling),
        chart=chart,
        args=args,
        models=catalog_queries.models_with_versions(analytics_session()),
        csv_url=url_for("decision_exceptions.dashboard_csv", model=args["model_key"], by=args["by"], days=args["days"]),
    )


@bp.get("/dashboard.csv")
@login_required(Action.READ_RESOLUTION)
def dashboard_csv() -> Response:
    """The resolution-time table as CSV."""
    report = exception_reports.resolution_report(analytics_session(), **report_args())
    name = f"exception-resolution-by-{report.by}{'-' + report.model_key if report.model_key else ''}.csv"
    return csv_response(records(report.table), list(report.table.columns), name)
