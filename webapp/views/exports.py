"""Labelled-data exports from the UI: written in the background with progress, then downloaded."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, abort, current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from feedback.catalog import queries as catalog_queries
from feedback.errors import ValidationFailed
from feedback.exports import formats as export_formats
from feedback.exports import queries as export_queries
from feedback.exports import services as exports
from feedback.models import ExportJob
from feedback.params import parse_params
from feedback.permissions import Action
from webapp import jobs
from webapp.auth import login_required
from webapp.extensions import db, streamed
from webapp.htmx import is_htmx, render_page_or_block

bp = Blueprint("exports", __name__, url_prefix="/exports")
PREFILL = tuple(replace(p, required=False) for p in export_queries.EXPORT_PARAMS)


def _form_context(**extra: object) -> dict[str, object]:
    return {
        "models": catalog_queries.models_by_name(db.session),
        "versions": catalog_queries.versions_by_model_key(db.session),
        "jobs": export_queries.recent_jobs(db.session, g.user),
        "args": request.args,
        "fields": {},
        "problem": None,
        **extra,
    }


@bp.get("")
@login_required(Action.EXPORT)
def index() -> tuple[str, int]:
    """The export form (prefilled from the query string) and this user's recent exports."""
    parse_params(request.args, PREFILL)  # a link with a bad value gets a 422 naming it, not a broken form
    return render_page_or_block("exports/index.html", "export_form", **_form_context())


@bp.post("")
@login_required(Action.EXPORT)
def create() -> Response | tuple[str, int]:
    """Queue an export and follow its progress."""
    try:
        spec = export_queries.parse_spec(g.user, request.form)
        job = exports.create_job(db.session, g.user, spec=spec, keep_days=current_app.config["EXPORT_KEEP_DAYS"])
    except ValidationFailed as exc:
        context = _form_context(fields=exc.fields, problem=exc.message, args=request.form)
        return render_page_or_block("exports/index.html", "export_form", status=422, **context)
    jobs.submit_export(job.id)
    target = url_for("exports.job", job_id=job.id)
    return Response(status=200, headers={"HX-Redirect": target}) if is_htmx() else redirect(target)


def _own_job(job_id: int) -> ExportJob:
    job = db.session.get(ExportJob, job_id, populate_existing=True)
    # Exports may hold reviewers' identities: only the person who asked sees them.
    if job is None or job.created_by_id != g.user.id:
        abort(404)
    return job


@bp.get("/<int:job_id>")
@login_required(Action.EXPORT)
def job(job_id: int) -> tuple[str, int]:
    """Progress while writing (polled by htmx), the download link when done."""
    return render_page_or_block("exports/job.html", "job_body", job=_own_job(job_id))


@bp.get("/<int:job_id>/download")
@login_required(Action.EXPORT)
def download(job_id: int) -> Response:
    """The finished export, streamed from the database (so any host can serve it)."""
    chosen = _own_job(job_id)
    if chosen.status != "done":
        abort(404)
    name = f"{chosen.params.get('model')}-decisions-{chosen.id}.{chosen.format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if chosen.bytes_total is not None:
        headers["Content-Length"] = str(chosen.bytes_total)
    body = streamed(db.engine, lambda session: exports.stored_bytes(session, job_id))
    return Response(body, mimetype=export_formats.MEDIA_TYPES[chosen.format], headers=headers)
