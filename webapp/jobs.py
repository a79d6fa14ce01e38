"""What the web process does with background work: queue it for `countersign worker` (webapp/worker.py).

The request that queues an analysis, export or backlog refresh has stored the job's row; it hands
the id to the queue and returns at once, and the page polls the row. The web process never runs a
job itself unless the app is in the in-process mode of tests and development (JOBS_IN_PROCESS).
"""

from __future__ import annotations

from flask import Flask

from webapp import worker


def submit(run_id: int) -> None:
    """Queue a stored analysis run."""
    worker.enqueue_job("analysis", run_id)


def submit_export(job_id: int) -> None:
    """Queue a stored labelled-data export."""
    worker.enqueue_job("export", job_id)


def submit_backlog_refresh(job_id: int) -> None:
    """Queue a stored backlog refresh."""
    worker.enqueue_job("backlog_refresh", job_id)


def start_webhook_delivery(app: Flask) -> None:
    """Ask a worker for a delivery pass over the webhook events just committed."""
    worker.enqueue_webhooks(app)
