"""The retraining backlog: ranked over-override patterns, triage inline, detail with chart and cases."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for
from werkzeug.wrappers import Response

from feedback import permissions
from feedback.backlog import queries as backlog_queries
from feedback.backlog import services as backlog
from feedback.catalog import queries as catalog_queries
from feedback.catalog import services as catalog
from feedback.errors import FIELD_FAULTS, NotFound
from feedback.frames import records
from feedback.models import BACKLOG_STATUSES
from feedback.params import MAX_ID, Choice, Flag, Id, Int, Text, Version, parse_params
from feedback.permissions import Action
from webapp import charts, jobs
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import db
from webapp.htmx import is_htmx, render_page_or_block

bp = Blueprint("backlog", __name__)


LIST_QUERY = (Choice("status", BACKLOG_STATUSES), Version(), Flag("inactive"), Choice("format", ("csv",)))
DETAIL_QUERY = (
    Choice("format", ("csv",)),
    Flag("all"),
    Id("after", description="the decision id the previous page ended on"),
)
UPDATE_FORM = (
    Choice("status", BACKLOG_STATUSES),
    Text("owner", 320),
    Text("notes", 10_000),
    Int("row_version", 0, MAX_ID),
    Choice("from", ("list", "detail")),
)


def _filter(key: str) -> backlog_queries.BacklogFilter:
    """The list's filter from the query string."""
    args = parse_params(request.args, LIST_QUERY)
    return backlog_queries.BacklogFilter(
        model_key=key, status=args["status"], version=args["version"], include_inactive=args["inactive"]
    )


def _list_context(key: str, **extra: Any) -> dict[str, Any]:
    model = catalog.get_model(db.session, key)
    flt = _filter(key)
    return {
        "model": model,
        "flt": flt,
        "items": backlog_queries.ranked(db.session, flt),
        "versions": catalog_queries.version_labels(db.session, model.id),
        "statuses": BACKLOG_STATUSES,
        "refreshed_at": backlog_queries.refreshed_at(db.session, model.id),
        **_refresh_context(key, backlog_queries.latest_refresh(db.session, model.id)),
        "can_edit": permissions.can_change_model(db.session, g.user, model.id),
        "args": request.args,
        "notice": None,
        **extra,
    }


@bp.get("/models/<key>/backlog")
@login_required(Action.READ_MODELS)
def index(key: str) -> tuple[str, int] | Response:
    """Ranked backlog of a model, filtered; CSV with ?format=csv."""
    context = _list_context(key)
    if parse_params(request.args, LIST_QUERY)["format"] == "csv":
        rows = [backlog_queries.item_payload(i) for i in context["items"]]
        columns = [
            "id",
            "model_version",
            "title",
            "pattern",
            "cases",
            "overrides",
            "rate",
            "rate_low",
            "rate_high",
            "baseline",
            "ratio",
            "excess_overrides",
            "q_value",
            "ai_wrong_share",
            "priority",
            "status",
            "owner",
        ]
        return csv_response(rows, columns, f"{key}-backlog.csv")
    return render_page_or_block("backlog/index.html", "backlog_list", **context)


@bp.post("/models/<key>/backlog/refresh")
@login_required(Action.CHANGE_MODEL)
def refresh(key: str) -> tuple[str, int] | Response:
    """Start mining the model's decisions again in the background and show its progress.

    The request returns at once; the page polls the refresh's row. While a refresh is under way
    another press shows that one instead of starting a second.
    """
    _filter(key)  # the list shown afterwards: a bad filter is refused before anything is written
    job, new = backlog.start_refresh(db.session, g.user, model_key=key)
    if new:
        jobs.submit_backlog_refresh(job.id)
    if not is_htmx():
        return redirect(url_for("backlog.index", key=key), 303)
    return render_page_or_block("backlog/_refresh.html", "refresh", 202, **_refresh_context(key, job))


