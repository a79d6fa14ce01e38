"""The models list: where model owners land, each model with its trend, alerts, backlog and analytics pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from feedback.catalog import summaries as model_summaries
from feedback.permissions import Action
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import render_page_or_block

bp = Blueprint("models", __name__)


def trend_chart(summary: model_summaries.ModelSummary) -> dict[str, Any]:
    """A model's weekly override rate as a chart spec (categories are the weeks' first days)."""
    return {
        "categories": [w["week"] for w in summary.trend],
        "xLabel": "week starting",
        "yLabel": "override rate",
        "yFormat": "percent",
        "yMax": None,
        "series": [
            # Table-only columns first (the table reads: cases, overrides, rate): the counts behind each rate.
            {
                "label": "accepts and overrides",
                "values": [w["judged"] for w in summary.trend],
                "draw": False,
                "format": "count",
            },
            {"label": "overrides", "values": [w["overrides"] for w in summary.trend], "draw": False, "format": "count"},
            {
                "label": "override rate",
                "values": [None if w["rate"] is None else round(w["rate"], 6) for w in summary.trend],
                "pointRadius": 2,
            },
        ],
    }


@bp.get("/models")
@login_required(Action.READ_MODELS)
def index() -> tuple[str, int]:
    """Every model the user may see, their own first."""
    summaries = model_summaries.model_summaries(db.session, g.user)
    return render_page_or_block(
        "models/index.html",
        "model_summaries",
        summaries=summaries,
        charts={s.model.id: trend_chart(s) for s in summaries},
        weeks=model_summaries.TREND_WEEKS,
    )
