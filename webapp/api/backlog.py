"""Retraining backlog and labelled-data exports over the API (same services as the pages)."""

from __future__ import annotations

from flask import Response, g, request
from flask.typing import ResponseReturnValue

from feedback import models, permissions
from feedback.accounts import services as accounts
from feedback.backlog import queries as backlog_queries
from feedback.backlog import services as backlog
from feedback.catalog import services as catalog
from feedback.exports import formats as export_formats
from feedback.exports import queries as export_queries
from feedback.params import Choice, Flag, ModelKey, Version, parse_params
from feedback.permissions import Action
from feedback.schemas import BacklogItemOut, BacklogListOut, BacklogPatchIn, ErrorOut, RefreshOut
from feedback.validation import parse
from webapp.api.blueprint import bp, json_body
from webapp.api.openapi import documented
from webapp.extensions import analytics_engine, analytics_session, db, streamed

BACKLOG_QUERY = (
    ModelKey(),
    Choice("status", models.BACKLOG_STATUSES),
    Version(),
    Flag("include_inactive", description="include patterns no longer credible"),
)
REFRESH_QUERY = (ModelKey(),)


def _may_read() -> None:
    permissions.require(g.user, Action.READ_MODELS)


@bp.get("/backlog")
@documented(
    "get",
    "/api/v1/backlog",
    "A model's retraining backlog, highest priority first",
    query=BACKLOG_QUERY,
    responses={
        200: ("the ranked items", BacklogListOut),
        403: ("role may not read the backlog", ErrorOut),
        404: ("unknown model", ErrorOut),
        422: ("invalid filter", ErrorOut),
    },
)
def list_backlog() -> ResponseReturnValue:
    """The model's backlog, ranked."""
    _may_read()
    args = parse_params(request.args, BACKLOG_QUERY)
    model = catalog.get_model(db.session, args["model"])
    flt = backlog_queries.BacklogFilter(
        model_key=model.key, status=args["status"], version=args["version"], include_inactive=args["include_inactive"]
    )
    return {"items": [backlog_queries.item_payload(i) for i in backlog_queries.ranked(db.session, flt)]}


@bp.post("/backlog/refresh")
@documented(
    "post",
    "/api/v1/backlog/refresh",
    "Mine the model's decisions again (items are updated, never duplicated)",
    query=REFRESH_QUERY,
    responses={200: ("what changed", RefreshOut), 403: ("forbidden", ErrorOut), 404: ("unknown model", ErrorOut)},
)
def refresh_backlog() -> ResponseReturnValue:
    """Mine the model's decisions again, in this request."""
    permissions.require(g.user, Action.CHANGE_MODEL)
    model_key = parse_params(request.args, REFRESH_QUERY)["model"]
    summary = backlog.refresh(db.session, accounts.actor_of(g.user), model_key=model_key)
    return {"created": summary.created, "updated": summary.updated, "retired": summary.retired}


@bp.patch("/backlog/<int:item_id>")
@documented(
    "patch",
    "/api/v1/backlog/{item_id}",
    "Change an item's status, owner or notes (verified needs a newer version that is significantly better)",
    body=BacklogPatchIn,
    path_params={"item_id": "id"},
    responses={
        200: ("the item", BacklogItemOut),
        403: ("forbidden", ErrorOut),
        404: ("unknown id", ErrorOut),
        409: (
            "changed by someone else (`conflict`); or an owner who is no user or may not own the item, or verified"
            " without a significantly better newer version (`not_allowed`)",
            ErrorOut,
        ),
        422: ("invalid change", ErrorOut),
    },
)
def patch_backlog(item_id: int) -> ResponseReturnValue:
    """Triage one backlog item: status, owner or notes."""
    spec = parse(BacklogPatchIn, json_body())
    item = backlog.update_item(
        db.session,
        g.user,
        item_id=item_id,
        status=spec.status,
        owner_email=spec.owner,
        notes=spec.notes,
        row_version=spec.row_version,
    )
    return backlog_queries.item_payload(item)


@bp.get("/exports/decisions")
@documented(
    "get",
    "/api/v1/exports/decisions",
    "Labelled decided cases, streamed (format: csv, parquet, jsonl)",
    query=export_queries.EXPORT_PARAMS,
    responses={
        200: ("the rows, streamed", None),
        403: ("role may not export, or personal data asked for by a non-admin", ErrorOut),
        404: ("unknown model or backlog item", ErrorOut),
        422: ("invalid filter", ErrorOut),
    },
)
def export_decisions() -> ResponseReturnValue:
    """Stream labelled decided cases as CSV, Parquet or JSON Lines."""
    spec = export_queries.parse_spec(g.user, request.args)
    export_queries.check(analytics_session(), spec)  # unknown model or item: a JSON error before any byte is sent
    filename = f"{spec.model_key}-decisions.{spec.format}"
    return Response(
        streamed(analytics_engine(), lambda session: export_formats.stream(session, spec)),
        mimetype=export_formats.MEDIA_TYPES[spec.format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
