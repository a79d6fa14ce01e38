"""Watching Countersign in production: request ids, JSON logs, Prometheus metrics and health checks."""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.decision_exceptions import queries as exception_queries
from feedback.review import queries as review_queries
from webapp.extensions import analytics_session, db

access_log = logging.getLogger("countersign.access")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only if it is short and plain, so it cannot forge log lines.
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

REQUEST_SECONDS = Histogram(
    "countersign_http_request_duration_seconds",
    "Time to answer a request (to the first byte of a streamed one), by route",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- logs --------------------------------------------------------------------------------

SECRETS = [
    (re.compile(r"(?i)\b(bearer\s+)\S+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)(\b(?:password|passwd|secret|token|api_key)\b[\"']?\s*[:=]\s*[\"']?)[^\s&\"',}]+"),
        r"\1[redacted]",
    ),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@"), r"\1[redacted]@"),  # passwords in URLs
]


def redact(message: str) -> str:
    """Remove anything that looks like a credential from a log message."""
    for pattern, replacement in SECRETS:
        message = pattern.sub(replacement, message)
    return message


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    FIELDS = ("method", "path", "route", "status", "duration_ms", "user_id", "remote_addr")

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line per record, with the request's fields when there are any."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if has_request_context() and g.get("request_id"):
            entry["request_id"] = g.request_id
        entry.update({key: getattr(record, key) for key in self.FIELDS if hasattr(record, key)})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners and servers swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        """Always the current stderr (tests swap it)."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines (once per process)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return  # gunicorn_conf.py or an earlier app already did
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)


# --- requests ----------------------------------------------------------------------------


def _start() -> None:
    """Name the request and start its clock."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if CALLER_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    """Return the request id, time the request and write the access line (path only: queries may hold data)."""
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    REQUEST_SECONDS.labels(request.method, route, str(response.status_code)).observe(elapsed)
    user = g.get("user")
    # The identity map's key, not `user.id`: after a failed transaction an attribute load would raise.
    user_id = sa_inspect(user).identity[0] if user is not None and sa_inspect(user).identity else None
    access_log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2),
            "user_id": user_id,
            "remote_addr": request.remote_addr,
        },
    )
    return response


# --- health ------------------------------------------------------------------------------


@cache
def migration_head() -> str | None:
    """The newest migration shipped with this code."""
    from alembic.script import ScriptDirectory

    from feedback.migrate import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def readiness(session: Session) -> tuple[bool, dict[str, str]]:
    """Whether this process can serve: the database answers and its schema is the code's."""
    try:
        session.execute(text("SELECT 1"))
        current = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is reported
        session.rollback()
        return False, {"database": f"unavailable: {type(exc).__name__}"}
    head = migration_head()
    if current != head:
        return False, {"database": "ok", "migrations": f"database at {current}, code expects {head}"}
    return True, {"database": "ok", "migrations": "current"}


def replica_status(session: Session) -> str:
    """Whether the analytics replica answers, and how far its replay trails (PostgreSQL standby)."""
    try:
        if session.get_bind().dialect.name != "postgresql":
            session.execute(text("SELECT 1"))
            return "ok"
        lag = session.execute(
            text("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp()) WHERE pg_is_in_recovery()")
        ).scalar()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"unavailable: {type(exc).__name__}"
    finally:
        session.rollback()
    return "ok" if lag is None else f"ok, last replayed change {lag:.0f} s old"


# --- metrics -----------------------------------------------------------------------------


class WorkloadCollector(Collector):
    """Gauges read from the database at scrape time, so every host reports the same figures."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the gauges from the database now."""
        queue = GaugeMetricFamily("countersign_queue_depth", "Open cases waiting for a decision", labels=["model"])
        for key, count in review_queries.open_cases_by_model(self.session):
            queue.add_metric([key], count)
        yield queue
        open_exc = GaugeMetricFamily("countersign_open_exceptions", "Unresolved exceptions", labels=["model"])
        overdue = GaugeMetricFamily(
            "countersign_overdue_exceptions", "Unresolved exceptions past their SLA", labels=["model"]
        )
        for key, count, late in exception_queries.unresolved_exceptions_by_model(self.session, utcnow()):
            open_exc.add_metric([key], count)
            overdue.add_metric([key], late)
        yield open_exc
        yield overdue
        yield from _job_gauges(self.session)


def _job_gauges(session: Session) -> Iterator[GaugeMetricFamily]:
    """The background queue: jobs waiting (their rows) and the age of the oldest, per kind."""
    from feedback import background

    waiting = GaugeMetricFamily("countersign_jobs_queued", "Background jobs waiting for a worker", labels=["kind"])
    oldest = GaugeMetricFamily(
        "countersign_jobs_oldest_queued_seconds", "Age of the oldest background job waiting", labels=["kind"]
    )
    for kind, (count, age) in background.queued_jobs(session).items():
        waiting.add_metric([kind], count)
        oldest.add_metric([kind], age)
    yield waiting
    yield oldest


def metrics_authorized() -> bool:
    """The scraper shows the configured metrics token, or an admin's API token."""
    from webapp.auth import api_user

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = current_app.config.get("METRICS_TOKEN") or ""
    if scheme.lower() == "bearer" and expected and hmac.compare_digest(token.strip(), expected):
        return True
    user = api_user()
    return not isinstance(user, Response) and user.role == "admin"


def exposition(session: Session) -> bytes:
    """All metrics in Prometheus text format, merged across gunicorn workers when there are several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    workload = CollectorRegistry()
    workload.register(WorkloadCollector(session))
    return generate_latest(registry) + generate_latest(workload)


def init_app(app: Flask) -> None:
    """Wire request ids, access logs, metrics and health checks into the app."""
    if app.config.get("LOG_FORMAT") == "json":
        configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    app.before_request(_start)
    app.after_request(_finish)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (the database is /readyz's business)."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int, dict[str, str]]:
        """Readiness for the load balancer: database reachable and migrations current."""
        ok, checks = readiness(db.session)
        if "analytics" in db.engines:
            # Informational: without the replica only the analytics pages fail; the queue still works.
            checks["analytics_database"] = replica_status(analytics_session())
        headers = {} if ok else {"Retry-After": "5"}
        return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503, headers

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus scrape endpoint (bearer token)."""
        if not metrics_authorized():
            return Response(
                json.dumps(
                    {"error": {"code": "unauthorized", "message": "a metrics or admin token is required", "fields": {}}}
                ),
                status=401,
                mimetype="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="countersign-metrics"'},
            )
        return Response(exposition(db.session), mimetype=CONTENT_TYPE_LATEST)
