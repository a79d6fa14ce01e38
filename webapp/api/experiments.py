"""Experiments and impact analyses over the API, through the same services as the pages."""

from __future__ import annotations

from flask import g, url_for
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.catalog import queries as catalog_queries
from feedback.errors import UnknownReference
from feedback.impact import experiments
from feedback.impact import queries as impact_queries
from feedback.impact import runs as impact_runs
from feedback.impact.experiments import GoLive
from feedback.models import AnalysisRun, Experiment
from feedback.permissions import Action
from feedback.schemas import (
    AnalysisIn,
    AnalysisOut,
    ArmOut,
    ErrorOut,
    ExperimentIn,
    ExperimentListOut,
    ExperimentOut,
    RolloutSiteOut,
)
from feedback.validation import parse
from webapp import jobs
from webapp.api.blueprint import bp, json_body
from webapp.api.openapi import documented
from webapp.extensions import db


def _may_read() -> None:
    permissions.require(g.user, Action.READ_IMPACT)


def experiment_out(experiment: Experiment) -> dict[str, object]:
    """An experiment as the API answers it."""
    return ExperimentOut(
        id=experiment.id,
        key=experiment.key,
        name=experiment.name,
        model=experiment.model.key,
        kind=experiment.kind,
        unit=experiment.unit,
        ai_weight=experiment.ai_weight,
        status=experiment.status,
        started_at=experiment.started_at,
        stopped_at=experiment.stopped_at,
        sites=[RolloutSiteOut(site=s.site, go_live=s.go_live_at) for s in experiment.sites],
        arms=[
            ArmOut(arm=c.arm, units=c.units, exposures=c.exposures)
            for c in impact_queries.exposure_counts(db.session, experiment.id)
        ],
    ).model_dump(mode="json")


def analysis_out(run: AnalysisRun) -> dict[str, object]:
    """An analysis run as the API answers it."""
    return AnalysisOut(
        id=run.id,
        kind=run.kind,
        status=run.status,
        progress=run.progress,
        message=run.message,
        attempts=run.attempts,
        interrupted=impact_runs.is_stale(run),
        result=run.result,
    ).model_dump(mode="json")


@bp.get("/experiments")
@documented(
    "get",
    "/api/v1/experiments",
    "Experiments on the AI, newest first",
    responses={200: ("the experiments", ExperimentListOut), 403: ("role may not read experiments", ErrorOut)},
)
def list_experiments() -> ResponseReturnValue:
    """Every experiment."""
    _may_read()
    return {"items": [experiment_out(e) for e in impact_queries.list_experiments(db.session)]}


@bp.post("/experiments")
@documented(
    "post",
    "/api/v1/experiments",
    "Create an experiment as a draft (analysts and admins)",
    body=ExperimentIn,
    responses={
        201: ("created", ExperimentOut),
        403: ("role may not manage experiments", ErrorOut),
        404: ("unknown model (`unknown_reference`)", ErrorOut),
        409: ("the key is taken (`conflict`), or a site listed twice (`repeated_in_request`)", ErrorOut),
        422: ("invalid experiment", ErrorOut),
    },
)
def create_experiment() -> ResponseReturnValue:
    """Create an experiment (a draft until started)."""
    permissions.require(g.user, Action.RUN_IMPACT)  # before reading the body
    spec = parse(ExperimentIn, json_body())
    model_id = catalog_queries.model_id_of(db.session, spec.model)
    if model_id is None:
        raise UnknownReference(f"no model {spec.model}", {"model": "unknown model"})
    experiment = experiments.create_experiment(
        db.session,
        g.user,
        key=spec.key,
        name=spec.name,
        model_id=model_id,
        kind=spec.kind,
        unit=spec.unit,
        ai_weight=spec.ai_weight,
        hypothesis=spec.hypothesis,
        sites=[GoLive(s.site, s.go_live) for s in spec.sites],
    )
    return experiment_out(experiment), 201


