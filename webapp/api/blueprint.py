"""The /api/v1 blueprint: token authentication, JSON bodies and batches, shared by every route module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, request
from pydantic import BaseModel
from werkzeug.exceptions import UnsupportedMediaType

from feedback import json_input
from feedback.errors import FeedbackError
from feedback.validation import parse_batch
from webapp.auth import api_user

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PUBLIC_ENDPOINTS = {"api.openapi"}


@bp.before_request
def authenticate() -> Response | None:
    """Every API call needs a live bearer token (the OpenAPI document is public)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user = api_user()
    if isinstance(user, Response):
        return user
    g.user = user
    return None


def json_body() -> Any:
    """The parsed JSON body: 415 if it is not JSON, 400 if it does not parse, 422 past a limit (docs/api.md)."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    return json_input.loads(request.get_data(cache=True))


def unbatched(exc: FeedbackError) -> FeedbackError:
    """A single-object request names its fields without the batch's `[0].` prefix."""
    exc.fields = {key.removeprefix("[0].").removeprefix("[0]") or "body": msg for key, msg in exc.fields.items()}
    return exc


def store_batch(
    schema: type[BaseModel], store: Callable[[list[Any]], list[Any]], present: Callable[[Any], dict[str, Any]]
) -> tuple[dict[str, Any], int]:
    """Validate one object or a batch, store it all-or-nothing, answer 201 if anything was new (else 200).

    Each stored result has a `created` flag; a single object is answered without the batch wrapper.
    """
    items, is_batch = parse_batch(schema, json_body(), max_items=current_app.config["MAX_BATCH"])
    try:
        results = store(items)
    except FeedbackError as exc:
        raise exc if is_batch else unbatched(exc) from None
    out = [present(r) for r in results]
    return ({"items": out} if is_batch else out[0]), 201 if any(r.created for r in results) else 200


def not_found(what: str) -> None:
    """Abort with a 404 naming the missing object."""
    abort(404, description=f"no {what}")
