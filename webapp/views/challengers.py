"""The challenger comparison page: each shadow challenger against the champion on the same cases."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from feedback.catalog.services import get_model
from feedback.challengers import reports
from feedback.overrides.queries import segment_keys
from feedback.params import Choice, Day, Text, Version, parse_params
from feedback.permissions import Action
from webapp import charts
from webapp.auth import login_required
from webapp.csvout import csv_response
from webapp.extensions import analytics_session
from webapp.htmx import render_page_or_block

bp = Blueprint("challengers", __name__, url_prefix="/models")

PAGE_QUERY = (
    Version(),
    Text("by", 80, pattern=reports.BY_PATTERN, hint=reports.BY_HINT),
    Choice("decisions", reports.SCOPES, default="all"),
    Choice("format", ("csv",)),
    Day("from"),
    Day("to"),
)


def chart(model: Any, rows: list[dict[str, Any]], by: str | None) -> dict[str, Any]:
    """The accuracy chart of these rows, labelled in the model's own words."""
    attribute = (by or "").removeprefix("segment.")
    categories = [
        "All cases" if r["segment"] is None else model.segment_value_label(attribute, r["segment"]) for r in rows
    ]
    return charts.challenger_accuracy(categories, rows, model.segment_label(attribute) if by else "cases")


@bp.get("/<key>/challengers")
@login_required(Action.READ_MODELS)
def compare(key: str) -> tuple[str, int] | Response:
    """Shadow challengers of a model against its champion, overall and by segment, for all or unaided decisions."""
    session = analytics_session()
    args = parse_params(request.args, PAGE_QUERY)
    model = get_model(session, key)
    versions = reports.challenger_versions(session, model)
    version = args["version"] or (versions[-1][0] if versions else None)
    result = reports.comparison(session, model, version, args["by"], since=args["from"], until=args["to"])
    scope = args["decisions"]
    if args["format"] == "csv":
        rows = [r for r in result.rows if r["decisions"] == scope]
        return csv_response(rows, reports.COLUMNS, f"{key}-challengers-{version or 'none'}-{scope}.csv")
    overall = result.where(scope, segmented=False)
    by_segment = result.where(scope, segmented=True)
    shown = overall + by_segment
    return render_page_or_block(
        "challengers/compare.html",
        "challengers_body",
        model=model,
        versions=versions,
        version=version,
        by=args["by"],
        scope=scope,
        attributes=segment_keys(session, model.id),
        overall=overall,
        by_segment=by_segment,
        unaided=result.where("unaided", segmented=False),
        chart=chart(model, shown, args["by"]) if shown else None,
        sentences=[
            sentence(r)
            for r in overall
            for sentence in (reports.accuracy_sentence, reports.agreement_sentence, reports.override_sentence)
        ]
        + ([reports.segment_sentence(model, args["by"], by_segment)] if args["by"] and by_segment else []),
        unaided_why=reports.UNAIDED_WHY,
        since=args["from"],
        until=args["to"],
        args=request.args,
    )
