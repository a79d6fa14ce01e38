"""Model owners' pages: overview with control chart and guardrails, breakdowns, drill-down, who was right."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, abort, g, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from feedback import permissions
from feedback.accounts import services as accounts
from feedback.catalog import services as catalog
from feedback.errors import FeedbackError, NotFound, PermissionDenied
from feedback.frames import records
from feedback.models import GUARDRAIL_KINDS
from feedback.overrides import guardrails
from feedback.overrides import queries as override_queries
from feedback.overrides import reports as override_reports
from feedback.params import MAX_ID, Choice, Day, Flag, Id, Int, Number, Param, Text, Version, parse_params
from feedback.permissions import Action
from webapp import charts
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import analytics_session, db
from webapp.htmx import is_htmx, render_page_or_block

bp = Blueprint("overrides", __name__, url_prefix="/models")

BREAKDOWN_CHOICES = ("model_version", "site", "reason_code", "reviewer", "confidence_decile")


PERIOD = (Day("from"), Day("to"))
CSV = Choice("format", ("csv",))
OVERVIEW_QUERY = (*PERIOD, CSV, Choice("table", ("chart", "versions")), Version("chart"))
BREAKDOWN_QUERY = (
    *PERIOD,
    CSV,
    Choice("table", ("matrix", "rates")),
    Text("by", 80, pattern=override_queries.BREAKDOWN_PATTERN, hint=override_queries.BREAKDOWN_HINT),
    Version(),
)
CASES_QUERY = (
    *PERIOD,
    Text(
        "by", 80, pattern=f"(?:action_pair|{override_queries.BREAKDOWN_PATTERN})", hint=override_queries.BREAKDOWN_HINT
    ),  # action_pair: a matrix cell
    Version(),
    Text("cell"),
    Flag("all"),
    Id("after", description="the decision id the previous page ended on"),
)
RIGHT_QUERY = (
    *PERIOD,
    CSV,
    Choice("table", ("reviewers", "accuracy")),
    Choice("by", override_reports.ACCURACY_GROUPS, default="reason_code"),
)
GUARDRAIL_FORM = (
    Id("version_id", required=True),
    Choice("kind", GUARDRAIL_KINDS, required=True),
    Int("window_size", 1, MAX_ID, required=True),
    Number("threshold_pct", 0, 100),
    Flag("auto_pause"),
)


def query(params: tuple[Param, ...]) -> dict[str, Any]:
    """This page's query parameters, strictly parsed (422 naming any bad one)."""
    return parse_params(request.args, params)


def period() -> dict[str, str | None]:
    """The date range from the query string, as the reports take it."""
    args = parse_params(request.args, PERIOD)
    return {"date_from": args["from"] and args["from"].isoformat(), "date_to": args["to"] and args["to"].isoformat()}


