"""The models list: where model owners land, each model with its trend, alerts, backlog and analytics pages."""

from __future__ import annotations

from flask import Blueprint, g

from feedback.catalog import summaries as model_summaries
from feedback.permissions import Action
from webapp import charts
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import render_page_or_block

bp = Blueprint("models", __name__)


@bp.get("/models")
@login_required(Action.READ_MODELS)
def index() -> tuple[str, int]:
    """Every model the user may see, their own first."""
    summaries = model_summaries.model_summaries(db.session, g.user)
    return render_page_or_block(
        "models/index.html",
        "model_summaries",
        summaries=summaries,
        charts={s.model.id: charts.override_trend(s.trend) for s in summaries},
        weeks=model_summaries.TREND_WEEKS,
    )
