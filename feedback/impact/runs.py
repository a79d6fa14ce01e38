"""Analysis runs: a staggered-rollout or A/B analysis computed in the background, with its progress."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from analytics import ab, staggered
from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import Conflict, NotFound, Problems
from feedback.frames import records
from feedback.impact import queries as impact_queries
from feedback.impact.panels import handling_seconds, panel_frame
from feedback.models import (
    AnalysisRun,
    Decision,
    Experiment,
    Exposure,
    ImpactPanel,
    User,
)
from feedback.outcomes import queries as outcome_queries
from feedback.permissions import Action
from feedback.schemas.types import MAX_DRAWS, MIN_DRAWS


def queue_panel_analysis(
    session: Session,
    actor: User,
    *,
    panel_id: int,
    control: str = "not_yet",
    method: str = "dr",
    covariates: Sequence[str] = (),
    draws: int = 999,
) -> AnalysisRun:
    """Queue a staggered-rollout analysis of a panel; the caller hands its id to the worker.

    `control` is the comparison group (never or not-yet treated), `method` the estimator (doubly
    robust, outcome regression or inverse probability weighting), `draws` the bootstrap's draws.
    """
    permissions.require(actor, Action.RUN_IMPACT)
    panel = session.get(ImpactPanel, panel_id)
    if panel is None:
        raise NotFound(f"no panel {panel_id}")
    problems = Problems()
    if control not in staggered.CONTROLS:
        problems.invalid["control"] = "must be never or not_yet"
    if method not in staggered.METHODS:
        problems.invalid["method"] = "must be dr, reg or ipw"
    if not MIN_DRAWS <= draws <= MAX_DRAWS:
        problems.invalid["draws"] = f"must be a whole number from {MIN_DRAWS} to {MAX_DRAWS}"
    unknown = set(covariates) - set(panel.covariates)
    if unknown:  # what the stored panel holds: 409
        problems.disallowed["covariates"] = f"{', '.join(sorted(unknown))} not in this panel"
    problems.raise_any("the analysis is invalid")
    params = {"control": control, "method": method, "covariates": list(covariates), "draws": draws}
    run = AnalysisRun(kind="staggered", panel_id=panel_id, params=params, created_by_id=actor.id)
    return _queue(session, actor, run, panel_id)


def queue_ab_analysis(session: Session, actor: User, *, experiment_id: int) -> AnalysisRun:
    """Queue the analysis of an A/B test's arms; the caller hands its id to the worker."""
    permissions.require(actor, Action.RUN_IMPACT)
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id}")
    if experiment.kind != "ab":  # the experiment's state, not the request's shape: 409
        message = "a staggered rollout is analysed from a panel"
        raise Conflict(message, {"experiment_id": message})
    run = AnalysisRun(kind="ab", experiment_id=experiment_id, params={}, created_by_id=actor.id)
    return _queue(session, actor, run, experiment_id)


def _queue(session: Session, actor: User, run: AnalysisRun, target_id: int) -> AnalysisRun:
    session.add(run)
    session.flush()
    details = {"kind": run.kind, "target": target_id, **run.params}
    audit.record(session, Actor(actor.id, actor.email), [Change("analysis.queued", "analysis_run", run.id, details)])
    session.commit()
    return run


def execute_run(session: Session, run_id: int) -> None:
    """Compute a queued run, recording progress as it goes; bad input fails the run, other errors are raised."""
    run = session.get(AnalysisRun, run_id)
    if run is None:
        raise NotFound(f"no analysis {run_id}")
    if run.status != "queued":
        raise Conflict(f"analysis {run_id} is {run.status}")

    def progress(fraction: float, message: str) -> None:
        run.status, run.progress, run.message, run.updated_at = "running", fraction, message, utcnow()
        session.commit()

    try:
        progress(0.05, "loading data")
        result = _staggered_result(session, run, progress) if run.kind == "staggered" else _ab_result(session, run)
    except (ValueError, np.linalg.LinAlgError) as exc:
        session.rollback()
        run.status, run.message = "failed", str(exc)
    except Exception:
        session.rollback()  # anything else may pass (a lost connection): the worker tries again
        raise
    else:
        run.status, run.message, run.result = "done", "", result
    run.progress = 1.0
    run.updated_at = run.finished_at = utcnow()
    session.commit()


