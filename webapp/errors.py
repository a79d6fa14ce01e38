"""Error answers: JSON under /api, a readable page elsewhere, and a toast for htmx requests."""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from feedback.errors import FeedbackError
from webapp.htmx import is_htmx


def wants_json() -> bool:
    """API paths answer JSON errors."""
    return request.path.startswith("/api/")


def json_error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    """The API's one error shape."""
    response = jsonify(error={"code": code, "message": message, "fields": fields or {}})
    response.status_code = status
    return response


def page_error(status: int, message: str, fields: dict[str, str] | None = None) -> Response | tuple[str, int]:
    """An error page; for htmx, no swap at all (a page would land inside a panel) and a toast instead."""
    if is_htmx():
        detail = "; ".join(f"{k}: {v}" for k, v in (fields or {}).items())
        text = f"{message} ({detail})" if detail else message
        return Response(
            status=status,
            headers={"HX-Reswap": "none", "HX-Trigger": json.dumps({"countersign:problem": text})},
        )
    return render_template("error.html", status=status, message=message, fields=fields or {}), status


def register_error_handlers(app: Flask) -> None:
    """Turn domain and HTTP errors into clear 4xx answers."""

    @app.errorhandler(FeedbackError)
    def domain_error(exc: FeedbackError) -> Response | tuple[str, int]:
        if wants_json():
            return json_error(exc.status, exc.code, exc.message, exc.fields)
        return page_error(exc.status, exc.message, exc.fields)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response | tuple[str, int]:
        return page_error(400, "This form has expired or did not come from Countersign. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | tuple[str, int]:
        status = exc.code or 500
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            return json_error(status, code, exc.description or exc.name)
        return page_error(status, exc.description or exc.name)
