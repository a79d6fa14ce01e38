"""Front-end packages served from node_modules (installed from package-lock.json)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, send_from_directory
from werkzeug.exceptions import NotFound

bp = Blueprint("vendor", __name__)

# Only these files are exposed; the rest of node_modules stays private.
FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
}


@bp.get("/static/vendor/<name>")
def vendor_file(name: str) -> Response:
    """Serve one whitelisted front-end file."""
    path = FILES.get(name)
    if path is None:
        raise NotFound()
    response = send_from_directory(current_app.config["NODE_MODULES"], path, max_age=3600)
    return response