@bp.get("/experiments/<int:experiment_id>")
@documented(
    "get",
    "/api/v1/experiments/{experiment_id}",
    "One experiment with its exposures per arm",
    path_params={"experiment_id": "id"},
    responses={200: ("the experiment", ExperimentOut), 403: ("forbidden", ErrorOut), 404: ("unknown id", ErrorOut)},
)
def get_experiment(experiment_id: int) -> ResponseReturnValue:
    """One experiment."""
    _may_read()
    return experiment_out(impact_queries.get_experiment(db.session, experiment_id))


@bp.post("/experiments/<int:experiment_id>/<any(start, stop):change>")
@documented(
    "post",
    "/api/v1/experiments/{experiment_id}/start",
    "Start assigning (a draft only; one running experiment per model)",
    path_params={"experiment_id": "id"},
    responses={
        200: ("started", ExperimentOut),
        403: ("forbidden", ErrorOut),
        404: ("unknown id", ErrorOut),
        409: ("not a draft, or another experiment runs", ErrorOut),
    },
)
@documented(
    "post",
    "/api/v1/experiments/{experiment_id}/stop",
    "Stop assigning",
    path_params={"experiment_id": "id"},
    responses={
        200: ("stopped", ExperimentOut),
        403: ("forbidden", ErrorOut),
        404: ("unknown id", ErrorOut),
        409: ("not running", ErrorOut),
    },
)
def change_experiment(experiment_id: int, change: str) -> ResponseReturnValue:
    """Start or stop an experiment."""
    act = experiments.start_experiment if change == "start" else experiments.stop_experiment
    return experiment_out(act(db.session, g.user, experiment_id=experiment_id))


def _queued(run: AnalysisRun) -> ResponseReturnValue:
    jobs.submit(run.id)
    return analysis_out(run), 202, {"Location": url_for("api.get_analysis", run_id=run.id)}


@bp.post("/experiments/<int:experiment_id>/analyses")
@documented(
    "post",
    "/api/v1/experiments/{experiment_id}/analyses",
    "Queue the A/B analysis of an experiment; poll the Location",
    path_params={"experiment_id": "id"},
    responses={
        202: ("queued", AnalysisOut),
        403: ("forbidden", ErrorOut),
        404: ("unknown id", ErrorOut),
        409: ("not an A/B test", ErrorOut),
    },
)
def analyse_experiment(experiment_id: int) -> ResponseReturnValue:
    """Queue an A/B analysis of an experiment."""
    return _queued(impact_runs.queue_ab_analysis(db.session, g.user, experiment_id=experiment_id))


@bp.post("/panels/<int:panel_id>/analyses")
@documented(
    "post",
    "/api/v1/panels/{panel_id}/analyses",
    "Queue the staggered-rollout analysis of a panel; poll the Location",
    body=AnalysisIn,
    path_params={"panel_id": "id"},
    responses={
        202: ("queued", AnalysisOut),
        403: ("forbidden", ErrorOut),
        404: ("unknown id", ErrorOut),
        409: ("a covariate the panel does not hold (`not_allowed`)", ErrorOut),
        422: ("invalid options", ErrorOut),
    },
)
def analyse_panel(panel_id: int) -> ResponseReturnValue:
    """Queue a staggered-rollout analysis of a panel."""
    spec = parse(AnalysisIn, json_body())
    return _queued(impact_runs.queue_panel_analysis(db.session, g.user, panel_id=panel_id, **spec.model_dump()))


@bp.get("/analyses/<int:run_id>")
@documented(
    "get",
    "/api/v1/analyses/{run_id}",
    "An analysis: progress while it runs, every result table when done",
    path_params={"run_id": "id"},
    responses={200: ("the analysis", AnalysisOut), 403: ("forbidden", ErrorOut), 404: ("unknown id", ErrorOut)},
)
def get_analysis(run_id: int) -> ResponseReturnValue:
    """One analysis, with its progress or result."""
    _may_read()
    return analysis_out(impact_runs.get_run(db.session, run_id))
