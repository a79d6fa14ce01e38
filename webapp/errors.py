"""Error answers: JSON under /api, a readable page (or fragment) elsewhere."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from feedback.errors import FeedbackError


def wants_json() -> bool:
    """API paths answer JSON errors."""
    return request.path.startswith("/api/")


def json_error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    """The API's one error shape."""
    response = jsonify(error={"code": code, "message": message, "fields": fields or {}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn domain and HTTP errors into clear 4xx answers."""

    @app.errorhandler(FeedbackError)
    def domain_error(exc: FeedbackError) -> Response | tuple[str, int]:
        if wants_json():
            return json_error(exc.status, exc.code, exc.message, exc.fields)
        return render_template("error.html", status=exc.status, message=exc.message, fields=exc.fields), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        message = "This form has expired or did not come from Countersign. Reload the page and try again."
        return render_template("error.html", status=400, message=message, fields={}), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | tuple[str, int]:
        status = exc.code or 500
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            return json_error(status, code, exc.description or exc.name)
        return render_template("error.html", status=status, message=exc.description, fields={}), status