def matrix_view(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The action matrix as rows of recommended actions and columns of final actions."""
    recommended = sorted({c["recommended"] for c in cells})
    finals = sorted({c["final"] for c in cells}, key=lambda f: (f == "(escalated)", f))
    counts = {(c["recommended"], c["final"]): c["decisions"] for c in cells}
    totals = {r: sum(counts.get((r, f), 0) for f in finals) for r in recommended}
    return {"rows": recommended, "columns": finals, "counts": counts, "totals": totals}


def shown_period(w: override_queries.Window) -> dict[str, str]:
    """The inclusive dates a window covers, for the date inputs."""
    return {"shown_from": w.start.date().isoformat(), "shown_to": (w.end - timedelta(days=1)).date().isoformat()}


def check_overview_query() -> None:
    """Refuse a bad query string on a form post before anything is written (the page is rendered after)."""
    query(OVERVIEW_QUERY)


def render_overview(key: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    """The overview page, or its body for htmx.

    It reads the primary, not the analytics replica: it shows the alerts, guardrails and paused
    versions people act on, and must show the result of their action at once.
    """
    report = override_reports.overview(db.session, key, **period(), span_by_default=True)
    versions = [str(v) for v in report.chart["version"].unique()] if len(report.chart) else []
    chosen = query(OVERVIEW_QUERY)["chart"] or (versions[-1] if versions else None)
    shown = shown_period(report.window)
    context = {
        "report": report,
        "model": report.model,
        "versions": records(report.versions),
        "chart": charts.control_chart(report.chart, chosen),
        "chart_versions": versions,
        "chosen": chosen,
        "signals": int(report.chart[report.chart["version"] == chosen]["signal"].sum()) if chosen else 0,
        "kinds": GUARDRAIL_KINDS,
        "can_edit": permissions.can_change_model(db.session, g.user, report.model.id),
        # Links to the other tabs and the CSVs keep the period shown, the default version span included.
        "args": {**request.args.to_dict(), "from": shown["shown_from"], "to": shown["shown_to"]}
        if report.span
        else request.args,
        "notice": None,
        "problem": None,
        **shown,
    }
    context.update(extra)
    return render_page_or_block("overrides/overview.html", "overview_body", status=status, **context)


@bp.get("/<key>")
@login_required(Action.READ_MODELS)
def overview(key: str) -> tuple[str, int] | Response:
    """Decisions, rates, accuracy, control chart, alerts and guardrails of one model."""
    args = query(OVERVIEW_QUERY)
    if args["format"] == "csv":
        report = override_reports.overview(analytics_session(), key, **period(), span_by_default=True)
        if args["table"] == "chart":
            rows = records(report.chart)
            return csv_response(rows, list(report.chart.columns), f"{key}-override-control-chart.csv")
        rows = records(report.versions)
        return csv_response(rows, list(report.versions.columns), f"{key}-override-rate-by-version.csv")
    return render_overview(key)


@bp.get("/<key>/breakdown")
@login_required(Action.READ_MODELS)
def breakdown(key: str) -> tuple[str, int] | Response:
    """Override rates by a dimension, each group tested against the rest."""
    session = analytics_session()
    args = query(BREAKDOWN_QUERY)
    by = args["by"] or "site"
    report = override_reports.breakdown(session, key, by, version=args["version"], viewer=g.user, **period())
    rows = records(report.table)
    matrix = override_queries.action_matrix(session, report.window)
    if args["format"] == "csv" and args["table"] == "matrix":
        return csv_response(matrix, ["recommended", "final", "decisions"], f"{key}-recommended-vs-final.csv")
    if args["format"] == "csv":
        return csv_response(rows, list(report.table.columns), f"{key}-overrides-by-{by}.csv")
    model = report.model
    attributes = override_queries.segment_keys(session, model.id)
    return render_page_or_block(
        "overrides/breakdown.html",
        "breakdown_body",
        report=report,
        rows=rows,
        model=model,
        by=by,
        choices=BREAKDOWN_CHOICES,
        attributes=attributes,
        matrix=matrix_view(matrix),
        args=request.args,
        **shown_period(report.window),
    )


@bp.get("/<key>/cases")
@login_required(Action.READ_MODELS)
def cases(key: str) -> tuple[str, int]:
    """The decided cases behind one cell of a breakdown, a page at a time."""
    session = analytics_session()
    args = query(CASES_QUERY)
    model, w = override_reports.model_window(session, key, version=args["version"], **period())
    by, cell = args["by"] or "site", args["cell"] or ""
    everything = args["all"]
    found = override_queries.cases_behind(
        session, w, by, cell, overrides_only=not everything, after=args["after"], viewer=g.user
    )
    return render_page_or_block(
        "overrides/cases.html",
        "cases_body",
        model=model,
        page=found,
        by=by,
        cell=cell,
        everything=everything,
        args=request.args,
        # What the page's links carry over: the cell and the period.
        keep={"by": by, "cell": cell, **{k: request.args.get(k) or None for k in ("version", "from", "to")}},
    )


@bp.get("/<key>/right")
@login_required(Action.READ_MODELS)
def right(key: str) -> tuple[str, int] | Response:
    """Who was right when people and the AI disagreed, and how fast each reviewer decides."""
    session = analytics_session()
    args = query(RIGHT_QUERY)
    by = args["by"]
    accuracy = override_reports.who_was_right(session, key, by, viewer=g.user, **period())
    accuracy = accuracy[override_reports.right_columns(by)]
    speed = override_reports.reviewers(session, key, viewer=g.user, **period())
    if args["format"] == "csv":
        frame = speed if args["table"] == "reviewers" else accuracy
        name = "reviewer-speed" if args["table"] == "reviewers" else f"who-was-right-by-{by}"
        return csv_response(records(frame), list(frame.columns), f"{key}-{name}.csv")
    return render_page_or_block(
        "overrides/right.html",
        "right_body",
        model=catalog.get_model(session, key),
        by=by,
        accuracy=records(accuracy),
        speed=records(speed),
        args=request.args,
    )


@bp.post("/<key>/guardrails")
@login_required(Action.CHANGE_MODEL)
def add_guardrail(key: str) -> tuple[str, int]:
    """Add a guardrail to one of the model's versions."""
    check_overview_query()
    try:
        form = parse_params(request.form, GUARDRAIL_FORM)
        threshold = form["threshold_pct"]
        guardrails.add_guardrail(
            db.session,
            accounts.actor_of(g.user),
            version_id=form["version_id"],
            kind=form["kind"],
            window_size=form["window_size"],
            threshold=threshold / 100 if threshold is not None else None,
            auto_pause=form["auto_pause"],
        )
    except NotFound:
        abort(404)
    except PermissionDenied:
        raise  # 403, never a form error
    except FeedbackError as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
        return render_overview(key, 422, problem=f"The guardrail was not added: {detail}.")
    return render_overview(key, notice="Guardrail added; it is checked as decisions and outcomes arrive.")


@bp.post("/<key>/guardrails/<int:guardrail_id>/remove")
@login_required(Action.CHANGE_MODEL)
def remove_guardrail(key: str, guardrail_id: int) -> WerkzeugResponse:
    """A removal is never one click: go to the page that says what it does and asks to confirm."""
    check_overview_query()
    try:
        guardrails.get_guardrail(db.session, accounts.actor_of(g.user), guardrail_id=guardrail_id)
    except NotFound:
        abort(404)
    from flask import redirect

    target = url_for("admin.remove_guardrail", guardrail_id=guardrail_id, next=url_for("overrides.overview", key=key))
    return Response(status=200, headers={"HX-Redirect": target}) if is_htmx() else redirect(target)


@bp.post("/<key>/versions/<int:version_id>/resume")
@login_required(Action.CHANGE_MODEL)
def resume(key: str, version_id: int) -> tuple[str, int]:
    """Resume a paused version: reviewers see its recommendations again."""
    check_overview_query()
    try:
        version = guardrails.resume_version(db.session, accounts.actor_of(g.user), version_id=version_id)
    except NotFound:
        abort(404)
    except PermissionDenied:
        raise  # 403, never a form error
    except FeedbackError as exc:
        return render_overview(key, 422, problem=exc.message)
    return render_overview(
        key, notice=f"{version.version} resumed ({version.stage}); reviewers see its recommendations again."
    )


@bp.post("/<key>/alerts/<int:alert_id>/acknowledge")
@login_required(Action.CHANGE_MODEL)
def acknowledge(key: str, alert_id: int) -> tuple[str, int] | WerkzeugResponse:
    """Mark an alert as seen."""
    check_overview_query()
    try:
        guardrails.acknowledge_alert(db.session, accounts.actor_of(g.user), alert_id=alert_id)
    except NotFound:
        abort(404)
    if not is_htmx():
        from flask import redirect

        return redirect(url_for("overrides.overview", key=key))
    return render_overview(key, notice="Alert acknowledged.")
