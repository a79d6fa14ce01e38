"""Causal impact: experiments on the AI, impact panels, and the analyses run on them."""

from __future__ import annotations

from typing import Any

import pandas as pd
from flask import Blueprint, abort, g, redirect, request, url_for
from werkzeug.wrappers import Response

from analytics import ab
from analytics.cohorts import cohort_sizes
from feedback import permissions
from feedback.catalog import queries as catalog_queries
from feedback.db import utcnow
from feedback.errors import FIELD_FAULTS, Conflict, NotFound, ValidationFailed
from feedback.frames import records
from feedback.impact import experiments
from feedback.impact import panels as impact_panels
from feedback.impact import queries as impact_queries
from feedback.impact import runs as impact_runs
from feedback.impact.experiments import GoLive
from feedback.models import EXPERIMENT_KINDS, EXPERIMENT_UNITS, AnalysisRun, ImpactPanel
from feedback.params import MAX_ID, Choice, Id, Int, Number, Text, When, parse_params
from feedback.permissions import Action
from feedback.review import queries as review_queries
from feedback.schemas import AnalysisIn
from feedback.schemas.types import MAX_DRAWS, MIN_DRAWS
from feedback.validation import parse
from webapp import charts, jobs
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import db
from webapp.htmx import is_htmx, render_page_or_block

bp = Blueprint("impact", __name__, url_prefix="/impact")
PLAN_QUERY = (
    Number("baseline_rate", 0.0001, 0.9999),
    Number("sd", 1e-9, 1e12),
    Number("treatment_share", 0.01, 0.99, default=0.5),
    Number("design_effect", 1, 1000, default=1.0),
    Number("n_total", 4, 1e12),
    Number("effect", -1e12, 1e12),
)
EXPERIMENT_FORM = (
    Text("key", 64),
    Text("name"),
    Id("model_id"),
    Choice("kind", EXPERIMENT_KINDS),
    Choice("unit", EXPERIMENT_UNITS),
    Text("hypothesis", 4000),
    Number("ai_weight", 0, 1),
    Text("site", many=True),
    When("go_live", many=True),
    Int("row_version", 0, MAX_ID),
)
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


def _index_context(**extra: Any) -> dict[str, Any]:
    return {
        "experiments": impact_queries.list_experiments(db.session),
        "panels": impact_panels.panels(db.session),
        "runs": impact_runs.latest_runs(db.session),
        "models": catalog_queries.models_by_name(db.session),
        "sites": review_queries.case_sites(db.session),
        "metrics": impact_panels.METRICS,
        "units": impact_panels.PANEL_UNITS,
        "can_edit": permissions.allows(g.user.role, Action.RUN_IMPACT),
        "problem": None,
        "fields": {},
        "form": {},
        "notice": None,
        **extra,
    }


@bp.get("")
@login_required(Action.READ_IMPACT)
def index() -> tuple[str, int]:
    """Experiments, panels and recent analyses."""
    return render_page_or_block("impact/index.html", "impact_body", **_index_context())


@bp.get("/plan")
@login_required(Action.READ_IMPACT)
def plan() -> tuple[str, int]:
    """Plan a test: the minimum detectable effect for a sample size, or the sample size for an effect."""
    args = request.args
    try:
        values, fields = parse_params(args, PLAN_QUERY), {}
    except ValidationFailed as exc:
        values, fields = {p.name: None for p in PLAN_QUERY}, dict(exc.fields)
    rate = values["baseline_rate"]
    sd = ab.proportion_sd(rate) if rate is not None else values["sd"]
    if sd is None and not fields:
        fields["sd"] = "give the outcome's standard deviation, or a baseline rate for a proportion"
    share, design = values["treatment_share"], values["design_effect"]
    n_total, effect = values["n_total"], values["effect"]
    if n_total is None and effect is None and "n_total" not in fields:
        fields["n_total"] = "give a sample size (or an effect to size the test for)"
    result: dict[str, Any] = {}
    if not fields:
        assert sd is not None and share is not None and design is not None
        if n_total is not None:
            result["mde"] = ab.minimum_detectable_effect(
                sd, n_total, treatment_share=share, design_effect=design
            ).minimum_detectable_effect
        if effect:
            result["n_total"] = ab.sample_size(sd, effect, treatment_share=share, design_effect=design).n_total
    if not any(value.strip() for value in args.values()):
        fields, result = {}, {}  # a first visit: an empty form, not a list of missing numbers
    status = 422 if fields else 200
    return render_page_or_block(
        "impact/plan.html", "plan_result", status=status, fields=fields, result=result, args=args, sd=sd
    )


def _experiment_edits(form: dict[str, Any]) -> dict[str, Any]:
    """The editable fields of the experiment form as typed keywords (the rollout as a list of sites)."""
    return {
        "name": form["name"] or "",
        "hypothesis": form["hypothesis"] or "",
        "ai_weight": form["ai_weight"],
        "sites": [GoLive(s, at) for s, at in zip(form["site"], form["go_live"], strict=False)]
        if form["site"]
        else None,
    }