def _clean(value: Any) -> Any:
    """JSON-safe numbers (NaN and infinities become null)."""
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _staggered_result(session: Session, run: AnalysisRun, progress: Callable[[float, str], None]) -> dict[str, Any]:
    panel = run.panel
    assert panel is not None
    frame = panel_frame(session, panel)
    params = run.params
    covariates = list(params.get("covariates") or [])
    labels = frame.drop_duplicates("period").set_index("period")["label"].to_dict()
    progress(0.2, "group-time effects")
    fit = staggered.att_gt(
        frame,
        "value",
        "unit",
        "period",
        "cohort",
        control=params["control"],
        covariates=covariates or None,
        method=params["method"],
        labels=labels,
    )
    progress(0.5, "aggregations")
    aggregates = {kind: fit.aggregate(kind) for kind in staggered.KINDS}
    progress(0.6, "bootstrap bands")
    draws = int(params.get("draws") or 999)
    boot = fit.bootstrap(draws=draws, seed=int(params.get("seed") or 0))
    event, critical = fit.event_study(draws=draws, seed=int(params.get("seed") or 0))
    progress(0.9, "pre-test and two-way fixed effects")
    try:
        pre, uniform = fit.pretest(), fit.pretest_uniform(draws=draws, seed=int(params.get("seed") or 0))
        pretest: dict[str, Any] = {
            "statistic": pre.statistic,
            "df": pre.df,
            "p_value": pre.p_value,
            "uniform_statistic": uniform.statistic,
            "uniform_p_value": uniform.p_value,
            # A Wald test with an estimated covariance needs many more units than pre-period effects.
            "wald_reliable": fit.n >= 10 * pre.df,
        }
    except (ValueError, np.linalg.LinAlgError) as exc:
        pretest = {"statistic": None, "df": 0, "p_value": None, "note": str(exc)}
    try:
        twfe_att, twfe_se = staggered.twfe(frame, "value", "unit", "period", "cohort")
        twfe: dict[str, Any] = {"att": twfe_att, "se": twfe_se}
    except ValueError as exc:
        twfe = {"att": None, "se": None, "note": str(exc)}
    simple = aggregates["simple"]
    treated_post = frame[(frame["cohort"] > 0) & (frame["period"] >= frame["cohort"])]["value"]
    counterfactual = float(treated_post.mean()) - simple.overall_att
    cohorts = frame.drop_duplicates("unit").groupby("cohort").size()
    # What the estimator dropped, recoded or left out (edge cohorts, cells without overlap), then small groups.
    warnings = [*fit.warnings] + [
        f"{'the never-treated group' if g == 0 else 'the cohort starting ' + str(labels.get(int(g), g))} has "
        f"{int(size)} unit(s): standard errors from so few units understate the uncertainty"
        for g, size in cohorts.items()
        if size < 5
    ]
    z = ab.Z95
    return cast(
        dict[str, Any],
        _clean(
            {
                "panel": {"id": panel.id, "name": panel.name, "metric": panel.metric, "units": panel.units},
                "warnings": warnings,
                "params": {**params, "draws": draws},
                "labels": {str(k): v for k, v in labels.items()},
                "cohorts": [
                    {"cohort": int(g), "label": labels.get(int(g), "never"), "units": int(n)}
                    for g, n in cohorts.items()
                ],
                "simple": {
                    "att": simple.overall_att,
                    "se": simple.overall_se,
                    "ci_low": simple.overall_att - z * simple.overall_se,
                    "ci_high": simple.overall_att + z * simple.overall_se,
                    "counterfactual_mean": counterfactual,
                    "relative": simple.overall_att / counterfactual if counterfactual else None,
                    "relative_ci_low": (simple.overall_att - z * simple.overall_se) / counterfactual
                    if counterfactual
                    else None,
                    "relative_ci_high": (simple.overall_att + z * simple.overall_se) / counterfactual
                    if counterfactual
                    else None,
                },
                "aggregates": {
                    kind: {"overall_att": agg.overall_att, "overall_se": agg.overall_se, "table": records(agg.table)}
                    for kind, agg in aggregates.items()
                },
                "event_study": {"critical_value": critical, "rows": records(event)},
                "cells": records(boot.table),
                "cell_critical_value": boot.critical_value,
                "pretest": pretest,
                "twfe": twfe,
            }
        ),
    )


def ab_frame(session: Session, experiment: Experiment) -> pd.DataFrame:
    """One row per decision made under the experiment: arm, unit, outcomes, and the reviewer's pre-period means."""
    label = outcome_queries.first_label()
    correct = case((label.is_(None), None), (Decision.final_action == label, 1.0), else_=0.0)
    overridden = case((Decision.action == "override", 1.0), (Decision.action == "accept", 0.0), else_=None)
    rows = session.execute(
        select(
            Exposure.arm,
            Exposure.unit_id,
            Decision.reviewer_id,
            handling_seconds(session).label("handling_seconds"),
            overridden.label("override"),
            correct.label("correct"),
        )
        .join(
            Decision,
            and_(
                Decision.recommendation_id == Exposure.recommendation_id, Decision.reviewer_id == Exposure.reviewer_id
            ),
        )
        .where(Exposure.experiment_id == experiment.id)
    ).all()
    frame = pd.DataFrame(rows, columns=["arm", "unit_id", "reviewer_id", "handling_seconds", "override", "correct"])
    start = experiment.started_at or utcnow()
    pre = session.execute(
        select(
            Decision.reviewer_id,
            func.avg(handling_seconds(session)).label("pre_handling_seconds"),
            func.avg(overridden).label("pre_override"),
            func.avg(correct).label("pre_correct"),
        )
        .where(
            Decision.model_id == experiment.model_id,
            Decision.decided_at < start,
            Decision.decided_at >= start - timedelta(days=28),
        )
        .group_by(Decision.reviewer_id)
    ).all()
    before = pd.DataFrame(pre, columns=["reviewer_id", "pre_handling_seconds", "pre_override", "pre_correct"])
    frame = frame.merge(before, on="reviewer_id", how="left")
    for column in frame.columns.drop(["arm", "unit_id", "reviewer_id"]):
        frame[column] = frame[column].astype(float)
    return frame


