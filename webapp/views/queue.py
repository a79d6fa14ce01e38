"""The review queue: open cases, most urgent first."""

from __future__ import annotations

from flask import Blueprint, request

from feedback.db import utcnow
from feedback.params import MAX_PAGE, Id, Int, Text, parse_params
from feedback.permissions import Action
from feedback.review import queries as review_queries
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import is_htmx, render_page_or_block

bp = Blueprint("queue", __name__)


FILTER = (Id("model"), Text("site"))
PAGE = Int("page", 1, MAX_PAGE, default=1)


def queue_filter() -> review_queries.QueueFilter:
    """The model and site filter from the query string."""
    args = parse_params(request.args, FILTER)
    return review_queries.QueueFilter(model_id=args["model"], site=args["site"])


@bp.get("/queue")
@login_required(Action.REVIEW)
def index() -> tuple[str, int]:
    """The queue page, or just its table for htmx filter changes."""
    flt = queue_filter()
    page = parse_params(request.args, (PAGE,))["page"]
    now = utcnow()
    return render_page_or_block(
        "queue/index.html",
        "queue_table",
        flt=flt,
        page=page,
        now=now,
        cases=review_queries.open_cases(db.session, flt, limit=50, offset=(page - 1) * 50),
        counts=review_queries.queue_counts(db.session, flt, now),
        fragment=is_htmx(),
    )
