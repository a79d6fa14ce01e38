"""Prometheus counters for what the service layer commits.

Counted after the commit, per process; under gunicorn the values of all workers are merged
through PROMETHEUS_MULTIPROC_DIR (set in gunicorn.conf.py before any worker imports this).
"""

from __future__ import annotations

from prometheus_client import Counter

decisions = Counter("countersign_decisions_total", "Cases countersigned, by model and action", ["model", "action"])
overrides = Counter(
    "countersign_overrides_total", "Overridden recommendations, by model and reason code", ["model", "reason_code"]
)
retractions = Counter(
    "countersign_decisions_retracted_total",
    "Decisions undone by their reviewer, by model and action",
    ["model", "action"],
)
recommendations = Counter(
    "countersign_recommendations_ingested_total", "New recommendations stored, by model", ["model"]
)


def decided(model: str, action: str, reason_code: str | None) -> None:
    """Count one committed decision."""
    decisions.labels(model, action).inc()
    if action == "override":
        overrides.labels(model, reason_code or "none").inc()


def retracted(model: str, action: str) -> None:
    """Count one committed undo (countersign_decisions_total minus this is what stands)."""
    retractions.labels(model, action).inc()


def ingested(model: str, count: int) -> None:
    """Count newly stored recommendations."""
    if count:
        recommendations.labels(model).inc(count)
