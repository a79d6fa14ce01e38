"""Error answers: JSON under /api, a readable page elsewhere, and a toast for htmx requests."""

from __future__ import annotations

import json
import logging
import re

import sqlalchemy.exc
from flask import Flask, Response, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import HTTPException

from feedback.errors import FeedbackError
from webapp.extensions import db
from webapp.htmx import is_htmx

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "2"


def wants_json() -> bool:
    """API paths answer JSON errors."""
    return request.path.startswith("/api/")


def json_error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response:
    """The API's one error shape."""
    response = jsonify(error={"code": code, "message": message, "fields": fields or {}})
    response.status_code = status
    return response


# What each failure means to the person who met it, and what they can do next. The framework's
# stock descriptions ("You don't have the permission to access the requested resource...") are
# never shown: a message of ours (a domain error, or abort() with a description) goes under the
# heading as the detail.
VOICE: dict[int, tuple[str, str, str]] = {
    # status: (heading, what happened when we have nothing more specific, what to do next)
    400: (
        "Countersign could not read that request",
        "Something in the link or the form was not in a shape Countersign understands.",
        "Go back, check what you entered and try again.",
    ),
    403: (
        "This page is not open to you",
        "Your role does not include this page or this action.",
        "If your work needs it, ask an admin to change your role. Your own pages are one click away.",
    ),
    404: (
        "Countersign cannot find that",
        "The link may be old or mistyped, or what it pointed to has been removed.",
        "Check the address, or start again from your own pages.",
    ),
    405: (
        "That cannot be done from here",
        "This address does not take that kind of request (a form sent to a page that only shows information, say).",
        "Go back and use the page's own buttons.",
    ),
    409: (
        "That clashes with what is stored now",
        "Someone else changed this meanwhile, or it is in a state that does not allow the change.",
        "Reload the page to see the latest version, then try again. Nothing was saved.",
    ),
    422: (
        "Some of what you entered cannot be used",
        "A value is missing or not in the form Countersign needs.",
        "Correct the fields named below and send it again. Nothing was saved.",
    ),
    429: (
        "Too many attempts in a short time",
        "Countersign is pausing requests from you for a moment, to keep accounts safe.",
        "Wait a minute, then try again.",
    ),
    500: (
        "Something went wrong on our side",
        "Countersign hit an error it did not expect. It was not caused by anything you did.",
        "Reload the page to check whether your last change was saved, then try again. "
        "If it keeps happening, tell your admin the reference below.",
    ),
    503: (
        "Countersign is briefly unavailable",
        "The database could not be reached just now.",
        "Try again in a few seconds. Nothing was saved.",
    ),
}


def voice(status: int) -> tuple[str, str, str]:
    """The heading, the plain account and the next step for a status (its class's, if not listed)."""
    return VOICE.get(status) or VOICE[500 if status >= 500 else 400]


def page_error(status: int, message: str | None, fields: dict[str, str] | None = None) -> Response | tuple[str, int]:
    """An error page; for htmx, a partial that is not swapped in (it would land inside a panel) and a toast.

    :param message: our own words about this failure, or None for the status's plain account
    """
    heading, account, next_step = voice(status)
    context = {
        "status": status,
        "heading": heading,
        "message": message or account,
        "next_step": next_step,
        "fields": fields or {},
        "reference": g.get("request_id", ""),
    }
    if is_htmx():
        detail = "; ".join(f"{k}: {v}" for k, v in (fields or {}).items())
        text = f"{message or heading} ({detail})" if detail else (message or f"{heading}. {next_step}")
        return Response(
            render_block("error.html", "error_body", **context),
            status=status,
            headers={"HX-Reswap": "none", "HX-Trigger": json.dumps({"countersign:problem": text})},
        )
    return render_template("error.html", **context), status


def own_description(exc: HTTPException) -> str | None:
    """The description an abort() of ours gave, or None when it is the framework's stock text."""
    stock = type(exc).description
    return exc.description if exc.description and exc.description != stock else None


# A NUL inside a JSON string: `\u0000` after an even number of backslashes (else it is literal text).
JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def reject_nul_characters() -> Response | tuple[str, int] | None:
    """Refuse text with NUL characters up front: PostgreSQL cannot store them, and no real input has them."""
    found = ["path"] if "\x00" in request.path else []
    found += [f"query {name}" for name, value in request.args.items(multi=True) if "\x00" in name + value]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        found += [name for name, value in request.form.items(multi=True) if "\x00" in name + value]
    elif request.mimetype == "application/json":
        body = request.get_data(cache=True)
        # The substring test is a fast memchr scan; the regex (20 ms on a 1,000-item batch) runs only on a hit.
        if b"\\u0000" in body and JSON_NUL.search(body):
            found.append("body")
    if not found:
        return None
    fields = {name: "must not contain NUL characters" for name in found}
    if wants_json():
        return json_error(400, "invalid", "text may not contain NUL characters", fields)
    return page_error(400, "Text may not contain NUL characters.", fields)


def register_error_handlers(app: Flask) -> None:
    """Turn domain and HTTP errors into clear 4xx answers."""
    app.before_request(reject_nul_characters)

    @app.errorhandler(sqlalchemy.exc.DataError)
    def unstorable_value(exc: sqlalchemy.exc.DataError) -> Response | tuple[str, int]:
        # A value the checks let through but the database refused (a number out of range, say).
        log.warning("database refused a value: %s", type(exc.orig).__name__)
        message = "A value is out of the range the database can store; nothing was saved."
        return json_error(422, "unstorable_value", message) if wants_json() else page_error(422, message)

    @app.errorhandler(FeedbackError)
    def domain_error(exc: FeedbackError) -> Response | tuple[str, int]:
        if wants_json():
            return json_error(exc.status, exc.code, exc.message, exc.fields)
        return page_error(exc.status, exc.message, exc.fields)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response | tuple[str, int]:
        return page_error(400, "This form has expired or did not come from Countersign. Reload the page and try again.")

    @app.errorhandler(sqlalchemy.exc.OperationalError)
    @app.errorhandler(sqlalchemy.exc.InterfaceError)
    @app.errorhandler(sqlalchemy.exc.TimeoutError)
    def database_unavailable(exc: Exception) -> Response | tuple[str, int]:
        # The database restarted, failed over or is locked: nothing was committed, so retrying is safe.
        log.warning("database unavailable: %s", type(exc).__name__)
        db.session.rollback()  # the request's transaction died with its connection; later code must not reuse it
        message = "The database is briefly unavailable; nothing was saved. Try again in a few seconds."
        response = json_error(503, "unavailable", message) if wants_json() else page_error(503, message)
        if isinstance(response, tuple):
            response = make_response(response)
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            response = json_error(status, code, exc.description or exc.name)
        else:
            response = make_response(page_error(status, own_description(exc)))
        # Keep what the exception says beyond its body: Allow on a 405 (RFC 9110), Retry-After, WWW-Authenticate.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
