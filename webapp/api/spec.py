"""Serve the OpenAPI document."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from webapp.api.blueprint import bp
from webapp.api.openapi import build_document


@bp.get("/openapi.json", endpoint="openapi")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(build_document())
