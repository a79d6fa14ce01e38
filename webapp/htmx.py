"""htmx request detection and fragment rendering."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    """True when the request came from htmx (and is not a history restore)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def render_page_or_block(template: str, block: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render the whole page, or only `block` for htmx requests."""
    from flask import render_template

    if is_htmx():
        return render_block(template, block, **context), status
    return render_template(template, **context), status


def add_vary(response: Response) -> Response:
    """Pages and fragments share URLs, so caches must key on HX-Request."""
    response.vary.add("HX-Request")
    return response
