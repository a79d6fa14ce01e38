"""Impact panels and the analyses run on them: build or upload a panel, queue an analysis, read its result.

The routes join `impact.bp`; `webapp/__init__.py` imports this module for them."""

from __future__ import annotations

import pandas as pd
from flask import abort, g, request, url_for
from werkzeug.wrappers import Response

from analytics.cohorts import cohort_sizes
from feedback import permissions
from feedback.errors import NotFound, ValidationFailed
from feedback.frames import records
from feedback.impact import panels as impact_panels
from feedback.impact import runs as impact_runs
from feedback.models import AnalysisRun, ImpactPanel
from feedback.params import MAX_ID, Choice, Id, Int, Text, parse_params
from feedback.permissions import Action
from feedback.schemas import AnalysisIn
from feedback.schemas.types import MAX_DRAWS, MIN_DRAWS
from feedback.validation import parse
from webapp import charts, jobs
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import db
from webapp.htmx import render_page_or_block
from webapp.views.impact import bp, go, index_context

PANEL_FORM = (
    Id("experiment_id", required=True),
    Choice("metric", tuple(impact_panels.METRICS), required=True),
    Choice("unit", tuple(impact_panels.PANEL_UNITS), default="site"),
    Choice("period", tuple(impact_panels.PERIODS), default="week"),
)


ANALYSIS_FORM = (
    Choice("control", ("not_yet", "never"), default="not_yet"),
    Choice("method", ("dr", "reg", "ipw"), default="dr"),
    Text("covariates", 64, many=True),
    Int("draws", MIN_DRAWS, MAX_DRAWS, default=999),
)


@bp.post("/panels")
@login_required(Action.RUN_IMPACT)
def build_panel() -> Response | tuple[str, int]:
    """Build a panel from platform data for a staggered rollout."""
    try:
        form = parse_params(request.form, PANEL_FORM)
        panel, dropped = impact_panels.build_platform_panel(
            db.session,
            g.user,
            experiment_id=form["experiment_id"],
            metric=form["metric"],
            unit=form["unit"],
            period=form["period"],
        )
    except ValidationFailed as exc:
        db.session.rollback()
        context = index_context(problem=exc.message, fields=exc.fields, form=request.form.to_dict())
        return render_page_or_block("impact/index.html", "impact_body", status=422, **context)
    except NotFound:
        abort(404)
    return go(url_for("impact.panel", panel_id=panel.id, dropped=len(dropped) or None))


@bp.post("/panels/upload")
@login_required(Action.RUN_IMPACT)
def upload_panel() -> Response | tuple[str, int]:
    """Store an uploaded CSV panel, or say exactly what is wrong with it (storing nothing)."""
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValidationFailed("no file", {"file": "choose a CSV file to upload"})
        name = parse_params(request.form, (Text("name"),))["name"] or ""
        panel = impact_panels.upload_panel(db.session, g.user, name=name, raw=upload.read())
    except ValidationFailed as exc:
        db.session.rollback()
        context = index_context(problem=exc.message, fields=exc.fields, form=request.form.to_dict())
        return render_page_or_block("impact/index.html", "upload_form", status=422, **context)
    return go(url_for("impact.panel", panel_id=panel.id))


def _panel_or_404(panel_id: int) -> ImpactPanel:
    panel = db.session.get(ImpactPanel, panel_id)
    if panel is None:
        abort(404)
    return panel


@bp.get("/panels/<int:panel_id>")
@login_required(Action.READ_IMPACT)
def panel(panel_id: int) -> tuple[str, int]:
    """A panel: its units, cohorts and a preview, and the form to analyse it."""
    chosen = _panel_or_404(panel_id)
    frame = impact_panels.panel_frame(db.session, chosen)
    chart = charts.panel_cohorts(frame, chosen.metric)
    cohorts = cohort_sizes(frame)
    runs = impact_runs.panel_runs(db.session, chosen.id)
    return render_page_or_block(
        "impact/panel.html",
        "panel_body",
        panel=chosen,
        cohorts=cohorts.to_dict("records"),
        chart=chart,
        preview=frame.head(12).to_dict("records"),
        runs=runs,
        dropped=parse_params(request.args, (Int("dropped", 0, MAX_ID),))["dropped"],
        can_edit=permissions.allows(g.user.role, Action.RUN_IMPACT),
    )


