"""gunicorn settings for Countersign: `gunicorn -c gunicorn.conf.py` (gunicorn's default file name).

`countersign serve` uses this file; command-line flags and GUNICORN_CMD_ARGS override any value.
It lives outside the `webapp` package on purpose: it must run before anything imports prometheus_client.
Workers keep no state of their own (sessions are signed cookies, jobs and rate limits live in the
database), so any number of hosts can run this behind one load balancer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

# Before any worker imports prometheus_client: the workers' metrics go to files the scrape merges.
METRICS_DIR = Path(tempfile.gettempdir()) / f"countersign-metrics-{os.getpid()}"
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(METRICS_DIR))

wsgi_app = "webapp:create_app()"
bind = os.environ.get("COUNTERSIGN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1) + 1, 8)))
worker_class = "gthread"
# Threads overlap a request's database round trips; streamed exports hold one thread, not a worker.
threads = int(os.environ.get("COUNTERSIGN_THREADS", 4))
timeout = 60  # a worker silent this long is killed and replaced
graceful_timeout = 30  # on HUP or TERM, requests in flight get this long to finish
keepalive = 5  # behind a load balancer that reuses connections
max_requests = 5000  # recycle workers now and then, staggered so they never all restart at once
max_requests_jitter = 500
accesslog = None  # the app writes one JSON access line per request, with its request id
errorlog = "-"
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "webapp.observability.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "alembic": {"level": "WARNING"},
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
}


def on_starting(server: Any) -> None:
    """Start the metrics directory empty: files left by an earlier master would be counted again."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Let the metrics of a dead worker stop counting as live."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