AB_METRICS = {"handling_seconds": "Handling time (seconds)", "override": "Override rate", "correct": "Accuracy"}


def _ab_result(session: Session, run: AnalysisRun) -> dict[str, Any]:
    experiment = run.experiment
    assert experiment is not None
    counts = {c.arm: c.units for c in impact_queries.exposure_counts(session, experiment.id)}
    srm = ab.sample_ratio_check(counts, experiment.weights)
    frame = ab_frame(session, experiment)
    cluster = None if experiment.unit == "case" else "unit_id"
    metrics = []
    for column, label in AB_METRICS.items():
        data = frame.dropna(subset=[column])
        row: dict[str, Any] = {"metric": column, "label": label, "rows": len(data), "cuped": None, "mde": None}
        try:
            effect = ab.difference_in_means(data, column, cluster=cluster)
            # Observed design effect of clustered assignment, for planning the next test.
            plain_se = ab.difference_in_means(data, column).se if cluster else effect.se
            design = (effect.se / plain_se) ** 2 if plain_se > 0 else float("nan")
            row["effect"] = effect.as_dict()
        except ValueError as exc:
            row["problem"] = str(exc)
            metrics.append(row)
            continue
        if data[f"pre_{column}"].notna().sum() >= 2:
            adjusted = ab.cuped(data, column, f"pre_{column}", cluster=cluster)
            row["cuped"] = {
                **adjusted.adjusted.as_dict(),
                "theta": adjusted.theta,
                "variance_reduction": adjusted.variance_reduction,
                "estimate_variance_reduction": adjusted.estimate_variance_reduction,
            }
        control_sd = float(data.loc[data["arm"] == "control", column].std())
        if control_sd > 0 and np.isfinite(design):
            plan = ab.minimum_detectable_effect(
                control_sd, len(data), treatment_share=experiment.ai_weight, design_effect=design
            )
            row["mde"] = plan.minimum_detectable_effect
        metrics.append(row)
    return cast(
        dict[str, Any],
        _clean(
            {
                "experiment": {"id": experiment.id, "name": experiment.name, "unit": experiment.unit},
                "srm": {
                    "observed": srm.observed,
                    "expected": srm.expected,
                    "chi2": srm.chi2,
                    "p_value": srm.p_value,
                    "unexpected": srm.unexpected,
                    "mismatch": srm.mismatch,
                },
                "clustered_by": experiment.unit if cluster else None,
                "decisions": len(frame),
                "metrics": metrics,
            }
        ),
    )


def latest_runs(session: Session, limit: int = 20) -> list[AnalysisRun]:
    """The most recent analyses, newest first."""
    return list(session.scalars(select(AnalysisRun).order_by(AnalysisRun.id.desc()).limit(limit)))


def experiment_runs(session: Session, experiment_id: int) -> list[AnalysisRun]:
    """An experiment's analyses, on its own data or on its panels, newest first."""
    return list(
        session.scalars(
            select(AnalysisRun)
            .where((AnalysisRun.experiment_id == experiment_id) | AnalysisRun.panel.has(experiment_id=experiment_id))
            .order_by(AnalysisRun.id.desc())
        )
    )


def panel_runs(session: Session, panel_id: int) -> list[AnalysisRun]:
    """A panel's analyses, newest first."""
    return list(
        session.scalars(select(AnalysisRun).where(AnalysisRun.panel_id == panel_id).order_by(AnalysisRun.id.desc()))
    )


def get_run(session: Session, run_id: int) -> AnalysisRun:
    """An analysis run, read afresh, or NotFound."""
    run = session.get(AnalysisRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"no analysis {run_id}")
    return run


STALE_AFTER = timedelta(minutes=10)


def is_stale(run: AnalysisRun, now: datetime | None = None) -> bool:
    """A run that stopped reporting progress (its worker was restarted): show it as interrupted."""
    return run.status in ("queued", "running") and run.updated_at < (now or utcnow()) - STALE_AFTER
