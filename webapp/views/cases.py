"""The read-only case view: what the AI recommended and why, what people decided, what happened, and its history."""

from __future__ import annotations

from flask import Blueprint, abort, g

from feedback.permissions import Action
from feedback.review import case_view as case_queries
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import render_page_or_block

bp = Blueprint("cases", __name__, url_prefix="/cases")


@bp.get("/<int:recommendation_id>")
@login_required(Action.READ_MODELS)
def detail(recommendation_id: int) -> tuple[str, int]:
    """One case, read-only: opening it never claims it."""
    rec = case_queries.case_detail(db.session, recommendation_id)
    if rec is None:
        abort(404)
    exceptions = case_queries.case_exceptions(db.session, rec.id)
    history = case_queries.case_history(db.session, g.user, rec.id, [e.id for e in exceptions])
    return render_page_or_block(
        "cases/detail.html", "case_body", rec=rec, decision=rec.decision, exceptions=exceptions, history=history
    )
