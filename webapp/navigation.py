"""Where each role lands after signing in, and the top menu: both read who may open a page from its view."""

from __future__ import annotations

from flask import current_app, url_for

from feedback import permissions

# Each role's landing page: where its work is.
HOME_BY_ROLE = {
    "frontline": "queue.index",
    "exception_handler": "decision_exceptions.index",
    "model_owner": "models.index",
    "analyst": "impact.index",
    "admin": "admin.models",
}

# The top menu in order; each entry shows only to the roles whose view's action the matrix allows.
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


def may_open(role: str, endpoint: str) -> bool:
    """Whether a role may open a page: the action its view declares (login_required), read in the matrix."""
    action = getattr(current_app.view_functions[endpoint], "action", None)
    return action is None or permissions.allows(role, action)


def home_url(role: str) -> str:
    """The URL a role lands on."""
    return url_for(HOME_BY_ROLE[role])


def menu(role: str) -> list[tuple[str, str]]:
    """(url, label) of the pages a role sees in the top menu."""
    return [(url_for(endpoint), label) for endpoint, label in MENU if may_open(role, endpoint)]
