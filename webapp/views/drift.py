"""The drift page: has what the model sees, or what it recommends, moved since its reference window?"""

from __future__ import annotations

from flask import Blueprint, Response, request

from analytics.drift import DISTANCE_THRESHOLD
from feedback.drift import reports
from feedback.frames import records
from feedback.params import Choice, Day, Text, Version, parse_params
from feedback.permissions import Action
from webapp import charts
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import analytics_session
from webapp.htmx import render_page_or_block

bp = Blueprint("drift", __name__, url_prefix="/models")

PAGE_QUERY = (
    Version(),
    Day("reference_from"),
    Day("reference_to"),
    Day("from"),
    Day("to"),
    Text("feature", 120, pattern=r"[A-Za-z0-9_.:-]+", hint="a feature name from the table"),
    Choice("format", ("csv",)),
    Choice("table", ("features", "daily")),
)
CSV_COLUMNS = ["feature", "kind", "method", "statistic", "p_value", "threshold", "drifted", "n_reference", "n_current"]


@bp.get("/<key>/drift")
@login_required(Action.READ_MODELS)
def drift_page(key: str) -> tuple[str, int] | Response:
    """Every feature's drift for one version, with a daily chart of one of them."""
    session = analytics_session()
    args = parse_params(request.args, PAGE_QUERY)
    version = args["version"] or reports.default_version(session, key)
    reference, current = reports.requested(args)
    page = reports.page(session, key, version, reference, current, args["feature"])
    chosen = page.chosen.feature if page.chosen else None
    if args["format"] == "csv":
        if args["table"] == "daily":
            rows = records(page.daily) if page.daily is not None else []
            columns = ["day", "distance", "p_value", "method", "drifted", "n_current"]
            return csv_response(rows, columns, f"{key}-{version}-drift-{chosen or 'none'}-by-day.csv")
        return csv_response(reports.as_dicts(page.rows), CSV_COLUMNS, f"{key}-{version}-drift.csv")
    chart = None
    if chosen and page.daily is not None and len(page.daily):
        chart = charts.drift_daily(page.daily, page.labels[chosen], DISTANCE_THRESHOLD)
    return render_page_or_block(
        "drift/page.html",
        "drift_body",
        page=page,
        model=page.model,
        chosen=chosen,
        chosen_row=page.chosen,
        chart=chart,
        methods=reports.METHOD_WORDS,
        drifted=[r for r in page.rows if r.drifted],
        args=request.args.to_dict(),
    )
