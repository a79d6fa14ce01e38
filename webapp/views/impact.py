"""Causal impact: experiments on the AI, impact panels, and the analyses run on them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for
from werkzeug.wrappers import Response

from analytics import ab
from feedback import permissions
from feedback.catalog import queries as catalog_queries
from feedback.db import utcnow
from feedback.errors import FIELD_FAULTS, Conflict, NotFound, ValidationFailed
from feedback.impact import experiments
from feedback.impact import panels as impact_panels
from feedback.impact import queries as impact_queries
from feedback.impact import runs as impact_runs
from feedback.impact.experiments import GoLive
from feedback.models import EXPERIMENT_KINDS, EXPERIMENT_UNITS
from feedback.params import MAX_ID, Choice, Id, Int, Number, Text, When, parse_params
from feedback.permissions import Action
from feedback.review import queries as review_queries
from webapp import jobs
from webapp.auth import login_required
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


def index_context(**extra: Any) -> dict[str, Any]:
    """What the impact page shows: experiments, panels, sites and the forms' defaults, plus `extra`."""
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
    return render_page_or_block("impact/index.html", "impact_body", **index_context())


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
        # A blank row of the form is no site (its date, if any, goes with it).
        "sites": [GoLive(s, at) for s, at in zip(form["site"], form["go_live"], strict=False) if s and s.strip()]
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
        context = index_context(problem=exc.message, fields=exc.fields, form=request.form.to_dict())
        return render_page_or_block("impact/index.html", "experiment_form", status=exc.status, **context)
    return go(url_for("impact.experiment", experiment_id=experiment.id))


def go(target: str) -> Response:
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
    return go(url_for("impact.run", run_id=run.id))