def _new_experiment() -> dict[str, Any]:
    """A new experiment from the form, as the service's keywords (blank choices left for it to name)."""
    form = parse_params(request.form, EXPERIMENT_FORM)
    edits = _experiment_edits(form)
    return {
        **{k: v for k, v in edits.items() if v is not None},
        "key": form["key"] or "",
        "model_id": form["model_id"],
        "kind": form["kind"] or "",
        "unit": form["unit"] or "",
    }


@bp.post("/experiments")
@login_required(Action.RUN_IMPACT)
def create_experiment() -> Response | tuple[str, int]:
    """Create an experiment in draft."""
    try:
        experiment = experiments.create_experiment(db.session, g.user, **_new_experiment())
    except (*FIELD_FAULTS, Conflict) as exc:
        db.session.rollback()
        context = _index_context(problem=exc.message, fields=exc.fields, form=request.form.to_dict())
        return render_page_or_block("impact/index.html", "experiment_form", status=exc.status, **context)
    return _go(url_for("impact.experiment", experiment_id=experiment.id))


def _go(target: str) -> Response:
    """Redirect, the htmx way for htmx requests."""
    if is_htmx():
        return Response(status=200, headers={"HX-Redirect": target})
    return redirect(target)


def _experiment_context(experiment_id: int, **extra: Any) -> dict[str, Any]:
    try:
        experiment = impact_queries.get_experiment(db.session, experiment_id)
    except NotFound:
        abort(404)
    counts = impact_queries.exposure_counts(db.session, experiment.id)
    srm = None
    if experiment.kind == "ab" and counts:
        srm = ab.sample_ratio_check({c.arm: c.units for c in counts}, experiment.weights)
    runs = impact_runs.experiment_runs(db.session, experiment.id)
    sites = sorted(set(review_queries.case_sites(db.session, experiment.model_id)) | {s.site for s in experiment.sites})
    return {
        "experiment": experiment,
        "counts": counts,
        "srm": srm,
        "runs": runs,
        "panels": impact_panels.panels(db.session, experiment.id),
        "schedule": {s.site: s.go_live_at for s in experiment.sites},
        "sites": sites,
        "metrics": impact_panels.METRICS,
        "units": impact_panels.PANEL_UNITS,
        "can_edit": permissions.allows(g.user.role, Action.RUN_IMPACT),
        "now": utcnow(),
        "problem": None,
        "fields": {},
        "notice": None,
        **extra,
    }


@bp.get("/experiments/<int:experiment_id>")
@login_required(Action.READ_IMPACT)
def experiment(experiment_id: int) -> tuple[str, int]:
    """An experiment: its settings, arms and exposures, and analyses."""
    return render_page_or_block("impact/experiment.html", "experiment_body", **_experiment_context(experiment_id))


@bp.post("/experiments/<int:experiment_id>")
@login_required(Action.RUN_IMPACT)
def update_experiment(experiment_id: int) -> tuple[str, int]:
    """Save edits (a running experiment accepts only the safe ones)."""
    try:
        form = parse_params(request.form, EXPERIMENT_FORM)
        edits = _experiment_edits(form)
        experiments.update_experiment(
            db.session, g.user, experiment_id=experiment_id, row_version=form["row_version"], **edits
        )
    except FIELD_FAULTS as exc:
        db.session.rollback()
        context = _experiment_context(experiment_id, problem=exc.message, fields=exc.fields)
        return render_page_or_block("impact/experiment.html", "experiment_body", status=exc.status, **context)
    context = _experiment_context(experiment_id, notice="Saved.")
    return render_page_or_block("impact/experiment.html", "experiment_body", **context)


@bp.post("/experiments/<int:experiment_id>/<any(start, stop):change>")
@login_required(Action.RUN_IMPACT)
def change_status(experiment_id: int, change: str) -> tuple[str, int]:
    """Start or stop assigning."""
    act = experiments.start_experiment if change == "start" else experiments.stop_experiment
    act(db.session, g.user, experiment_id=experiment_id)
    notice = "Started: reviewers now see the arms." if change == "start" else "Stopped: everyone sees the AI again."
    context = _experiment_context(experiment_id, notice=notice)
    return render_page_or_block("impact/experiment.html", "experiment_body", **context)


@bp.post("/experiments/<int:experiment_id>/analyses")
@login_required(Action.RUN_IMPACT)
def analyse_experiment(experiment_id: int) -> Response:
    """Queue the A/B analysis of an experiment and follow its progress."""
    run = impact_runs.queue_ab_analysis(db.session, g.user, experiment_id=experiment_id)
    jobs.submit(run.id)
    return _go(url_for("impact.run", run_id=run.id))


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
        context = _index_context(problem=exc.message, fields=exc.fields, form=request.form.to_dict())
        return render_page_or_block("impact/index.html", "impact_body", status=422, **context)
    except NotFound:
        abort(404)
    return _go(url_for("impact.panel", panel_id=panel.id, dropped=len(dropped) or None))


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
        context = _index_context(problem=exc.message, fields=exc.fields, form=request.form.to_dict())
        return render_page_or_block("impact/index.html", "upload_form", status=422, **context)
    return _go(url_for("impact.panel", panel_id=panel.id))


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
    return _go(url_for("impact.index"))


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
    return _go(url_for("impact.run", run_id=run.id))


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
