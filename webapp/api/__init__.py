"""The stable JSON API under /api/v1 (bearer tokens; no cookies, so no CSRF)."""

# Route modules register themselves on `bp` when imported.
from webapp.api import (  # noqa: F401
    analytics,
    backlog,
    challengers,
    decision_exceptions,
    experiments,
    models,
    outcomes,
    recommendations,
    spec,
)
from webapp.api.blueprint import bp

__all__ = ["bp"]
