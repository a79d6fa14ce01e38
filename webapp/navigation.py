"""Where each role lands after signing in, and the top menu: both read who may open a page from its view."""

from __future__ import annotations

from flask import current_app, url_for

# Each role's landing page: where its work is.
HOME_BY_ROLE = {
    "frontline": "queue.index",
    "exception_handler": "decision_exceptions.index",
    "model_owner": "models.index",
    "analyst": "impact.index",
    "admin": "admin.models",
}

# The top menu in order; each entry shows only to the roles its view lets in (login_required).
MENU = (
    ("queue.index", "Queue"),
    ("decision_exceptions.index", "Exceptions"),
    ("models.index", "Models"),
    ("decision_exceptions.dashboard", "Resolution"),
    ("impact.index", "Impact"),
    ("exports.index", "Export"),
    ("admin.models", "Registry"),
    ("admin.webhooks_page", "Webhooks"),
    ("users.index", "People"),
)


def roles_of(endpoint: str) -> tuple[str, ...] | None:
    """The roles a page lets in (None: any signed-in user)."""
    return getattr(current_app.view_functions[endpoint], "roles", None)


def may_open(role: str, endpoint: str) -> bool:
    """Whether a role may open a page."""
    allowed = roles_of(endpoint)
    return allowed is None or role in allowed


def home_url(role: str) -> str:
    """The URL a role lands on."""
    return url_for(HOME_BY_ROLE[role])


def menu(role: str) -> list[tuple[str, str]]:
    """(url, label) of the pages a role sees in the top menu."""
    return [(url_for(endpoint), label) for endpoint, label in MENU if may_open(role, endpoint)]