@bp.get("/panels/<int:panel_id>.csv")
@login_required(Action.READ_IMPACT)
def panel_csv(panel_id: int) -> Response:
    """The panel as CSV, in the upload format."""
    chosen = _panel_or_404(panel_id)
    frame = impact_panels.panel_frame(db.session, chosen)
    out = frame.assign(period=frame["label"], treated=frame["treated"].astype(int)).drop(columns=["label", "cohort"])
    return _frame_csv(out, f"panel-{panel_id}.csv")


@bp.post("/panels/<int:panel_id>/delete")
@login_required(Action.RUN_IMPACT)
def delete_panel(panel_id: int) -> Response:
    """Delete a panel and go back to the impact page."""
    impact_panels.delete_panel(db.session, g.user, panel_id=panel_id)
    return go(url_for("impact.index"))


@bp.post("/panels/<int:panel_id>/analyses")
@login_required(Action.RUN_IMPACT)
def analyse_panel(panel_id: int) -> Response:
    """Queue a staggered-rollout analysis of a panel and follow its progress."""
    _panel_or_404(panel_id)
    form = parse_params(request.form, ANALYSIS_FORM)
    options = {**form, "covariates": [c for c in form["covariates"] if c]}
    spec = parse(AnalysisIn, options)  # the same rules as the API's body
    run = impact_runs.queue_panel_analysis(db.session, g.user, panel_id=panel_id, **spec.model_dump())
    jobs.submit(run.id)
    return go(url_for("impact.run", run_id=run.id))


def _run_or_404(run_id: int) -> AnalysisRun:
    try:
        return impact_runs.get_run(db.session, run_id)
    except NotFound:
        abort(404)


@bp.get("/analyses/<int:run_id>")
@login_required(Action.READ_IMPACT)
def run(run_id: int) -> tuple[str, int]:
    """An analysis: progress while it runs (polled by htmx), the results when done."""
    chosen = _run_or_404(run_id)
    chart = charts.event_study(chosen.result) if chosen.status == "done" and chosen.kind == "staggered" else None
    return render_page_or_block(
        "impact/run.html",
        "run_body",
        run=chosen,
        chart=chart,
        stale=impact_runs.is_stale(chosen),
        can_edit=permissions.allows(g.user.role, Action.RUN_IMPACT),
    )


CSV_TABLES = ("event_study", "cells", "group", "calendar", "metrics")


@bp.get("/analyses/<int:run_id>.csv")
@login_required(Action.READ_IMPACT)
def run_csv(run_id: int) -> Response:
    """One result table as CSV: event_study, cells, group, calendar (staggered) or metrics (A/B)."""
    chosen = _run_or_404(run_id)
    table = parse_params(request.args, (Choice("table", CSV_TABLES),))["table"]
    table = table or ("event_study" if chosen.kind == "staggered" else "metrics")
    if chosen.status != "done" or not chosen.result:
        abort(409)
    result = chosen.result
    # Columns are named explicitly: PostgreSQL's JSONB does not keep key order.
    if table == "event_study" and chosen.kind == "staggered":
        frame = pd.DataFrame(result["event_study"]["rows"]).rename(columns={"key": "event_time"})
        frame = frame[["event_time", "att", "se", "ci_low", "ci_high", "band_low", "band_high"]]
    elif table == "cells" and chosen.kind == "staggered":
        frame = pd.DataFrame(result["cells"])[["cohort", "time", "att", "se", "band_low", "band_high"]]
    elif table in ("group", "calendar") and chosen.kind == "staggered":
        key = "cohort" if table == "group" else "period"
        frame = pd.DataFrame(result["aggregates"][table]["table"], columns=["key", "att", "se"])
        frame.insert(1, "label", [result["labels"].get(str(k), k) for k in frame["key"]])
        frame = frame.rename(columns={"key": key})
    elif table == "metrics" and chosen.kind == "ab":
        frame = pd.json_normalize(result["metrics"], sep="_")
        first = ["metric", "label", "rows"]
        frame = frame[first + sorted(c for c in frame.columns if c not in first)]
    else:
        abort(404)
    return _frame_csv(frame, f"analysis-{run_id}-{table}.csv")


def _frame_csv(frame: pd.DataFrame, filename: str) -> Response:
    return csv_response(records(frame), [str(c) for c in frame.columns], filename)
