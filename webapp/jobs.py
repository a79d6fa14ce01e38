"""Analyses run off the request path, in a small thread pool; progress and results live in the database.

The request that queues a run returns at once and the page polls the run's row, so a long
analysis never holds a web worker. The state is in the database, not in this process: any
worker can show it, and a run whose worker was restarted shows as interrupted.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask, current_app

from feedback import impact
from feedback.db import sqlite_write_intent

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analysis")


def submit(run_id: int) -> Future[None]:
    """Start computing a queued run in the background."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _pool.submit(_execute, app, run_id)


def _execute(app: Flask, run_id: int) -> None:
    from webapp.extensions import db

    sqlite_write_intent.set(True)  # this thread writes progress: take SQLite's write lock up front
    with app.app_context():
        session = db.sessionmaker()
        try:
            impact.execute_run(session, run_id)
        except Exception:  # noqa: BLE001 - a background thread has nobody to raise to
            log.exception("analysis %s could not run", run_id)
        finally:
            session.close()
