"""Readiness pages: each version's scorecard, and the plan editor for the model's owners."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, g, request

from feedback import permissions
from feedback.accounts.services import actor_of
from feedback.catalog.services import get_model
from feedback.errors import FeedbackError
from feedback.models.readiness import DIRECTIONS, READINESS_METRICS
from feedback.params import Choice, Flag, Id, Int, Number, Text, parse_params
from feedback.permissions import Action
from feedback.readiness import queries, reports
from feedback.readiness import services as readiness
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import render_page_or_block

bp = Blueprint("readiness", __name__)

SHARES = reports.SHARES
# The editor's fields, one set per metric: include it, which way, the threshold (shares in percent), the sample.
PLAN_FORM = (
    *[
        param
        for metric in READINESS_METRICS
        for param in (
            Flag(f"use_{metric}"),
            Choice(f"direction_{metric}", DIRECTIONS),
            Number(f"threshold_{metric}", -1e9, 1e9),
            Int(f"min_n_{metric}", 0, readiness.MAX_MIN_N),
        )
    ],
    Id("experiment_id"),
    Choice("experiment_metric", readiness.EXPERIMENT_METRICS),
    Text("reason", 2000),
)


def scorecards(key: str) -> tuple[Any, list[tuple[Any, reports.Scorecard]]]:
    """A model and, for each version newest first, its scorecard now."""
    model = get_model(db.session, key)
    plans = queries.latest_plans(db.session, [v.id for v in model.versions])
    return model, [(v, reports.scorecard(db.session, v, plans.get(v.id))) for v in reversed(model.versions)]


@bp.get("/models/<key>/readiness")
@login_required(Action.READ_MODELS)
def overview(key: str) -> tuple[str, int]:
    """Every version's readiness scorecard (the model overview loads this as a fragment)."""
    model, cards = scorecards(key)
    may_change = permissions.can_change_model(db.session, g.user, model.id)
    return render_page_or_block(
        "readiness/overview.html", "scorecards", model=model, cards=cards, may_change=may_change
    )


def editor_rows(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per metric for the editor, filled from these criteria (the plan in force, or what was sent)."""
    current = {c["metric"]: c for c in criteria}
    rows = []
    for metric in READINESS_METRICS:
        found = current.get(metric)
        threshold = found["threshold"] if found else None
        if found and metric in SHARES and isinstance(threshold, int | float):
            threshold = round(threshold * 100, 6)
        rows.append(
            {
                "metric": metric,
                "label": reports.METRIC_LABELS[metric],
                "used": found is not None,
                "direction": found["direction"] if found else readiness.ALLOWED_DIRECTIONS.get(metric, DIRECTIONS)[0],
                "directions": readiness.ALLOWED_DIRECTIONS.get(metric, DIRECTIONS),
                "threshold": threshold,
                "min_n": found["min_n"] if found else 0,
                "percent": metric in SHARES,
                "experiment_id": found.get("experiment_id") if found else None,
                "experiment_metric": found.get("experiment_metric") if found else None,
            }
        )
    return rows


def criteria_from(form: dict[str, Any]) -> list[readiness.Criterion]:
    """The criteria the editor's form asks for (shares arrive in percent)."""
    criteria = []
    for metric in READINESS_METRICS:
        if not form[f"use_{metric}"]:
            continue
        threshold = form[f"threshold_{metric}"]
        if threshold is not None and metric in SHARES:
            threshold = threshold / 100
        experiment = metric == "experiment_effect"
        criterion = readiness.Criterion(
            metric=metric,
            direction=form[f"direction_{metric}"] or "",
            threshold=threshold,
            min_n=form[f"min_n_{metric}"] or 0,
            experiment_id=form["experiment_id"] if experiment else None,
            experiment_metric=form["experiment_metric"] if experiment else None,
        )
        criteria.append(criterion)
    return criteria


@bp.route("/models/<key>/versions/<version>/readiness/plan", methods=["GET", "POST"])
@login_required(Action.READ_MODELS)
def plan(key: str, version: str) -> tuple[str, int]:
    """The plan editor: the plan in force and its history; owners register it or record a new version."""
    found = queries.version_by_key(db.session, key, version)
    may_change = permissions.can_change_model(db.session, g.user, found.model_id)
    history = queries.plan_history(db.session, found.id)
    context: dict[str, Any] = {
        "version": found,
        "model": found.model,
        "history": history,
        "may_change": may_change,
        "describe": reports.describe,
    }
    if request.method == "GET":
        return render_page_or_block(
            "readiness/plan.html", "editor", rows=editor_rows(history[0].criteria if history else []), **context
        )
    form = parse_params(request.form, PLAN_FORM)  # a bad field is named to anyone, before the owner check
    permissions.require(g.user, Action.CHANGE_MODEL, session=db.session, model_id=found.model_id)
    criteria, actor = criteria_from(form), actor_of(g.user)
    sent = [c.stored() for c in criteria]
    try:
        if history:
            saved = readiness.change_plan(
                db.session, actor, version_id=found.id, criteria=criteria, reason=form["reason"] or ""
            )
        else:
            saved = readiness.register_plan(
                db.session, actor, version_id=found.id, criteria=criteria, reason=form["reason"] or ""
            )
    except FeedbackError as exc:
        db.session.rollback()
        return render_page_or_block(
            "readiness/plan.html",
            "editor",
            exc.status,
            rows=editor_rows(sent),  # what was sent, to be corrected
            reason=form["reason"] or "",
            problems=_in_words(exc, sent),
            **context,
        )
    history = queries.plan_history(db.session, found.id)
    return render_page_or_block(
        "readiness/plan.html",
        "editor",
        rows=editor_rows(saved.criteria),
        notice=f"Plan version {saved.plan_version} is in force.",
        **(context | {"history": history}),
    )


def _in_words(exc: FeedbackError, criteria: list[dict[str, Any]]) -> list[str]:
    """An error's fields as sentences naming each criterion by its label, not its position."""
    sentences = []
    for field, problem in exc.fields.items():
        found = re.fullmatch(r"criteria\[(\d+)\]\.(\w+)", field)
        if found and int(found.group(1)) < len(criteria):
            metric = criteria[int(found.group(1))].get("metric")
            label = reports.METRIC_LABELS.get(str(metric), "A criterion")
            field = f"{label}, {found.group(2).replace('_', ' ')}"
        sentences.append(f"{field.replace('_', ' ')}: {problem}")
    return sentences or [exc.message]


def promotion(version: Any, stage: str) -> dict[str, Any] | None:
    """For the stage change's confirm step: the scorecard a promotion to production is judged on, and
    whether it needs an admin's override (None when the change is not a promotion that needs one)."""
    if not readiness.needs_go(db.session, version, stage):
        return None
    card = reports.scorecard(db.session, version)
    ready = card.plan_version is not None and card.verdict == "go"
    return {"card": card, "ready": ready, "may_override": g.user.role == "admin"}