@bp.get("/models/<key>/backlog/refresh/<int:job_id>")
@login_required(Action.READ_MODELS)
def refresh_status(key: str, job_id: int) -> tuple[str, int, dict[str, str]] | Response:
    """A refresh's progress (polled by htmx); when it is done the list reloads itself."""
    model = catalog.get_model(db.session, key)
    try:
        job = backlog_queries.get_refresh(db.session, model.id, job_id)
    except NotFound:
        abort(404)
    if not is_htmx():
        return redirect(url_for("backlog.index", key=key))
    body, status = render_page_or_block("backlog/_refresh.html", "refresh", **_refresh_context(key, job))
    finished = job.status in ("done", "failed")
    return body, status, {"HX-Trigger": "backlog-refreshed"} if finished else {}


def _refresh_context(key: str, job: Any) -> dict[str, Any]:
    model = catalog.get_model(db.session, key)
    return {
        "model": model,
        "job": job,
        "job_interrupted": job is not None and backlog_queries.refresh_interrupted(job),
        "can_edit": permissions.can_change_model(db.session, g.user, model.id),
    }


@bp.post("/backlog/<int:item_id>")
@login_required(Action.CHANGE_MODEL)
def update(item_id: int) -> tuple[str, int] | Response:
    """Change status, owner or notes (inline in the list, or from the detail page)."""
    form = request.form
    from_list = form.get("from") == "list" and is_htmx()
    try:
        values = parse_params(form, UPDATE_FORM)
        item = backlog.update_item(
            db.session,
            g.user,
            item_id=item_id,
            status=values["status"],
            owner_email=(values["owner"] or "") if "owner" in form else None,
            notes=(values["notes"] or "") if "notes" in form else None,
            row_version=values["row_version"],
        )
    except FIELD_FAULTS as exc:
        item = backlog_queries.get_item(db.session, item_id)
        problem = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
        if from_list:
            return render_page_or_block(
                "backlog/_row.html",
                "row",
                status=exc.status,
                item=item,
                problem=problem,
                statuses=BACKLOG_STATUSES,
                can_edit=True,
            )
        return render_detail(item, status=exc.status, problem=problem)
    except NotFound:
        abort(404)
    if from_list:
        return render_page_or_block(
            "backlog/_row.html",
            "row",
            item=item,
            statuses=BACKLOG_STATUSES,
            can_edit=True,
            notice=f"Now {item.status}.",
        )
    return render_detail(item, notice="Saved.")


def render_detail(item: Any, status: int = 200, **extra: Any) -> tuple[str, int]:
    """A backlog item's page (or its body, for htmx)."""
    args = parse_params(request.args, DETAIL_QUERY)
    frame = backlog_queries.rate_over_time(db.session, item)
    context = {
        "item": item,
        "chart": charts.pattern_rate(frame),
        "trend": records(frame),
        "verification": backlog_queries.verification(db.session, item),
        "cases": backlog_queries.pattern_cases(db.session, item, overrides_only=not args["all"], after=args["after"]),
        "everything": args["all"],
        "statuses": BACKLOG_STATUSES,
        "owners": permissions.people_who_may_change(db.session, item.model_id),
        "can_edit": permissions.can_change_model(db.session, g.user, item.model_id),
        "problem": None,
        "notice": None,
        **extra,
    }
    return render_page_or_block("backlog/detail.html", "detail_body", status=status, **context)


@bp.get("/backlog/<int:item_id>")
@login_required(Action.READ_MODELS)
def detail(item_id: int) -> tuple[str, int] | Response:
    """One item: its numbers, its rate by version over time, and example cases."""
    try:
        item = backlog_queries.get_item(db.session, item_id)
    except NotFound:
        abort(404)
    if parse_params(request.args, DETAIL_QUERY)["format"] == "csv":
        frame = backlog_queries.rate_over_time(db.session, item)
        return csv_response(records(frame), list(frame.columns), f"backlog-{item_id}-rate-by-version.csv")
    return render_detail(item)
